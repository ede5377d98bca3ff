/**
 * Turns every failure into the JSON error envelope of shared/API.md. Nothing
 * under /api or /admin/api ever answers with an HTML error page or a bare 500
 * for bad input: known failures keep their status and code; an unknown one is
 * logged with the request id and answered as a 500 `internal` that says which
 * request to look up.
 */
import type { Context, ErrorHandler, NotFoundHandler } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { ApiError, unavailable } from '../lib/errors';
import { renderNotFoundPage } from '../pages/status';
import type { AppEnv } from '../types';

/** Maps a thrown value to an {@link ApiError}. */
export function toApiError(err: unknown, requestId?: string): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof HTTPException) {
    // Hono's own validators and body parsing throw these.
    if (err.status === 400 && /malformed json/i.test(err.message)) {
      return new ApiError(400, 'invalid_json', 'The request body is not valid JSON.');
    }
    if (err.status === 413) return new ApiError(413, 'payload_too_large', 'The request body is too large.');
    if (err.status === 401) return new ApiError(401, 'unauthorized', 'Authentication is required.');
    // @hono/zod-openapi refuses a body whose Content-Type the route does not take.
    if (err.status === 415) return new ApiError(415, 'unsupported_media_type', 'This route does not take a body of that Content-Type (JSON routes take application/json; see /api/openapi.json).');
    return new ApiError(err.status, err.status === 400 ? 'invalid_request' : 'http_error', err.message || 'Request failed.');
  }
  if (isDependencyOutage(err)) return unavailable('A service this request needs is temporarily unavailable. Try again shortly.');
  return new ApiError(500, 'internal', `Something went wrong on our side${requestId ? ` (request ${requestId})` : ''}.`);
}

/**
 * Whether an error (or one it wraps: drizzle puts the driver's error in
 * `cause`) says a dependency could not be reached, rather than that our code
 * is wrong: Postgres connection failures (SQLSTATE classes 08, 53, 57P), a
 * WebSocket to Neon's proxy that failed, a timeout. Those are 503 with
 * `Retry-After`, not 500.
 */
export function isDependencyOutage(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^(08|53|57P)/.test(code)) return true;
    if (e.name === 'TimeoutError') return true;
    if (/websocket|ECONNREFUSED|connection (terminated|refused|closed)|fetch failed/i.test(e.message)) return true;
  }
  return false;
}

/** Sends an {@link ApiError} as the envelope, with its headers. */
export function sendError(c: Context<AppEnv>, error: ApiError): Response {
  return c.json(error.toJSON(), error.status, error.headers);
}

/** `app.onError` handler. */
export function errorHandler(): ErrorHandler<AppEnv> {
  return function errorHandler(err, c) {
    const requestId = c.get('requestId');
    const apiError = toApiError(err, requestId);
    if (apiError.status === 503 && !(err instanceof ApiError)) {
      // An outage the answer already reports (503, Retry-After): a warning
      // for the dashboards, not a bug with a stack to chase.
      console.warn(JSON.stringify({ level: 'warn', requestId, path: c.req.path, dependency: 'unavailable', error: String(err).slice(0, 300) }));
    } else if (apiError.status >= 500 && !(err instanceof ApiError)) {
      console.error(JSON.stringify({ level: 'error', requestId, path: c.req.path, error: String(err), stack: (err as Error)?.stack }));
    }
    return sendError(c, apiError);
  };
}

/** Paths whose clients are programs: they get the JSON envelope, never HTML. */
function isJsonPath(path: string): boolean {
  return path.startsWith('/api') || path.startsWith('/admin/api') || path.startsWith('/media/');
}

/**
 * `app.notFound` handler: JSON 404 under the API and media paths; elsewhere a
 * person followed a link, so the HTML 404 page. (A mounted sub-app's own
 * `notFound` never runs, so this is the one place for both.)
 */
export function notFoundHandler(): NotFoundHandler<AppEnv> {
  return function notFoundHandler(c) {
    if (!isJsonPath(c.req.path)) return renderNotFoundPage(c);
    return sendError(c, new ApiError(404, 'not_found', `No route for ${c.req.method} ${c.req.path}.`));
  };
}
