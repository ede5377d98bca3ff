import { env } from 'cloudflare:workers';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDatabase } from '../../db/client';
import { users } from '../../db/schema';
import { api, archiveCreatedProducts, createProduct, testRedis, type TestProduct } from '../carts/test-helpers';
import { ARGON2_PARAMS } from './password';
import { call, expectHostCookie, newShopper, req, sessionCookieOf, signedInShopper } from './test-helpers';

const errorOf = async (res: Response) => (await res.json<{ error: { code: string; message: string; details?: any } }>()).error;

async function userRow(email: string) {
  const db = createDatabase(env);
  try {
    const [row] = await db.primary.select().from(users).where(eq(users.email, email));
    return row;
  } finally {
    await db.close();
  }
}

describe('POST /api/auth/register', () => {
  it('creates the account with a normalised email and an argon2id hash at the OWASP minimum', async () => {
    const s = newShopper();
    const res = await call('/api/auth/register', req('POST', { ...s, email: `  ${s.email.toUpperCase()} ` }));
    expect(res.status).toBe(201);
    expect(res.headers.getSetCookie()).toEqual([]);
    const row = await userRow(s.email);
    expect(row).toMatchObject({ email: s.email, name: s.name });
    expect(row!.passwordHash).toMatch(new RegExp(`^\\$argon2id\\$v=19\\$m=${ARGON2_PARAMS.m},t=${ARGON2_PARAMS.t},p=${ARGON2_PARAMS.p}\\$`));
    expect(row!.passwordHash).not.toContain(s.password);
    expect(ARGON2_PARAMS.m).toBeGreaterThanOrEqual(19_456);
  });

  it('answers an email that already has an account exactly as a new one, and keeps the first password', async () => {
    const s = newShopper();
    const first = await call('/api/auth/register', req('POST', s));
    const again = await call('/api/auth/register', req('POST', { ...s, password: 'another-password-123', name: 'Someone Else' }));
    expect(again.status).toBe(first.status);
    expect(await again.json()).toEqual(await first.json());
    expect((await userRow(s.email))!.name).toBe(s.name);
    expect((await call('/api/auth/login', req('POST', { email: s.email, password: s.password }))).status).toBe(200);
    expect((await call('/api/auth/login', req('POST', { email: s.email, password: 'another-password-123' }))).status).toBe(401);
  });

  it('refuses short passwords, bad emails, and fields a client must not set', async () => {
    const s = newShopper();
    for (const [body, field] of [
      [{ ...s, password: 'short' }, 'password'],
      [{ ...s, email: 'not-an-email' }, 'email'],
      [{ ...s, role: 'admin' }, 'role'],
      [{ ...s, id: 'usr_mine' }, 'id'],
      [{ ...s, passwordHash: '$argon2id$x' }, 'passwordHash'],
    ] as const) {
      const res = await call('/api/auth/register', req('POST', body));
      expect(res.status, field).toBe(400);
      const error = await errorOf(res);
      expect(error.code).toBe('invalid_request');
      expect(error.details.map((d: any) => d.field)).toContain(field);
    }
    expect(await userRow(s.email)).toBeUndefined();
  });
});

