/**
 * Outbound webhook events: the fan-out from an event to one
 * `webhook_deliveries` row per active subscription of its type (the outbox),
 * and one WEBHOOKS queue message per delivery.
 *
 * Producers:
 * - the ORDER_EVENTS consumer (../queue/order-events.ts), for `order.created`,
 *   `order.paid` (with `order.created`: the saga captures before it queues
 *   the order), `order.cancelled`, `order.fulfilled` and `inventory.low`;
 *   event ids are derived from the order (and variant), so the consumer's
 *   retries and duplicated messages fan out nothing twice;
 * - the admin product routes (`product.updated`), after the write commits.
 *
 * Nothing here sends HTTP: a subscriber, up or down, costs a producer two
 * small queries and a queue send, and checkout never waits for one.
 */
import { and, eq, inArray, sql } from 'drizzle-orm';
import type { Database } from '../../db/client';
import { orderLines, orders, payments, webhookDeliveries, webhookSubscriptions, type WebhookEventType } from '../../db/schema';
import type { RegionCode } from '../../db/regions';
import { regionLevels } from '../inventory/shards';
import { newId } from '../lib/ids';

/** The JSON body a subscriber receives. */
export interface WebhookEvent {
  id: string;
  type: WebhookEventType;
  createdAt: string;
  data: Record<string, unknown>;
}

/** The body of a WEBHOOKS message. */
export interface DeliveryMessage {
  deliveryId: string;
}

/** Narrows an unknown queue body to a {@link DeliveryMessage}. */
export function isDeliveryMessage(body: unknown): body is DeliveryMessage {
  return typeof body === 'object' && body !== null && typeof (body as { deliveryId?: unknown }).deliveryId === 'string';
}

/** Event types that have at least one active subscription (one query, so producers skip the rest when nobody listens). */
export async function subscribedTypes(db: Database): Promise<Set<string>> {
  const { rows } = await db.execute<{ type: string }>(sql`select distinct unnest(event_types) as type from webhook_subscriptions where active`);
  return new Set(rows.map((r) => r.type));
}

/**
 * Writes a delivery of `event` for every active subscription of its type
 * (`on conflict do nothing` on (subscription, event)) and returns the ids of
 * the deliveries of this event never attempted: the new ones, and any an
 * earlier fan-out wrote but could not queue.
 */
export async function recordWebhookEvent(db: Database, event: WebhookEvent): Promise<string[]> {
  const subs = await db
    .select({ id: webhookSubscriptions.id })
    .from(webhookSubscriptions)
    .where(and(eq(webhookSubscriptions.active, true), sql`${event.type} = any(${webhookSubscriptions.eventTypes})`));
  if (subs.length === 0) return [];
  await db
    .insert(webhookDeliveries)
    .values(subs.map((s) => ({ id: newId('whd'), subscriptionId: s.id, eventId: event.id, eventType: event.type, payload: { ...event } })))
    .onConflictDoNothing();
  const pending = await db
    .select({ id: webhookDeliveries.id })
    .from(webhookDeliveries)
    .where(and(eq(webhookDeliveries.eventId, event.id), eq(webhookDeliveries.status, 'pending'), eq(webhookDeliveries.attempts, 0)));
  return pending.map((p) => p.id);
}

/** One WEBHOOKS message per delivery (sendBatch takes at most 100). */
export async function enqueueDeliveries(env: Env, deliveryIds: string[], delaySeconds = 0): Promise<void> {
  for (let i = 0; i < deliveryIds.length; i += 100) {
    const chunk = deliveryIds.slice(i, i + 100).map((deliveryId): MessageSendRequest<DeliveryMessage> => ({ body: { deliveryId }, delaySeconds }));
    await env.WEBHOOKS.sendBatch(chunk);
  }
}

/** Records and queues `events`; throws if either fails (callers retry, or log). */
export async function emitWebhookEvents(env: Env, db: Database, events: WebhookEvent[]): Promise<void> {
  const ids: string[] = [];
  for (const event of events) ids.push(...(await recordWebhookEvent(db, event)));
  await enqueueDeliveries(env, ids);
}

