/**
 * Shared by the account and security tests (workerd): shoppers made through
 * the real API, and their session cookies.
 */
import { env, exports } from 'cloudflare:workers';
import { expect } from 'vitest';
import { createApp } from '../app';
import { randomToken } from '../lib/ids';

/** Calls the deployed-shape Worker (wrangler.toml bindings, limits off). */
export const call = (path: string, init?: RequestInit) => exports.default.fetch(new Request(`http://pasar.test${path}`, init));

const app = createApp();

/** Calls a fresh app with some bindings changed (e.g. `RATE_LIMITS` on, a dead Redis). */
export const callWith = (overrides: Partial<Env>, path: string, init?: RequestInit) =>
  app.request(`http://pasar.test${path}`, init, { ...env, ...overrides });

/** A JSON request, optionally with a session cookie and more headers. */
export function req(method: string, body?: unknown, cookie?: string, headers: Record<string, string> = {}): RequestInit {
  return {
    method,
    headers: { 'content-type': 'application/json', 'x-region': 'sg', ...(cookie ? { cookie } : {}), ...headers },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  };
}

/** The `name=value` of the session cookie a response sets, for a later `Cookie` header. */
export function sessionCookieOf(res: Response): string {
  const set = res.headers.getSetCookie().find((c) => c.startsWith('__Host-pasar_session='));
  if (!set) throw new Error(`no session cookie in ${JSON.stringify(res.headers.getSetCookie())} (status ${res.status})`);
  return set.split(';')[0]!;
}

/** A new shopper's credentials (not yet registered). */
export function newShopper() {
  const tag = randomToken(8);
  return { email: `shopper.${tag}@example.com`, password: `pw-${tag}-teh-tarik`, name: `Shopper ${tag}` };
}

export interface SignedIn {
  email: string;
  password: string;
  userId: string;
  cookie: string;
}

/** Registers a shopper and signs in; `cartId` is handed to the login (guest cart merge). */
export async function signedInShopper(cartId?: string): Promise<SignedIn & { login: any }> {
  const s = newShopper();
  const reg = await call('/api/auth/register', req('POST', s));
  if (reg.status !== 201) throw new Error(`register: ${reg.status} ${await reg.text()}`);
  const res = await call('/api/auth/login', req('POST', { email: s.email, password: s.password, ...(cartId ? { cartId } : {}) }));
  if (res.status !== 200) throw new Error(`login: ${res.status} ${await res.text()}`);
  const login = await res.json<any>();
  return { email: s.email, password: s.password, userId: login.user.id, cookie: sessionCookieOf(res), login };
}

/**
 * Asserts a `Set-Cookie` value is `<name>=<value matching valuePattern>` with
 * the flags every cookie of the store carries: HttpOnly, Secure,
 * SameSite=Lax, Path=/ and no Domain (what the `__Host-` prefix requires).
 */
export function expectHostCookie(setCookie: string | undefined, name: string, valuePattern: RegExp): void {
  expect(setCookie).toBeDefined();
  expect(setCookie!.startsWith(`__Host-${name}=`)).toBe(true);
  expect(setCookie!.slice(`__Host-${name}=`.length).split(';')[0]).toMatch(valuePattern);
  expect(setCookie).toMatch(/; HttpOnly/);
  expect(setCookie).toMatch(/; Secure/);
  expect(setCookie).toMatch(/; SameSite=Lax/);
  expect(setCookie).toMatch(/; Path=\//);
  expect(setCookie).not.toMatch(/Domain=/i);
}
