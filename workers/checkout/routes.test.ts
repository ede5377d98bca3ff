import { env } from 'cloudflare:workers';
import { sql } from 'drizzle-orm';
import { describe, expect, inject, it } from 'vitest';
import { createDatabase } from '../../db/client';
import { call, cartWith, checkoutBody, json, ordersFor, settle, simAuthorizations, startCheckout, stockedVariant } from '../../test/workers/shop';
import { randomToken } from '../lib/ids';
import { regionLevels } from '../inventory/shards';
import { signPayload } from '../payments/signature';
import { callWith } from '../auth/test-helpers';

const webhookSecret = inject('paymentWebhookSecret');

describe('checkout: the happy path', () => {
  it('accepts at once, then confirms: order written once, payment captured, stock sold, cart emptied', async () => {
    const { variantId } = await stockedVariant(10, 2500);
    const cartId = await cartWith(variantId, 2);
    const res = await startCheckout(checkoutBody(cartId), `key-${randomToken()}`);
    expect(res.status).toBe(202);
    const accepted = await res.json<any>();
    expect(accepted.checkoutId).toMatch(/^chk_/);
    expect(accepted.status).toBe('pending');

    const done = await settle(accepted.checkoutId);
    expect(done).toMatchObject({ status: 'confirmed', orderId: expect.stringMatching(/^ord_/), orderToken: expect.any(String) });

    const order = await (await call(`/api/orders/${done.orderId}?token=${done.orderToken}`)).json<any>();
    expect(order).toMatchObject({ status: 'confirmed', region: 'sg', email: 'siti@example.com', subtotal: { amount: 5000, currency: 'SGD' }, total: { amount: 5000, currency: 'SGD' } });
    expect(order.lines).toEqual([expect.objectContaining({ variantId, quantity: 2, unitPrice: { amount: 2500, currency: 'SGD' }, lineTotal: { amount: 5000, currency: 'SGD' } })]);
    expect(order.tax.amount).toBe(Math.round((5000 * 900) / 10_900));

    expect((await regionLevels(env, 'sg', [variantId])).get(variantId)).toMatchObject({ received: 10, sold: 2, held: 0, available: 8 });
    const cart = await (await call(`/api/carts/${cartId}`)).json<any>();
    expect(cart.items).toEqual([]);
    expect(await ordersFor(accepted.checkoutId)).toHaveLength(1);
    const auths = await simAuthorizations(accepted.checkoutId);
    expect(auths).toHaveLength(1);
    expect(auths[0].status).toBe('captured');
    expect(auths[0].amount).toBe(5000);
  });

  it('lets only the token holder read the order', async () => {
    const { variantId } = await stockedVariant(5);
    const done = await settle((await (await startCheckout(checkoutBody(await cartWith(variantId, 1)), `key-${randomToken()}`)).json<any>()).checkoutId);
    expect((await call(`/api/orders/${done.orderId}`)).status).toBe(404);
    expect((await call(`/api/orders/${done.orderId}?token=${randomToken(24)}`)).status).toBe(404);
    expect((await call(`/api/orders/${done.orderId}`, { headers: { 'x-order-token': done.orderToken } })).status).toBe(200);
    expect((await call(`/api/orders/ord_${randomToken()}?token=${done.orderToken}`)).status).toBe(404);
  });
});

describe('checkout: idempotency', () => {
  it('returns the same checkout for the same key sent 20 times concurrently: one checkout, one charge, one order', async () => {
    const { variantId } = await stockedVariant(10);
    const body = checkoutBody(await cartWith(variantId, 1));
    const key = `key-${randomToken()}`;
    const answers = await Promise.all(Array.from({ length: 20 }, () => startCheckout(body, key)));
    const ids = new Set<string>();
    for (const a of answers) {
      expect([200, 202]).toContain(a.status);
      ids.add((await a.json<any>()).checkoutId);
    }
    expect(ids.size).toBe(1);
    const [checkoutId] = [...ids];
    expect((await settle(checkoutId!)).status).toBe('confirmed');
    const again = await startCheckout({ ...body, email: 'siti@example.com' }, key);
    expect(again.status).toBe(200);
    expect((await again.json<any>()).status).toBe('confirmed');
    expect(await ordersFor(checkoutId!)).toHaveLength(1);
    expect(await simAuthorizations(checkoutId!)).toHaveLength(1);
  });

  it('409s the same key with another body', async () => {
    const { variantId } = await stockedVariant(10);
    const key = `key-${randomToken()}`;
    const cartId = await cartWith(variantId, 1);
    expect((await startCheckout(checkoutBody(cartId), key)).status).toBe(202);
    const other = await startCheckout(checkoutBody(cartId, 'tok_decline'), key);
    expect(other.status).toBe(409);
    expect((await other.json<any>()).error.code).toBe('idempotency_conflict');
  });

  it('400s a missing key, unknown fields and bad addresses, changing nothing', async () => {
    const { variantId } = await stockedVariant(3);
    const body = checkoutBody(await cartWith(variantId, 1));
    const noKey = await call('/api/checkout', json('POST', body));
    expect(noKey.status).toBe(400);
    expect((await noKey.json<any>()).error.details).toContainEqual(expect.objectContaining({ field: 'idempotency-key' }));
    for (const bad of [{ ...body, price: 1 }, { ...body, email: 'not-an-email' }, { ...body, shippingAddress: { ...body.shippingAddress, country: 'Singapore' } }, { ...body, payment: { method: 'cash', token: 'x' } }]) {
      const res = await startCheckout(bad, `key-${randomToken()}`);
      expect(res.status, JSON.stringify(bad)).toBe(400);
      expect((await res.json<any>()).error.code).toBe('invalid_request');
    }
    expect((await regionLevels(env, 'sg', [variantId])).get(variantId)).toMatchObject({ held: 0, sold: 0 });
  });
});

