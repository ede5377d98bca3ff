/**
 * Storefront catalog API: categories, listings, search and product
 * documents, read through ./service.ts and answered with the tier in
 * `Server-Timing`, an `ETag`, and 304 for a matching `If-None-Match`.
 */
import { createRoute, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { ApiError } from '../lib/errors';
import { createRouter, errorResponse } from '../lib/router';
import type { AppEnv } from '../types';
import { CategorySchema, ProductListSchema, ProductSchema } from './schemas';
import { getCategories, getProduct, listProducts, SLUG } from './service';
import type { Served } from './tiers';

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
    async (c) => respond(c, await getCategories(c), 'No categories.') as never,
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
      return respond(c, await getProduct(c, slug), `No product "${slug}" in ${region.name}.`) as never;
    },
  );
