/**
 * The catalog scenarios and the request lists they load, drawn from the
 * deterministic seed catalog (db/seed.ts): many products, categories, search
 * words and all seven regions, never one URL hammered alone.
 *
 * Three Workers serve them (see bench/run.ts):
 * - `ceiling`: bench/ceiling-worker.js, the upper bound;
 * - `edge`: the store with the Cache API on, as deployed;
 * - `nocache`: the store with the Cache API off, so every read reaches the
 *   store tier (KV/Redis) or the origin. Its scenarios use disjoint request
 *   sets, so one scenario's fills never turn into another's hits.
 */
import { REGION_CODES } from '../../db/regions';
import { buildSeed } from '../../db/seed';
import type { CartSpec } from './cart';
import type { FlashSpec } from './flash';

/** One request: a path and the `x-region` header ('' for none); GET unless `method` says otherwise. */
export interface RequestLine {
  path: string;
  region: string;
  method?: 'GET' | 'POST';
  /** A JSON body (sent as application/json), for POSTs that need one. */
  body?: string;
}

/**
 * `flash`: bench/flash-worker.js with the store beside it (see ./flash.ts);
 * `baseline`: the plain Node.js server a user would otherwise pick
 * (bench/baseline/server.ts).
 */
export type Target = 'ceiling' | 'edge' | 'nocache' | 'flash' | 'baseline';

export interface Scenario {
  name: string;
  /** What it measures, one line (README and report). */
  title: string;
  target: Target;
  /** random: any line, any time; walk: each line once, in order (misses). */
  mode: 'random' | 'walk';
  measure: RequestLine[];
  /** Requests for the warm-up run; the measured list when absent. */
  warmup?: RequestLine[];
  /**
   * Requested twice before the warm-up (see bench/run.ts): fills KV and the
   * inventory objects, so a short warm-up is not spent on first loads.
   */
  prefill?: RequestLine[];
  /** The tier a request should be answered from (for the report). */
  expect: string;
  /**
   * Origin scenarios run with fewer connections (BENCH_ORIGIN_CONNECTIONS):
   * each in-flight request holds one or more Postgres connections of its
   * own, and the server's max_connections (100 by default) is shared.
   */
  origin?: boolean;
  /** No warm-up run (a sale starts cold, and a warm-up would sell its stock). */
  noWarmup?: boolean;
  /** The measured run lasts at least this long, whatever BENCH_DURATION says. */
  minDurationSeconds?: number;
  /** The status every answer should have when it is not 2xx, e.g. 401 for a login with a wrong password: counted as an outcome, not an error. */
  expectStatus?: 401;
  /** wrk connections for this scenario, whatever BENCH_CONNECTIONS says: a CPU-bound route queues rather than runs faster with more. */
  connections?: number;
  /** Report the Worker's CPU time per request (workerd's CPU over requests served): for CPU-bound routes. */
  cpuPerRequest?: boolean;
  /** A flash-sale scenario: set up through the admin API before, checked after (./flash.ts). 409 is an outcome there, not an error. */
  flash?: FlashSpec;
  /** `checkout-sale`: not a wrk run; the checkout flash sale of ./checkout.ts, on the store. */
  checkout?: boolean;
  /** Cart scenarios: carts made on the target first, the request lists built from their ids (./cart.ts). */
  carts?: CartSpec;
  /** `flash-queue*`: not a wrk run; a sale through its queue on the store (./flash-queue.ts), with this many queue objects. */
  queue?: { shards: number };
}

/** Everything the lists are made from. */
interface Catalog {
  /** Every (active product, region it is sold in), products in seed order, regions inner. */
  productPairs: RequestLine[];
  categorySlugs: string[];
  /** Distinct search phrases from product titles (word pairs), in seed order. */
  phrases: string[];
  /** The most common title words (single-word searches that match many products). */
  commonWords: string[];
}

