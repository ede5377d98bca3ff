/**
 * Admin authentication: `Authorization: Bearer <token>` on every
 * `/admin/api` route, checked against the `api_tokens` table (only SHA-256
 * hashes are stored) or, when set, `ADMIN_BOOTSTRAP_TOKEN` (an `owner`
 * token for a first deploy and local use).
 */
import { and, eq, isNull } from 'drizzle-orm';
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
  /** Roles allowed on the routes behind this middleware (`owner` always is). */
  roles: readonly ApiTokenRole[];
}

const encoder = new TextEncoder();

/** Hex SHA-256 of a token, the form `api_tokens.token_hash` stores. */
export function hashToken(token: string): Promise<string> {
  return sha256Hex(token);
}

function constantTimeEquals(a: string, b: string): boolean {
  const x = encoder.encode(a);
  const y = encoder.encode(b);
  // Compare equal-length buffers so the length check does not short-circuit timing.
  return x.length === y.length && crypto.subtle.timingSafeEqual(x, y);
}

/**
 * Middleware: 401 `unauthorized` without a valid token, 403 `forbidden` when
 * the token's role may not use these routes; sets `c.var.admin`.
 */
export function adminAuth(options: AdminAuthOptions): MiddlewareHandler<AppEnv> {
  return async function adminAuth(c, next) {
    const header = c.req.header('authorization') ?? '';
    const match = /^Bearer\s+([A-Za-z0-9._~+/=-]{16,512})$/.exec(header.trim());
    if (!match) {
      throw new ApiError(401, 'unauthorized', 'An admin token is required: send "Authorization: Bearer <token>".', undefined, {
        'WWW-Authenticate': 'Bearer realm="pasar-admin"',
      });
    }
    const token = match[1]!;
    let principal: AdminPrincipal | undefined;
    const bootstrap = c.env.ADMIN_BOOTSTRAP_TOKEN;
    if (bootstrap && constantTimeEquals(token, bootstrap)) {
      principal = { tokenId: 'bootstrap', role: 'owner' };
    } else {
      const hash = await hashToken(token);
      const db = c.var.services.db.primary;
      const [row] = await db
        .select({ id: apiTokens.id, role: apiTokens.role })
        .from(apiTokens)
        .where(and(eq(apiTokens.tokenHash, hash), isNull(apiTokens.revokedAt)))
        .limit(1);
      if (row) {
        principal = { tokenId: row.id, role: row.role };
        await afterResponse(c, db.update(apiTokens).set({ lastUsedAt: new Date() }).where(eq(apiTokens.id, row.id)));
      }
    }
    if (!principal) {
      throw new ApiError(401, 'unauthorized', 'The admin token is not valid or has been revoked.', undefined, {
        'WWW-Authenticate': 'Bearer realm="pasar-admin", error="invalid_token"',
      });
    }
    if (principal.role !== 'owner' && !options.roles.includes(principal.role)) {
      throw new ApiError(403, 'forbidden', `A ${principal.role} token may not use this route.`);
    }
    c.set('admin', principal);
    await next();
  };
}
