/**
 * Sold-out flags for listings. Listings are cached documents and may never
 * ask an inventory object per product, so the shards' news reaches them
 * through Redis: when a reservation finds a variant with nothing left in its
 * region, the variant is flagged in a sorted set `soldout:<region>` scored by
 * when the flag lapses. Listing answers overlay the flags with one Redis
 * call per isolate per second. A flag lives {@link SOLD_OUT_FLAG_SECONDS} unless shoppers keep
 * running into the empty shelf (each refusal renews it), and a stock change
 * by the merchant clears it at once: a listing shows a variant as available
 * at most that long after it really sold out, or after stock came back from
 * expired holds.
 */
import type { Redis } from '@upstash/redis/cloudflare';
import type { RegionCode } from '../../db/regions';

/** How long a sold-out flag holds without being renewed. */
export const SOLD_OUT_FLAG_SECONDS = 60;

const key = (region: RegionCode) => `soldout:${region}`;

/** Flags variants as sold out in a region. */
export async function markSoldOut(redis: Redis, region: RegionCode, variantIds: string[]): Promise<void> {
  if (variantIds.length === 0) return;
  const until = Date.now() + SOLD_OUT_FLAG_SECONDS * 1000;
  const [first, ...rest] = variantIds.map((member) => ({ score: until, member }));
  const pipe = redis.pipeline();
  pipe.zadd(key(region), first!, ...rest);
  // Old entries would otherwise pile up in the set.
  pipe.zremrangebyscore(key(region), 0, Date.now());
  await pipe.exec();
  forget(region);
}

/** Clears flags (the merchant changed the stock). */
export async function clearSoldOut(redis: Redis, region: RegionCode, variantIds: string[]): Promise<void> {
  if (variantIds.length) await redis.zrem(key(region), ...variantIds);
  forget(region);
}

const memo = new Map<RegionCode, { flagged: Map<string, number>; until: number }>();

/**
 * Which of `variantIds` are flagged sold out now. The region's whole set of
 * live flags is read at most once a second per isolate (it is small: only
 * variants that sold out within the last minute), so a busy listing costs
 * one Redis call per second, not one per view.
 */
export async function soldOutAmong(redis: Redis, region: RegionCode, variantIds: string[]): Promise<Set<string>> {
  if (variantIds.length === 0) return new Set();
  const now = Date.now();
  let entry = memo.get(region);
  if (!entry || entry.until <= now) {
    const raw = await redis.zrange<string[]>(key(region), now, '+inf', { byScore: true, withScores: true });
    const flagged = new Map<string, number>();
    for (let i = 0; i + 1 < raw.length; i += 2) flagged.set(String(raw[i]), Number(raw[i + 1]));
    entry = { flagged, until: now + SOLD_OUT_MEMO_MS };
    memo.set(region, entry);
  }
  const flags = entry.flagged;
  return new Set(variantIds.filter((id) => (flags.get(id) ?? 0) > now));
}

/** How long an isolate reuses the flags it read. */
const SOLD_OUT_MEMO_MS = 1_000;

/** Forgets what this isolate read, so its own writes show at once. */
function forget(region: RegionCode): void {
  memo.delete(region);
}
