import { createExecutionContext, createMessageBatch, getQueueResult, type MessageBatchMessage } from 'cloudflare:test';
import { env, exports } from 'cloudflare:workers';
import { sql } from 'drizzle-orm';
import { afterEach, describe, expect, inject, it, vi } from 'vitest';
import { createDatabase } from '../../db/client';
import { orderLines, orders } from '../../db/schema';
import { markSoldOut } from '../inventory/soldout';
import { regionLevels } from '../inventory/shards';
import { newId, randomToken } from '../lib/ids';
import { createServices } from '../services';
import { handleOrderEvents, processedMarkerId, retryDelaySeconds } from './order-events';

const fx = inject('seedFixtures');
const owner = env.ADMIN_BOOTSTRAP_TOKEN!;
const QUEUE = 'pasar-order-events-dev';

const admin = (path: string, method: string, body?: unknown) =>
  exports.default.fetch(
    new Request(`http://pasar.test${path}`, {
      method,
      headers: { authorization: `Bearer ${owner}`, 'content-type': 'application/json' },
      ...(body ? { body: JSON.stringify(body) } : {}),
    }),
  );

/** A fresh variant priced in sg with `stock` units received there. */
async function variantWithStock(stock: number): Promise<{ sku: string; variantId: string }> {
  const sku = `QUE-${randomToken(6).toUpperCase()}`;
  const res = await admin('/admin/api/products', 'POST', {
    title: `Queue test teh tarik ${sku}`,
    category: fx.busiestCategorySlug,
    variants: [{ sku, title: 'Box of 10', prices: { sg: { amount: 1200 } } }],
  });
  expect(res.status).toBe(201);
  const variantId = (await res.json<any>()).variants[0].id as string;
  expect((await admin(`/admin/api/inventory/${sku}`, 'PUT', { region: 'sg', quantity: stock })).status).toBe(200);
  return { sku, variantId };
}

/**
 * An order written straight to Postgres: no checkout saga, so no message of
 * its own reaches the real queue consumer while these tests drive it by hand.
 */
async function insertOrder(line: { sku: string; variantId: string }, quantity = 1, status: 'confirmed' | 'cancelled' | 'fulfilled' = 'confirmed'): Promise<string> {
  const db = createDatabase(env);
  const id = newId('ord');
  try {
    await db.primary.insert(orders).values({
      id,
      number: `SG-Q${randomToken(5).toUpperCase()}`,
      checkoutId: newId('chk'),
      email: 'nurul@example.com',
      regionCode: 'sg',
      currency: 'SGD',
      status,
      subtotalAmount: 1200 * quantity,
      totalAmount: 1200 * quantity,
      shippingAddress: { name: 'Nurul', line1: '2 Jalan Besar', city: 'Singapore', postalCode: '208787', country: 'SG' },
      accessTokenHash: 'x'.repeat(64),
    });
    await db.primary.insert(orderLines).values({ id: newId('ol'), orderId: id, variantId: line.variantId, sku: line.sku, title: 'Box of 10', quantity, unitAmount: 1200, lineAmount: 1200 * quantity });
  } finally {
    await db.close();
  }
  return id;
}

let seq = 0;
const message = (body: unknown, attempts = 1, id = `msg-${++seq}-${randomToken(4)}`): MessageBatchMessage => ({ id, timestamp: new Date(), attempts, body });
const event = (type: string, orderId: string) => ({ type, orderId, at: new Date().toISOString(), data: {} });

/** Runs the consumer on one batch; returns acks, retries and the delays asked for. */
async function deliver(messages: MessageBatchMessage[], e: Env = env) {
  const batch = createMessageBatch(QUEUE, messages);
  const delays = new Map<string, number | undefined>();
  for (const m of batch.messages) {
    const retry = m.retry.bind(m);
    m.retry = (options?: QueueRetryOptions) => {
      delays.set(m.id, options?.delaySeconds);
      retry(options);
    };
  }
  const ctx = createExecutionContext();
  await handleOrderEvents(batch, e);
  const result = await getQueueResult(batch, ctx);
  return { acked: result.explicitAcks, retried: result.retryMessages.map((r) => r.msgId), delays, result };
}

async function markers(orderId: string, type: string): Promise<number> {
  const db = createDatabase(env);
  try {
    const { rows } = await db.primary.execute<{ n: number }>(sql`select count(*)::int as n from order_events where order_id = ${orderId} and type = ${type}`);
    return rows[0]!.n;
  } finally {
    await db.close();
  }
}