/** Lists drawn from the seed catalog (built once: the seed is deterministic). */
export function loadCatalog(): Catalog {
  const data = buildSeed();
  const activeVariants = new Map<string, string>(); // variant id -> product id
  for (const v of data.variants) if (v.status === 'active') activeVariants.set(v.id, v.productId);
  const soldIn = new Map<string, Set<string>>(); // product id -> regions
  for (const p of data.prices) {
    const productId = activeVariants.get(p.variantId);
    if (!productId) continue;
    const set = soldIn.get(productId) ?? new Set<string>();
    set.add(p.regionCode);
    soldIn.set(productId, set);
  }
  const active = data.products.filter((p) => p.status === 'active');
  const productPairs: RequestLine[] = [];
  for (const p of active) {
    const regions = soldIn.get(p.id);
    if (!regions) continue;
    for (const r of REGION_CODES) if (regions.has(r)) productPairs.push({ path: `/api/products/${p.slug}`, region: r });
  }

  const words = (title: string) => title.toLowerCase().split(/\s+/).filter((w) => /^[a-z]{3,}$/.test(w));
  const phrases: string[] = [];
  const seen = new Set<string>();
  const freq = new Map<string, number>();
  for (const p of active) {
    const w = words(p.title);
    for (const x of w) freq.set(x, (freq.get(x) ?? 0) + 1);
    for (let i = 0; i + 1 < w.length; i++) {
      const phrase = `${w[i]} ${w[i + 1]}`;
      if (!seen.has(phrase)) {
        seen.add(phrase);
        phrases.push(phrase);
      }
    }
  }
  const commonWords = [...freq.entries()]
    .filter(([w]) => w.length >= 5)
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .slice(0, 5)
    .map(([w]) => w);
  return { productPairs, categorySlugs: data.categories.map((c) => c.slug), phrases, commonWords };
}

/** `count` items of `list` spread evenly over it (stride), in order. */
export function spread<T>(list: T[], count: number): T[] {
  const out: T[] = [];
  const step = list.length / count;
  for (let i = 0; i < count && i < list.length; i++) out.push(list[Math.floor(i * step)] as T);
  return out;
}

const region = (i: number) => REGION_CODES[i % REGION_CODES.length] as string;

/** Sizes of the working sets (a few lines of tuning, kept in one place). */
export const SIZES = {
  productCacheSet: 20,
  productKvSet: 300,
  /** Lines of the product walk kept for the origin warm-up (the measured walk starts after them). */
  productOriginWarmup: 1_500,
  listingCacheCategories: 8,
  listingOriginLines: 40_000,
  listingOriginWarmup: 5_000,
  searchCacheWords: 5,
  searchOriginWarmup: 1_000,
};

