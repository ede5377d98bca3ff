/**
 * Refused attempts of a sale, by reason, for its report: one Redis hash
 * `sale:<id>:rejected` counting each refusal the Worker answers before a
 * queue object is reached (rate limited, Turnstile failed, a forged or
 * foreign ticket, too early, too late). Counting is best effort: a refusal
 * is never delayed or failed by its own bookkeeping, so a Redis outage
 * leaves gaps in the count, never in the sale. Failed checkouts are counted
 * by the queue objects themselves (durable-objects/sale-queue.ts).
 */
import type { Redis } from '@upstash/redis/cloudflare';

/** Why the Worker refused a shopper during a sale. */
export type SaleRejection = 'rate_limited' | 'turnstile_failed' | 'invalid_ticket' | 'not_started' | 'ended' | 'not_in_region';

const key = (saleId: string) => `sale:${saleId}:rejected`;
/** Counters outlive the sale by a month: long enough for its post-mortem. */
const TTL_SECONDS = 30 * 86_400;

/** Counts one refusal. Never throws. */
export async function countRejection(redis: Redis, saleId: string, reason: SaleRejection): Promise<void> {
  try {
    const pipe = redis.pipeline();
    pipe.hincrby(key(saleId), reason, 1);
    pipe.expire(key(saleId), TTL_SECONDS);
    await pipe.exec();
  } catch (err) {
    console.warn(JSON.stringify({ level: 'warn', event: 'sale.rejection_uncounted', saleId, reason, error: String(err).slice(0, 200) }));
  }
}

/** The counts so far (empty when Redis cannot be asked: the report says what it knows). */
export async function saleRejections(redis: Redis, saleId: string): Promise<Record<string, number>> {
  try {
    const raw = (await redis.hgetall<Record<string, number | string>>(key(saleId))) ?? {};
    return Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, Number(v)]));
  } catch {
    return {};
  }
}
