/**
 * Cross-origin rules: which other sites may call the API from a browser
 * (CORS, only the origins in `CORS_ORIGINS`), and a CSRF guard for writes.
 *
 * The session cookie is SameSite=Lax, so other *sites* do not get it sent on
 * their POSTs; the Origin check also covers what SameSite does not: a
 * sibling subdomain (same site, other origin), older browsers, and a form
 * posted as `text/plain`, which needs no CORS preflight. Browsers send
 * `Origin` on every POST, PUT, PATCH and DELETE; a write whose Origin is
 * neither this origin nor a configured one is refused before any handler
 * runs. A request with no Origin and no `Sec-Fetch-Site` is not a browser
 * (curl, a server, a mobile app) and cannot carry a victim's cookie by
 * accident, so it passes.
 */
import type { MiddlewareHandler } from 'hono';
import { cors } from 'hono/cors';
import { ApiError } from '../lib/errors';
import type { AppEnv } from '../types';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** The origins `CORS_ORIGINS` lists (comma-separated, e.g. `https://shop.example,https://m.shop.example`). */
export function configuredOrigins(env: Pick<Env, 'CORS_ORIGINS'>): string[] {
  return (env.CORS_ORIGINS ?? '')
    .split(',')
    .map((o) => o.trim().replace(/\/+$/, ''))
    .filter(Boolean);
}

/** Options for {@link sameOriginWrites}. */
export interface SameOriginOptions {
  /** Paths that take server-to-server writes and authenticate them otherwise (signed webhooks). */
  exempt?: (path: string) => boolean;
}

/** Middleware: 403 `forbidden` for a browser write from an origin that is neither this one nor configured. */
export function sameOriginWrites(options: SameOriginOptions = {}): MiddlewareHandler<AppEnv> {
  return async function sameOriginWrites(c, next) {
    if (SAFE_METHODS.has(c.req.method) || options.exempt?.(c.req.path)) return next();
    const origin = c.req.header('origin');
    const fetchSite = c.req.header('sec-fetch-site');
    const own = new URL(c.req.url).origin;
    let allowed: boolean;
    if (origin !== undefined) allowed = origin === own || configuredOrigins(c.env).includes(origin);
    else allowed = fetchSite === undefined || fetchSite === 'same-origin' || fetchSite === 'none';
    if (!allowed) {
      throw new ApiError(403, 'forbidden', 'Cross-site request refused: this write must come from the store itself.', {
        origin: origin?.slice(0, 200) ?? null,
        expected: own,
      });
    }
    await next();
  };
}

/**
 * Middleware: CORS for the configured origins only (credentials allowed, so
 * a storefront on a sibling domain can use the session). With no
 * `CORS_ORIGINS`, no CORS headers at all: same-origin only.
 */
export function corsForConfiguredOrigins(): MiddlewareHandler<AppEnv> {
  const handlers = new Map<string, MiddlewareHandler>();
  return async function corsForConfiguredOrigins(c, next) {
    const list = configuredOrigins(c.env);
    if (list.length === 0) return next();
    const key = list.join(',');
    let handler = handlers.get(key);
    if (!handler) {
      handler = cors({
        origin: (origin) => (list.includes(origin) ? origin : null),
        credentials: true,
        allowMethods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
        allowHeaders: ['content-type', 'idempotency-key', 'x-region', 'x-order-token', 'authorization'],
        exposeHeaders: ['x-request-id', 'x-region', 'retry-after', 'server-timing', 'etag'],
        maxAge: 600,
      });
      handlers.set(key, handler);
    }
    return handler(c, next);
  };
}
