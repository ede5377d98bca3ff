/**
 * Catalog reads through the tiers, shared by the JSON API (./routes.ts) and
 * the server-rendered pages: each returns the document with the tier that
 * served it, so both can say so in `Server-Timing`.
 */
import type { Context } from 'hono';
import type { Region } from '../../db/regions';
import { afterResponse } from '../lib/context';
import { decodeCursor, encodeCursor } from '../lib/cursor';
import { countCacheRead, type CatalogDocument } from '../lib/metrics';
import { signingSecrets } from '../lib/signed';
import type { AppEnv } from '../types';
import { liveAvailability } from '../inventory/shards';
import { soldOutAmong } from '../inventory/soldout';
import { categoryIdBySlug, loadCategories, loadListing, loadProduct, nextListingSwitch, searchProducts, type ListingPosition, type StoredProduct, type StoredSummary } from './queries';
import type { Category, Product, ProductList } from './schemas';
import { etagOf, kvStore, readThrough, type Served, type StoreTier, type Stored } from './tiers';
import { listingScope, readVersion } from './versions';

/** KV keeps listing pages and the category list for an hour past their last version. */
const LISTING_STORE_TTL = 3_600;
/** KV keeps product documents six hours: republished on every write, this only bounds a failed republish. */
const PRODUCT_STORE_TTL = 6 * 3_600;
/** Search results live briefly in Redis. */
const SEARCH_STORE_TTL = 60;

/** Slug syntax of products and categories. */
export const SLUG = /^[a-z0-9]+(-[a-z0-9]+)*$/;

/** Redis (Upstash) as a store tier for search results. */
function redisStore(c: Context<AppEnv>): StoreTier {
  const redis = c.var.services.redis;
  return {
    name: 'redis',
    get: <T>(key: string) => redis.get<Stored<T>>(key),
    put: async (key, value, ttl) => {
      await redis.set(key, value, { ex: ttl });
    },
  };
}

/** How deep a tier is: a request's `cacheTier` is the deepest any of its catalog reads reached. */
const TIER_DEPTH = { cache: 0, kv: 1, redis: 1, origin: 2 } as const;

/**
 * Records a tiered read: counted in Analytics Engine (`cache_read`, by tier
 * and document) and noted on the request for its log line (`cacheTier`,
 * see ../middleware/observe.ts). The API answers one document per request;
 * a page reads several, and logs the deepest tier they needed.
 */
function noteRead<T extends Served<unknown>>(c: Context<AppEnv>, document: CatalogDocument, served: T): T {
  countCacheRead(c.env, { tier: served.tier, document, region: c.var.region.code, ms: served.ms });
  const before = c.get('cacheTier');
  if (!before || TIER_DEPTH[served.tier] > TIER_DEPTH[before]) c.set('cacheTier', served.tier);
  return served;
}

/** Short stable hash of query parameters for cache keys. */
async function paramsHash(parts: unknown[]): Promise<string> {
  return (await etagOf(parts)).slice(3, 19);
}

/** What a listing or search asks for (validated by the caller). */
export interface ListingQuery {
  category?: string;
  q?: string;
  cursor?: string;
  limit: number;
  minPrice?: number;
  maxPrice?: number;
}

/** Where a listing or search resumes; signed into the opaque cursor. */
type Position = ListingPosition | { offset: number };

/** A page of products (newest first) or of search results (ranked); null body for an unknown category. */
export async function listProducts(c: Context<AppEnv>, query: ListingQuery): Promise<Served<ProductList>> {
  const region: Region = c.var.region;
  const secret = c.env.SIGNING_SECRET;
  const { db } = c.var.services;
  const filters = [region.code, query.q ?? null, query.category ?? null, query.minPrice ?? null, query.maxPrice ?? null, query.limit];
  const scope = `products|${JSON.stringify(filters)}`;
  const position = query.cursor ? await decodeCursor<Position>(query.cursor, scope, signingSecrets(c.env)) : undefined;
  const version = await readVersion(c.env.CATALOG, query.q ? listingScope(undefined) : listingScope(query.category));
  const hash = await paramsHash([...filters, position ?? null]);
  const waitUntil = (p: Promise<unknown>) => void afterResponse(c, p);

  const load = async (): Promise<StoredList | null> => {
    let categoryId: string | undefined;
    if (query.category) {
      categoryId = (await categoryIdBySlug(db.read, query.category)) ?? undefined;
      if (!categoryId) return null;
    }
    const filter = { categoryId, minPrice: query.minPrice, maxPrice: query.maxPrice };
    // Read before the page: a list starting between the two reads then only
    // makes the page expire at once, never keeps an old price past its switch.
    const validUntil = await nextListingSwitch(db.read, region.code);
    if (query.q) {
      const offset = position && 'offset' in position ? position.offset : 0;
      const found = await searchProducts(db.read, region, query.q, filter, offset, query.limit);
      return {
        items: found.items,
        nextCursor: found.more ? await encodeCursor({ offset: offset + query.limit }, scope, secret) : null,
        validUntil,
      };
    }
    const after = position && 'id' in position ? position : undefined;
    const page = await loadListing(db.read, region, filter, after, query.limit);
    return { items: page.items, nextCursor: page.next ? await encodeCursor(page.next, scope, secret) : null, validUntil };
  };
  const validUntil = (list: StoredList) => list.validUntil;

  const served = query.q
    ? await readThrough<StoredList>({ key: `search:v1:${region.code}:${version}:${hash}`, store: redisStore(c), storeTtlSeconds: SEARCH_STORE_TTL, load, waitUntil, validUntil })
    : await readThrough<StoredList>({
        key: `listing:v1:${region.code}:${query.category ?? '*'}:${version}:${hash}`,
        store: kvStore(c.env.CATALOG),
        storeTtlSeconds: LISTING_STORE_TTL,
        load,
        waitUntil,
        validUntil,
      });
  return overlaySoldOut(c, noteRead(c, query.q ? 'search' : 'listing', served));
}

