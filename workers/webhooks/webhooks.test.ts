/**
 * Outbound webhooks end to end in workerd: the admin API, the fan-out from
 * real producers (admin product writes, the checkout saga through the
 * ORDER_EVENTS consumer), the real WEBHOOKS consumer delivering to the
 * payment simulator's receiver (`/webhook-receiver/<name>?fail=<n>`), and the
 * receiver's check with the helper shipped to merchants.
 *
 * Retries: vitest.config.ts sets WEBHOOK_RETRY_BASE_SECONDS to 0.5, so the
 * queue redelivers after 0, 0, 1, 3... s rather than 30 s doubling; the 24 h
 * give-up is driven by calling the delivery function with a later clock.
 */
import { createMessageBatch, getQueueResult, createExecutionContext } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { eq } from 'drizzle-orm';
import { afterEach, describe, expect, it } from 'vitest';
import { verifyPasarWebhook } from '../../clients/webhook-verify';
import { createDatabase } from '../../db/client';
import { variants, webhookAttempts, webhookDeliveries } from '../../db/schema';
import worker from '../index';
import { admin, call, cartWith, checkoutBody, settle, startCheckout, stockedVariant } from '../../test/workers/shop';
import { randomToken } from '../lib/ids';
import { attemptDelivery, backoffSeconds, MAX_DELAY_SECONDS, RETRY_WINDOW_MS } from './deliver';
import { orderEventId, recordWebhookEvent } from './events';
import { urlProblem } from './routes';

const simUrl = env.TEST_PAYMENT_SIM_URL!;
const created: string[] = [];

interface Received {
  event: string;
  delivery: string;
  signature: string;
  body: string;
  status: number;
}

/** A subscription to `eventTypes` at a fresh receiver answering 500 to the first `fail` requests of each delivery. */
async function subscribe(eventTypes: string[], fail: number | 'always' = 0) {
  const name = `r-${randomToken(8)}`;
  const res = await admin('/admin/api/webhooks', 'POST', { url: `${simUrl}/webhook-receiver/${name}?fail=${fail}`, eventTypes, description: 'test receiver' });
  expect(res.status).toBe(201);
  const sub = await res.json<{ id: string; secret: string; url: string }>();
  created.push(sub.id);
  return { ...sub, name };
}

const received = async (name: string): Promise<Received[]> => (await (await fetch(`${simUrl}/webhook-receiver/${name}`)).json<{ requests: Received[] }>()).requests;

async function deliveries(subId: string): Promise<any[]> {
  const res = await admin(`/admin/api/webhooks/${subId}/deliveries`, 'GET');
  expect(res.status).toBe(200);
  return (await res.json<{ items: any[] }>()).items;
}

