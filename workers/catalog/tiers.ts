/**
 * The catalog's tiered read path: Cache API (this location) -> a shared store
 * (Workers KV for catalog documents, Redis for search results) -> the origin,
 * filling each tier on the way back.
 *
 * Freshness is bounded, not hoped for:
 * - the Cache API copy lives `EDGE_TTL_SECONDS` (1 s), so an admin change is
 *   visible in every location's cache tier within a second of that location's
 *   store tier seeing it; writes also delete the entries they know of in the
 *   writing location, so there it is immediate;
 * - the store tier is kept fresh by the writers (product documents are
 *   republished, listing keys carry a version that writes bump), with a TTL as
 *   a safety net should a republish ever fail.
 *
 * - a document whose prices change by themselves (a price list starts or
 *   ends) names that instant (`validUntil`, epoch ms, see
 *   {@link ReadThroughOptions.validUntil}); every tier treats a copy at or
 *   past it as a miss, the Cache API never holds one past it, and the store
 *   tier's TTL is cut to it where the store allows (Redis; KV's minimum is
 *   60 s, so there the read-side check does it). Bound: 0 s after the switch
 *   by this isolate's clock, plus the skew between it and the database's.
 *
 * Concurrent misses are not coalesced across requests: workerd ties a
 * promise's I/O to the request that created it, and awaiting another
 * request's load risks a cancelled or hung request. A hot key's misses are
 * bounded instead by the 1 s edge copy (one KV read per key per second per
 * location) and by KV holding the document.
 */

/** Which tier answered. */
export type Tier = 'cache' | 'kv' | 'redis' | 'origin';

/** What every tier stores: the JSON body (null for "does not exist") and its ETag. */
export interface Stored<T> {
  etag: string;
  body: T | null;
}

/** A shared store tier (KV or Redis). */
export interface StoreTier {
  name: 'kv' | 'redis';
  get<T>(key: string): Promise<Stored<T> | null>;
  put<T>(key: string, value: Stored<T>, ttlSeconds: number): Promise<void>;
}

/** The result of a tiered read. */
export interface Served<T> extends Stored<T> {
  tier: Tier;
  /** Time spent obtaining the value, in milliseconds. */
  ms: number;
}

/** How long a location's Cache API copy lives. */
export const EDGE_TTL_SECONDS = 1;

const CACHE_ORIGIN = 'https://catalog-cache.pasar.internal/';

/** The Cache API request a key is stored under. */
export function cacheRequest(key: string): Request {
  return new Request(CACHE_ORIGIN + encodeURIComponent(key));
}

/** Weak ETag over the canonical JSON of a body. */
export async function etagOf(body: unknown): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(JSON.stringify(body)));
  const hex = [...new Uint8Array(digest).subarray(0, 12)].map((b) => b.toString(16).padStart(2, '0')).join('');
  return `W/"${hex}"`;
}

/** Workers KV as a store tier. */
export function kvStore(kv: KVNamespace): StoreTier {
  return {
    name: 'kv',
    get: <T>(key: string) => kv.get<Stored<T>>(key, { type: 'json' }),
    put: (key, value, ttlSeconds) => kv.put(key, JSON.stringify(value), { expirationTtl: Math.max(60, ttlSeconds) }),
  };
}

/** Options of {@link readThrough}. */
export interface ReadThroughOptions<T> {
  /** Key of this document; the same key names it in every tier. */
  key: string;
  store: StoreTier;
  /** How long the store tier keeps a filled copy. */
  storeTtlSeconds: number;
  /** Loads from the origin; null when the thing does not exist. */
  load: () => Promise<T | null>;
  /** Schedules work after the response (ctx.waitUntil). */
  waitUntil: (promise: Promise<unknown>) => void;
  /**
   * When a stored body stops being true by itself (epoch ms; null or
   * undefined: only a writer changes it). A copy at or past it is a miss in
   * every tier.
   */
  validUntil?: (body: T) => number | null | undefined;
}

/** Reads `key` through the tiers, filling the faster tiers on the way back. */
export async function readThrough<T>(opts: ReadThroughOptions<T>): Promise<Served<T>> {
  const started = performance.now();
  const elapsed = () => Math.round((performance.now() - started) * 100) / 100;
  const cache = caches.default;
  const request = cacheRequest(opts.key);

  /** Milliseconds `value` stays true (Infinity when no switch is known). */
  const lifeMs = (value: Stored<T>) => {
    const until = value.body === null ? null : opts.validUntil?.(value.body);
    return until === null || until === undefined ? Infinity : until - Date.now();
  };

  const cached = await cache.match(request);
  if (cached) {
    const value = await cached.json<Stored<T>>();
    if (lifeMs(value) > 0) return { ...value, tier: 'cache', ms: elapsed() };
  }

  const putCache = async (value: Stored<T>) => {
    // Whole seconds only, rounded down: a copy that would outlive its switch is not kept at all.
    const seconds = Math.min(EDGE_TTL_SECONDS, Math.floor(lifeMs(value) / 1000));
    if (seconds <= 0) {
      if (cached) await cache.delete(request);
      return;
    }
    await cache.put(
      request,
      new Response(JSON.stringify(value), {
        headers: { 'content-type': 'application/json', 'cache-control': `public, max-age=${seconds}` },
      }),
    );
  };

  let fromStore: Stored<T> | null = null;
  try {
    fromStore = await opts.store.get<T>(opts.key);
  } catch (err) {
    // The store being down must not take browsing down: go to the origin.
    console.warn(JSON.stringify({ level: 'warn', msg: `${opts.store.name} read failed`, key: opts.key, error: String(err) }));
  }
  if (fromStore && lifeMs(fromStore) <= 0) fromStore = null;
  if (fromStore) {
    opts.waitUntil(putCache(fromStore));
    return { ...fromStore, tier: opts.store.name, ms: elapsed() };
  }

  const body = await opts.load();
  const value: Stored<T> = { etag: await etagOf(body), body };
  // A miss ("does not exist") stays out of the shared store: a product created
  // a moment later must not be hidden behind it for the store's whole TTL.
  if (body !== null) {
    const life = lifeMs(value);
    const ttl = Number.isFinite(life) ? Math.max(1, Math.min(opts.storeTtlSeconds, Math.ceil(life / 1000))) : opts.storeTtlSeconds;
    opts.waitUntil(opts.store.put(opts.key, value, ttl).catch(() => {}));
  }
  opts.waitUntil(putCache(value));
  return { ...value, tier: 'origin', ms: elapsed() };
}

/** Removes `keys` from this location's Cache API (the writer's own location sees changes at once). */
export async function purgeLocal(keys: string[]): Promise<void> {
  await Promise.all(keys.map((k) => caches.default.delete(cacheRequest(k))));
}
