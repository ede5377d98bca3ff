/**
 * Outbound webhook delivery: one HTTP attempt of one `webhook_deliveries`
 * row, and the WEBHOOKS queue consumer that drives the attempts.
 *
 * The row is the truth, the message only a wake-up call:
 * - an attempt first claims the row with one conditional UPDATE (pending,
 *   due, and then leased until the call's timeout has passed): of two copies
 *   of a message, one sends and the other finds the lease and waits; a
 *   delivered or failed row is never sent again, whatever the queue does;
 * - every attempt is a `webhook_attempts` row (UNIQUE (delivery, attempt));
 * - 2xx: `delivered`. Anything else (other status, redirect, network error,
 *   timeout): retried after 30 s doubling (`WEBHOOK_RETRY_BASE_SECONDS`),
 *   with up to 20 % jitter, at most 12 h a step (the Queues maximum), until
 *   24 h after the series' first attempt; the last attempt falls on the
 *   24 h mark, and a delivery still failing then is `failed`. A replay from
 *   the admin API starts a new series of 24 h.
 *
 * The body is `{ id, type, createdAt, data }`, signed like inbound
 * payment webhooks: `x-pasar-signature: t=<unix>,v1=<hex HMAC-SHA256 of
 * "<t>.<body>">` (../payments/signature.ts), a fresh `t` per attempt.
 * Redirects are not followed (a subscriber cannot bounce a signed request
 * elsewhere).
 */
import { and, eq, lte, sql } from 'drizzle-orm';
import type { Database } from '../../db/client';
import { webhookAttempts, webhookDeliveries, webhookSubscriptions } from '../../db/schema';
import { newId } from '../lib/ids';
import { signPayload } from '../payments/signature';
import { createServices } from '../services';
import { isDeliveryMessage } from './events';

/** The longest delay Queues accepts for a message, in seconds (12 h). */
export const MAX_DELAY_SECONDS = 12 * 60 * 60;
/** How long a delivery keeps being retried after the first attempt of a series. */
export const RETRY_WINDOW_MS = 24 * 60 * 60 * 1000;

export const EVENT_HEADER = 'x-pasar-event';
export const DELIVERY_HEADER = 'x-pasar-delivery';
export const SIGNATURE_HEADER = 'x-pasar-signature';

const positive = (value: string | undefined, fallback: number) => {
  const n = Number(value);
  return value !== undefined && value !== '' && Number.isFinite(n) && n >= 0 ? n : fallback;
};

/** Seconds before attempt `attempt + 1`, after `attempt` failed: base doubling, at most 12 h, less up to 20 % jitter. */
export function backoffSeconds(env: Env, attempt: number, random: () => number = Math.random): number {
  const base = positive(env.WEBHOOK_RETRY_BASE_SECONDS, 30);
  const raw = Math.min(MAX_DELAY_SECONDS, base * 2 ** Math.max(0, attempt - 1));
  return Math.floor(raw * (1 - 0.2 * random()));
}

/** What one call of {@link attemptDelivery} came to. */
export type AttemptOutcome =
  /** Sent and acknowledged with a 2xx (now, or by an earlier attempt). */
  | { kind: 'delivered'; attempt?: number; statusCode?: number }
  /** Gave up (now, or earlier), or the delivery or its subscription is gone or inactive. */
  | { kind: 'failed' | 'gone' }
  /** Try again in `delaySeconds`: this attempt failed, or the delivery is not due (another copy holds the lease). */
  | { kind: 'retry'; delaySeconds: number; attempt?: number; statusCode?: number | null; error?: string };

/**
 * Makes the next attempt of delivery `id` if it is pending and due at `now`.
 * Never throws for the subscriber's failures; throws when Postgres is down.
 */