/** Polls the deliveries of `subId` until `pick` finds one, within `ms`. */
async function waitFor(subId: string, pick: (d: any) => boolean, ms = 20_000): Promise<any> {
  const deadline = Date.now() + ms;
  for (;;) {
    const found = (await deliveries(subId)).find(pick);
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`no matching delivery for ${subId} after ${ms} ms: ${JSON.stringify(await deliveries(subId)).slice(0, 800)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function newProduct(): Promise<string> {
  const { sku } = await stockedVariant(20);
  const db = createDatabase(env);
  try {
    const [row] = await db.primary.select({ productId: variants.productId }).from(variants).where(eq(variants.sku, sku));
    return row!.productId;
  } finally {
    await db.close();
  }
}

afterEach(async () => {
  // Deleting a subscription ends its deliveries (a queued message finds nothing and is acked).
  for (const id of created.splice(0)) await admin(`/admin/api/webhooks/${id}`, 'DELETE');
});

describe('delivery with retries (issue 11: done when)', () => {
  it('a receiver that fails 3 times then succeeds gets the event acknowledged exactly once, with 4 attempts logged, each signature verifiable', async () => {
    const sub = await subscribe(['product.updated'], 3);
    const productId = await newProduct();

    const delivery = await waitFor(sub.id, (d) => d.payload.data.productId === productId && d.status === 'delivered');
    expect(delivery).toMatchObject({ eventType: 'product.updated', status: 'delivered', attempts: 4, lastStatusCode: 200, lastError: null });
    expect(delivery.attemptLog.map((a: any) => [a.attempt, a.statusCode])).toEqual([[1, 500], [2, 500], [3, 500], [4, 200]]);
    expect(delivery.attemptLog[0].error).toMatch(/^HTTP 500/);

    const got = (await received(sub.name)).filter((r) => r.delivery === delivery.id);
    expect(got.map((r) => r.status)).toEqual([500, 500, 500, 200]);
    expect(got.filter((r) => r.status === 200)).toHaveLength(1);
    for (const r of got) {
      expect(r.event).toBe('product.updated');
      expect(await verifyPasarWebhook(r.body, r.signature, sub.secret)).toMatchObject({ ok: true });
      expect(JSON.parse(r.body)).toEqual({ id: delivery.eventId, type: 'product.updated', createdAt: expect.any(String), data: { productId, slug: expect.any(String), change: 'created' } });
    }
    // Tampering is detectable by the receiver's helper.
    expect(await verifyPasarWebhook(got[3]!.body.replace('created', 'archived'), got[3]!.signature, sub.secret)).toEqual({ ok: false, reason: 'signature_mismatch' });
    expect(await verifyPasarWebhook(got[3]!.body, got[3]!.signature, 'whsec_someone_else_entirely_0000000000')).toEqual({ ok: false, reason: 'signature_mismatch' });

    // A redelivered queue message for a delivered delivery sends nothing again.
    const batch = createMessageBatch('pasar-webhooks-dev', [{ id: `m-${randomToken(4)}`, timestamp: new Date(), attempts: 1, body: { deliveryId: delivery.id } }]);
    const ctx = createExecutionContext();
    await worker.queue(batch, env);
    const result = await getQueueResult(batch, ctx);
    expect(result.explicitAcks).toEqual([batch.messages[0]!.id]);
    expect((await received(sub.name)).filter((r) => r.delivery === delivery.id)).toHaveLength(4);
    expect((await deliveries(sub.id)).find((d) => d.id === delivery.id).attempts).toBe(4);
  });

  it('two copies of a delivery message attempting at once send it once', async () => {
    const sub = await subscribe(['inventory.low']);
    const db = createDatabase(env);
    try {
      const ids = await recordWebhookEvent(db.primary, { id: `evt_${randomToken(16)}`, type: 'inventory.low', createdAt: new Date().toISOString(), data: { sku: 'X' } });
      const mine = (await deliveries(sub.id)).map((d) => d.id);
      const id = ids.find((i) => mine.includes(i))!;
      const now = new Date();
      const outcomes = await Promise.all([attemptDelivery(env, db.primary, id, now), attemptDelivery(env, db.primary, id, now)]);
      // One sends; the other finds the lease (retry later) or, if it came second, the delivered row.
      expect(outcomes.filter((o) => o.kind === 'delivered' && o.attempt === 1)).toHaveLength(1);
      expect(await db.primary.select().from(webhookAttempts).where(eq(webhookAttempts.deliveryId, id))).toHaveLength(1);
      expect((await received(sub.name)).filter((r) => r.delivery === id)).toHaveLength(1);
    } finally {
      await db.close();
    }
  });

  it('gives up 24 h after the first attempt: the last attempt falls on the mark, then the delivery is failed', async () => {
    const sub = await subscribe(['inventory.low'], 'always');
    const db = createDatabase(env);
    // Production's 30 s base, so the second attempt is not due at once.
    const e = { ...env, WEBHOOK_RETRY_BASE_SECONDS: '30' } as Env;
    try {
      const ids = await recordWebhookEvent(db.primary, { id: `evt_${randomToken(16)}`, type: 'inventory.low', createdAt: new Date().toISOString(), data: {} });
      const mine = (await deliveries(sub.id)).map((d) => d.id);
      const id = ids.find((i) => mine.includes(i))!;
      const t0 = new Date();
      const first = await attemptDelivery(e, db.primary, id, t0);
      expect(first).toMatchObject({ kind: 'retry', attempt: 1, statusCode: 500 });
      // Not due yet: nothing is sent.
      expect(await attemptDelivery(e, db.primary, id, new Date(t0.getTime() - 1000))).toMatchObject({ kind: 'retry' });
      // Far later, the next attempt is capped at the 24 h mark, and failing there ends the delivery.
      const late = await attemptDelivery(e, db.primary, id, new Date(t0.getTime() + RETRY_WINDOW_MS - 1000));
      expect(late).toMatchObject({ kind: 'retry', attempt: 2, delaySeconds: 1 });
      expect(await attemptDelivery(e, db.primary, id, new Date(t0.getTime() + RETRY_WINDOW_MS))).toEqual({ kind: 'failed' });
      const [row] = await db.primary.select().from(webhookDeliveries).where(eq(webhookDeliveries.id, id));
      expect(row).toMatchObject({ status: 'failed', attempts: 3, lastStatusCode: 500 });
      // A failed delivery is never sent again by the queue.
      expect(await attemptDelivery(e, db.primary, id, new Date(t0.getTime() + 2 * RETRY_WINDOW_MS))).toEqual({ kind: 'failed' });
      expect((await received(sub.name)).filter((r) => r.delivery === id)).toHaveLength(3);
    } finally {
      await db.close();
    }
  });

  it('backs off from 30 s doubling, at most 12 h a step, about 13 attempts in 24 h', () => {
    const e = {} as Env;
    const none = () => 0;
    expect([1, 2, 3, 4].map((n) => backoffSeconds(e, n, none))).toEqual([30, 60, 120, 240]);
    expect(backoffSeconds(e, 40, none)).toBe(MAX_DELAY_SECONDS);
    // Jitter only shortens a step, by at most 20 %.
    expect(backoffSeconds(e, 3, () => 0.999)).toBeGreaterThanOrEqual(96);
    let total = 0;
    let attempts = 1;
    while (total < RETRY_WINDOW_MS / 1000) total += backoffSeconds(e, attempts++, none);
    expect(attempts).toBeGreaterThan(10);
    expect(attempts).toBeLessThan(16);
  });
});

describe('checkout never waits for a subscriber', () => {
  it('checkout completes while the subscriber is down; order.created and order.paid wait in the outbox, retried', async () => {
    const sub = await subscribe(['order.created', 'order.paid'], 'always');
    const { variantId } = await stockedVariant(5);
    const cartId = await cartWith(variantId, 1);
    const started = await startCheckout(checkoutBody(cartId), `wh-${randomToken(8)}`);
    expect(started.status).toBe(202);
    const state = await settle((await started.json<any>()).checkoutId);
    expect(state.status).toBe('confirmed');

    const createdDelivery = await waitFor(sub.id, (d) => d.eventId === orderEventId(state.orderId, 'order.created') && d.attemptLog.length >= 1);
    expect(createdDelivery).toMatchObject({ status: 'pending', lastStatusCode: 500 });
    expect(createdDelivery.payload.data.order).toMatchObject({ id: state.orderId, status: 'confirmed', lines: [{ variantId, quantity: 1 }] });
    const paid = await waitFor(sub.id, (d) => d.eventId === orderEventId(state.orderId, 'order.paid'));
    expect(paid.eventType).toBe('order.paid');
    // One delivery per subscriber and event, however often the consumer ran.
    expect((await deliveries(sub.id)).filter((d) => d.payload.data?.order?.id === state.orderId)).toHaveLength(2);
  });
});

describe('order and stock events', () => {
  it('order.fulfilled (admin API) and inventory.low (an order taking stock below 5) reach their subscriber', async () => {
    const sub = await subscribe(['order.fulfilled', 'inventory.low']);
    const { variantId, sku } = await stockedVariant(6);
    const cartId = await cartWith(variantId, 2);
    const started = await startCheckout(checkoutBody(cartId), `wh-${randomToken(8)}`);
    const state = await settle((await started.json<any>()).checkoutId);
    expect(state.status).toBe('confirmed');

    const low = await waitFor(sub.id, (d) => d.eventType === 'inventory.low' && d.payload.data.sku === sku && d.status === 'delivered');
    expect(low.payload.data).toMatchObject({ variantId, region: 'sg', available: 4, threshold: 5, orderId: state.orderId });

    const fulfil = await admin(`/admin/api/orders/${state.orderId}/fulfill`, 'POST');
    expect(fulfil.status).toBe(200);
    const done = await waitFor(sub.id, (d) => d.eventId === orderEventId(state.orderId, 'order.fulfilled') && d.status === 'delivered');
    expect(done.payload).toMatchObject({ type: 'order.fulfilled', data: { order: { id: state.orderId, status: 'fulfilled' } } });
    // Not subscribed: no order.created delivery for this subscriber.
    expect((await deliveries(sub.id)).some((d) => d.eventType === 'order.created')).toBe(false);
  });
});

describe('replay', () => {
  it('re-sends a delivered delivery now, as a new attempt logged after the first', async () => {
    const sub = await subscribe(['product.updated']);
    const productId = await newProduct();
    const first = await waitFor(sub.id, (d) => d.payload.data.productId === productId && d.status === 'delivered');
    expect(first.attempts).toBe(1);

    const res = await admin(`/admin/api/webhooks/deliveries/${first.id}/replay`, 'POST');
    expect(res.status).toBe(200);
    const replayed = await res.json<any>();
    expect(replayed).toMatchObject({ id: first.id, status: 'delivered', attempts: 2, lastStatusCode: 200 });
    expect(replayed.attemptLog.map((a: any) => a.attempt)).toEqual([1, 2]);
    const got = (await received(sub.name)).filter((r) => r.delivery === first.id);
    expect(got).toHaveLength(2);
    expect(got[1]!.body).toBe(got[0]!.body);
  });

  it('answers 404 for an unknown delivery and 409 inactive for a switched-off subscription', async () => {
    expect((await admin('/admin/api/webhooks/deliveries/whd_nope/replay', 'POST')).status).toBe(404);
    const sub = await subscribe(['product.updated']);
    const productId = await newProduct();
    const d = await waitFor(sub.id, (x) => x.payload.data.productId === productId && x.status === 'delivered');
    expect((await admin(`/admin/api/webhooks/${sub.id}`, 'PATCH', { active: false })).status).toBe(200);
    const res = await admin(`/admin/api/webhooks/deliveries/${d.id}/replay`, 'POST');
    expect(res.status).toBe(409);
    expect((await res.json<any>()).error.code).toBe('inactive');
  });
});

describe('admin API: subscriptions', () => {
  it('shows the secret once, at creation; lists, reads, patches and deletes', async () => {
    const sub = await subscribe(['order.created']);
    expect(sub.secret).toMatch(/^whsec_[0-9a-z]{52}$/);
    const list = await (await admin('/admin/api/webhooks', 'GET')).json<any>();
    const listed = list.items.find((s: any) => s.id === sub.id);
    expect(listed).toMatchObject({ eventTypes: ['order.created'], active: true, description: 'test receiver' });
    expect(JSON.stringify(list)).not.toContain(sub.secret);
    const one = await admin(`/admin/api/webhooks/${sub.id}`, 'GET');
    expect(JSON.stringify(await one.json())).not.toContain(sub.secret);

    const patched = await admin(`/admin/api/webhooks/${sub.id}`, 'PATCH', { eventTypes: ['order.fulfilled', 'order.cancelled'], active: false });
    expect(patched.status).toBe(200);
    expect(await patched.json()).toMatchObject({ eventTypes: ['order.fulfilled', 'order.cancelled'], active: false });

    expect((await admin(`/admin/api/webhooks/${sub.id}`, 'DELETE')).status).toBe(200);
    expect((await admin(`/admin/api/webhooks/${sub.id}`, 'GET')).status).toBe(404);
    expect((await admin(`/admin/api/webhooks/${sub.id}/deliveries`, 'GET')).status).toBe(404);
  });

  it.each([
    ['a plain http URL', { url: 'http://erp.example.com/hook', eventTypes: ['order.created'] }, 'url'],
    ['a URL that is not one', { url: 'erp.example.com', eventTypes: ['order.created'] }, 'url'],
    ['a URL with credentials', { url: 'https://u:p@erp.example.com/hook', eventTypes: ['order.created'] }, 'url'],
    ['an unknown event type', { url: 'https://erp.example.com/hook', eventTypes: ['order.shipped'] }, 'eventTypes.0'],
    ['no event types', { url: 'https://erp.example.com/hook', eventTypes: [] }, 'eventTypes'],
    ['a repeated event type', { url: 'https://erp.example.com/hook', eventTypes: ['order.paid', 'order.paid'] }, 'eventTypes'],
    ['a client-sent secret', { url: 'https://erp.example.com/hook', eventTypes: ['order.paid'], secret: 'mine' }, 'secret'],
  ])('refuses %s with 400 invalid_request naming the field', async (_name, body, field) => {
    const res = await admin('/admin/api/webhooks', 'POST', body);
    expect(res.status).toBe(400);
    const err = (await res.json<any>()).error;
    expect(err.code).toBe('invalid_request');
    expect(err.details.map((d: any) => d.field)).toContain(field);
  });

  it('refuses an empty or unknown-field patch, and answers 404 for an unknown id', async () => {
    const sub = await subscribe(['order.created']);
    expect((await admin(`/admin/api/webhooks/${sub.id}`, 'PATCH', {})).status).toBe(400);
    expect((await admin(`/admin/api/webhooks/${sub.id}`, 'PATCH', { secret: 'x' })).status).toBe(400);
    expect((await admin(`/admin/api/webhooks/${sub.id}`, 'PATCH', { url: 'ftp://x.example.com' })).status).toBe(400);
    expect((await admin('/admin/api/webhooks/whs_nope', 'PATCH', { active: false })).status).toBe(404);
  });

  it('allows http only to loopback outside production, and only public https in production', () => {
    expect(urlProblem('http://127.0.0.1:9999/hook', 'development')).toBeUndefined();
    expect(urlProblem('http://localhost/hook', 'staging')).toBeUndefined();
    expect(urlProblem('http://127.0.0.1:9999/hook', 'production')).toMatch(/https/);
    expect(urlProblem('https://10.0.0.5/hook', 'production')).toMatch(/public/);
    expect(urlProblem('https://erp.example.com/hook', 'production')).toBeUndefined();
  });

  it('is owner only: 401 without a token, 403 for every other role', async () => {
    expect((await call('/admin/api/webhooks')).status).toBe(401);
    for (const role of ['catalog', 'fulfillment', 'readonly']) {
      const minted = await (await admin('/admin/api/tokens', 'POST', { name: `webhook test ${role}`, role })).json<{ token: string; id: string }>();
      const as = (path: string, method = 'GET', body?: unknown) =>
        call(path, { method, headers: { authorization: `Bearer ${minted.token}`, 'content-type': 'application/json' }, ...(body ? { body: JSON.stringify(body) } : {}) });
      expect((await as('/admin/api/webhooks')).status).toBe(403);
      expect((await as('/admin/api/webhooks', 'POST', { url: 'https://erp.example.com/hook', eventTypes: ['order.created'] })).status).toBe(403);
      expect((await as('/admin/api/webhooks/deliveries/whd_x/replay', 'POST')).status).toBe(403);
      await admin(`/admin/api/tokens/${minted.id}`, 'DELETE');
    }
  });

  it('documents the routes in the OpenAPI document', async () => {
    const doc = await (await call('/api/openapi.json')).json<any>();
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(['/admin/api/webhooks', '/admin/api/webhooks/{id}', '/admin/api/webhooks/{id}/deliveries', '/admin/api/webhooks/deliveries/{deliveryId}/replay']),
    );
  });
});
