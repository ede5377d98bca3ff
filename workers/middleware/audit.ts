/**
 * The admin audit trail: one `admin_audit` row per authenticated admin write
 * (POST, PUT, PATCH, DELETE under /admin/api), accepted or refused, saying who
 * (token id and role), what (method, route pattern, path, status) and when.
 *
 * It runs around the admin sub-apps (app.ts: `app.use('/admin/api/*',
 * services(), auditAdminWrites())`) and records after the handler answered,
 * because only then are the outcome and the principal known: `adminAuth()`
 * sets `c.var.admin` inside the route, before its role check, so a 403 is
 * attributed too. An unauthenticated 401 has no principal to attribute and
 * is a log line instead (a pile of them is someone guessing tokens).
 *
 * The table is append-only (a trigger refuses UPDATE and DELETE, migration
 * 0005), so a leaked token cannot erase its tracks through the application.
 */
import type { Context, MiddlewareHandler } from 'hono';
import { matchedRoutes } from 'hono/route';
import { adminAudit, adminAuditMethods } from '../../db/schema';
import { newId } from '../lib/ids';
import { toStorable } from '../lib/text';
import type { AppEnv } from '../types';
import type { AdminPrincipal } from './admin-auth';

type AuditMethod = (typeof adminAuditMethods)[number];

const AUDITED_METHODS: ReadonlySet<string> = new Set(adminAuditMethods);

/** Longest path kept in a row: paths are client-chosen, the row must stay small. */
const MAX_PATH_CHARS = 1024;

/**
 * The pattern of the route that answered, e.g. `/admin/api/products/:id`.
 *
 * After `next()`, `c.req.routeIndex` points at the last handler that ran: the
 * route's handler, or the route-level middleware (adminAuth, limitBody, the
 * validator) that refused. Every one of those is registered under the
 * route's own pattern. Should the index ever rest on an app-level middleware
 * (a `*` pattern registered for every method), the last method-specific match
 * is the route instead.
 */
export function auditedRoute(c: Context): string {
  const routes = matchedRoutes(c);
  const current = routes[c.req.routeIndex];
  if (current && !current.path.endsWith('*')) return current.path;
  const specific = routes.filter((r) => r.method !== 'ALL' && !r.path.endsWith('*')).at(-1);
  return specific?.path ?? current?.path ?? c.req.path;
}

/**
 * Middleware factory: records admin writes in `admin_audit` (see the module
 * comment). The insert is awaited before the response leaves, so a 2xx means
 * the write is on record.
 */
export function auditAdminWrites(): MiddlewareHandler<AppEnv> {
  return async function auditAdminWrites(c, next) {
    await next();
    const status = c.res.status;
    // adminAuth() may not have run (unknown path, 405, a GET outside any route).
    const admin = c.get('admin') as AdminPrincipal | undefined;
    if (!admin) {
      if (status === 401) {
        console.warn(
          JSON.stringify({
            level: 'warn',
            msg: 'admin request without a valid token',
            method: c.req.method,
            path: c.req.path.slice(0, MAX_PATH_CHARS),
            requestId: c.get('requestId'),
            ip: c.req.header('cf-connecting-ip') ?? null,
          }),
        );
      }
      return;
    }
    if (!AUDITED_METHODS.has(c.req.method)) return;
    const row = {
      id: newId('aud'),
      tokenId: admin.tokenId,
      role: admin.role,
      method: c.req.method as AuditMethod,
      route: auditedRoute(c),
      // A refused request may carry a decoded NUL in its path; it must still be recorded.
      path: toStorable(c.req.path.slice(0, MAX_PATH_CHARS)),
      status,
      requestId: c.get('requestId') ?? null,
    };
    try {
      await c.var.services.db.primary.insert(adminAudit).values(row);
    } catch (err) {
      // The write itself has already committed (or been refused): failing the
      // response now would tell the client it did not happen and invite a
      // retry of something done. So the answer stands, and this line carries
      // the whole record, to be alerted on and replayed from the logs.
      console.error(JSON.stringify({ level: 'error', msg: 'admin audit row not written', audit: row, error: String(err).slice(0, 300) }));
    }
  };
}
