/**
 * The JSON error envelope of shared/API.md and the one exception type that
 * produces it. Handlers throw `ApiError`; the app's error handler turns it
 * (and anything else that escapes) into `{ error: { code, message, details? } }`.
 */
import type { ContentfulStatusCode } from 'hono/utils/http-status';

/** Body of every non-2xx JSON answer. */
export interface ErrorEnvelope {
  error: { code: string; message: string; details?: unknown };
}

/** An error with a status, a stable snake_case code and a message meant for people. */
export class ApiError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: string,
    message: string,
    readonly details?: unknown,
    /** Extra response headers, e.g. `Retry-After`. */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'ApiError';
  }

  /** The envelope this error is sent as. */
  toJSON(): ErrorEnvelope {
    return {
      error: { code: this.code, message: this.message, ...(this.details === undefined ? {} : { details: this.details }) },
    };
  }
}

/** 400 `invalid_request` with one entry per bad field. */
export function invalidRequest(message: string, details?: unknown): ApiError {
  return new ApiError(400, 'invalid_request', message, details);
}

/** 404 `not_found`. Also used for another user's private resource. */
export function notFound(message = 'Not found'): ApiError {
  return new ApiError(404, 'not_found', message);
}

/** 503 `unavailable` with a `Retry-After`. */
export function unavailable(message: string, retryAfterSeconds = 5, details?: unknown): ApiError {
  return new ApiError(503, 'unavailable', message, details, { 'Retry-After': String(retryAfterSeconds) });
}