/** Log lines the consumer wrote with `msg` for `orderId`. */
function logged(spy: { mock: { calls: unknown[][] } }, msg: string, orderId: string): number {
  return spy.mock.calls.filter(([line]) => {
    try {
      const parsed = JSON.parse(String(line));
      return parsed.msg === msg && parsed.orderId === orderId;
    } catch {
      return false;
    }
  }).length;
}

const soldOutScore = async (variantId: string) => createServices(env).redis.zscore('soldout:sg', variantId);

afterEach(() => {
  vi.restoreAllMocks();
});

describe('order events: processed once per order and type', () => {
  it('records the confirmation, logs the email and the analytics line once; redeliveries and duplicates are acked and skipped', async () => {
    const log = vi.spyOn(console, 'log');
    const v = await variantWithStock(5);
    const orderId = await insertOrder(v, 2);
    const first = message(event('order.created', orderId));

    const one = await deliver([first]);
    expect(one.acked).toEqual([first.id]);
    expect(one.retried).toEqual([]);
    expect(await markers(orderId, 'order.confirmation_sent')).toBe(1);
    expect(logged(log, 'email sent', orderId)).toBe(1);
    expect(logged(log, 'analytics', orderId)).toBe(1);

    // The same message redelivered, and a second copy the producer sent.
    const two = await deliver([{ ...first, attempts: 2 }, message(event('order.created', orderId))]);
    expect(two.acked).toHaveLength(2);
    expect(two.retried).toEqual([]);
    expect(await markers(orderId, 'order.confirmation_sent')).toBe(1);
    expect(logged(log, 'email sent', orderId)).toBe(1);
    expect(logged(log, 'analytics', orderId)).toBe(1);

    // Another type for the same order is its own event.
    const shipped = await deliver([message(event('order.fulfilled', orderId))]);
    expect(shipped.acked).toHaveLength(1);
    expect(await markers(orderId, 'order.shipment_sent')).toBe(1);
  });

  it('the same event delivered concurrently in two batches sends one email', async () => {
    const log = vi.spyOn(console, 'log');
    const v = await variantWithStock(5);
    const orderId = await insertOrder(v, 1);
    const results = await Promise.all([1, 2, 3].map(() => deliver([message(event('order.created', orderId))])));
    for (const r of results) expect(r.acked).toHaveLength(1);
    expect(await markers(orderId, 'order.confirmation_sent')).toBe(1);
    expect(logged(log, 'email sent', orderId)).toBe(1);
  });

  it('does not confirm an order that was cancelled before order.created arrived', async () => {
    const log = vi.spyOn(console, 'log');
    const v = await variantWithStock(5);
    const orderId = await insertOrder(v, 1, 'cancelled');
    const r = await deliver([message(event('order.created', orderId))]);
    expect(r.acked).toHaveLength(1);
    expect(logged(log, 'email sent', orderId)).toBe(0);
    expect(logged(log, 'email suppressed', orderId)).toBe(1);
    expect(await markers(orderId, 'order.confirmation_sent')).toBe(1);
  });
});

describe('order events: catalog availability', () => {
  it('order.created flags a variant with nothing left as sold out; order.cancelled clears the flag once stock is back', async () => {
    const v = await variantWithStock(0);
    expect((await regionLevels(env, 'sg', [v.variantId])).get(v.variantId)).toMatchObject({ known: true, available: 0 });
    const orderId = await insertOrder(v, 1);
    expect((await deliver([message(event('order.created', orderId))])).acked).toHaveLength(1);
    expect(await soldOutScore(v.variantId)).not.toBeNull();

    // Stock comes back (a cancel restocked it): the flag goes.
    expect((await admin(`/admin/api/inventory/${v.sku}`, 'PUT', { region: 'sg', quantity: 3 })).status).toBe(200);
    await markSoldOut(createServices(env).redis, 'sg', [v.variantId]);
    expect(await soldOutScore(v.variantId)).not.toBeNull();
    expect((await deliver([message(event('order.cancelled', orderId))])).acked).toHaveLength(1);
    expect(await soldOutScore(v.variantId)).toBeNull();
    expect(await markers(orderId, 'order.cancellation_sent')).toBe(1);
  });
});

