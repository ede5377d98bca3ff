/**
 * The OWASP API Security Top 10 (2023), one block per risk that applies to a
 * storefront, each case a request an attacker would send. Finer-grained
 * tests of the same mechanisms sit beside their code (auth/, account/,
 * middleware/rate-limit.test.ts, admin/tokens.test.ts); this file is the
 * checklist.
 */
import { env } from 'cloudflare:workers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDatabase } from '../db/client';
import { apiTokens } from '../db/schema';
import { call, callWith, newShopper, req, signedInShopper, type SignedIn } from './auth/test-helpers';
import { archiveCreatedProducts, createProduct, type TestProduct } from './carts/test-helpers';
import { newId, randomToken } from './lib/ids';
import { hashToken } from './middleware/admin-auth';

const errorOf = async (res: Response) => (await res.json<{ error: { code: string; message: string; details?: any } }>()).error;
const adminCall = (path: string, method: string, token: string | null, body?: unknown) =>
  call(path, {
    method,
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });

let alice: SignedIn;
let mallory: SignedIn;
let product: TestProduct;
let aliceCart: string;
let readonlyToken: string;
beforeAll(async () => {
  product = await createProduct({ prices: { sg: { amount: 990 } } });
  [alice, mallory] = await Promise.all([signedInShopper(), signedInShopper()]);
  aliceCart = (await (await call('/api/carts', req('POST', {}, alice.cookie))).json<any>()).id;
  await call(`/api/carts/${aliceCart}/items`, req('POST', { variantId: product.variants[0]!.id, quantity: 2 }, alice.cookie));
  readonlyToken = `ro_${randomToken(20)}`;
  const db = createDatabase(env);
  await db.primary.insert(apiTokens).values({ id: newId('tok'), name: 'owasp readonly', tokenHash: await hashToken(readonlyToken), role: 'readonly' });
  await db.close();
});
afterAll(archiveCreatedProducts);

describe('API1 Broken Object Level Authorization', () => {
  it("another shopper's cart is 404 to read and to write, and stays as it was", async () => {
    for (const cookie of [mallory.cookie, undefined]) {
      expect((await call(`/api/carts/${aliceCart}`, req('GET', undefined, cookie))).status).toBe(404);
      expect((await call(`/api/carts/${aliceCart}/items`, req('POST', { variantId: product.variants[0]!.id, quantity: 5 }, cookie))).status).toBe(404);
      expect((await call(`/api/carts/${aliceCart}/items/${product.variants[0]!.id}`, req('PATCH', { quantity: 0 }, cookie))).status).toBe(404);
      expect((await call(`/api/carts/${aliceCart}/items/${product.variants[0]!.id}`, req('DELETE', undefined, cookie))).status).toBe(404);
    }
    const cart = await (await call(`/api/carts/${aliceCart}`, req('GET', undefined, alice.cookie))).json<any>();
    expect(cart.items.map((i: any) => i.quantity)).toEqual([2]);
  });

  it("another shopper's order is 404, the same answer as an order that does not exist", async () => {
    const fake = `ord_${'0'.repeat(26)}`;
    const missing = await call(`/api/orders/${fake}`, req('GET', undefined, mallory.cookie));
    expect(missing.status).toBe(404);
    // Orders of alice are only reachable through her session (account/routes.test.ts places real ones).
    expect((await call(`/api/me/orders`, req('GET', undefined, mallory.cookie))).status).toBe(200);
  });

  it('the account API has no user id to swap: /api/me is always the session\'s own account', async () => {
    const me = await (await call(`/api/me?userId=${alice.userId}&id=${alice.userId}`, req('GET', undefined, mallory.cookie))).json<any>();
    expect(me.id).toBe(mallory.userId);
    expect((await call(`/api/users/${alice.userId}`, req('GET', undefined, mallory.cookie))).status).toBe(404);
  });
});