describe('checkout: failures end in failed, release stock and charge nothing', () => {
  it('a declined card fails with payment_declined; the holds are released and the cart kept', async () => {
    const { variantId } = await stockedVariant(4);
    const cartId = await cartWith(variantId, 2);
    const { checkoutId } = await (await startCheckout(checkoutBody(cartId, 'tok_decline'), `key-${randomToken()}`)).json<any>();
    expect(await settle(checkoutId)).toMatchObject({ status: 'failed', reason: 'payment_declined' });
    expect((await regionLevels(env, 'sg', [variantId])).get(variantId)).toMatchObject({ available: 4, held: 0, sold: 0 });
    expect((await (await call(`/api/carts/${cartId}`)).json<any>()).items).toHaveLength(1);
    expect(await ordersFor(checkoutId)).toHaveLength(0);
  });

  it('out of stock fails before any payment is attempted', async () => {
    const { variantId } = await stockedVariant(1);
    const { checkoutId } = await (await startCheckout(checkoutBody(await cartWith(variantId, 2)), `key-${randomToken()}`)).json<any>();
    expect(await settle(checkoutId)).toMatchObject({ status: 'failed', reason: 'out_of_stock' });
    expect(await simAuthorizations(checkoutId)).toHaveLength(0);
    expect((await regionLevels(env, 'sg', [variantId])).get(variantId)).toMatchObject({ available: 1, held: 0 });
  });

  it('a provider that fails once with a 5xx is retried and charges exactly once', async () => {
    const { variantId } = await stockedVariant(3);
    const { checkoutId } = await (await startCheckout(checkoutBody(await cartWith(variantId, 1), 'tok_flaky'), `key-${randomToken()}`)).json<any>();
    expect((await settle(checkoutId)).status).toBe('confirmed');
    const auths = await simAuthorizations(checkoutId);
    expect(auths.filter((a) => a.status === 'captured')).toHaveLength(1);
    expect(await ordersFor(checkoutId)).toHaveLength(1);
  });

  it('a slow provider delays the checkout but completes it', async () => {
    const { variantId } = await stockedVariant(3);
    const { checkoutId } = await (await startCheckout(checkoutBody(await cartWith(variantId, 1), 'tok_slow'), `key-${randomToken()}`)).json<any>();
    expect((await settle(checkoutId)).status).toBe('confirmed');
  });

  it('an empty or unknown cart fails with a reason', async () => {
    const empty = await (await call('/api/carts', json('POST', {}))).json<{ id: string }>();
    const a = await (await startCheckout(checkoutBody(empty.id), `key-${randomToken()}`)).json<any>();
    expect(await settle(a.checkoutId)).toMatchObject({ status: 'failed', reason: 'empty_cart' });
    const b = await (await startCheckout(checkoutBody(`cart_${randomToken(20)}`), `key-${randomToken()}`)).json<any>();
    expect(await settle(b.checkoutId)).toMatchObject({ status: 'failed', reason: 'cart_not_found' });
  });
});

describe('checkout: a flash sale sells exactly the stock', () => {
  it('30 shoppers, 10 units: 10 confirmed orders, 20 out of stock, nothing oversold', async () => {
    const { variantId } = await stockedVariant(10, 990);
    const carts = await Promise.all(Array.from({ length: 30 }, () => cartWith(variantId, 1)));
    const started = await Promise.all(carts.map(async (cartId) => (await (await startCheckout(checkoutBody(cartId), `key-${randomToken()}`)).json<any>()).checkoutId as string));
    const outcomes = await Promise.all(started.map((id) => settle(id, 60_000)));
    expect(outcomes.filter((o) => o.status === 'confirmed')).toHaveLength(10);
    expect(outcomes.filter((o) => o.status === 'failed' && o.reason === 'out_of_stock')).toHaveLength(20);
    expect((await regionLevels(env, 'sg', [variantId])).get(variantId)).toMatchObject({ received: 10, sold: 10, held: 0, available: 0 });
    const db = createDatabase(env);
    const { rows } = await db.primary.execute<{ units: number }>(sql`select coalesce(sum(quantity), 0)::int as units from order_lines where variant_id = ${variantId}`);
    await db.close();
    expect(rows[0]!.units).toBe(10);
  }, 90_000);
});

