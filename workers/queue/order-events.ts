/**
 * Consumer of the `ORDER_EVENTS` queue: `order.created` (checkout saga),
 * `order.cancelled` and `order.fulfilled` (admin orders API).
 *
 * It also fans each of them out to the merchants' webhook subscriptions
 * (../webhooks/events.ts): a `webhook_deliveries` row per subscriber and a
 * message on WEBHOOKS each, never an HTTP call here. The fan-out runs for a
 * processed event and for a duplicate one (the first run may have failed
 * after the marker), and is idempotent by its event ids.
 *
 * For each event, once per order and event type:
 * - the catalog's availability is brought up to date: variants with nothing
 *   left in the order's region are flagged sold out, variants with stock again
 *   (a cancel restocked them) lose their flag (../inventory/soldout.ts);
 * - the buyer's notification is recorded: a row in `order_events`
 *   (`order.confirmation_sent`, `order.cancellation_sent`,
 *   `order.shipment_sent`) whose id is derived from the order and the event,
 *   so a redelivered or duplicated message finds it and does nothing twice.
 *   Locally "sending" the email is a structured log line;
 * - an analytics line is logged, and for `order.created` the order is
 *   counted in Analytics Engine (`order`), with the variants it sold out
 *   (`out_of_stock`, kind `sold_out`; ../lib/metrics.ts). Counted once: only
 *   by the delivery that wrote the notification marker.
 *
 * Failures: a message that is not an order event, or names an order that
 * does not exist, can never succeed: it is acknowledged and logged (never
 * retried). Anything else (Postgres, Redis or an inventory object down) is
 * retried with exponential backoff by `message.attempts`; a message that
 * keeps failing goes to the dead-letter queue after the consumer's
 * `max_retries` (wrangler.toml).
 */
import { eq } from 'drizzle-orm';
import { REGION_CODES, type RegionCode } from '../../db/regions';
import { orderEvents, orderLines, orders } from '../../db/schema';
import { regionLevels } from '../inventory/shards';
import { clearSoldOut, markSoldOut } from '../inventory/soldout';
import { countOrder, countOutOfStock } from '../lib/metrics';
import { createServices, type Services } from '../services';
import { emitOrderWebhooks } from '../webhooks/events';

/** The body every producer puts on `ORDER_EVENTS`. */
export interface OrderEvent {
  type: string;
  orderId: string;
  at: string;
  data?: Record<string, unknown>;
}

/** Narrows an unknown queue body to an {@link OrderEvent}. */
export function isOrderEvent(body: unknown): body is OrderEvent {
  if (typeof body !== 'object' || body === null) return false;
  const b = body as Record<string, unknown>;
  return typeof b.type === 'string' && /^order\.[a-z_]+$/.test(b.type) && typeof b.orderId === 'string' && typeof b.at === 'string';
}

/** Event types with a handler, and the notification each records. */
export const HANDLED = {
  'order.created': { record: 'order.confirmation_sent', template: 'order_confirmation', suffix: 'confirmation', refreshStock: true },
  'order.cancelled': { record: 'order.cancellation_sent', template: 'order_cancelled', suffix: 'cancellation', refreshStock: true },
  'order.fulfilled': { record: 'order.shipment_sent', template: 'order_shipped', suffix: 'shipment', refreshStock: false },
} as const;
type HandledType = keyof typeof HANDLED;

const ORDER_ID = /^ord_[0-9a-z]{26}$/;

/** Id of the `order_events` row recording that `type` was handled for `orderId`: one per pair. */
export function processedMarkerId(type: HandledType, orderId: string): string {
  return `oev_${orderId.slice(4)}_${HANDLED[type].suffix}`;
}

/** Delay before redelivering a message that failed on its `attempts`-th delivery: 5 s doubling, capped at 5 minutes. */
export function retryDelaySeconds(attempts: number): number {
  return Math.min(300, 5 * 2 ** Math.max(0, attempts - 1));
}

/** What handling one message came to. */
export type Outcome = 'processed' | 'duplicate' | 'ignored' | 'poison' | 'retry';

const log = (level: 'info' | 'warn' | 'error', fields: Record<string, unknown>) => {
  const line = JSON.stringify({ level, ...fields });
  if (level === 'info') console.log(line);
  else if (level === 'warn') console.warn(line);
  else console.error(line);
};

/** `s***@example.com`: enough to tell support which mailbox, not enough to harvest. */
function maskEmail(email: string): string {
  const at = email.indexOf('@');
  return at <= 0 ? '***' : `${email[0]}***${email.slice(at)}`;
}

/** Flags sold-out variants and clears flags of variants with stock, in the order's region. */
async function refreshAvailability(env: Env, services: Services, region: RegionCode, variantIds: string[]): Promise<{ soldOut: string[]; available: string[] }> {
  const levels = await regionLevels(env, region, variantIds);
  const soldOut: string[] = [];
  const available: string[] = [];
  for (const [id, level] of levels) {
    if (!level.known) continue;
    (level.available > 0 ? available : soldOut).push(id);
  }
  await markSoldOut(services.redis, region, soldOut);
  await clearSoldOut(services.redis, region, available);
  return { soldOut, available };
}