describe('POST /api/auth/login', () => {
  it('sets an HttpOnly, Secure, SameSite=Lax __Host- session cookie that /api/me accepts', async () => {
    const s = newShopper();
    await call('/api/auth/register', req('POST', s));
    const res = await call('/api/auth/login', req('POST', { email: s.email.toUpperCase(), password: s.password }));
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const [cookie] = res.headers.getSetCookie();
    expectHostCookie(cookie, 'pasar_session', /^ses_[0-9a-z]{52}$/);
    const body = await res.json<any>();
    expect(body.user).toMatchObject({ email: s.email, name: s.name });
    const me = await call('/api/me', req('GET', undefined, sessionCookieOf(res)));
    expect(me.status).toBe(200);
    expect(await me.json()).toMatchObject({ id: body.user.id, email: s.email });
  });

  it('gives a new session id at every login and ends the one the request came with', async () => {
    const shopper = await signedInShopper();
    const res = await call('/api/auth/login', req('POST', { email: shopper.email, password: shopper.password }, shopper.cookie));
    const fresh = sessionCookieOf(res);
    expect(fresh).not.toBe(shopper.cookie);
    expect((await call('/api/me', req('GET', undefined, shopper.cookie))).status).toBe(401);
    expect((await call('/api/me', req('GET', undefined, fresh))).status).toBe(200);
  });

  it('says the same for an unknown email as for a wrong password, and sets no cookie', async () => {
    const shopper = await signedInShopper();
    const wrong = await call('/api/auth/login', req('POST', { email: shopper.email, password: 'not-the-password' }));
    const unknown = await call('/api/auth/login', req('POST', { email: `nobody.${Date.now()}@example.com`, password: 'not-the-password' }));
    expect(wrong.status).toBe(401);
    expect(unknown.status).toBe(401);
    expect(wrong.headers.getSetCookie()).toEqual([]);
    expect(await errorOf(wrong)).toEqual(await errorOf(unknown));
  });

  it('takes about as long for an unknown email as for a wrong password (both run argon2id)', async () => {
    const shopper = await signedInShopper();
    const time = async (email: string) => {
      const t = Date.now();
      await call('/api/auth/login', req('POST', { email, password: 'not-the-password' }));
      return Date.now() - t;
    };
    const known: number[] = [];
    const unknown: number[] = [];
    for (let i = 0; i < 3; i++) {
      known.push(await time(shopper.email));
      unknown.push(await time(`nobody.${i}.${Date.now()}@example.com`));
    }
    const median = (xs: number[]) => xs.sort((a, b) => a - b)[1]!;
    // A skipped hash would make the unknown email several times faster.
    expect(median(unknown)).toBeGreaterThan(median(known) * 0.25);
  });
});

describe('POST /api/auth/logout', () => {
  it('ends the session on the server: the same cookie no longer works', async () => {
    const shopper = await signedInShopper();
    const res = await call('/api/auth/logout', req('POST', undefined, shopper.cookie));
    expect(res.status).toBe(200);
    expect(res.headers.getSetCookie()[0]).toMatch(/^__Host-pasar_session=; .*Max-Age=0/);
    const replay = await call('/api/me', req('GET', undefined, shopper.cookie));
    expect(replay.status).toBe(401);
    expect((await errorOf(replay)).code).toBe('unauthorized');
  });

  it('is idempotent without a session', async () => {
    expect((await call('/api/auth/logout', req('POST'))).status).toBe(200);
  });
});

