/**
 * Admin orders API: list (filters, keyset pagination), cancel (refund and
 * restock) and fulfill.
 *
 * Cancel runs three steps against three systems that share no transaction,
 * so every step is idempotent and the whole operation is safe to repeat
 * after any partial failure:
 *
 *   1. refund the captured payment at the provider (idempotency key
 *      `<orderId>:refund`; a provider 5xx or timeout answers 503 and Postgres
 *      is untouched);
 *   2. restock the sold units in the inventory shards (sold -> available),
 *      following a restock plan fixed on the first attempt and kept in Redis,
 *      one operation id per shard (`<orderId>:<variantId>:<shard>`), so a
 *      retry replays the same operations instead of restocking twice;
 *   3. one Postgres transaction: order cancelled, payment refunded,
 *      `order.cancelled` in order_events; then `order.cancelled` on the queue.
 *
 * Cancel and fulfill of one order are serialised by a short Redis lock, and a
 * cancel that got as far as calling the provider leaves a marker that stops a
 * later fulfill (the money may already be back with the buyer) until the
 * cancel is retried to the end.
 */
import { createRoute, z } from '@hono/zod-openapi';
import type { Redis } from '@upstash/redis/cloudflare';
import { and, asc, desc, eq, inArray, type SQL } from 'drizzle-orm';
import type { Context, MiddlewareHandler } from 'hono';
import type { Database } from '../../db/client';
import { REGION_CODES, type RegionCode } from '../../db/regions';
import { orderEvents, orderLines, orders, orderStatus, payments } from '../../db/schema';
import type { CheckoutState } from '../../durable-objects/checkout';
import type { StockLevel } from '../../durable-objects/inventory';
import { cursorKey, nextNewestFirstCursor, olderThan, readNewestFirstCursor } from '../lib/keyset';
import { ApiError, notFound, unavailable } from '../lib/errors';
import { newId, randomToken } from '../lib/ids';
import { MoneySchema } from '../lib/money';
import { createRouter, errorResponse } from '../lib/router';
import { signingSecrets } from '../lib/signed';
import { loadStockConfig, SHARDS_PER_REGION, shardsOf, shardStub } from '../inventory/shards';
import { adminAuth } from '../middleware/admin-auth';
import { limitBody } from '../middleware/body-limit';
import { paymentProvider } from '../payments/provider';
import { OrderLineSchema, orderLineView } from '../orders/routes';
import type { OrderEvent } from '../queue/order-events';
import type { AppEnv } from '../types';

const security = [{ adminToken: [] }];
const reader: MiddlewareHandler<AppEnv>[] = [adminAuth({ roles: ['fulfillment', 'readonly'] })];
const writer: MiddlewareHandler<AppEnv>[] = [adminAuth({ roles: ['fulfillment'] }), limitBody(4 * 1024)];

/** How long one cancel or fulfill may hold an order's lock (a provider call times out after 15 s). */
const LOCK_TTL_MS = 60_000;
/** How long a second request for the same order waits for the first before answering 409. */
const LOCK_WAIT_MS = 20_000;
/** How long the restock plan and the cancel marker are kept (far beyond any retry). */
const CANCEL_STATE_TTL_S = 30 * 24 * 3600;

const lockKey = (orderId: string) => `order:lock:${orderId}`;
const cancelKey = (orderId: string) => `order:cancelling:${orderId}`;
const planKey = (orderId: string) => `order:restock-plan:${orderId}`;

const ORDER_ID = /^ord_[0-9a-z]{26}$/;

// ---- schemas ----------------------------------------------------------------