/**
 * A listing page as the tiers store it: items carry their stocked variant
 * ids, and `validUntil` is the next price-list switch in the region (epoch ms,
 * null for none), after which the page is a miss in every tier.
 */
type StoredList = { items: StoredSummary[]; nextCursor: string | null; validUntil?: number | null };

/**
 * Marks items whose every stocked variant is flagged sold out in Redis (one
 * call for the whole page), and drops the internal fields. If Redis cannot
 * be asked, the page shows stock as received: listings stay up.
 */
async function overlaySoldOut(c: Context<AppEnv>, served: Served<StoredList>): Promise<Served<ProductList>> {
  if (!served.body) return { ...served, body: null };
  const ids = served.body.items.flatMap((i) => i.stocked);
  let flagged = new Set<string>();
  try {
    flagged = await soldOutAmong(c.var.services.redis, c.var.region.code, ids);
  } catch (err) {
    console.warn(JSON.stringify({ level: 'warn', msg: 'sold-out flags unavailable', error: String(err) }));
  }
  const items = served.body.items.map(({ stocked, ...item }) => ({ ...item, available: item.available && stocked.some((id) => !flagged.has(id)) }));
  const body: ProductList = { items, nextCursor: served.body.nextCursor };
  return { ...served, body, etag: flagged.size ? await etagOf([served.etag, [...flagged].sort()]) : served.etag };
}

/** Key of a product document; writers use it to republish and purge. */
export function productKey(epoch: string, regionCode: string, slug: string): string {
  return `product:v1:${epoch}:${regionCode}:${slug}`;
}

/** The category list of the request's region. */
export async function getCategories(c: Context<AppEnv>): Promise<Served<{ items: Category[] }>> {
  const region = c.var.region;
  const version = await readVersion(c.env.CATALOG, listingScope(undefined));
  const served = await readThrough({
    key: `categories:v1:${region.code}:${version}`,
    store: kvStore(c.env.CATALOG),
    storeTtlSeconds: LISTING_STORE_TTL,
    load: async () => ({ items: await loadCategories(c.var.services.db.read, region) }),
    waitUntil: (p) => void afterResponse(c, p),
  });
  return noteRead(c, 'categories', served);
}

/**
 * A product document in the request's region (null body when not sold
 * there), with each variant's units available read live from the inventory
 * objects: the document comes from the caches, availability never does. The
 * ETag covers both.
 */
export async function getProduct(c: Context<AppEnv>, slug: string): Promise<Served<Product>> {
  const region = c.var.region;
  const epoch = await readVersion(c.env.CATALOG, 'products');
  const served = await readThrough<StoredProduct>({
    key: productKey(epoch, region.code, slug),
    store: kvStore(c.env.CATALOG),
    storeTtlSeconds: PRODUCT_STORE_TTL,
    load: () => loadProduct(c.var.services.db.read, region, slug),
    waitUntil: (p) => void afterResponse(c, p),
    validUntil: (doc) => doc.validUntil,
  });
  noteRead(c, 'product', served);
  if (!served.body) return { ...served, body: null };
  const { validUntil: _validUntil, ...doc } = served.body;
  let live: Map<string, number> | undefined;
  try {
    live = await liveAvailability(c.env, c.var.services.db.read, region.code, doc.variants.map((v) => ({ variantId: v.id, shards: v.shards })));
  } catch (err) {
    // The objects being unreachable must not take the product page down.
    console.warn(JSON.stringify({ level: 'warn', msg: 'live availability unavailable', slug, error: String(err) }));
  }
  const body: Product = {
    ...doc,
    variants: doc.variants.map(({ shards: _shards, ...v }) => ({ ...v, available: live?.get(v.id) ?? v.available })),
  };
  const etag = await etagOf([served.etag, body.variants.map((v) => v.available)]);
  return { ...served, body, etag };
}