export async function attemptDelivery(env: Env, db: Database, id: string, now: Date = new Date()): Promise<AttemptOutcome> {
  const timeoutMs = positive(env.WEBHOOK_TIMEOUT_MS, 10_000);
  const lease = new Date(now.getTime() + timeoutMs + 5_000);
  const [claimed] = await db
    .update(webhookDeliveries)
    .set({
      attempts: sql`${webhookDeliveries.attempts} + 1`,
      nextAttemptAt: lease,
      retryUntil: sql`coalesce(${webhookDeliveries.retryUntil}, ${new Date(now.getTime() + RETRY_WINDOW_MS).toISOString()}::timestamptz)`,
      updatedAt: now,
    })
    .where(and(eq(webhookDeliveries.id, id), eq(webhookDeliveries.status, 'pending'), lte(webhookDeliveries.nextAttemptAt, now)))
    .returning();
  if (!claimed) {
    const [row] = await db.select().from(webhookDeliveries).where(eq(webhookDeliveries.id, id));
    if (!row) return { kind: 'gone' };
    if (row.status !== 'pending') return { kind: row.status };
    return { kind: 'retry', delaySeconds: Math.min(MAX_DELAY_SECONDS, Math.max(1, Math.ceil((row.nextAttemptAt.getTime() - now.getTime()) / 1000))) };
  }
  const attempt = claimed.attempts;
  const [sub] = await db.select().from(webhookSubscriptions).where(eq(webhookSubscriptions.id, claimed.subscriptionId));
  if (!sub?.active) {
    // Switched off after the event: nothing is sent; the delivery ends.
    await db
      .update(webhookDeliveries)
      .set({ status: 'failed', attempts: attempt - 1, lastError: 'subscription inactive', updatedAt: now })
      .where(eq(webhookDeliveries.id, id));
    return { kind: 'gone' };
  }

  const body = JSON.stringify(claimed.payload);
  const started = Date.now();
  let statusCode: number | null = null;
  let error: string | null = null;
  try {
    const res = await fetch(sub.url, {
      method: 'POST',
      redirect: 'manual',
      signal: AbortSignal.timeout(timeoutMs),
      headers: {
        'content-type': 'application/json',
        'user-agent': 'Pasar-Webhooks/1',
        [EVENT_HEADER]: claimed.eventType,
        [DELIVERY_HEADER]: claimed.id,
        [SIGNATURE_HEADER]: await signPayload(sub.secret, Math.floor(now.getTime() / 1000), body),
      },
      body,
    });
    statusCode = res.status;
    const text = await res.text().catch(() => '');
    if (res.status < 200 || res.status > 299) error = `HTTP ${res.status}${text ? `: ${text.slice(0, 200)}` : ''}`;
  } catch (err) {
    error = err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError') ? `timed out after ${timeoutMs} ms` : String(err).slice(0, 300);
  }
  const durationMs = Math.max(0, Date.now() - started);
  const delivered = error === null;
  const retryUntil = claimed.retryUntil!.getTime();
  const wait = backoffSeconds(env, attempt);
  // The last attempt of a series falls on the 24 h mark, not past it.
  const nextAt = Math.min(now.getTime() + wait * 1000, retryUntil);
  const giveUp = !delivered && now.getTime() >= retryUntil;

  const recorded = db.transaction(async (tx) => {
    await tx.insert(webhookAttempts).values({ id: newId('wha'), deliveryId: id, attempt, at: now, statusCode, error, durationMs });
    await tx
      .update(webhookDeliveries)
      .set({
        status: delivered ? 'delivered' : giveUp ? 'failed' : 'pending',
        deliveredAt: delivered ? new Date() : null,
        nextAttemptAt: new Date(delivered || giveUp ? now.getTime() : nextAt),
        lastStatusCode: statusCode,
        lastError: error,
        updatedAt: new Date(),
      })
      .where(eq(webhookDeliveries.id, id));
  });
  try {
    await recorded;
  } catch (err) {
    // The subscription (and with it the delivery) was deleted mid-attempt: nothing left to record.
    const [still] = await db.select({ id: webhookDeliveries.id }).from(webhookDeliveries).where(eq(webhookDeliveries.id, id));
    if (!still) return { kind: 'gone' };
    throw err;
  }
  console.log(JSON.stringify({ level: delivered ? 'info' : 'warn', msg: 'webhook attempt', deliveryId: id, subscriptionId: sub.id, type: claimed.eventType, attempt, statusCode, error, durationMs }));
  if (delivered) return { kind: 'delivered', attempt, statusCode: statusCode! };
  if (giveUp) return { kind: 'failed' };
  return { kind: 'retry', delaySeconds: Math.max(0, Math.ceil((nextAt - now.getTime()) / 1000)), attempt, statusCode, error: error! };
}

/** `queue()` handler for WEBHOOKS: one attempt per message, retried by the queue with the backoff. */
export async function handleWebhookDeliveries(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  const services = createServices(env);
  try {
    await Promise.all(
      batch.messages.map(async (message) => {
        if (!isDeliveryMessage(message.body)) {
          console.warn(JSON.stringify({ level: 'warn', msg: 'dropping malformed webhook message', queue: batch.queue, messageId: message.id }));
          message.ack();
          return;
        }
        try {
          const outcome = await attemptDelivery(env, services.db.primary, message.body.deliveryId);
          if (outcome.kind === 'retry') message.retry({ delaySeconds: outcome.delaySeconds });
          else message.ack();
        } catch (err) {
          // Postgres away: nothing was sent, or the attempt's record is lost; try again soon.
          console.error(JSON.stringify({ level: 'error', msg: 'webhook delivery failed; retrying', deliveryId: message.body.deliveryId, error: String(err).slice(0, 300) }));
          message.retry({ delaySeconds: Math.min(300, 5 * 2 ** Math.min(6, message.attempts)) });
        }
      }),
    );
  } finally {
    await services.close().catch(() => {});
  }
}