const AdminOrderSchema = z
  .object({
    id: z.string(),
    number: z.string(),
    status: z.enum(orderStatus),
    region: z.enum(REGION_CODES),
    email: z.string(),
    checkoutId: z.string(),
    subtotal: MoneySchema,
    shipping: MoneySchema,
    discount: MoneySchema.openapi({ description: 'All promotions: total = subtotal + shipping − discount' }),
    tax: MoneySchema.openapi({ description: 'Tax included in the total' }),
    total: MoneySchema,
    payment: z
      .object({ status: z.string(), provider: z.string(), amount: MoneySchema })
      .nullable()
      .openapi({ description: 'The payment taken for the order (null for an order without one)' }),
    lineCount: z.number().int().openapi({ description: 'Distinct variants on the order' }),
    units: z.number().int().openapi({ description: 'Units over all lines' }),
    lines: z.array(OrderLineSchema),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi('AdminOrder');

const ListQuery = z
  .object({
    status: z.enum(orderStatus).optional(),
    region: z.enum(REGION_CODES).optional(),
    cursor: z.string().max(512).optional().openapi({ description: 'Opaque; from `nextCursor` of the previous page' }),
    limit: z.coerce.number().int().min(1).max(100).default(24),
  })
  .strict();

const IdParam = z.object({ id: z.string().min(1).max(64).openapi({ example: 'ord_5x2m…' }) });

type AdminOrder = z.infer<typeof AdminOrderSchema>;
type OrderRow = typeof orders.$inferSelect;

// ---- reading ------------------------------------------------------------------

/** The admin view of orders, in the order given, with their lines and payment. */
async function adminViews(db: Database, rows: OrderRow[]): Promise<AdminOrder[]> {
  if (rows.length === 0) return [];
  const ids = rows.map((r) => r.id);
  const [lines, pays] = await Promise.all([
    db.select().from(orderLines).where(inArray(orderLines.orderId, ids)).orderBy(asc(orderLines.sku)),
    db.select().from(payments).where(inArray(payments.orderId, ids)).orderBy(asc(payments.createdAt)),
  ]);
  return rows.map((o) => {
    const money = (amount: number) => ({ amount, currency: o.currency });
    const own = lines.filter((l) => l.orderId === o.id);
    const pay = pays.filter((p) => p.orderId === o.id).at(-1);
    return {
      id: o.id,
      number: o.number,
      status: o.status,
      region: o.regionCode as RegionCode,
      email: o.email,
      checkoutId: o.checkoutId,
      subtotal: money(o.subtotalAmount),
      shipping: money(o.shippingAmount),
      discount: money(o.discountAmount),
      tax: money(o.taxAmount),
      total: money(o.totalAmount),
      payment: pay ? { status: pay.status, provider: pay.provider, amount: { amount: pay.amount, currency: pay.currency } } : null,
      lineCount: own.length,
      units: own.reduce((n, l) => n + l.quantity, 0),
      lines: own.map((l) => orderLineView(l, o.currency)),
      createdAt: o.createdAt.toISOString(),
      updatedAt: o.updatedAt.toISOString(),
    };
  });
}

async function loadOrder(db: Database, id: string): Promise<OrderRow> {
  if (!ORDER_ID.test(id)) throw notFound('No such order.');
  const [row] = await origin(db.select().from(orders).where(eq(orders.id, id)));
  if (!row) throw notFound('No such order.');
  return row;
}

async function adminView(db: Database, id: string): Promise<AdminOrder> {
  const [row] = await origin(db.select().from(orders).where(eq(orders.id, id)));
  if (!row) throw notFound('No such order.');
  return (await origin(adminViews(db, [row])))[0]!;
}

// ---- helpers --------------------------------------------------------------------

/** Postgres failures become 503 (the operation may be retried as a whole). */
async function origin<T>(work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (err) {
    if (err instanceof ApiError) throw err;
    console.warn(JSON.stringify({ level: 'warn', msg: 'origin call failed', error: String(err).slice(0, 300) }));
    throw unavailable('The order database is unavailable; try again.');
  }
}

/** Redis failures become 503. */
async function cache<T>(work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (err) {
    console.warn(JSON.stringify({ level: 'warn', msg: 'redis call failed', error: String(err).slice(0, 300) }));
    throw unavailable('A dependency (Redis) is unavailable; try again.');
  }
}

/** Deletes the key only when it still holds `token` (the lock may have lapsed and passed on). */
const RELEASE_LOCK = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;

/**
 * Runs `work` holding the order's lock, so a cancel and a fulfill (or two
 * cancels) of one order never interleave. A second request waits for the
 * first, then sees its outcome (so a double-clicked cancel answers 200 twice).
 */
async function withOrderLock<T>(redis: Redis, orderId: string, work: () => Promise<T>): Promise<T> {
  const token = randomToken();
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    const got = await cache(redis.set(lockKey(orderId), token, { nx: true, px: LOCK_TTL_MS }));
    if (got) break;
    if (Date.now() > deadline) {
      throw new ApiError(409, 'conflict', 'Another change to this order is in progress; try again shortly.', undefined, { 'Retry-After': '5' });
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  try {
    return await work();
  } finally {
    await redis.eval(RELEASE_LOCK, [lockKey(orderId)], [token]).catch(() => {
      // The lock lapses by itself.
    });
  }
}

/**
 * Refuses while the order's checkout saga is still running: its payment may
 * not be captured yet, or its holds not yet committed to sold. (An order
 * whose checkout object holds nothing, e.g. written by hand, counts as done.)
 */
async function assertCheckoutSettled(env: Env, checkoutId: string): Promise<void> {
  let state: CheckoutState | null;
  try {
    state = await env.CHECKOUT.get(env.CHECKOUT.idFromName(checkoutId)).status();
  } catch (err) {
    console.warn(JSON.stringify({ level: 'warn', msg: 'checkout status unavailable', checkoutId, error: String(err).slice(0, 300) }));
    throw unavailable('The checkout service is unavailable; try again.');
  }
  if (state && state.status !== 'confirmed' && state.status !== 'failed') {
    throw new ApiError(409, 'checkout_in_progress', `The order's checkout is still ${state.status}; try again in a few seconds.`, undefined, { 'Retry-After': '5' });
  }
}

/** Puts an event on ORDER_EVENTS; best effort (order_events is the outbox). */
async function emit(env: Env, event: OrderEvent): Promise<void> {
  await env.ORDER_EVENTS.send(event).catch((err: unknown) => {
    console.warn(JSON.stringify({ level: 'warn', msg: 'order event not queued', type: event.type, orderId: event.orderId, error: String(err) }));
  });
}

// ---- restock ------------------------------------------------------------------------

/** One restock operation on one shard. */
export interface RestockStep {
  region: RegionCode;
  shard: number;
  variantId: string;
  quantity: number;
  opId: string;
}

/** What to give back where, fixed on the first cancel attempt. */
export interface RestockPlan {
  steps: RestockStep[];
  /** Units the shards did not count as sold when the plan was made (reported, never invented). */
  shortfall: { variantId: string; quantity: number }[];
}

/**
 * Which shards to move the order's units back on. The order row does not say
 * which shards sold them (the checkout's hold parts do), so the plan takes
 * them from the shards that count sold units of the variant: the order's
 * region first, home shard first, then the regions it may borrow from. What
 * the shards sold is interchangeable, so region-wide counts come out right.
 */
async function computePlan(env: Env, db: Database, order: OrderRow, lines: { variantId: string; quantity: number }[]): Promise<RestockPlan> {
  const region = order.regionCode as RegionCode;
  const ids = lines.map((l) => l.variantId);
  const configs = await loadStockConfig(db, region, ids, true);
  const levelsByRegion = new Map<RegionCode, Promise<StockLevel[][]>>();
  const levelsIn = (r: RegionCode) => {
    let p = levelsByRegion.get(r);
    if (!p) {
      p = Promise.all(Array.from({ length: SHARDS_PER_REGION }, (_, i) => shardStub(env, r, i).levels(ids) as Promise<StockLevel[]>));
      levelsByRegion.set(r, p);
    }
    return p;
  };
  const steps: RestockStep[] = [];
  const shortfall: RestockPlan['shortfall'] = [];
  for (const line of lines) {
    let remaining = line.quantity;
    const candidates = [region, ...(configs.get(line.variantId)?.borrowFrom ?? [])];
    for (const r of candidates) {
      if (remaining === 0) break;
      const perShard = await levelsIn(r);
      for (const shard of shardsOf(line.variantId, SHARDS_PER_REGION)) {
        const sold = perShard[shard]!.find((l) => l.variantId === line.variantId)?.sold ?? 0;
        const take = Math.min(remaining, sold);
        if (take <= 0) continue;
        // The op id names the shard; each shard keeps its own operation log.
        steps.push({ region: r, shard, variantId: line.variantId, quantity: take, opId: `${order.id}:${line.variantId}:${shard}` });
        remaining -= take;
        if (remaining === 0) break;
      }
    }
    if (remaining > 0) shortfall.push({ variantId: line.variantId, quantity: remaining });
  }
  return { steps, shortfall };
}

/** The order's restock plan: the one stored by an earlier attempt, else a new one, stored first-writer-wins. */
async function restockPlan(env: Env, db: Database, redis: Redis, order: OrderRow, lines: { variantId: string; quantity: number }[]): Promise<RestockPlan> {
  const stored = await cache(redis.get<RestockPlan>(planKey(order.id)));
  if (stored) return stored;
  let plan: RestockPlan;
  try {
    plan = await computePlan(env, db, order, lines);
  } catch (err) {
    console.warn(JSON.stringify({ level: 'warn', msg: 'restock plan failed', orderId: order.id, error: String(err).slice(0, 300) }));
    throw unavailable('Inventory is unavailable; try the cancel again.');
  }
  const set = await cache(redis.set(planKey(order.id), plan, { nx: true, ex: CANCEL_STATE_TTL_S }));
  if (set) return plan;
  return (await cache(redis.get<RestockPlan>(planKey(order.id)))) ?? plan;
}

/** Runs the plan; each step is idempotent by its op id. Returns the units a shard refused. */
async function runPlan(env: Env, orderId: string, plan: RestockPlan): Promise<RestockPlan['shortfall']> {
  let results: { step: RestockStep; ok: boolean; reason?: string }[];
  try {
    results = await Promise.all(
      plan.steps.map(async (step) => {
        const r = await shardStub(env, step.region, step.shard).restock(step.opId, step.variantId, step.quantity);
        return { step, ok: r.ok, ...(r.ok ? {} : { reason: r.reason }) };
      }),
    );
  } catch (err) {
    console.warn(JSON.stringify({ level: 'warn', msg: 'restock failed', orderId, error: String(err).slice(0, 300) }));
    throw unavailable('Inventory is unavailable; try the cancel again (the refund will not be repeated).');
  }
  const refused = results.filter((r) => !r.ok);
  for (const r of refused) {
    // The shard no longer counts those units as sold (e.g. a reconcile repair
    // gave them back first). Cancelling still goes ahead: the money is back
    // with the buyer; the drift shows in POST /admin/api/inventory/reconcile.
    console.warn(JSON.stringify({ level: 'warn', msg: 'restock refused', orderId, ...r.step, reason: r.reason }));
  }
  return refused.map((r) => ({ variantId: r.step.variantId, quantity: r.step.quantity }));
}

// ---- cancel and fulfill -----------------------------------------------------------------

async function cancelOrder(c: Context<AppEnv>, orderId: string): Promise<AdminOrder> {
  const db = c.var.services.db.primary;
  const redis = c.var.services.redis;
  const env = c.env;
  const order = await loadOrder(db, orderId);
  return withOrderLock(redis, orderId, async () => {
    const current = await loadOrder(db, orderId);
    if (current.status === 'cancelled') {
      await redis.del(cancelKey(orderId)).catch(() => {});
      return adminView(db, orderId);
    }
    if (current.status === 'fulfilled') {
      throw new ApiError(409, 'invalid_state', 'A fulfilled order cannot be cancelled.', { status: current.status });
    }
    await assertCheckoutSettled(env, order.checkoutId);

    // From here on the buyer's money may move: a fulfill must wait for this cancel to finish.
    await cache(redis.set(cancelKey(orderId), { at: new Date().toISOString(), by: c.var.admin.tokenId }, { ex: CANCEL_STATE_TTL_S }));

    // 1. Refund (or void an authorisation that was never captured).
    const [payment] = await origin(db.select().from(payments).where(eq(payments.orderId, orderId)).orderBy(desc(payments.createdAt)).limit(1));
    let paymentStatus: 'refunded' | 'voided' | undefined;
    if (payment?.providerRef && (payment.status === 'captured' || payment.status === 'refunded' || payment.status === 'authorized')) {
      const provider = paymentProvider(env);
      const op = payment.status === 'authorized' ? 'void' : 'refund';
      const outcome = op === 'void' ? await provider.void(payment.providerRef, `${orderId}:void`) : await provider.refund(payment.providerRef, `${orderId}:refund`);
      if (outcome.kind === 'retry') {
        // Unknown whether the provider acted: the cancel marker stays, so the
        // order cannot be fulfilled until this cancel is retried to the end.
        throw unavailable(`The payment provider is unavailable (${outcome.detail}); retry the cancel.`);
      }
      if (outcome.kind === 'failed') {
        await redis.del(cancelKey(orderId)).catch(() => {});
        throw new ApiError(409, 'invalid_state', `The payment provider refused the ${op}.`, { provider: outcome.detail });
      }
      paymentStatus = op === 'void' ? 'voided' : 'refunded';
    }

    // 2. Restock.
    const lines = await origin(db.select({ variantId: orderLines.variantId, quantity: orderLines.quantity }).from(orderLines).where(eq(orderLines.orderId, orderId)));
    const plan = await restockPlan(env, db, redis, current, lines);
    const refused = await runPlan(env, orderId, plan);

    // 3. One transaction: order, payment, history.
    const cancelled = await origin(
      db.transaction(async (tx) => {
        const now = new Date();
        const updated = await tx
          .update(orders)
          .set({ status: 'cancelled', updatedAt: now })
          .where(and(eq(orders.id, orderId), eq(orders.status, 'confirmed')))
          .returning({ id: orders.id });
        if (updated.length === 0) return false;
        if (payment && paymentStatus) {
          await tx
            .update(payments)
            .set({ status: paymentStatus, updatedAt: now })
            .where(and(eq(payments.id, payment.id), inArray(payments.status, ['authorized', 'captured'])));
        }
        await tx.insert(orderEvents).values({
          id: newId('oev'),
          orderId,
          type: 'order.cancelled',
          payload: {
            by: c.var.admin.tokenId,
            payment: paymentStatus ?? null,
            restocked: plan.steps.map(({ region, shard, variantId, quantity }) => ({ region, shard, variantId, quantity })),
            shortfall: [...plan.shortfall, ...refused],
          },
        });
        return true;
      }),
    );
    await redis.del(cancelKey(orderId)).catch(() => {});
    const view = await adminView(db, orderId);
    if (!cancelled && view.status === 'fulfilled') {
      // Cannot happen while fulfill honours the lock and the cancel marker.
      throw new ApiError(409, 'invalid_state', 'The order was fulfilled meanwhile.', { status: view.status });
    }
    if (cancelled) {
      await emit(env, {
        type: 'order.cancelled',
        orderId,
        at: new Date().toISOString(),
        data: { region: current.regionCode, variantIds: [...new Set(plan.steps.map((s) => s.variantId))], payment: paymentStatus ?? null },
      });
    }
    return view;
  });
}

async function fulfillOrder(c: Context<AppEnv>, orderId: string): Promise<AdminOrder> {
  const db = c.var.services.db.primary;
  const redis = c.var.services.redis;
  const order = await loadOrder(db, orderId);
  return withOrderLock(redis, orderId, async () => {
    const current = await loadOrder(db, orderId);
    if (current.status === 'fulfilled') return adminView(db, orderId);
    if (current.status === 'cancelled') throw new ApiError(409, 'invalid_state', 'A cancelled order cannot be fulfilled.', { status: current.status });
    if (await cache(redis.exists(cancelKey(orderId)))) {
      throw new ApiError(409, 'cancel_pending', 'A cancel of this order started and did not finish; retry the cancel.');
    }
    await assertCheckoutSettled(c.env, order.checkoutId);
    const fulfilled = await origin(
      db.transaction(async (tx) => {
        const updated = await tx
          .update(orders)
          .set({ status: 'fulfilled', updatedAt: new Date() })
          .where(and(eq(orders.id, orderId), eq(orders.status, 'confirmed')))
          .returning({ id: orders.id });
        if (updated.length === 0) return false;
        await tx.insert(orderEvents).values({ id: newId('oev'), orderId, type: 'order.fulfilled', payload: { by: c.var.admin.tokenId } });
        return true;
      }),
    );
    const view = await adminView(db, orderId);
    if (!fulfilled && view.status === 'cancelled') throw new ApiError(409, 'invalid_state', 'A cancelled order cannot be fulfilled.', { status: view.status });
    if (fulfilled) await emit(c.env, { type: 'order.fulfilled', orderId, at: new Date().toISOString(), data: { region: current.regionCode } });
    return view;
  });
}

// ---- routes -------------------------------------------------------------------------------

export const adminOrderRoutes = createRouter()
  .openapi(
    createRoute({
      method: 'get',
      path: '/orders',
      tags: ['Admin'],
      security,
      middleware: reader,
      summary: 'Lists orders, newest first, by status and region',
      request: { query: ListQuery },
      responses: {
        200: {
          description: 'A page of orders',
          content: { 'application/json': { schema: z.object({ items: z.array(AdminOrderSchema), nextCursor: z.string().nullable() }) } },
        },
        400: errorResponse('Invalid query or cursor'),
        401: errorResponse('No or bad admin token'),
        403: errorResponse('Role may not read orders'),
      },
    }),
    async (c) => {
      const { status, region, cursor, limit } = c.req.valid('query');
      const scope = `admin-orders:${status ?? ''}:${region ?? ''}`;
      const after = await readNewestFirstCursor(cursor, scope, signingSecrets(c.env));
      const db = c.var.services.db.primary;
      const conditions: (SQL | undefined)[] = [
        status ? eq(orders.status, status) : undefined,
        region ? eq(orders.regionCode, region) : undefined,
        olderThan(orders.createdAt, orders.id, after),
      ];
      const rows = await origin(
        db
          .select({ order: orders, key: cursorKey(orders.createdAt) })
          .from(orders)
          .where(and(...conditions))
          .orderBy(desc(orders.createdAt), desc(orders.id))
          .limit(limit + 1),
      );
      const page = rows.slice(0, limit);
      const last = page.at(-1);
      const nextCursor = await nextNewestFirstCursor(rows.length, limit, last && { t: last.key, id: last.order.id }, scope, c.env.SIGNING_SECRET);
      c.header('cache-control', 'private, no-store');
      return c.json({ items: await origin(adminViews(db, page.map((r) => r.order))), nextCursor }, 200);
    },
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/orders/{id}',
      tags: ['Admin'],
      security,
      middleware: reader,
      summary: 'One order as the merchant sees it',
      request: { params: IdParam },
      responses: {
        200: { description: 'The order', content: { 'application/json': { schema: AdminOrderSchema } } },
        404: errorResponse('Unknown order'),
      },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      const db = c.var.services.db.primary;
      await loadOrder(db, id);
      c.header('cache-control', 'private, no-store');
      return c.json(await adminView(db, id), 200);
    },
  )
  .openapi(
    createRoute({
      method: 'post',
      path: '/orders/{id}/cancel',
      tags: ['Admin'],
      security,
      middleware: writer,
      summary: 'Cancels a confirmed order: refunds the payment and restocks the units',
      description:
        'Refunds the captured payment (void if never captured), gives the sold units back to the inventory shards, then marks the order cancelled. ' +
        'Idempotent: cancelling a cancelled order answers 200 and refunds nothing twice; after a 503 retry the same request.',
      request: { params: IdParam },
      responses: {
        200: { description: 'The cancelled order', content: { 'application/json': { schema: AdminOrderSchema } } },
        401: errorResponse('No or bad admin token'),
        403: errorResponse('Role may not change orders'),
        404: errorResponse('Unknown order'),
        409: errorResponse('Fulfilled order (`invalid_state`), checkout still running (`checkout_in_progress`), or another change in progress (`conflict`)'),
        503: errorResponse('Payment provider, inventory, Redis or Postgres unavailable; nothing was done twice, retry'),
      },
    }),
    async (c) => c.json(await cancelOrder(c, c.req.valid('param').id), 200),
  )
  .openapi(
    createRoute({
      method: 'post',
      path: '/orders/{id}/fulfill',
      tags: ['Admin'],
      security,
      middleware: writer,
      summary: 'Marks a confirmed order fulfilled (shipped)',
      description: 'Idempotent: fulfilling a fulfilled order answers 200.',
      request: { params: IdParam },
      responses: {
        200: { description: 'The fulfilled order', content: { 'application/json': { schema: AdminOrderSchema } } },
        401: errorResponse('No or bad admin token'),
        403: errorResponse('Role may not change orders'),
        404: errorResponse('Unknown order'),
        409: errorResponse('Cancelled order (`invalid_state`), a cancel that did not finish (`cancel_pending`), or checkout still running'),
        503: errorResponse('Redis or Postgres unavailable; retry'),
      },
    }),
    async (c) => c.json(await fulfillOrder(c, c.req.valid('param').id), 200),
  );