/** Builds every scenario, in the order they run. */
export function catalogScenarios(): Scenario[] {
  const cat = loadCatalog();
  const pairs = cat.productPairs;

  // Product pages: the walk (origin) takes the front, the KV working set the
  // back, so the two never share a key on the no-cache Worker.
  const kvSet = pairs.slice(pairs.length - SIZES.productKvSet);
  const walk = pairs.slice(0, pairs.length - SIZES.productKvSet);
  const originWarmup = walk.slice(0, SIZES.productOriginWarmup);
  const originMeasure = walk.slice(SIZES.productOriginWarmup);
  const cacheSet = spread(pairs, SIZES.productCacheSet);

  // Listings: first pages of categories, at three page sizes.
  const limits = [12, 24, 48];
  const cachedCategories = spread(cat.categorySlugs, SIZES.listingCacheCategories);
  const listingCache: RequestLine[] = cachedCategories.flatMap((slug, i) =>
    limits.map((limit, j) => ({ path: `/api/products?category=${slug}&limit=${limit}`, region: region(i + j) })),
  );
  // Misses: every line has its own maxPrice (a distinct cache key) far above
  // any price, and a small minPrice, so pages stay full; categories, page
  // sizes and regions cycle.
  const listingLine = (i: number): RequestLine => ({
    path:
      `/api/products?category=${cat.categorySlugs[i % cat.categorySlugs.length]}&limit=${limits[i % limits.length]}` +
      `&minPrice=${(i % 50) * 10}&maxPrice=${1_000_000_000 + i}`,
    region: region(Math.floor(i / cat.categorySlugs.length)),
  });
  const listingOriginWarmup = Array.from({ length: SIZES.listingOriginWarmup }, (_, i) => listingLine(i + 1));
  const listingOriginMeasure = Array.from({ length: SIZES.listingOriginLines }, (_, i) => listingLine(i + 1 + SIZES.listingOriginWarmup));

  // Search: a few common words (cached), and title word pairs x regions (each new).
  const searchCache: RequestLine[] = cat.commonWords.flatMap((w) =>
    ['sg', 'my', 'th'].map((r) => ({ path: `/api/products?q=${encodeURIComponent(w)}`, region: r })),
  );
  const phraseLines: RequestLine[] = [];
  for (let round = 0; round < REGION_CODES.length; round++) {
    cat.phrases.forEach((phrase, i) => phraseLines.push({ path: `/api/products?q=${encodeURIComponent(phrase)}`, region: region(i + round) }));
  }
  const searchOriginWarmup = phraseLines.slice(0, SIZES.searchOriginWarmup);
  const searchOriginMeasure = phraseLines.slice(SIZES.searchOriginWarmup);

  return [
    { name: 'ceiling', title: 'Fixed JSON from a bare Worker (the upper bound)', target: 'ceiling', mode: 'random', measure: [{ path: '/ceiling', region: '' }], expect: '-' },
    { name: 'ceiling-do', title: 'Empty RPC `ping()` on one SQLite Durable Object', target: 'ceiling', mode: 'random', measure: [{ path: '/do', region: '' }], expect: '-' },
    {
      name: 'ceiling-do-spread',
      title: 'Empty RPC `ping()` on one of 64 SQLite Durable Objects, picked at random',
      target: 'ceiling',
      mode: 'random',
      measure: [{ path: '/do?spread=64', region: '' }],
      expect: '-',
    },
    {
      name: 'ceiling-cache',
      title: 'One Cache API hit of a ~700-byte JSON document from a bare Worker (Miniflare\'s local cache)',
      target: 'ceiling',
      mode: 'random',
      measure: [{ path: '/cache', region: '' }],
      expect: 'cache',
    },
    {
      name: 'ceiling-kv',
      title: 'One KV read of a ~700-byte JSON document from a bare Worker (Miniflare\'s local KV)',
      target: 'ceiling',
      mode: 'random',
      measure: [{ path: '/kv', region: '' }],
      expect: 'kv',
    },
    {
      name: 'store-floor',
      title: 'The store\'s cheapest API route, `GET /api/regions` (middleware and routing, no storage)',
      target: 'edge',
      mode: 'random',
      measure: REGION_CODES.map((r) => ({ path: '/api/regions', region: r })),
      expect: '-',
    },
    {
      name: 'product-cache',
      title: `Product page, ${cacheSet.length} product x region URLs: the 1 s edge copy answers`,
      target: 'edge',
      mode: 'random',
      measure: cacheSet,
      prefill: cacheSet,
      expect: 'cache',
    },
    {
      name: 'product-kv',
      title: `Product page, ${kvSet.length} URLs pre-filled into KV, Cache API off`,
      target: 'nocache',
      mode: 'random',
      measure: kvSet,
      prefill: kvSet,
      expect: 'kv',
    },
    {
      name: 'product-origin',
      title: `Product page, every request a product x region not read before (walk of ${originMeasure.length}), Cache API off`,
      target: 'nocache',
      mode: 'walk',
      measure: originMeasure,
      warmup: originWarmup,
      expect: 'origin',
      origin: true,
    },
    {
      name: 'listing-cache',
      title: `Category listing, first page, ${listingCache.length} category x limit URLs: the edge copy answers`,
      target: 'edge',
      mode: 'random',
      measure: listingCache,
      prefill: listingCache,
      expect: 'cache',
    },
    {
      name: 'listing-origin',
      title: 'Category listing, first page, every request a new price filter (a new key), Cache API off',
      target: 'nocache',
      mode: 'walk',
      measure: listingOriginMeasure,
      warmup: listingOriginWarmup,
      expect: 'origin',
      origin: true,
    },
    {
      name: 'search-cache',
      title: `Search, ${searchCache.length} query x region URLs (${cat.commonWords.join(', ')}): the edge copy answers`,
      target: 'edge',
      mode: 'random',
      measure: searchCache,
      prefill: searchCache,
      expect: 'cache',
    },
    {
      name: 'search-origin',
      title: `Search, every request a new title word pair x region (walk of ${searchOriginMeasure.length}), Cache API off`,
      target: 'nocache',
      mode: 'walk',
      measure: searchOriginMeasure,
      warmup: searchOriginWarmup,
      expect: 'origin',
      origin: true,
    },
    {
      name: 'ceiling-end',
      title: 'The ceiling again, last: how far the machine drifted during the run (other load, heat)',
      target: 'ceiling',
      mode: 'random',
      measure: [{ path: '/ceiling', region: '' }],
      expect: '-',
    },
  ];
}
