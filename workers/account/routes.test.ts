import { env } from 'cloudflare:workers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDatabase } from '../../db/client';
import { orders } from '../../db/schema';
import { inArray } from 'drizzle-orm';
import { archiveCreatedProducts, createProduct, type TestProduct } from '../carts/test-helpers';
import { call, req, sessionCookieOf, signedInShopper, type SignedIn } from '../auth/test-helpers';
import { randomToken } from '../lib/ids';

const errorOf = async (res: Response) => (await res.json<{ error: { code: string; message: string; details?: any } }>()).error;

/** Stock a fresh sg product through the admin API. */
async function stocked(product: TestProduct, units: number) {
  const res = await call(`/admin/api/inventory/${product.variants[0]!.sku}`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${env.ADMIN_BOOTSTRAP_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ region: 'sg', quantity: units }),
  });
  expect(res.status).toBe(200);
}

/** A valid checkout of `cartId` paid with the simulator's tok_ok. */
const checkoutBody = (cartId: string, email: string) => ({
  cartId,
  email,
  shippingAddress: { name: 'Siti Rahman', line1: '1 Orchard Road', city: 'Singapore', postalCode: '238823', country: 'SG' },
  payment: { method: 'card', token: 'tok_ok' },
});

/** Buys one unit as `shopper` (their own cart) and waits for the order. */
async function buy(shopper: SignedIn, variantId: string): Promise<{ orderId: string; orderToken: string }> {
  const cart = await (await call('/api/carts', req('POST', {}, shopper.cookie))).json<any>();
  expect((await call(`/api/carts/${cart.id}/items`, req('POST', { variantId, quantity: 1 }, shopper.cookie))).status).toBe(200);
  const started = await call('/api/checkout', req('POST', checkoutBody(cart.id, shopper.email), shopper.cookie, { 'idempotency-key': randomToken(10) }));
  expect(started.status).toBe(202);
  const { checkoutId } = await started.json<any>();
  for (const deadline = Date.now() + 25_000; ; ) {
    const state = await (await call(`/api/checkout/${checkoutId}`)).json<any>();
    if (state.status === 'confirmed') return { orderId: state.orderId, orderToken: state.orderToken };
    if (state.status === 'failed' || Date.now() > deadline) throw new Error(`checkout ${JSON.stringify(state)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

let product: TestProduct;
let buyer: SignedIn;
let other: SignedIn;
let bought: { orderId: string; orderToken: string };
beforeAll(async () => {
  product = await createProduct({ prices: { sg: { amount: 1500 } } });
  await stocked(product, 20);
  [buyer, other] = await Promise.all([signedInShopper(), signedInShopper()]);
  bought = await buy(buyer, product.variants[0]!.id);
});
afterAll(archiveCreatedProducts);

describe('GET /api/me', () => {
  it('is the signed-in shopper, never cached', async () => {
    const res = await call('/api/me', req('GET', undefined, buyer.cookie));
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('private, no-store');
    const me = await res.json<any>();
    expect(me).toMatchObject({ id: buyer.userId, email: buyer.email });
    expect(me).not.toHaveProperty('passwordHash');
  });

  it('is 401 without a session, with a stale cookie, or with a forged one', async () => {
    for (const cookie of [undefined, '__Host-pasar_session=ses_' + '0'.repeat(52), '__Host-pasar_session=garbage', 'pasar_session=' + buyer.cookie.split('=')[1]]) {
      const res = await call('/api/me', req('GET', undefined, cookie));
      expect(res.status, String(cookie)).toBe(401);
      expect((await errorOf(res)).code).toBe('unauthorized');
    }
  });
});

describe('orders of an account', () => {
  it('a checkout while signed in belongs to the account: listed in /api/me/orders and readable with the session alone', async () => {
    const list = await (await call('/api/me/orders', req('GET', undefined, buyer.cookie))).json<any>();
    expect(list.items.map((o: any) => o.id)).toEqual([bought.orderId]);
    expect(list.items[0]).toMatchObject({ status: 'confirmed', region: 'sg', total: { amount: 1500, currency: 'SGD' }, items: 1 });
    const order = await call(`/api/orders/${bought.orderId}`, req('GET', undefined, buyer.cookie));
    expect(order.status).toBe(200);
    expect((await order.json<any>()).id).toBe(bought.orderId);
    const db = createDatabase(env);
    try {
      const rows = await db.primary.select({ id: orders.id, userId: orders.userId }).from(orders).where(inArray(orders.id, [bought.orderId]));
      expect(rows).toEqual([{ id: bought.orderId, userId: buyer.userId }]);
    } finally {
      await db.close();
    }
  });

  it("another shopper sees none of them: not in their list, 404 by id, with or without a session", async () => {
    expect((await (await call('/api/me/orders', req('GET', undefined, other.cookie))).json<any>()).items).toEqual([]);
    for (const cookie of [other.cookie, undefined]) {
      const res = await call(`/api/orders/${bought.orderId}`, req('GET', undefined, cookie));
      expect(res.status).toBe(404);
      expect((await errorOf(res)).code).toBe('not_found');
    }
    // The order token still works for whoever the buyer gave it to.
    expect((await call(`/api/orders/${bought.orderId}?token=${bought.orderToken}`, req('GET'))).status).toBe(200);
  });

  it('pages with a cursor bound to the account', async () => {
    const second = await buy(buyer, product.variants[0]!.id);
    const page1 = await (await call('/api/me/orders?limit=1', req('GET', undefined, buyer.cookie))).json<any>();
    expect(page1.items.map((o: any) => o.id)).toEqual([second.orderId]);
    expect(page1.nextCursor).toEqual(expect.any(String));
    const page2 = await (await call(`/api/me/orders?limit=1&cursor=${page1.nextCursor}`, req('GET', undefined, buyer.cookie))).json<any>();
    expect(page2.items.map((o: any) => o.id)).toEqual([bought.orderId]);
    const stolen = await call(`/api/me/orders?limit=1&cursor=${page1.nextCursor}`, req('GET', undefined, other.cookie));
    expect(stolen.status).toBe(400);
  });

  it("cannot be bought from another account's cart", async () => {
    const cart = await (await call('/api/carts', req('POST', {}, buyer.cookie))).json<any>();
    await call(`/api/carts/${cart.id}/items`, req('POST', { variantId: product.variants[0]!.id, quantity: 1 }, buyer.cookie));
    const started = await call('/api/checkout', req('POST', checkoutBody(cart.id, other.email), other.cookie, { 'idempotency-key': randomToken(10) }));
    const { checkoutId } = await started.json<any>();
    let state: any;
    for (const deadline = Date.now() + 20_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 100))) {
      state = await (await call(`/api/checkout/${checkoutId}`)).json<any>();
      if (state.status === 'failed' || state.status === 'confirmed') break;
    }
    expect(state).toMatchObject({ status: 'failed', reason: 'cart_not_found' });
    const cartAfter = await (await call(`/api/carts/${cart.id}`, req('GET', undefined, buyer.cookie))).json<any>();
    expect(cartAfter.items).toHaveLength(1);
  });
});

describe('POST /api/me/password', () => {
  it('changes the password and ends every session, handing this browser a fresh one', async () => {
    const shopper = await signedInShopper();
    const second = sessionCookieOf(await call('/api/auth/login', req('POST', { email: shopper.email, password: shopper.password })));
    const res = await call('/api/me/password', req('POST', { currentPassword: shopper.password, newPassword: 'a-brand-new-passphrase' }, shopper.cookie));
    expect(res.status).toBe(200);
    expect((await res.json<any>()).sessionsEnded).toBe(2);
    const fresh = sessionCookieOf(res);
    for (const old of [shopper.cookie, second]) expect((await call('/api/me', req('GET', undefined, old))).status).toBe(401);
    expect((await call('/api/me', req('GET', undefined, fresh))).status).toBe(200);
    expect((await call('/api/auth/login', req('POST', { email: shopper.email, password: shopper.password }))).status).toBe(401);
    expect((await call('/api/auth/login', req('POST', { email: shopper.email, password: 'a-brand-new-passphrase' }))).status).toBe(200);
  });

  it('refuses a wrong current password and changes nothing', async () => {
    const shopper = await signedInShopper();
    const res = await call('/api/me/password', req('POST', { currentPassword: 'not-it-at-all', newPassword: 'a-brand-new-passphrase' }, shopper.cookie));
    expect(res.status).toBe(401);
    expect((await call('/api/me', req('GET', undefined, shopper.cookie))).status).toBe(200);
    expect((await call('/api/auth/login', req('POST', { email: shopper.email, password: shopper.password }))).status).toBe(200);
  });

  it('needs a session', async () => {
    const res = await call('/api/me/password', req('POST', { currentPassword: 'x', newPassword: 'a-brand-new-passphrase' }));
    expect(res.status).toBe(401);
  });
});
