/**
 * Storefront catalog: categories, listings, search and product documents,
 * each served through the tiers of ./tiers.ts and answered with the tier in
 * `Server-Timing`, an `ETag`, and 304 for a matching `If-None-Match`.
 */
import { createRoute, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import type { Region } from '../../db/regions';
import { afterResponse } from '../lib/context';
import { decodeCursor, encodeCursor } from '../lib/cursor';
import { ApiError } from '../lib/errors';
import { createRouter, errorResponse } from '../lib/router';
import type { AppEnv } from '../types';
import { categoryIdBySlug, loadCategories, loadListing, loadProduct, searchProducts, type ListingPosition } from './queries';
import { CategorySchema, ProductListSchema, ProductSchema, type ProductList } from './schemas';
import { etagOf, kvStore, readThrough, type Served, type StoreTier, type Stored } from './tiers';
import { listingScope, readVersion } from './versions';

/** KV keeps listing pages and the category list for an hour past their last version. */
const LISTING_STORE_TTL = 3_600;
/** KV keeps product documents six hours: republished on every write, this only bounds a failed republish. */
const PRODUCT_STORE_TTL = 6 * 3_600;
/** Search results live briefly in Redis. */
const SEARCH_STORE_TTL = 60;

const SLUG = /^[a-z0-9]+(-[a-z0-9]+)*$/;

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

/** Short stable hash of query parameters for cache keys. */
async function paramsHash(parts: unknown[]): Promise<string> {
  return (await etagOf(parts)).slice(3, 19);
}

/** Sends a served document: 404 for a miss, 304 for a matching ETag, else the JSON. */
function respond<T>(c: Context<AppEnv>, served: Served<T>, notFoundMessage: string): Response {
  c.header('Server-Timing', `${served.tier};dur=${served.ms}`);
  c.header('x-cache-tier', served.tier);
  c.header('Vary', 'x-region, cookie');
  if (served.body === null) throw new ApiError(404, 'not_found', notFoundMessage);
  c.header('ETag', served.etag);
  // Browsers and intermediaries revalidate every time (cheap: a 304 from the
  // nearest location), so a price change is never held in a shopper's cache.
  c.header('Cache-Control', 'public, max-age=0, must-revalidate');
  const ifNoneMatch = c.req.header('if-none-match');
  if (ifNoneMatch && ifNoneMatch.split(',').some((t) => t.trim() === served.etag || t.trim() === '*')) {
    return c.body(null, 304);
  }
  return c.json(served.body as object, 200);
}

const ListQuery = z
  .object({
    category: z.string().regex(SLUG, 'Must be a category slug').max(100).optional().openapi({ example: 'audio' }),
    q: z.string().trim().min(1).max(200).optional().openapi({ description: 'Full-text search (typo tolerant where pg_trgm exists)', example: 'wireless earbuds' }),
    cursor: z.string().max(512).optional().openapi({ description: 'Opaque; from `nextCursor` of the previous page' }),
    limit: z.coerce.number().int().min(1).max(100).default(24),
    minPrice: z.coerce.number().int().min(0).optional().openapi({ description: 'Minor units of the region currency' }),
    maxPrice: z.coerce.number().int().min(0).optional().openapi({ description: 'Minor units of the region currency' }),
    region: z.string().optional().openapi({ description: 'Region override (also `x-region` header or `region` cookie)', example: 'sg' }),
  })
  .strict();

/** Where a listing or search resumes; signed into the opaque cursor. */
type Position = ListingPosition | { offset: number };

async function listProducts(c: Context<AppEnv>, query: z.infer<typeof ListQuery>): Promise<Served<ProductList>> {
  const region: Region = c.var.region;
  const secret = c.env.SIGNING_SECRET;
  const { db } = c.var.services;
  const filters = [region.code, query.q ?? null, query.category ?? null, query.minPrice ?? null, query.maxPrice ?? null, query.limit];
  const scope = `products|${JSON.stringify(filters)}`;
  const position = query.cursor ? await decodeCursor<Position>(query.cursor, scope, secret) : undefined;
  const version = await readVersion(c.env.CATALOG, query.q ? listingScope(undefined) : listingScope(query.category));
  const hash = await paramsHash([...filters, position ?? null]);
  const waitUntil = (p: Promise<unknown>) => void afterResponse(c, p);

  const load = async (): Promise<ProductList | null> => {
    let categoryId: string | undefined;
    if (query.category) {
      categoryId = (await categoryIdBySlug(db.read, query.category)) ?? undefined;
      if (!categoryId) return null;
    }
    const filter = { categoryId, minPrice: query.minPrice, maxPrice: query.maxPrice };
    if (query.q) {
      const offset = position && 'offset' in position ? position.offset : 0;
      const found = await searchProducts(db.read, region, query.q, filter, offset, query.limit);
      return {
        items: found.items,
        nextCursor: found.more ? await encodeCursor({ offset: offset + query.limit }, scope, secret) : null,
      };
    }
    const after = position && 'id' in position ? position : undefined;
    const page = await loadListing(db.read, region, filter, after, query.limit);
    return { items: page.items, nextCursor: page.next ? await encodeCursor(page.next, scope, secret) : null };
  };

  if (query.q) {
    return readThrough({ key: `search:v1:${region.code}:${version}:${hash}`, store: redisStore(c), storeTtlSeconds: SEARCH_STORE_TTL, load, waitUntil });
  }
  return readThrough({
    key: `listing:v1:${region.code}:${query.category ?? '*'}:${version}:${hash}`,
    store: kvStore(c.env.CATALOG),
    storeTtlSeconds: LISTING_STORE_TTL,
    load,
    waitUntil,
  });
}

/** Key of a product document; writers use it to republish and purge. */
export function productKey(epoch: string, regionCode: string, slug: string): string {
  return `product:v1:${epoch}:${regionCode}:${slug}`;
}

export const catalogRoutes = createRouter()
  .openapi(
    createRoute({
      method: 'get',
      path: '/categories',
      tags: ['Storefront'],
      summary: 'Lists categories with the number of products sold in the region',
      responses: {
        200: { description: 'Categories, parents first', content: { 'application/json': { schema: z.object({ items: z.array(CategorySchema) }) } } },
        304: { description: 'Not modified (If-None-Match)' },
        400: errorResponse('Unknown region'),
      },
    }),
    async (c) => {
      const region = c.var.region;
      const version = await readVersion(c.env.CATALOG, listingScope(undefined));
      const served = await readThrough({
        key: `categories:v1:${region.code}:${version}`,
        store: kvStore(c.env.CATALOG),
        storeTtlSeconds: LISTING_STORE_TTL,
        load: async () => ({ items: await loadCategories(c.var.services.db.read, region) }),
        waitUntil: (p) => void afterResponse(c, p),
      });
      return respond(c, served, 'No categories.') as never;
    },
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/products',
      tags: ['Storefront'],
      summary: 'Lists products (newest first) or searches them (ranked), in the region',
      request: { query: ListQuery },
      responses: {
        200: { description: 'A page of products', content: { 'application/json': { schema: ProductListSchema } } },
        304: { description: 'Not modified (If-None-Match)' },
        400: errorResponse('Invalid query, cursor or region'),
        404: errorResponse('Unknown category'),
      },
    }),
    async (c) => {
      const query = c.req.valid('query');
      if (query.minPrice !== undefined && query.maxPrice !== undefined && query.minPrice > query.maxPrice) {
        throw new ApiError(400, 'invalid_request', 'minPrice must not exceed maxPrice.', [{ in: 'query', field: 'minPrice', message: 'Greater than maxPrice.' }]);
      }
      const served = await listProducts(c, query);
      return respond(c, served, `No category "${query.category}".`) as never;
    },
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/products/{slug}',
      tags: ['Storefront'],
      summary: 'A product with its variants, prices and availability in the region',
      request: { params: z.object({ slug: z.string().max(200).openapi({ example: 'aurora-x5-wireless-earbuds-ab12' }) }) },
      responses: {
        200: { description: 'The product', content: { 'application/json': { schema: ProductSchema } } },
        304: { description: 'Not modified (If-None-Match)' },
        404: errorResponse('Unknown slug, archived, or not sold in the region'),
      },
    }),
    async (c) => {
      const { slug } = c.req.valid('param');
      const region = c.var.region;
      if (!SLUG.test(slug)) throw new ApiError(404, 'not_found', `No product "${slug.slice(0, 100)}".`);
      const epoch = await readVersion(c.env.CATALOG, 'products');
      const served = await readThrough({
        key: productKey(epoch, region.code, slug),
        store: kvStore(c.env.CATALOG),
        storeTtlSeconds: PRODUCT_STORE_TTL,
        load: () => loadProduct(c.var.services.db.read, region, slug),
        waitUntil: (p) => void afterResponse(c, p),
      });
      return respond(c, served, `No product "${slug}" in ${region.name}.`) as never;
    },
  );