/** Handles one well-formed event of a handled type; throws when worth retrying. */
async function processEvent(env: Env, services: Services, messageId: string, event: OrderEvent & { type: HandledType }): Promise<Outcome> {
  const db = services.db.primary;
  const handler = HANDLED[event.type];
  const markerId = processedMarkerId(event.type, event.orderId);
  const [done] = await db.select({ id: orderEvents.id }).from(orderEvents).where(eq(orderEvents.id, markerId));
  if (done) return 'duplicate';
  const [order] = await db.select().from(orders).where(eq(orders.id, event.orderId));
  if (!order) return 'poison';
  const lines = await db.select().from(orderLines).where(eq(orderLines.orderId, order.id));
  const region = order.regionCode as RegionCode;
  const stock = handler.refreshStock && REGION_CODES.includes(region) && lines.length ? await refreshAvailability(env, services, region, lines.map((l) => l.variantId)) : undefined;

  // Deliveries are not ordered: a confirmation that arrives after the order
  // was cancelled would only confuse the buyer, so it is recorded as skipped.
  const suppressed = event.type === 'order.created' && order.status === 'cancelled';

  // The notification is recorded first-writer-wins: of two deliveries racing
  // here, one inserts and "sends"; the other finds the row and stops.
  const inserted = await db
    .insert(orderEvents)
    .values({
      id: markerId,
      orderId: order.id,
      type: handler.record,
      payload: { messageId, event: event.type, template: handler.template, ...(suppressed ? { suppressed: 'order already cancelled' } : {}) },
    })
    .onConflictDoNothing()
    .returning({ id: orderEvents.id });
  if (inserted.length === 0) return 'duplicate';

  log('info', {
    msg: suppressed ? 'email suppressed' : 'email sent',
    template: handler.template,
    to: maskEmail(order.email),
    orderId: order.id,
    number: order.number,
    messageId,
  });
  log('info', {
    msg: 'analytics',
    event: event.type,
    orderId: order.id,
    region,
    status: order.status,
    total: { amount: order.totalAmount, currency: order.currency },
    lines: lines.length,
    units: lines.reduce((n, l) => n + l.quantity, 0),
    ...(stock ? { soldOut: stock.soldOut.length, restockedOrAvailable: stock.available.length } : {}),
    at: event.at,
  });
  if (event.type === 'order.created') {
    countOrder(env, {
      region,
      currency: order.currency,
      totalAmount: Number(order.totalAmount),
      units: lines.reduce((n, l) => n + l.quantity, 0),
      lines: lines.length,
      status: order.status,
    });
    if (stock?.soldOut.length) countOutOfStock(env, { region, kind: 'sold_out', source: 'order_events', variants: stock.soldOut.map((variantId) => ({ variantId })) });
  }
  return 'processed';
}

/** Handles one message and acknowledges or retries it. */
async function handleMessage(env: Env, services: Services, queue: string, message: Message<unknown>): Promise<Outcome> {
  const body = message.body;
  if (!isOrderEvent(body) || !ORDER_ID.test(body.orderId)) {
    log('warn', { queue, messageId: message.id, msg: 'dropping malformed order event', body: JSON.stringify(body ?? null).slice(0, 300) });
    message.ack();
    return 'poison';
  }
  if (!(body.type in HANDLED)) {
    log('info', { queue, messageId: message.id, msg: 'no handler for order event', type: body.type, orderId: body.orderId });
    message.ack();
    return 'ignored';
  }
  try {
    const outcome = await processEvent(env, services, message.id, body as OrderEvent & { type: HandledType });
    if (outcome === 'processed' || outcome === 'duplicate') await emitOrderWebhooks(env, services.db.primary, body.type, body.orderId, body.at);
    if (outcome === 'poison') log('warn', { queue, messageId: message.id, msg: 'dropping event of unknown order', type: body.type, orderId: body.orderId });
    else log('info', { queue, messageId: message.id, msg: `order event ${outcome}`, type: body.type, orderId: body.orderId, attempts: message.attempts });
    message.ack();
    return outcome;
  } catch (err) {
    const delaySeconds = retryDelaySeconds(message.attempts);
    log('error', { queue, messageId: message.id, msg: 'order event failed; retrying', type: body.type, orderId: body.orderId, attempts: message.attempts, delaySeconds, error: String(err).slice(0, 300) });
    message.retry({ delaySeconds });
    return 'retry';
  }
}

/** `queue()` handler of the Worker. */
export async function handleOrderEvents(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  const services = createServices(env);
  try {
    await Promise.all(batch.messages.map((message) => handleMessage(env, services, batch.queue, message)));
  } finally {
    await services.close().catch(() => {});
  }
}
