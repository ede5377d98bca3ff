/**
 * Who the shopper is: the session cookie, resolved lazily. Guests (no
 * cookie) cost nothing; a request with a cookie reads Redis once, and only
 * when a route asks, so browsing the catalog never waits on (or fails with)
 * the session store.
 */
import type { Context, MiddlewareHandler } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { SESSION_ABSOLUTE_SECONDS, SESSION_COOKIE, SessionStoreUnavailableError, readSession, type Session } from '../auth/sessions';
import { ApiError, unavailable } from '../lib/errors';
import type { AppEnv } from '../types';

/** What `c.var.shopper` gives a route. */
export interface ShopperAccessor {
  /** Whether the request carries a session cookie at all (no Redis read). */
  readonly hasCookie: boolean;
  /** The signed-in shopper's session, or null for a guest (a stale cookie is a guest). 503 when Redis is down. */
  session(): Promise<Session | null>;
  /** The session, or 401 `unauthorized`. */
  require(): Promise<Session>;
}

/** The session cookie's value, if the request has one. */
export function sessionCookie(c: Context<AppEnv>): string | undefined {
  return getCookie(c, SESSION_COOKIE, 'host');
}

/** Sets the session cookie: HttpOnly, Secure, SameSite=Lax, `__Host-` (so Path=/ and no Domain). */
export function setSessionCookie(c: Context<AppEnv>, sessionId: string): void {
  setCookie(c, SESSION_COOKIE, sessionId, {
    prefix: 'host',
    httpOnly: true,
    secure: true,
    sameSite: 'Lax',
    path: '/',
    maxAge: SESSION_ABSOLUTE_SECONDS,
  });
}

/** Clears the session cookie in the browser (the server-side record is revoked separately). */
export function clearSessionCookie(c: Context<AppEnv>): void {
  deleteCookie(c, SESSION_COOKIE, { prefix: 'host', httpOnly: true, secure: true, sameSite: 'Lax', path: '/' });
}

/** Middleware: sets `c.var.shopper`. Needs `services()` before it. */
export function shopper(): MiddlewareHandler<AppEnv> {
  return async function shopper(c, next) {
    const cookie = sessionCookie(c);
    let resolved: Promise<Session | null> | undefined;
    const session = () =>
      (resolved ??= cookie
        ? readSession(c.var.services.redis, cookie).catch((err) => {
            // Let the next call try again rather than remember the outage.
            resolved = undefined;
            if (err instanceof SessionStoreUnavailableError) {
              console.warn(JSON.stringify({ level: 'warn', requestId: c.get('requestId'), dependency: 'Redis', error: err.message }));
              throw unavailable('Sign-in is temporarily unavailable. Try again shortly.');
            }
            throw err;
          })
        : Promise.resolve(null));
    c.set('shopper', {
      hasCookie: cookie !== undefined,
      session,
      async require() {
        const s = await session();
        if (!s) throw new ApiError(401, 'unauthorized', 'Sign in first: this needs a session.');
        return s;
      },
    });
    await next();
  };
}
