/**
 * Every resource's sub-app is an OpenAPIHono built here, so validation
 * failures everywhere share one shape and every route lands in the OpenAPI
 * document.
 */
import { OpenAPIHono, z } from '@hono/zod-openapi';
import { ApiError } from './errors';
import { unstorableFields } from './text';
import type { AppEnv } from '../types';

/** One entry of `details` in a 400 `invalid_request`. */
export interface FieldIssue {
  /** Where the bad value was: `body`, `query`, `param`, `header`, `cookie`. */
  in: string;
  /** Dotted path to the field, e.g. `shippingAddress.postalCode`; `(root)` for the whole input. */
  field: string;
  message: string;
}

/** Converts zod issues to {@link FieldIssue}s. */
export function fieldIssues(target: string, error: z.ZodError): FieldIssue[] {
  const where = target === 'json' ? 'body' : target;
  return error.issues.flatMap((issue) =>
    // An unknown key is reported once for its object; name each key instead.
    issue.code === 'unrecognized_keys'
      ? issue.keys.map((key) => ({ in: where, field: [...issue.path, key].join('.'), message: 'Unknown field.' }))
      : [{ in: where, field: issue.path.join('.') || '(root)', message: issue.message }],
  );
}

/**
 * A new sub-app for one resource, with the shared validation hook: zod's
 * verdict, and on top of it text no database column could store (./text.ts).
 */
export function createRouter(): OpenAPIHono<AppEnv> {
  return new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      const details = result.success ? unstorableFields(result.data, result.target === 'json' ? 'body' : result.target) : fieldIssues(result.target, result.error);
      if (details.length) {
        const summary = details.map((d) => `${d.field}: ${d.message}`).join('; ');
        throw new ApiError(400, 'invalid_request', `Invalid request: ${summary}`, details);
      }
    },
  });
}

/** OpenAPI schema of the error envelope, for route `responses`. */
export const ErrorSchema = z
  .object({
    error: z.object({
      code: z.string().openapi({ example: 'invalid_request' }),
      message: z.string().openapi({ example: 'Invalid request: quantity: Too big' }),
      details: z.unknown().optional(),
    }),
  })
  .openapi('Error');

/** A JSON error response entry for `createRoute({ responses })`. */
export function errorResponse(description: string) {
  return { description, content: { 'application/json': { schema: ErrorSchema } } } as const;
}
