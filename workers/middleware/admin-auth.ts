/**
 * Admin authentication: `Authorization: Bearer <token>` on every
 * `/admin/api` route, checked against the `api_tokens` table (only SHA-256
 * hashes are stored; revoked tokens never match) or, when set,
 * `ADMIN_BOOTSTRAP_TOKEN` (an `owner` token for a first deploy and local use).
 *
 * The principal is put on `c.var.admin` as soon as the token is known, before
 * the role check, so a refused (403) write is still attributed to its token
 * by the audit trail (./audit.ts).
 */
import { and, eq, isNull, sql } from 'drizzle-orm';
import type { MiddlewareHandler } from 'hono';
import { apiTokens, type ApiTokenRole } from '../../db/schema';
import { afterResponse } from '../lib/context';
import { ApiError } from '../lib/errors';
import { sha256Hex } from '../lib/hash';
import type { AppEnv } from '../types';

/** Who is calling the admin API. */
export interface AdminPrincipal {
  /** Token id, or `bootstrap` for ADMIN_BOOTSTRAP_TOKEN. */
  tokenId: string;
  role: ApiTokenRole;
}

/** Options for {@link adminAuth}. */
export interface AdminAuthOptions {
  /** Roles allowed on the routes behind this middleware (`owner` always is; `[]` means owner only). */
  roles: readonly ApiTokenRole[];
}

/** The token id recorded for ADMIN_BOOTSTRAP_TOKEN (it has no `api_tokens` row). */
export const BOOTSTRAP_TOKEN_ID = 'bootstrap';

/**
 * What a bearer token may look like. Anything else is refused before any
 * hashing or database work. Minted tokens (`pasar_<role initial>_<32 base32>`)
 * and a bootstrap token of 16+ URL-safe characters match.
 */
export const BEARER_TOKEN_PATTERN = /^[A-Za-z0-9._~+/=-]{16,512}$/;

/** `last_used_at` is rewritten at most this often per token, so a busy integration does not write on every call. */
export const LAST_USED_RESOLUTION_SECONDS = 60;

/** Hex SHA-256 of a token, the form `api_tokens.token_hash` stores. */
export function hashToken(token: string): Promise<string> {
  return sha256Hex(token);
}

/**
 * Whether ADMIN_BOOTSTRAP_TOKEN can actually authenticate anyone: set, and
 * shaped like a bearer token (a shorter value could never be presented).
 */
export function bootstrapConfigured(env: Pick<Env, 'ADMIN_BOOTSTRAP_TOKEN'>): boolean {
  const bootstrap = env.ADMIN_BOOTSTRAP_TOKEN;
  return typeof bootstrap === 'string' && BEARER_TOKEN_PATTERN.test(bootstrap);
}

const encoder = new TextEncoder();

/**
 * Constant-time equality of two hex digests. Comparing digests rather than
 * the raw strings keeps both sides the same length, so neither the content
 * nor the length of the bootstrap token leaks through timing.
 */
function digestsEqual(a: string, b: string): boolean {
  const x = encoder.encode(a);
  const y = encoder.encode(b);
  return x.length === y.length && crypto.subtle.timingSafeEqual(x, y);
}

/**
 * Middleware: 401 `unauthorized` (with `WWW-Authenticate`) without a valid
 * token, 403 `forbidden` when the token's role may not use these routes.
 * Sets `c.var.admin` for every authenticated caller, allowed or not.
 */
export function adminAuth(options: AdminAuthOptions): MiddlewareHandler<AppEnv> {
  return async function adminAuth(c, next) {
    const header = (c.req.header('authorization') ?? '').trim();
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!match || !BEARER_TOKEN_PATTERN.test(match[1]!)) {
      throw new ApiError(401, 'unauthorized', 'An admin token is required: send "Authorization: Bearer <token>".', undefined, {
        'WWW-Authenticate': 'Bearer realm="pasar-admin"',
      });
    }
    const hash = await hashToken(match[1]!);
    let principal: AdminPrincipal | undefined;
    if (bootstrapConfigured(c.env) && digestsEqual(hash, await hashToken(c.env.ADMIN_BOOTSTRAP_TOKEN!))) {
      principal = { tokenId: BOOTSTRAP_TOKEN_ID, role: 'owner' };
    } else {
      const db = c.var.services.db.primary;
      // The primary, not a replica: a revocation must take effect at once.
      const [row] = await db
        .select({ id: apiTokens.id, role: apiTokens.role })
        .from(apiTokens)
        .where(and(eq(apiTokens.tokenHash, hash), isNull(apiTokens.revokedAt)))
        .limit(1);
      if (row) {
        principal = { tokenId: row.id, role: row.role };
        // Conditional, so at most one write per token per minute however busy
        // it is; the clock is the database's on both sides of the comparison.
        // Started here (a drizzle query runs when awaited) and finished after
        // the response; a failure costs a stale timestamp, never the request.
        const touch = db
          .update(apiTokens)
          .set({ lastUsedAt: sql`now()` })
          .where(
            and(
              eq(apiTokens.id, row.id),
              sql`(${apiTokens.lastUsedAt} is null or ${apiTokens.lastUsedAt} < now() - make_interval(secs => ${LAST_USED_RESOLUTION_SECONDS}))`,
            ),
          )
          .then(
            () => undefined,
            (err: unknown) => {
              console.warn(JSON.stringify({ level: 'warn', msg: 'api token last_used_at not written', tokenId: row.id, error: String(err).slice(0, 300) }));
            },
          );
        await afterResponse(c, touch);
      }
    }
    if (!principal) {
      throw new ApiError(401, 'unauthorized', 'The admin token is not valid or has been revoked.', undefined, {
        'WWW-Authenticate': 'Bearer realm="pasar-admin", error="invalid_token"',
      });
    }
    // Before the role check: a refused attempt is still attributed (and audited).
    c.set('admin', principal);
    if (principal.role !== 'owner' && !options.roles.includes(principal.role)) {
      throw new ApiError(403, 'forbidden', `A ${principal.role} token may not use this route.`);
    }
    await next();
  };
}