describe('API2 Broken Authentication', () => {
  it('login brute force hits 429 after the limit', async () => {
    const from = `198.51.100.${Math.floor(Math.random() * 250)}-${randomToken(4)}`;
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) {
      const res = await callWith({ RATE_LIMITS: 'on; login_ip=5/1h' }, '/api/auth/login', req('POST', { email: alice.email, password: `guess-${i}` }, undefined, { 'cf-connecting-ip': from }));
      statuses.push(res.status);
      if (res.status === 429) expect(res.headers.get('retry-after')).toMatch(/^\d+$/);
    }
    expect(statuses).toEqual([401, 401, 401, 401, 401, 429]);
  });

  it('the session cookie is HttpOnly, Secure, SameSite=Lax and __Host-', async () => {
    const s = newShopper();
    await call('/api/auth/register', req('POST', s));
    const cookie = (await call('/api/auth/login', req('POST', { email: s.email, password: s.password }))).headers.get('set-cookie')!;
    expect(cookie).toMatch(/^__Host-pasar_session=/);
    for (const flag of ['HttpOnly', 'Secure', 'SameSite=Lax', 'Path=/']) expect(cookie).toContain(flag);
  });

  it('logout invalidates the session on the server, not just in the browser', async () => {
    const s = await signedInShopper();
    await call('/api/auth/logout', req('POST', undefined, s.cookie));
    expect((await call('/api/me', req('GET', undefined, s.cookie))).status).toBe(401);
  });
});

describe('API3 Broken Object Property Level Authorization (mass assignment)', () => {
  const cases: [string, string, unknown, string][] = [
    ['/api/auth/register', 'POST', { ...newShopper(), role: 'owner' }, 'role'],
    ['/api/auth/register', 'POST', { ...newShopper(), status: 'active' }, 'status'],
    ['/api/carts', 'POST', { region: 'sg', userId: 'usr_someone' }, 'userId'],
  ];
  it.each(cases)('%s %s with a client-set %j field is 400 naming it', async (path, method, body, field) => {
    const res = await call(path, req(method, body, mallory.cookie));
    expect(res.status).toBe(400);
    const error = await errorOf(res);
    expect(error.code).toBe('invalid_request');
    expect(error.details.map((d: any) => d.field)).toContain(field);
  });

  it('a cart line cannot carry its own price', async () => {
    const res = await call(`/api/carts/${aliceCart}/items`, req('POST', { variantId: product.variants[0]!.id, quantity: 1, price: { amount: 1, currency: 'SGD' } }, alice.cookie));
    expect(res.status).toBe(400);
    expect((await errorOf(res)).details).toEqual([expect.objectContaining({ field: 'price' })]);
  });

  it('a checkout cannot name its buyer, status or total', async () => {
    const body = {
      cartId: aliceCart,
      email: alice.email,
      shippingAddress: { name: 'A', line1: '1 Road', city: 'Singapore', postalCode: '1', country: 'SG' },
      payment: { method: 'card', token: 'tok_ok' },
    };
    for (const extra of [{ userId: mallory.userId }, { status: 'confirmed' }, { total: { amount: 1, currency: 'SGD' } }]) {
      const res = await call('/api/checkout', req('POST', { ...body, ...extra }, alice.cookie, { 'idempotency-key': randomToken(8) }));
      expect(res.status).toBe(400);
      expect((await errorOf(res)).details.map((d: any) => d.field)).toEqual(Object.keys(extra));
    }
  });

  it('an admin token cannot be minted with a chosen id or hash', async () => {
    const res = await adminCall('/admin/api/tokens', 'POST', env.ADMIN_BOOTSTRAP_TOKEN!, { name: 'x', role: 'readonly', tokenHash: 'f'.repeat(64) });
    expect(res.status).toBe(400);
  });
});