describe('payment webhooks', () => {
  const post = async (provider: string, body: string, signature?: string) =>
    call(`/api/webhooks/payments/${provider}`, { method: 'POST', headers: { 'content-type': 'application/json', ...(signature ? { 'x-pasar-signature': signature } : {}) }, body });

  it('records a signed event once; a replay changes nothing twice', async () => {
    const body = JSON.stringify({ id: `evt_${randomToken()}`, type: 'payment.captured', created: Math.floor(Date.now() / 1000), data: { authorizationId: `auth_${randomToken()}` } });
    const sig = await signPayload(webhookSecret, Math.floor(Date.now() / 1000), body);
    const first = await post('sim', body, sig);
    expect(first.status).toBe(200);
    expect(await first.json()).toEqual({ received: true, duplicate: false });
    const replay = await post('sim', body, sig);
    expect(await replay.json()).toEqual({ received: true, duplicate: true });
  });

  it('400s a missing, wrong or stale signature and records nothing', async () => {
    const eventId = `evt_${randomToken()}`;
    const body = JSON.stringify({ id: eventId, type: 'payment.captured', data: {} });
    const now = Math.floor(Date.now() / 1000);
    for (const sig of [undefined, await signPayload('wrong-secret', now, body), await signPayload(webhookSecret, now - 301, body), 'garbage']) {
      const res = await post('sim', body, sig);
      expect(res.status).toBe(400);
      expect((await res.json<any>()).error.code).toBe('invalid_signature');
    }
    const tampered = await post('sim', body.replace('captured', 'refunded'), await signPayload(webhookSecret, now, body));
    expect(tampered.status).toBe(400);
    const db = createDatabase(env);
    const { rows } = await db.primary.execute<{ n: number }>(sql`select count(*)::int as n from webhook_events where event_id = ${eventId}`);
    await db.close();
    expect(rows[0]!.n).toBe(0);
  });

  it('404s an unknown provider', async () => {
    expect((await post('paypal', '{}')).status).toBe(404);
  });
});

describe('checkout across a SIGNING_SECRET rotation', () => {
  const rotated = { SIGNING_SECRET: `rotated-${randomToken(16)}`, SIGNING_SECRET_PREVIOUS: env.SIGNING_SECRET };
  const post = (overrides: Partial<Env>, body: unknown, key: string) =>
    callWith(overrides, '/api/checkout', json('POST', body, { 'idempotency-key': key }));

  it('finds a checkout started under the previous secret by its key, so a retry is never a second charge', async () => {
    const { variantId } = await stockedVariant(5, 1500);
    const cartId = await cartWith(variantId, 1);
    const key = `rot-${randomToken()}`;
    const first = await (await startCheckout(checkoutBody(cartId), key)).json<any>();
    const retried = await post(rotated, checkoutBody(cartId), key);
    expect([200, 202]).toContain(retried.status);
    expect((await retried.json<any>()).checkoutId).toBe(first.checkoutId);
    expect((await settle(first.checkoutId)).status).toBe('confirmed');
    expect(await simAuthorizations(first.checkoutId)).toHaveLength(1);
    // A new key after the rotation gets an id under the new secret.
    const fresh = await (await post(rotated, checkoutBody(await cartWith(variantId, 1)), `rot-${randomToken()}`)).json<any>();
    expect(fresh.checkoutId).toMatch(/^chk_/);
    expect(fresh.checkoutId).not.toBe(first.checkoutId);
  }, 60_000);

  it('accepts listing cursors signed before the rotation while the previous secret is set, and not after it is removed', async () => {
    const page = await (await call('/api/products?limit=2', { headers: { 'x-region': 'sg' } })).json<{ nextCursor: string }>();
    expect(page.nextCursor).toEqual(expect.any(String));
    const path = `/api/products?limit=2&cursor=${encodeURIComponent(page.nextCursor)}`;
    expect((await callWith(rotated, path, { headers: { 'x-region': 'sg' } })).status).toBe(200);
    const after = await callWith({ SIGNING_SECRET: rotated.SIGNING_SECRET }, path, { headers: { 'x-region': 'sg' } });
    expect(after.status).toBe(400);
    expect((await after.json<any>()).error.code).toBe('invalid_request');
  });
});
