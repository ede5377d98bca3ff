/**
 * Admin API tokens (owner only): mint, list and revoke the bearer tokens
 * other people and integrations use on /admin/api.
 *
 * A token is shown once, in the answer that creates it; only its SHA-256 is
 * stored (`api_tokens.token_hash`), so neither the list nor a database dump
 * reveals a usable token. Tokens look like `pasar_<role initial>_<32 base32
 * characters>` (160 random bits): the prefix lets secret scanners and people
 * recognise one; the role itself is always read from the row, never from the
 * prefix.
 *
 * Revocation takes effect on the next request (adminAuth reads the primary).
 * The last active owner token cannot be revoked while ADMIN_BOOTSTRAP_TOKEN
 * is unusable, so a store cannot lock itself out of its own admin API.
 */
import { createRoute, z } from '@hono/zod-openapi';
import { and, asc, desc, eq, isNull, sql } from 'drizzle-orm';
import type { MiddlewareHandler } from 'hono';
import type { Database } from '../../db/client';
import { apiTokenRoles, apiTokens, type ApiTokenRole } from '../../db/schema';
import { ApiError, notFound } from '../lib/errors';
import { newId, randomToken } from '../lib/ids';
import { createRouter, errorResponse } from '../lib/router';
import { adminAuth, bootstrapConfigured, hashToken } from '../middleware/admin-auth';
import { mintApiToken } from '../lib/api-token';
import { limitBody } from '../middleware/body-limit';
import type { AppEnv } from '../types';

const security = [{ adminToken: [] }];
/** Owner only (`owner` passes every role check; no other role is listed). Authentication before the body limit. */
const ownerOnly: MiddlewareHandler<AppEnv>[] = [adminAuth({ roles: [] })];
const ownerWriter: MiddlewareHandler<AppEnv>[] = [adminAuth({ roles: [] }), limitBody(4 * 1024)];

// ---- schemas ----------------------------------------------------------------

const RoleSchema = z.enum(apiTokenRoles).openapi({
  description:
    '`owner`: everything, including tokens. `catalog`: products, import, media, inventory writes and reads. ' +
    '`fulfillment`: orders (list, cancel, fulfill) and inventory reads. `readonly`: reads of products, inventory and orders.',
  example: 'catalog',
});

const CreateTokenBody = z
  .object({
    name: z
      .string()
      .trim()
      .min(1)
      .max(100)
      // Names are shown in lists and logs: no control characters (newlines, escapes).
      .regex(/^[^\u0000-\u001f\u007f-\u009f]*$/, 'Must not contain control characters.')
      .openapi({ description: 'Who or what holds the token, e.g. "warehouse integration" (1-100 characters)', example: 'warehouse integration' }),
    role: RoleSchema,
  })
  .strict()
  .openapi('AdminTokenCreate');

const TokenRecordSchema = z
  .object({
    id: z.string().openapi({ example: 'tok_5x2m…' }),
    name: z.string(),
    role: RoleSchema,
    createdBy: z.string().openapi({ description: 'Id of the token that created it, `bootstrap` (ADMIN_BOOTSTRAP_TOKEN) or `cli` (`npm run admin:token`)' }),
    createdAt: z.string(),
    lastUsedAt: z.string().nullable().openapi({ description: 'Last authenticated use, to the minute (written at most once a minute)' }),
    revokedAt: z.string().nullable().openapi({ description: 'When it was revoked; a revoked token is refused with 401' }),
  })
  .openapi('AdminToken');

const CreatedTokenSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    role: RoleSchema,
    token: z.string().openapi({
      description: 'The bearer token. Shown only in this answer: store it now; only its SHA-256 is kept.',
      example: 'pasar_c_0123456789abcdefghjkmnpqrstvwx',
    }),
    createdBy: z.string(),
    createdAt: z.string(),
  })
  .openapi('AdminTokenCreated');

const IdParam = z.object({ id: z.string().min(1).max(64).openapi({ example: 'tok_5x2m…' }) });

type TokenRow = typeof apiTokens.$inferSelect;
type TokenRecord = z.infer<typeof TokenRecordSchema>;
/** A drizzle transaction on the primary. */
type Transaction = Parameters<Parameters<Database['transaction']>[0]>[0];

/** The public view of a row: never the hash. */
function tokenRecord(row: TokenRow): TokenRecord {
  return {
    id: row.id,
    name: row.name,
    role: row.role,
    createdBy: row.createdBy,
    createdAt: row.createdAt.toISOString(),
    lastUsedAt: row.lastUsedAt?.toISOString() ?? null,
    revokedAt: row.revokedAt?.toISOString() ?? null,
  };
}

// ---- revocation -----------------------------------------------------------------

/**
 * Revokes token `id` inside `tx` and returns its row. Revoking a revoked
 * token changes nothing (the first revocation time stands). Unknown id: 404.
 * An owner token that is the last active one, while no bootstrap token can
 * stand in (`bootstrapUsable` false), is refused with 409 `last_owner`.
 *
 * Race: every active owner row is locked (in id order, so two revocations
 * lock in the same order and cannot deadlock) before counting, so two
 * concurrent revocations of the last two owners serialise and the second
 * sees the first's effect.
 */
