import { env, exports } from 'cloudflare:workers';
import { sql } from 'drizzle-orm';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { createDatabase } from '../../db/client';
import { apiTokens } from '../../db/schema';
import { createApp } from '../app';
import { regionLevels } from '../inventory/shards';
import { newId, randomToken } from '../lib/ids';
import { hashToken } from '../middleware/admin-auth';

const fx = inject('seedFixtures');
const simUrl = inject('paymentApiUrl');
const simKey = inject('paymentApiKey');
const owner = env.ADMIN_BOOTSTRAP_TOKEN!;

const call = (path: string, init?: RequestInit) => exports.default.fetch(new Request(`http://pasar.test${path}`, init));
const json = (method: string, body: unknown, headers: Record<string, string> = {}) => ({
  method,
  headers: { 'content-type': 'application/json', 'x-region': 'sg', ...headers },
  body: JSON.stringify(body),
});
const admin = (path: string, method = 'GET', body?: unknown, token: string | null = owner) =>
  call(path, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });

let readonlyToken = '';
let fulfillmentToken = '';
let catalogToken = '';
beforeAll(async () => {
  const db = createDatabase(env);
  readonlyToken = `ro_${randomToken(20)}`;
  fulfillmentToken = `ful_${randomToken(20)}`;
  catalogToken = `cat_${randomToken(20)}`;
  await db.primary.insert(apiTokens).values([
    { id: newId('tok'), name: 'orders test readonly', tokenHash: await hashToken(readonlyToken), role: 'readonly' },
    { id: newId('tok'), name: 'orders test fulfillment', tokenHash: await hashToken(fulfillmentToken), role: 'fulfillment' },
    { id: newId('tok'), name: 'orders test catalog', tokenHash: await hashToken(catalogToken), role: 'catalog' },
  ]);
  await db.close();
});

// ---- the checkout flow of workers/checkout/routes.test.ts ------------------------------

/** A fresh product with one variant priced in `region`, with `stock` units received there. */
async function stockedVariant(stock: number, region = 'sg', amount = 2500): Promise<{ sku: string; variantId: string }> {
  const sku = `ORD-${randomToken(6).toUpperCase()}`;
  const res = await admin('/admin/api/products', 'POST', {
    title: `Orders test kaya ${sku}`,
    category: fx.busiestCategorySlug,
    variants: [{ sku, title: '250 g jar', prices: { [region]: { amount } } }],
  });
  expect(res.status).toBe(201);
  const variantId = (await res.json<any>()).variants[0].id as string;
  expect((await admin(`/admin/api/inventory/${sku}`, 'PUT', { region, quantity: stock })).status).toBe(200);
  return { sku, variantId };
}

async function cartWith(variantId: string, quantity: number, region = 'sg'): Promise<string> {
  const cart = await (await call('/api/carts', json('POST', {}, { 'x-region': region }))).json<{ id: string }>();
  const add = await call(`/api/carts/${cart.id}/items`, json('POST', { variantId, quantity }, { 'x-region': region }));
  expect(add.status).toBe(200);
  return cart.id;
}

function checkoutBody(cartId: string, token = 'tok_ok') {
  return {
    cartId,
    email: 'Siti@Example.com',
    shippingAddress: { name: 'Siti Rahman', line1: '1 Orchard Road', city: 'Singapore', postalCode: '238823', country: 'SG' },
    payment: { method: 'card', token },
  };
}

