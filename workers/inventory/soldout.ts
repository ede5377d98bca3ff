/**
 * Sold-out flags for listings. Listings are cached documents and may never
 * ask an inventory object per product, so the shards' news reaches them
 * through Redis: when a reservation finds a variant with nothing left in its
 * region, the variant is flagged in a sorted set `soldout:<region>` scored by
 * when the flag lapses. Listing answers overlay the flags with one Redis
 * call. A flag lives {@link SOLD_OUT_FLAG_SECONDS} unless shoppers keep
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
}

/** Clears flags (the merchant changed the stock). */
export async function clearSoldOut(redis: Redis, region: RegionCode, variantIds: string[]): Promise<void> {
  if (variantIds.length) await redis.zrem(key(region), ...variantIds);
}

/** Which of `variantIds` are flagged sold out now. */
export async function soldOutAmong(redis: Redis, region: RegionCode, variantIds: string[]): Promise<Set<string>> {
  if (variantIds.length === 0) return new Set();
  const scores = await redis.zmscore(key(region), variantIds);
  const now = Date.now();
  return new Set(variantIds.filter((_, i) => {
    const score = scores?.[i];
    return score !== null && score !== undefined && Number(score) > now;
  }));
}