export async function revokeApiToken(tx: Transaction, id: string, bootstrapUsable: boolean): Promise<TokenRow> {
  // The role never changes after minting, so reading it unlocked is safe.
  const [target] = await tx.select().from(apiTokens).where(eq(apiTokens.id, id)).limit(1);
  if (!target) throw notFound('No such API token.');
  if (target.revokedAt) return target;
  if (target.role === 'owner' && !bootstrapUsable) {
    const owners = await tx
      .select({ id: apiTokens.id })
      .from(apiTokens)
      .where(and(eq(apiTokens.role, 'owner'), isNull(apiTokens.revokedAt)))
      .orderBy(asc(apiTokens.id))
      .for('update');
    if (!owners.some((o) => o.id !== id)) {
      throw new ApiError(
        409,
        'last_owner',
        'This is the last active owner token and no ADMIN_BOOTSTRAP_TOKEN is configured: create another owner token first, so the store is not locked out.',
      );
    }
  }
  const [revoked] = await tx
    .update(apiTokens)
    .set({ revokedAt: sql`now()` })
    .where(and(eq(apiTokens.id, id), isNull(apiTokens.revokedAt)))
    .returning();
  if (revoked) return revoked;
  // Revoked by a concurrent request in between: its time stands.
  const [now] = await tx.select().from(apiTokens).where(eq(apiTokens.id, id)).limit(1);
  return now ?? target;
}

// ---- routes ---------------------------------------------------------------------

export const adminTokenRoutes = createRouter()
  .openapi(
    createRoute({
      method: 'post',
      path: '/tokens',
      tags: ['Admin'],
      security,
      middleware: ownerWriter,
      summary: 'Mints an admin API token (owner only); the token is shown once',
      description:
        'Creates a bearer token with the given role and answers it in `token`, the only time it is ever shown: only its SHA-256 is stored. ' +
        'The new token records the calling token as `createdBy`. Body strict (an unknown field such as `id`, `tokenHash` or `createdBy` is 400), at most 4 KiB.',
      request: { body: { required: true, content: { 'application/json': { schema: CreateTokenBody } } } },
      responses: {
        201: { description: 'Created; `token` is shown only here', content: { 'application/json': { schema: CreatedTokenSchema } } },
        400: errorResponse('Invalid body (`invalid_request`, `invalid_json`)'),
        401: errorResponse('No or bad admin token'),
        403: errorResponse('Only an owner token may manage tokens'),
        413: errorResponse('Body over 4 KiB'),
      },
    }),
    async (c) => {
      const { name, role } = c.req.valid('json');
      const { token, tokenHash } = await mintApiToken(role);
      const [row] = await c.var.services.db.primary
        .insert(apiTokens)
        .values({ id: newId('tok'), name, role, tokenHash, createdBy: c.var.admin.tokenId })
        .returning();
      // The answer holds a secret: no cache anywhere may keep it.
      c.header('cache-control', 'no-store');
      return c.json({ id: row!.id, name: row!.name, role: row!.role, token, createdBy: row!.createdBy, createdAt: row!.createdAt.toISOString() }, 201);
    },
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/tokens',
      tags: ['Admin'],
      security,
      middleware: ownerOnly,
      summary: 'Lists admin API tokens, newest first, revoked ones included (owner only)',
      description: 'Never includes a token or its hash. The bootstrap token (ADMIN_BOOTSTRAP_TOKEN) has no row and is not listed.',
      responses: {
        200: { description: 'Every token', content: { 'application/json': { schema: z.object({ items: z.array(TokenRecordSchema) }) } } },
        401: errorResponse('No or bad admin token'),
        403: errorResponse('Only an owner token may manage tokens'),
      },
    }),
    async (c) => {
      // A store has a handful of tokens: one page, no cursor.
      const rows = await c.var.services.db.primary.select().from(apiTokens).orderBy(desc(apiTokens.createdAt), desc(apiTokens.id));
      c.header('cache-control', 'private, no-store');
      return c.json({ items: rows.map(tokenRecord) }, 200);
    },
  )
  .openapi(
    createRoute({
      method: 'delete',
      path: '/tokens/{id}',
      tags: ['Admin'],
      security,
      middleware: ownerOnly,
      summary: 'Revokes an admin API token (owner only)',
      description:
        'Sets `revokedAt`; the token is refused with 401 from the next request on. Revoking a revoked token answers 200 and keeps the first revocation time. ' +
        'A token may revoke itself (this request still completes). The last active owner token cannot be revoked while no ADMIN_BOOTSTRAP_TOKEN is configured ' +
        '(409 `last_owner`). The bootstrap token has no row (404): remove the secret to retire it.',
      request: { params: IdParam },
      responses: {
        200: { description: 'The revoked token', content: { 'application/json': { schema: TokenRecordSchema } } },
        401: errorResponse('No or bad admin token'),
        403: errorResponse('Only an owner token may manage tokens'),
        404: errorResponse('Unknown token id'),
        409: errorResponse('`last_owner`: the last active owner token, with no bootstrap token configured'),
      },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      const usable = bootstrapConfigured(c.env);
      const row = await c.var.services.db.primary.transaction((tx) => revokeApiToken(tx, id, usable));
      c.header('cache-control', 'private, no-store');
      return c.json(tokenRecord(row), 200);
    },
  );
