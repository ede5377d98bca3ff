/**
 * Shared by the page tests (workerd): requests as a browser sends them to the
 * store's pages, in one region, with the cookies it holds.
 */
import { exports } from 'cloudflare:workers';

/** The origin the tests' pages are served from. */
export const ORIGIN = 'http://pasar.test';

/** A browser in `region`: `call` (no redirects followed), a page `get`, and a form `post` from the store's own pages. */
export function pageClient(region: string) {
  const call = (path: string, init?: RequestInit) => exports.default.fetch(new Request(`${ORIGIN}${path}`, { redirect: 'manual', ...init }));
  return {
    call,
    /** A page GET with the browser's cookies. */
    get: (path: string, cookie?: string) => call(path, { headers: { 'x-region': region, ...(cookie ? { cookie } : {}) } }),
    /** A form POST; the browser sends its Origin (another one for cross-site tests). */
    post: (path: string, fields: Record<string, string>, cookie?: string, origin = ORIGIN) =>
      call(path, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-region': region, origin, ...(cookie ? { cookie } : {}) },
        body: new URLSearchParams(fields).toString(),
      }),
  };
}