/** Follows a checkout until it ends. */
async function settle(checkoutId: string, ms = 25_000): Promise<any> {
  const deadline = Date.now() + ms;
  for (;;) {
    const state = await (await call(`/api/checkout/${checkoutId}`)).json<any>();
    if (state.status === 'confirmed' || state.status === 'failed') return state;
    if (Date.now() > deadline) throw new Error(`checkout still ${state.status} after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Cart -> checkout -> confirmed: a paid order of `quantity` units of `variantId`. */
async function confirmedOrder(variantId: string, quantity: number, region = 'sg'): Promise<{ orderId: string; checkoutId: string }> {
  const cartId = await cartWith(variantId, quantity, region);
  const res = await call('/api/checkout', json('POST', checkoutBody(cartId), { 'idempotency-key': `key-${randomToken()}`, 'x-region': region }));
  expect(res.status).toBe(202);
  const { checkoutId } = await res.json<any>();
  const done = await settle(checkoutId);
  expect(done.status).toBe('confirmed');
  return { orderId: done.orderId, checkoutId };
}

const simHeaders = { authorization: `Bearer ${simKey}` };
async function simAuthorizations(reference: string): Promise<any[]> {
  const body = await (await fetch(`${simUrl}/v1/authorizations?reference=${encodeURIComponent(reference)}`, { headers: simHeaders })).json<any>();
  return Array.isArray(body) ? body : body.data ?? body.items ?? [];
}
async function simRefunds(reference: string): Promise<number> {
  const body = await (await fetch(`${simUrl}/v1/events?reference=${encodeURIComponent(reference)}`, { headers: simHeaders })).json<any>();
  const events: any[] = Array.isArray(body) ? body : body.data ?? body.items ?? [];
  return events.filter((e) => e.type === 'payment.refunded').length;
}

async function dbRows<T extends Record<string, unknown>>(query: ReturnType<typeof sql>): Promise<T[]> {
  const db = createDatabase(env);
  try {
    return (await db.primary.execute(query)).rows as T[];
  } finally {
    await db.close();
  }
}
const eventsOf = (orderId: string, type: string) =>
  dbRows<{ n: number }>(sql`select count(*)::int as n from order_events where order_id = ${orderId} and type = ${type}`).then((r) => r[0]!.n);
const paymentOf = (orderId: string) => dbRows<{ status: string }>(sql`select status from payments where order_id = ${orderId}`).then((r) => r[0]?.status);
const statusOf = (orderId: string) => dbRows<{ status: string }>(sql`select status from orders where id = ${orderId}`).then((r) => r[0]?.status);
const levels = async (variantId: string) => (await regionLevels(env, 'sg', [variantId])).get(variantId)!;

// ---- tests ---------------------------------------------------------------------------------

describe('GET /admin/api/orders', () => {
  it('lists newest first with lines, filters by status and region, and pages with opaque cursors', async () => {
    // sg, where the other test files place their orders too: the walk must stay consistent while they do.
    const { variantId } = await stockedVariant(20, 'sg', 1990);
    const made: string[] = [];
    for (const qty of [1, 2, 3]) made.push((await confirmedOrder(variantId, qty)).orderId);

    const seen: any[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const qs = new URLSearchParams({ status: 'confirmed', region: 'sg', limit: '3', ...(cursor ? { cursor } : {}) });
      const res = await admin(`/admin/api/orders?${qs}`, 'GET', undefined, readonlyToken);
      expect(res.status).toBe(200);
      const body = await res.json<any>();
      expect(body.items.length).toBeLessThanOrEqual(3);
      seen.push(...body.items);
      cursor = body.nextCursor;
      pages++;
    } while (cursor && pages < 500);
    expect(cursor).toBeNull();
    expect(new Set(seen.map((o) => o.id)).size).toBe(seen.length);
    for (const o of seen) expect(o).toMatchObject({ status: 'confirmed', region: 'sg' });
    const times = seen.map((o) => Date.parse(o.createdAt));
    expect([...times].sort((a, b) => b - a)).toEqual(times);
    // Ours, newest first, with their lines.
    const ours = seen.filter((o) => made.includes(o.id));
    expect(ours.map((o) => o.id)).toEqual([...made].reverse());
    expect(ours[0]).toMatchObject({
      email: 'siti@example.com',
      total: { amount: 3 * 1990, currency: 'SGD' },
      lineCount: 1,
      units: 3,
      payment: { status: 'captured' },
      lines: [expect.objectContaining({ variantId, quantity: 3, unitPrice: { amount: 1990, currency: 'SGD' } })],
    });
    expect(ours[0].number).toMatch(/^SG-\d{8}$/);

    // Status filter: a cancelled order leaves the confirmed listing and shows in the cancelled one.
    expect((await admin(`/admin/api/orders/${made[0]}/cancel`, 'POST', undefined, fulfillmentToken)).status).toBe(200);
    const listed = async (qs: string) => {
      const items: any[] = [];
      let next: string | null = null;
      do {
        const body: any = await (await admin(`/admin/api/orders?${qs}&limit=100${next ? `&cursor=${encodeURIComponent(next)}` : ''}`)).json<any>();
        items.push(...body.items);
        next = body.nextCursor;
      } while (next);
      return items;
    };
    const confirmed = await listed('status=confirmed&region=sg');
    expect(confirmed.map((o) => o.id)).not.toContain(made[0]);
    expect(confirmed.map((o) => o.id)).toContain(made[1]);
    const cancelled = await listed('status=cancelled');
    expect(cancelled.map((o) => o.id)).toContain(made[0]);
    for (const o of cancelled) expect(o.status).toBe('cancelled');
    // Region filter.
    const my = await listed('region=my');
    expect(my.every((o) => o.region === 'my')).toBe(true);
    expect(my.map((o) => o.id)).not.toContain(made[1]);
  }, 60_000);

  it('400s unknown parameters, bad filters and cursors it did not issue', async () => {
    for (const qs of ['foo=1', 'status=shipped', 'region=xx', 'limit=0', 'limit=101', 'limit=abc', 'cursor=eyJ0IjoiMjAyNiJ9.AAAAAAAAAAAAAAAAAAAAAA']) {
      const res = await admin(`/admin/api/orders?${qs}`, 'GET');
      expect(res.status, qs).toBe(400);
      expect((await res.json<any>()).error.code, qs).toBe('invalid_request');
    }
    // A cursor issued for one filter is refused for another.
    const page = await (await admin('/admin/api/orders?limit=1')).json<any>();
    if (page.nextCursor) {
      const other = await admin(`/admin/api/orders?status=fulfilled&limit=1&cursor=${encodeURIComponent(page.nextCursor)}`, 'GET');
      expect(other.status).toBe(400);
      expect((await other.json<any>()).error.details).toContainEqual(expect.objectContaining({ field: 'cursor' }));
    }
  });

  it('needs a token with an order role', async () => {
    expect((await admin('/admin/api/orders', 'GET', undefined, null)).status).toBe(401);
    expect((await admin('/admin/api/orders', 'GET', undefined, catalogToken)).status).toBe(403);
    expect((await admin('/admin/api/orders', 'GET', undefined, fulfillmentToken)).status).toBe(200);
    expect((await admin('/admin/api/orders', 'GET', undefined, readonlyToken)).status).toBe(200);
  });
});

describe('POST /admin/api/orders/:id/cancel', () => {
  it('refunds once at the provider, restocks the units and cancels the order; a second cancel changes nothing', async () => {
    const { variantId } = await stockedVariant(10);
    const a = await confirmedOrder(variantId, 2);
    const b = await confirmedOrder(variantId, 1);
    expect(await levels(variantId)).toMatchObject({ received: 10, sold: 3, held: 0, available: 7 });

    const res = await admin(`/admin/api/orders/${a.orderId}/cancel`, 'POST', undefined, fulfillmentToken);
    expect(res.status).toBe(200);
    expect(await res.json<any>()).toMatchObject({ id: a.orderId, status: 'cancelled', payment: { status: 'refunded' }, units: 2 });
    expect(await statusOf(a.orderId)).toBe('cancelled');
    expect(await paymentOf(a.orderId)).toBe('refunded');
    expect(await eventsOf(a.orderId, 'order.cancelled')).toBe(1);
    const auths = await simAuthorizations(a.checkoutId);
    expect(auths).toHaveLength(1);
    expect(auths[0].status).toBe('refunded');
    expect(await simRefunds(a.checkoutId)).toBe(1);
    expect(await levels(variantId)).toMatchObject({ received: 10, sold: 1, held: 0, available: 9 });

    // Again: 200, the same order, no second refund, no second restock (b's unit stays sold).
    const again = await admin(`/admin/api/orders/${a.orderId}/cancel`, 'POST', undefined, fulfillmentToken);
    expect(again.status).toBe(200);
    expect((await again.json<any>()).status).toBe('cancelled');
    expect(await simRefunds(a.checkoutId)).toBe(1);
    expect(await eventsOf(a.orderId, 'order.cancelled')).toBe(1);
    expect(await levels(variantId)).toMatchObject({ received: 10, sold: 1, available: 9 });
    // The other order was not touched.
    expect(await statusOf(b.orderId)).toBe('confirmed');
    expect((await simAuthorizations(b.checkoutId))[0].status).toBe('captured');
  }, 60_000);

  it('two cancels at once: both answer 200, one refund, one restock', async () => {
    const { variantId } = await stockedVariant(5);
    const keep = await confirmedOrder(variantId, 1);
    const o = await confirmedOrder(variantId, 2);
    const answers = await Promise.all([1, 2, 3].map(() => admin(`/admin/api/orders/${o.orderId}/cancel`, 'POST')));
    for (const r of answers) expect(r.status).toBe(200);
    expect(await simRefunds(o.checkoutId)).toBe(1);
    expect(await eventsOf(o.orderId, 'order.cancelled')).toBe(1);
    expect(await levels(variantId)).toMatchObject({ received: 5, sold: 1, available: 4 });
    expect(await statusOf(keep.orderId)).toBe('confirmed');
  }, 60_000);

  it('a provider that is down: 503 and nothing changed in Postgres; the retry completes with one refund; fulfill waits for it', async () => {
    const { variantId } = await stockedVariant(4);
    const o = await confirmedOrder(variantId, 2);
    const broken = { ...env, PAYMENT_API_URL: 'http://127.0.0.1:9' };
    const res = await createApp().request(
      `/admin/api/orders/${o.orderId}/cancel`,
      { method: 'POST', headers: { authorization: `Bearer ${owner}` } },
      broken,
    );
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBeTruthy();
    expect((await res.json<any>()).error.code).toBe('unavailable');
    expect(await statusOf(o.orderId)).toBe('confirmed');
    expect(await paymentOf(o.orderId)).toBe('captured');
    expect(await eventsOf(o.orderId, 'order.cancelled')).toBe(0);
    expect(await levels(variantId)).toMatchObject({ sold: 2, available: 2 });

    // Whether the provider acted is unknown, so the order cannot ship before the cancel is retried.
    const ship = await admin(`/admin/api/orders/${o.orderId}/fulfill`, 'POST');
    expect(ship.status).toBe(409);
    expect((await ship.json<any>()).error.code).toBe('cancel_pending');

    const retried = await admin(`/admin/api/orders/${o.orderId}/cancel`, 'POST');
    expect(retried.status).toBe(200);
    expect(await simRefunds(o.checkoutId)).toBe(1);
    expect(await levels(variantId)).toMatchObject({ sold: 0, available: 4 });
    expect(await paymentOf(o.orderId)).toBe('refunded');
  }, 60_000);

  it('Postgres failing after the refund and restock: 503; the retry neither refunds nor restocks twice', async () => {
    const { variantId } = await stockedVariant(6);
    const other = await confirmedOrder(variantId, 1);
    const o = await confirmedOrder(variantId, 2);
    // Make the final transaction fail for this one order only.
    const fn = `pasar_test_block_${o.orderId.slice(4)}`;
    await dbRows(sql.raw(`create function ${fn}() returns trigger language plpgsql as $$ begin raise exception 'blocked by test'; end $$`));
    await dbRows(sql.raw(`create trigger ${fn} before update on orders for each row when (new.id = '${o.orderId}' and new.status = 'cancelled') execute function ${fn}()`));
    try {
      const res = await admin(`/admin/api/orders/${o.orderId}/cancel`, 'POST');
      expect(res.status).toBe(503);
      expect((await res.json<any>()).error.code).toBe('unavailable');
      // Refunded and restocked, but the order still says confirmed: the transaction rolled back whole.
      expect(await simRefunds(o.checkoutId)).toBe(1);
      expect(await levels(variantId)).toMatchObject({ sold: 1, available: 5 });
      expect(await statusOf(o.orderId)).toBe('confirmed');
      expect(await paymentOf(o.orderId)).toBe('captured');
      expect(await eventsOf(o.orderId, 'order.cancelled')).toBe(0);
      expect((await admin(`/admin/api/orders/${o.orderId}/fulfill`, 'POST')).status).toBe(409);
    } finally {
      await dbRows(sql.raw(`drop trigger ${fn} on orders`));
      await dbRows(sql.raw(`drop function ${fn}()`));
    }
    const retried = await admin(`/admin/api/orders/${o.orderId}/cancel`, 'POST');
    expect(retried.status).toBe(200);
    expect(await simRefunds(o.checkoutId)).toBe(1);
    expect(await levels(variantId)).toMatchObject({ received: 6, sold: 1, available: 5 });
    expect(await statusOf(o.orderId)).toBe('cancelled');
    expect(await paymentOf(o.orderId)).toBe('refunded');
    expect(await eventsOf(o.orderId, 'order.cancelled')).toBe(1);
    expect(await statusOf(other.orderId)).toBe('confirmed');
  }, 60_000);

  it('404s an unknown order; 401 without a token; 403 for readonly and catalog tokens', async () => {
    expect((await admin(`/admin/api/orders/ord_${randomToken()}/cancel`, 'POST')).status).toBe(404);
    const garbage = await admin('/admin/api/orders/not-an-order/cancel', 'POST');
    expect(garbage.status).toBe(404);
    expect((await garbage.json<any>()).error.code).toBe('not_found');
    const { variantId } = await stockedVariant(2);
    const o = await confirmedOrder(variantId, 1);
    const none = await admin(`/admin/api/orders/${o.orderId}/cancel`, 'POST', undefined, null);
    expect(none.status).toBe(401);
    expect((await none.json<any>()).error.code).toBe('unauthorized');
    const ro = await admin(`/admin/api/orders/${o.orderId}/cancel`, 'POST', undefined, readonlyToken);
    expect(ro.status).toBe(403);
    expect((await ro.json<any>()).error.code).toBe('forbidden');
    expect((await admin(`/admin/api/orders/${o.orderId}/cancel`, 'POST', undefined, catalogToken)).status).toBe(403);
    expect((await admin(`/admin/api/orders/${o.orderId}/fulfill`, 'POST', undefined, readonlyToken)).status).toBe(403);
    expect(await statusOf(o.orderId)).toBe('confirmed');
    expect(await simRefunds(o.checkoutId)).toBe(0);
  }, 60_000);
});

describe('POST /admin/api/orders/:id/fulfill', () => {
  it('fulfills a confirmed order once; a fulfilled order cannot be cancelled', async () => {
    const { variantId } = await stockedVariant(3);
    const o = await confirmedOrder(variantId, 1);
    const res = await admin(`/admin/api/orders/${o.orderId}/fulfill`, 'POST', undefined, fulfillmentToken);
    expect(res.status).toBe(200);
    expect((await res.json<any>()).status).toBe('fulfilled');
    const again = await admin(`/admin/api/orders/${o.orderId}/fulfill`, 'POST', undefined, fulfillmentToken);
    expect(again.status).toBe(200);
    expect(await eventsOf(o.orderId, 'order.fulfilled')).toBe(1);

    const cancel = await admin(`/admin/api/orders/${o.orderId}/cancel`, 'POST', undefined, fulfillmentToken);
    expect(cancel.status).toBe(409);
    expect((await cancel.json<any>()).error.code).toBe('invalid_state');
    expect(await statusOf(o.orderId)).toBe('fulfilled');
    expect(await simRefunds(o.checkoutId)).toBe(0);
    expect((await simAuthorizations(o.checkoutId))[0].status).toBe('captured');
    expect(await levels(variantId)).toMatchObject({ sold: 1, available: 2 });
  }, 60_000);

  it('a cancelled order cannot be fulfilled', async () => {
    const { variantId } = await stockedVariant(3);
    const o = await confirmedOrder(variantId, 1);
    expect((await admin(`/admin/api/orders/${o.orderId}/cancel`, 'POST')).status).toBe(200);
    const res = await admin(`/admin/api/orders/${o.orderId}/fulfill`, 'POST');
    expect(res.status).toBe(409);
    expect((await res.json<any>()).error.code).toBe('invalid_state');
    expect(await eventsOf(o.orderId, 'order.fulfilled')).toBe(0);
  }, 60_000);

  it('is in the OpenAPI document', async () => {
    const doc = await (await call('/api/openapi.json')).json<any>();
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/admin/api/orders', '/admin/api/orders/{id}/cancel', '/admin/api/orders/{id}/fulfill']));
  });
});