describe('order events: counters (Analytics Engine)', () => {
  it('order.created counts the order once, with the variants it sold out; redeliveries and other types count nothing', async () => {
    const points: AnalyticsEngineDataPoint[] = [];
    const counted = { ...env, METRICS: { writeDataPoint: (p?: AnalyticsEngineDataPoint) => void points.push(p!) } as AnalyticsEngineDataset };
    const v = await variantWithStock(0);
    const orderId = await insertOrder(v, 2);
    const created = message(event('order.created', orderId));
    expect((await deliver([created], counted)).acked).toEqual([created.id]);
    expect(points).toEqual([
      { indexes: ['order'], blobs: ['order', 'sg', 'SGD', 'confirmed'], doubles: [1, 2400, 2, 1] },
      { indexes: ['out_of_stock'], blobs: ['out_of_stock', 'sg', 'sold_out', v.variantId, 'order_events'], doubles: [1, 0] },
    ]);
    await deliver([{ ...created, attempts: 2 }, message(event('order.created', orderId))], counted);
    await deliver([message(event('order.fulfilled', orderId))], counted);
    expect(points).toHaveLength(2);
  });
});

describe('order events: failures', () => {
  it('acks and logs malformed (poison) messages, unknown orders and unhandled types instead of retrying them', async () => {
    const warn = vi.spyOn(console, 'warn');
    const unknownOrder = `ord_${randomToken()}`;
    const bodies = [
      'not an event',
      null,
      42,
      { type: 'order.created' },
      { type: 'order.created', orderId: 'ord_x', at: new Date().toISOString() },
      { type: 'created', orderId: unknownOrder, at: new Date().toISOString() },
      event('order.created', unknownOrder),
      event('order.refund_requested', unknownOrder),
    ];
    const msgs = bodies.map((b) => message(b, 1));
    const r = await deliver(msgs);
    expect(r.retried).toEqual([]);
    expect(r.acked.sort()).toEqual(msgs.map((m) => m.id).sort());
    expect(warn.mock.calls.filter(([l]) => String(l).includes('dropping malformed order event'))).toHaveLength(6);
    expect(warn.mock.calls.filter(([l]) => String(l).includes('dropping event of unknown order'))).toHaveLength(1);
  });

  it('retries what failed (Redis down) with backoff by attempts, records nothing, and processes on a later delivery', async () => {
    const log = vi.spyOn(console, 'log');
    vi.spyOn(console, 'error').mockImplementation(() => {});
    const v = await variantWithStock(4);
    const orderId = await insertOrder(v, 1);
    const poison = message({ nonsense: true });
    const first = message(event('order.created', orderId), 1);
    const third = message(event('order.created', orderId), 3);
    const deadRedis = { ...env, UPSTASH_REDIS_REST_URL: env.TEST_DEAD_UPSTASH_URL! };

    const r = await deliver([poison, first, third], deadRedis);
    expect(r.acked).toEqual([poison.id]);
    expect(r.retried.sort()).toEqual([first.id, third.id].sort());
    expect(r.delays.get(first.id)).toBe(retryDelaySeconds(1));
    expect(r.delays.get(third.id)).toBe(retryDelaySeconds(3));
    expect(await markers(orderId, 'order.confirmation_sent')).toBe(0);
    expect(logged(log, 'email sent', orderId)).toBe(0);

    // Redis is back: the redelivery is processed, once.
    const later = await deliver([{ ...first, attempts: 2 }]);
    expect(later.acked).toEqual([first.id]);
    expect(await markers(orderId, 'order.confirmation_sent')).toBe(1);
    expect(logged(log, 'email sent', orderId)).toBe(1);
  });

  it('retries when Postgres is unreachable', async () => {
    vi.spyOn(console, 'error').mockImplementation(() => {});
    const v = await variantWithStock(1);
    const orderId = await insertOrder(v, 1);
    const url = new URL(env.DATABASE_URL);
    url.pathname = '/pasar_no_such_database';
    const m = message(event('order.created', orderId), 4);
    const r = await deliver([m], { ...env, DATABASE_URL: url.toString() });
    expect(r.retried).toEqual([m.id]);
    expect(r.delays.get(m.id)).toBe(40);
    expect(await markers(orderId, 'order.confirmation_sent')).toBe(0);
  });

  it('backs off exponentially, capped at five minutes (the queue dead-letters after max_retries)', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 10].map(retryDelaySeconds)).toEqual([5, 10, 20, 40, 80, 160, 300, 300]);
  });

  it('marker ids are one per order and event type', () => {
    const id = `ord_${randomToken()}`;
    expect(processedMarkerId('order.created', id)).not.toBe(processedMarkerId('order.cancelled', id));
    expect(processedMarkerId('order.created', id)).toBe(processedMarkerId('order.created', id));
  });
});