describe('API4 Unrestricted Resource Consumption', () => {
  it('oversized bodies are 413 payload_too_large, on shopper and admin routes', async () => {
    const big = JSON.stringify({ email: 'a@example.com', password: 'x'.repeat(70 * 1024), name: 'A' });
    for (const path of ['/api/auth/register', '/api/auth/login', `/api/carts/${aliceCart}/items`, '/api/checkout']) {
      const res = await call(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: big });
      expect(res.status, path).toBe(413);
      expect((await errorOf(res)).code).toBe('payload_too_large');
    }
    const admin = await adminCall('/admin/api/inventory/ANY-SKU', 'PUT', env.ADMIN_BOOTSTRAP_TOKEN!, { region: 'sg', quantity: 1, pad: 'x'.repeat(40 * 1024) });
    expect(admin.status).toBe(413);
  });

  it('text no database column can store (NUL, unpaired surrogates) is 400 naming the field, in bodies, queries and paths', async () => {
    const register = await call('/api/auth/register', req('POST', { ...newShopper(), name: 'Siti\u0000Rahman' }));
    expect(register.status).toBe(400);
    expect((await errorOf(register)).details).toEqual([expect.objectContaining({ in: 'body', field: 'name' })]);
    const patched = await adminCall(`/admin/api/products/${product.id}`, 'PATCH', env.ADMIN_BOOTSTRAP_TOKEN!, { description: 'x\ud800' });
    expect(patched.status).toBe(400);
    const path = await adminCall('/admin/api/products/%00', 'PATCH', env.ADMIN_BOOTSTRAP_TOKEN!, { description: 'fine' });
    expect(path.status).toBe(400);
    expect((await errorOf(path)).details).toEqual([expect.objectContaining({ in: 'param' })]);
    const query = await call('/api/me/orders?cursor=%00', req('GET', undefined, alice.cookie));
    expect(query.status).toBe(400);
  });

  it('malformed JSON is 400 invalid_json, never a 500', async () => {
    for (const path of ['/api/auth/register', '/api/auth/login', '/api/me/password', `/api/carts/${aliceCart}/items`, '/api/checkout']) {
      const res = await call(path, { method: 'POST', headers: { 'content-type': 'application/json', cookie: alice.cookie, 'idempotency-key': 'k' }, body: '{"email": ' });
      expect(res.status, path).toBe(400);
      expect((await errorOf(res)).code, path).toBe('invalid_json');
    }
  });
});

describe('API5 Broken Function Level Authorization', () => {
  const writes: [string, string, unknown][] = [
    ['/admin/api/products', 'POST', { title: 'x' }],
    [`/admin/api/inventory/${'SKU-1'}`, 'PUT', { region: 'sg', quantity: 1 }],
    [`/admin/api/orders/ord_${'0'.repeat(26)}/cancel`, 'POST', {}],
    ['/admin/api/tokens', 'POST', { name: 'mine', role: 'owner' }],
  ];
  it.each(writes)('%s %s without a token is 401', async (path, method, body) => {
    const res = await adminCall(path, method, null, body);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
  });
  it.each(writes)('%s %s with a readonly token is 403', async (path, method, body) => {
    const res = await adminCall(path, method, readonlyToken, body);
    expect(res.status).toBe(403);
    expect((await errorOf(res)).code).toBe('forbidden');
  });
  it('a shopper session is no admin credential', async () => {
    const res = await call('/admin/api/orders', req('GET', undefined, alice.cookie));
    expect(res.status).toBe(401);
  });
});

describe('API8 Security Misconfiguration', () => {
  it('sends the secure headers on API answers', async () => {
    const res = await call('/api/me', req('GET', undefined, alice.cookie));
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('x-frame-options')).toBe('SAMEORIGIN');
    expect(res.headers.get('strict-transport-security')).toMatch(/max-age=\d+/);
    expect(res.headers.get('cross-origin-resource-policy')).toBe('same-origin');
  });

  it('answers CORS only for configured origins', async () => {
    const preflight = (origin: string) =>
      callWith({ CORS_ORIGINS: 'https://m.pasar.example' }, '/api/carts', {
        method: 'OPTIONS',
        headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
      });
    const allowed = await preflight('https://m.pasar.example');
    expect(allowed.headers.get('access-control-allow-origin')).toBe('https://m.pasar.example');
    expect(allowed.headers.get('access-control-allow-credentials')).toBe('true');
    const denied = await preflight('https://evil.example');
    expect(denied.headers.get('access-control-allow-origin')).toBeNull();
    const unconfigured = await call('/api/regions', { headers: { origin: 'https://m.pasar.example' } });
    expect(unconfigured.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('refuses cross-site cookie writes (CSRF) but takes them from a configured origin', async () => {
    const s = await signedInShopper();
    const evil = await call('/api/auth/logout', req('POST', undefined, s.cookie, { origin: 'https://evil.example' }));
    expect(evil.status).toBe(403);
    const sibling = await callWith({ CORS_ORIGINS: 'https://m.pasar.example' }, '/api/auth/logout', req('POST', undefined, s.cookie, { origin: 'https://m.pasar.example' }));
    expect(sibling.status).toBe(200);
  });

  it('never answers an API error with HTML', async () => {
    const res = await call('/api/nope', { method: 'POST' });
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  });
});
