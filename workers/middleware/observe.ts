/**
 * Observability: one structured JSON log line per request the Worker
 * answers, and `Server-Timing: total;dur=<ms>` on every `/api` and
 * `/admin/api` answer (appended after the entries the routes set: the
 * catalog's tier, the database that answered reads).
 *
 * The line (`msg: "request"`) carries: requestId (the one `requestId()` set
 * and `x-request-id` echoes), method, route (the matched route pattern, e.g.
 * `/api/orders/:id`, never the path as sent: no ids, no query string, so no
 * `?token=`), status, durationMs, region (when `region()` decided one), colo
 * (`request.cf.colo`, absent locally), cacheTier (when a catalog read ran:
 * the deepest tier any catalog read of the request reached), environment.
 * Nothing else from the request is logged: no URL, headers, cookies, bodies.
 *
 * It runs right after `requestId()`, around everything else, and never
 * handles errors itself: Hono's `onError` (./errors.ts) turns a thrown error
 * into the answer inside the chain, so the status logged here is the one the
 * client gets, 404s and 405s included. If something escapes the chain anyway,
 * the line is written with status 500 and the error is rethrown untouched.
 *
 * Durations come from `Date.now()`, which workerd advances only across I/O:
 * a request that does no I/O logs 0 ms. That is the platform's timer
 * resolution, not a bug.
 */
import type { Context, MiddlewareHandler } from 'hono';
import { matchedRoutes } from 'hono/route';
import type { AppEnv } from '../types';

/** The JSON log line written for every request. */
export interface RequestLogLine {
  level: 'info' | 'warn';
  msg: 'request';
  requestId: string | undefined;
  method: string;
  /** Matched route pattern; null when no route matched (404, 405). */
  route: string | null;
  status: number;
  durationMs: number;
  region?: string;
  colo?: string;
  cacheTier?: string;
  environment?: string;
}

/** Paths whose answers carry `Server-Timing: total;dur=`. */
export function isApiPath(path: string): boolean {
  return path === '/api' || path.startsWith('/api/') || path === '/admin/api' || path.startsWith('/admin/api/');
}

/**
 * The pattern of the route that answered (`/api/products/:slug`), or null.
 *
 * After the chain ran, `c.req.routeIndex` rests on the last handler that ran:
 * the route's handler, or a route-level middleware that refused. If it rests
 * on an app-level middleware (a `*` pattern: `region()` refusing a bad
 * region before the route ran), the last method-specific match is the route.
 * With no such match (nothing is registered for this path and method) the
 * answer is null, never the raw path.
 */
export function matchedRoutePattern(c: Context): string | null {
  let routes: ReturnType<typeof matchedRoutes>;
  try {
    routes = matchedRoutes(c);
  } catch {
    return null;
  }
  const current = routes[c.req.routeIndex];
  if (current && current.method !== 'ALL' && !current.path.endsWith('*')) return current.path;
  const specific = routes.filter((r) => r.method !== 'ALL' && !r.path.endsWith('*')).at(-1);
  return specific?.path ?? null;
}

/** Options of {@link observe}. */
export interface ObserveOptions {
  /** Where the line goes; `console.log` (`console.warn` for 5xx) by default. Tests pass their own. */
  write?: (line: RequestLogLine) => void;
}

function defaultWrite(line: RequestLogLine): void {
  const text = JSON.stringify(line);
  if (line.level === 'warn') console.warn(text);
  else console.log(text);
}

/** Middleware factory: the request log line and `Server-Timing: total` (see the module comment). */
export function observe(options: ObserveOptions = {}): MiddlewareHandler<AppEnv> {
  const write = options.write ?? defaultWrite;
  return async function observe(c, next) {
    const started = Date.now();
    let escaped = false;
    try {
      await next();
    } catch (err) {
      escaped = true;
      throw err;
    } finally {
      const durationMs = Math.max(0, Date.now() - started);
      const status = escaped ? 500 : c.res.status;
      if (!escaped && isApiPath(c.req.path)) {
        try {
          c.header('Server-Timing', `total;dur=${durationMs}`, { append: true });
        } catch {
          // A response with immutable headers: rebuild it once and try again.
          c.res = new Response(c.res.body, c.res);
          c.res.headers.append('Server-Timing', `total;dur=${durationMs}`);
        }
      }
      try {
        const cf = c.req.raw.cf as { colo?: unknown } | undefined;
        const region = c.get('region')?.code;
        const cacheTier = c.get('cacheTier');
        const line: RequestLogLine = {
          level: status >= 500 ? 'warn' : 'info',
          msg: 'request',
          requestId: c.get('requestId'),
          method: c.req.method,
          route: matchedRoutePattern(c),
          status,
          durationMs,
          ...(region ? { region } : {}),
          ...(typeof cf?.colo === 'string' ? { colo: cf.colo } : {}),
          ...(cacheTier ? { cacheTier } : {}),
          ...(c.env?.ENVIRONMENT ? { environment: c.env.ENVIRONMENT } : {}),
        };
        write(line);
      } catch {
        // Logging must never change the answer.
      }
    }
  };
}