/**
 * `product.updated` for products the admin API just wrote. Best effort: the
 * product write has committed and stands; a failure here is logged.
 */
export async function emitProductUpdated(env: Env, db: Database, changes: { productId: string; slug: string; change: 'created' | 'updated' | 'archived' }[]): Promise<void> {
  try {
    if (!(await subscribedTypes(db)).has('product.updated')) return;
    const at = new Date().toISOString();
    await emitWebhookEvents(
      env,
      db,
      changes.map((c) => ({ id: newId('evt'), type: 'product.updated', createdAt: at, data: { productId: c.productId, slug: c.slug, change: c.change } })),
    );
  } catch (err) {
    console.error(JSON.stringify({ level: 'error', msg: 'product.updated webhook not recorded', products: changes.map((c) => c.productId), error: String(err).slice(0, 300) }));
  }
}

const ORDER_TYPES = ['order.created', 'order.cancelled', 'order.fulfilled'] as const;

/** Id of the webhook event `type` of `orderId` (one per order and type). */
export function orderEventId(orderId: string, type: string): string {
  return `evt_${orderId.slice(4)}_${type.replace('.', '_')}`;
}

/** Units below which an order's variant counts as low in its region. */
export function lowStockThreshold(env: Env): number {
  const n = Number(env.WEBHOOK_LOW_STOCK_THRESHOLD);
  return Number.isInteger(n) && n > 0 ? n : 5;
}

/**
 * The webhook events of an order event the ORDER_EVENTS consumer handled:
 * the event itself; with `order.created`, `order.paid` when the payment is
 * captured and `inventory.low` for each variant this order took from at or
 * above the threshold to below it. Throws when Postgres or the inventory is
 * down (the consumer retries; the event ids make the retry harmless).
 */
export async function emitOrderWebhooks(env: Env, db: Database, type: string, orderId: string, at: string): Promise<void> {
  if (!(ORDER_TYPES as readonly string[]).includes(type)) return;
  const wanted = await subscribedTypes(db);
  const low = type === 'order.created' && wanted.has('inventory.low');
  const paid = type === 'order.created' && wanted.has('order.paid');
  if (!wanted.has(type) && !low && !paid) return;

  const [order] = await db.select().from(orders).where(eq(orders.id, orderId));
  if (!order) return;
  const lines = await db.select().from(orderLines).where(eq(orderLines.orderId, orderId));
  const data = {
    order: {
      id: order.id,
      number: order.number,
      status: order.status,
      region: order.regionCode,
      email: order.email,
      total: { amount: order.totalAmount, currency: order.currency },
      lines: lines.map((l) => ({ variantId: l.variantId, sku: l.sku, title: l.title, quantity: l.quantity, unitPrice: { amount: l.unitAmount, currency: order.currency } })),
    },
  };
  const events: WebhookEvent[] = [];
  const event = (t: WebhookEventType, id: string, d: Record<string, unknown>) => events.push({ id, type: t, createdAt: at, data: d });
  if (wanted.has(type)) event(type as WebhookEventType, orderEventId(orderId, type), data);
  if (paid) {
    const [payment] = await db
      .select({ status: payments.status })
      .from(payments)
      .where(and(eq(payments.orderId, orderId), inArray(payments.status, ['captured', 'refunded'])));
    if (payment) event('order.paid', orderEventId(orderId, 'order.paid'), data);
  }
  if (low && lines.length) {
    const threshold = lowStockThreshold(env);
    const levels = await regionLevels(env, order.regionCode as RegionCode, lines.map((l) => l.variantId));
    for (const line of lines) {
      const level = levels.get(line.variantId);
      if (!level?.known) continue;
      // Crossed by this order: below now, not below before it took its units.
      if (level.available < threshold && level.available + line.quantity >= threshold) {
        event('inventory.low', `evt_low_${orderId.slice(4)}_${line.variantId.slice(line.variantId.indexOf('_') + 1)}`, {
          variantId: line.variantId,
          sku: line.sku,
          region: order.regionCode,
          available: level.available,
          threshold,
          orderId,
        });
      }
    }
  }
  await emitWebhookEvents(env, db, events);
}