describe('the guest cart at login', () => {
  let product: TestProduct;
  beforeAll(async () => {
    product = await createProduct({ count: 3, prices: { sg: { amount: 1200 } } });
  });
  afterAll(archiveCreatedProducts);
  const variant = (i: number) => () => product.variants[i]!.id;
  const [a, b, c] = [variant(0), variant(1), variant(2)];
  const lines = (cart: any) => Object.fromEntries(cart.items.map((i: any) => [i.variantId, i.quantity]));

  async function guestCart(items: [string, number][]): Promise<string> {
    const cart = await (await api('/api/carts', 'POST', {}, 'sg')).json<any>();
    for (const [variantId, quantity] of items) expect((await api(`/api/carts/${cart.id}/items`, 'POST', { variantId, quantity }, 'sg')).status).toBe(200);
    return cart.id;
  }

  it('becomes the account cart, usable only with the session from then on', async () => {
    const guest = await guestCart([[a(), 2]]);
    const shopper = await signedInShopper(guest);
    expect(shopper.login.cart).toEqual({ id: guest, outcome: 'adopted' });
    expect((await call(`/api/carts/${guest}`, req('GET', undefined, shopper.cookie))).status).toBe(200);
    expect((await call(`/api/carts/${guest}`, req('GET'))).status).toBe(404);
    await expect((await call('/api/me', req('GET', undefined, shopper.cookie))).json()).resolves.toMatchObject({ cartId: guest });
  });

  it('takes in the account cart: shared variants add up, other lines are kept once, and a repeated login doubles nothing', async () => {
    const first = await guestCart([[a(), 3], [c(), 1]]);
    const shopper = await signedInShopper(first);
    await call('/api/auth/logout', req('POST', undefined, shopper.cookie));

    const guest = await guestCart([[a(), 2], [b(), 1]]);
    const login = async () => {
      const res = await call('/api/auth/login', req('POST', { email: shopper.email, password: shopper.password, cartId: guest }));
      expect(res.status).toBe(200);
      return { body: await res.json<any>(), cookie: sessionCookieOf(res) };
    };
    const once = await login();
    expect(once.body.cart).toEqual({ id: guest, outcome: 'merged' });
    const merged = await (await call(`/api/carts/${guest}`, req('GET', undefined, once.cookie))).json<any>();
    expect(lines(merged)).toEqual({ [a()]: 5, [b()]: 1, [c()]: 1 });
    expect(merged.items.map((i: any) => i.variantId)).toEqual([a(), b(), c()]);
    // The old account cart is gone, not left to merge again.
    expect(await testRedis().exists(`cart:${first}`)).toBe(0);

    const twice = await login();
    expect(twice.body.cart).toEqual({ id: guest, outcome: 'kept' });
    expect(lines(await (await call(`/api/carts/${guest}`, req('GET', undefined, twice.cookie))).json<any>())).toEqual({ [a()]: 5, [b()]: 1, [c()]: 1 });
  });

  it('caps a merged line at 99', async () => {
    const first = await guestCart([[a(), 60]]);
    const shopper = await signedInShopper(first);
    const guest = await guestCart([[a(), 50]]);
    const res = await call('/api/auth/login', req('POST', { email: shopper.email, password: shopper.password, cartId: guest }));
    const cart = await (await call(`/api/carts/${guest}`, req('GET', undefined, sessionCookieOf(res)))).json<any>();
    expect(lines(cart)).toEqual({ [a()]: 99 });
  });

  it('leaves carts of different regions as they are', async () => {
    const sgCart = await guestCart([[a(), 1]]);
    const shopper = await signedInShopper(sgCart);
    const thCart = await (await api('/api/carts', 'POST', {}, 'th')).json<any>();
    const res = await call('/api/auth/login', req('POST', { email: shopper.email, password: shopper.password, cartId: thCart.id }));
    expect((await res.json<any>()).cart).toEqual({ id: sgCart, outcome: 'kept', refused: 'region_mismatch' });
    const cookie = sessionCookieOf(res);
    expect(lines(await (await call(`/api/carts/${sgCart}`, req('GET', undefined, cookie))).json<any>())).toEqual({ [a()]: 1 });
    // The other-region cart is still the guest's.
    expect((await api(`/api/carts/${thCart.id}`, 'GET', undefined, 'th')).status).toBe(200);
  });

  it('a cart started on a second device does not orphan the account cart', async () => {
    const shopper = await signedInShopper(await guestCart([[b(), 2]]));
    const accountCart = shopper.login.cart.id as string;
    const fresh = await (await call('/api/carts', req('POST', {}, shopper.cookie))).json<any>();
    expect(fresh.id).not.toBe(accountCart);
    expect(fresh.items).toEqual([]);
    expect((await (await call('/api/me', req('GET', undefined, shopper.cookie))).json<any>()).cartId).toBe(accountCart);
    // Signing in with the new cart brings the account cart's lines into it.
    const res = await call('/api/auth/login', req('POST', { email: shopper.email, password: shopper.password, cartId: fresh.id }));
    expect((await res.json<any>()).cart).toEqual({ id: fresh.id, outcome: 'merged' });
    expect(lines(await (await call(`/api/carts/${fresh.id}`, req('GET', undefined, sessionCookieOf(res)))).json<any>())).toEqual({ [b()]: 2 });
  });

  it("never takes another account's cart", async () => {
    const owner = await signedInShopper(await guestCart([[a(), 1]]));
    const ownerCart = owner.login.cart.id as string;
    const other = await signedInShopper(ownerCart);
    expect(other.login.cart).toEqual({ id: null, outcome: 'none' });
    const cart = await (await call(`/api/carts/${ownerCart}`, req('GET', undefined, owner.cookie))).json<any>();
    expect(lines(cart)).toEqual({ [a()]: 1 });
  });
});

describe('cross-site writes (CSRF)', () => {
  it('refuses a cookie-carrying write from another origin, and changes nothing', async () => {
    const shopper = await signedInShopper();
    const res = await call('/api/auth/logout', req('POST', undefined, shopper.cookie, { origin: 'https://evil.example' }));
    expect(res.status).toBe(403);
    expect((await errorOf(res)).code).toBe('forbidden');
    expect((await call('/api/me', req('GET', undefined, shopper.cookie))).status).toBe(200);
    const noOrigin = await call('/api/auth/logout', req('POST', undefined, shopper.cookie, { 'sec-fetch-site': 'cross-site' }));
    expect(noOrigin.status).toBe(403);
  });

  it('lets the store itself write', async () => {
    const shopper = await signedInShopper();
    const res = await call('/api/auth/logout', req('POST', undefined, shopper.cookie, { origin: 'http://pasar.test', 'sec-fetch-site': 'same-origin' }));
    expect(res.status).toBe(200);
  });
});
