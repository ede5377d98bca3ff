/**
 * Admin API for price lists: scheduled sale prices of variants in one
 * region, from `startsAt` until `endsAt` (or until removed).
 *
 * While a list runs, a variant's price is the lowest of its shelf price and
 * the running lists' prices (../prices/effective.ts); the storefront then
 * shows the shelf price struck through as the "was" price. Carts and
 * checkout price at the origin, so no one is ever charged a price that has
 * ended or not begun; the catalog's cached documents expire at each list's
 * start and end by themselves (`validUntil`, ../catalog/tiers.ts).
 *
 * Every write is one transaction on the primary; after it commits, the
 * affected products are republished (../catalog/publish.ts) exactly as a
 * product write does.
 */
import { createRoute, z } from '@hono/zod-openapi';
import { and, desc, eq, inArray, sql } from 'drizzle-orm';
import type { Context, MiddlewareHandler } from 'hono';
import type { Database } from '../../db/client';
import { REGION_CODES, REGIONS } from '../../db/regions';
import { priceListPrices, priceLists, products, variants } from '../../db/schema';
import { publishChange } from '../catalog/publish';
import { emitProductUpdated } from '../webhooks/events';
import { ApiError, notFound } from '../lib/errors';
import { pgError } from '../lib/db-errors';
import { newId } from '../lib/ids';
import { cursorKey, nextNewestFirstCursor, olderThan, readNewestFirstCursor } from '../lib/keyset';
import { createRouter, errorResponse } from '../lib/router';
import { signingSecrets } from '../lib/signed';
import { adminAuth } from '../middleware/admin-auth';
import { limitBody } from '../middleware/body-limit';
import type { AppEnv } from '../types';

/** Most prices one list may hold. */
export const MAX_PRICES = 1_000;

const security = [{ adminToken: [] }];
const writer: MiddlewareHandler<AppEnv>[] = [adminAuth({ roles: ['catalog'] }), limitBody(256 * 1024)];
const reader: MiddlewareHandler<AppEnv>[] = [adminAuth({ roles: ['catalog', 'readonly'] })];

const Instant = z.iso.datetime({ offset: true }).openapi({ description: 'ISO 8601 instant (stored in UTC)', example: '2026-12-11T04:00:00Z' });
const Name = z
  .string()
  .trim()
  .min(1)
  .max(200)
  .regex(/^[^\u0000-\u001f\u007f-\u009f]*$/, 'Must not contain control characters.')
  .openapi({ example: 'Year-end sale' });

const PriceEntry = z
  .object({
    sku: z.string().min(1).max(64).openapi({ example: 'SAMBAL-200G' }),
    amount: z.number().int().min(0).max(1e12).openapi({ description: 'Minor units of the region currency' }),
  })
  .strict();
const Prices = z
  .array(PriceEntry)
  .min(1)
  .max(MAX_PRICES)
  .refine((ps) => new Set(ps.map((p) => p.sku)).size === ps.length, { message: 'Each SKU may appear once.' })
  .openapi({ description: `Sale prices by SKU (1–${MAX_PRICES})` });

const endAfterStart = { message: 'Must be after startsAt.', path: ['endsAt'] };

const PriceListCreateSchema = z
  .object({
    name: Name,
    region: z.enum(REGION_CODES),
    startsAt: Instant,
    endsAt: Instant.nullable().optional().openapi({ description: 'When the prices end; none: until the list is changed or deleted' }),
    prices: Prices,
  })
  .strict()
  .refine((l) => !l.endsAt || Date.parse(l.endsAt) > Date.parse(l.startsAt), endAfterStart)
  .openapi('PriceListCreate');

const PriceListPatchSchema = z
  .object({
    name: Name.optional(),
    startsAt: Instant.optional(),
    endsAt: Instant.nullable().optional(),
    prices: Prices.optional().openapi({ description: 'Replaces every price of the list' }),
  })
  .strict()
  .refine((l) => !l.endsAt || !l.startsAt || Date.parse(l.endsAt) > Date.parse(l.startsAt), endAfterStart)
  .openapi('PriceListPatch');

const PriceListFields = {
  id: z.string(),
  name: z.string(),
  region: z.string(),
  currency: z.string(),
  startsAt: z.string(),
  endsAt: z.string().nullable(),
  state: z.enum(['scheduled', 'running', 'ended']).openapi({ description: 'By the server clock at the time of the answer' }),
  createdAt: z.string(),
  updatedAt: z.string(),
};
const PriceListSchema = z
  .object({
    ...PriceListFields,
    prices: z.array(z.object({ sku: z.string(), variantId: z.string(), productId: z.string(), amount: z.number().int() })),
  })
  .openapi('PriceList');
const PriceListSummarySchema = z.object({ ...PriceListFields, priceCount: z.number().int() }).openapi('PriceListSummary');

const IdParam = z.object({ id: z.string().min(1).max(64) });
const ListQuery = z
  .object({
    region: z.enum(REGION_CODES).optional(),
    limit: z.coerce.number().int().min(1).max(100).default(50),
    cursor: z.string().max(512).optional().openapi({ description: 'Opaque; from `nextCursor` of the previous page' }),
  })
  .strict();

type Tx = Parameters<Parameters<Database['transaction']>[0]>[0];
type ListRow = typeof priceLists.$inferSelect;

const stateOf = (row: ListRow, now = Date.now()): 'scheduled' | 'running' | 'ended' =>
  row.startsAt.getTime() > now ? 'scheduled' : row.endsAt && row.endsAt.getTime() <= now ? 'ended' : 'running';

const fieldsOf = (row: ListRow) => ({
  id: row.id,
  name: row.name,
  region: row.regionCode,
  currency: row.currency,
  startsAt: row.startsAt.toISOString(),
  endsAt: row.endsAt ? row.endsAt.toISOString() : null,
  state: stateOf(row),
  createdAt: row.createdAt.toISOString(),
  updatedAt: row.updatedAt.toISOString(),
});

/** A rule the database refused (a CHECK or a foreign key) is the caller's 422, never a 500. */
function constraintError(err: unknown): never {
  const code = pgError(err)?.code;
  if (code === '23514' || code === '23503' || code === '22008' || code === '22003') {
    throw new ApiError(422, 'constraint_violation', 'The price list breaks a rule of the catalog (an end before its start, a negative or too large amount, or a variant that no longer exists).');
  }
  throw err;
}

/** Variants of `skus`; 422 `unknown_sku` naming the missing ones. */
async function variantsOfSkus(tx: Tx, skus: string[]): Promise<Map<string, string>> {
  const rows = await tx.select({ id: variants.id, sku: variants.sku }).from(variants).where(inArray(variants.sku, skus));
  const bySku = new Map(rows.map((r) => [r.sku, r.id]));
  const missing = skus.filter((s) => !bySku.has(s));
  if (missing.length) {
    const shown = missing.slice(0, 20).join(', ') + (missing.length > 20 ? `, and ${missing.length - 20} more` : '');
    throw new ApiError(422, 'unknown_sku', `No variant with SKU ${shown}.`, { skus: missing });
  }
  return bySku;
}

/** Replaces the list's prices with `prices`. */
async function writePrices(tx: Tx, listId: string, prices: z.infer<typeof PriceEntry>[]): Promise<void> {
  const bySku = await variantsOfSkus(tx, prices.map((p) => p.sku));
  await tx.delete(priceListPrices).where(eq(priceListPrices.priceListId, listId));
  await tx.insert(priceListPrices).values(prices.map((p) => ({ priceListId: listId, variantId: bySku.get(p.sku)!, amount: p.amount })));
}

/** Variant ids a list holds prices for. */
async function variantIdsOf(tx: Tx | Database, listId: string): Promise<string[]> {
  const rows = await tx.select({ id: priceListPrices.variantId }).from(priceListPrices).where(eq(priceListPrices.priceListId, listId));
  return rows.map((r) => r.id);
}

/**
 * Republishes the products of `variantIds` and bumps their listings, as a
 * product write does, and tells `product.updated` subscribers (an ERP keeps
 * prices too). The event is sent at the write, not when a list starts or
 * ends by the clock: subscribers read the list's window from the admin API.
 */
async function republish(c: Context<AppEnv>, variantIds: string[]): Promise<void> {
  const ids = [...new Set(variantIds)];
  if (ids.length === 0) return;
  const db = c.var.services.db.primary;
  const rows = await db
    .selectDistinct({ id: products.id, slug: products.slug, categoryId: products.categoryId })
    .from(products)
    .innerJoin(variants, eq(variants.productId, products.id))
    .where(inArray(variants.id, ids));
  await publishChange(db, c.env.CATALOG, { slugs: rows.map((r) => r.slug), categoryIds: [...new Set(rows.map((r) => r.categoryId))] });
  await emitProductUpdated(c.env, db, rows.map((r) => ({ productId: r.id, slug: r.slug, change: 'updated' as const })));
}

/** The admin view of a list with its prices, or null. */
async function loadPriceList(db: Database | Tx, id: string): Promise<z.infer<typeof PriceListSchema> | null> {
  const [row] = await db.select().from(priceLists).where(eq(priceLists.id, id));
  if (!row) return null;
  const prices = await db
    .select({ sku: variants.sku, variantId: variants.id, productId: variants.productId, amount: priceListPrices.amount })
    .from(priceListPrices)
    .innerJoin(variants, eq(variants.id, priceListPrices.variantId))
    .where(eq(priceListPrices.priceListId, id))
    .orderBy(variants.sku);
  return { ...fieldsOf(row), prices: prices.map((p) => ({ ...p, amount: Number(p.amount) })) };
}

export const adminPriceListRoutes = createRouter()
  .openapi(
    createRoute({
      method: 'post',
      path: '/price-lists',
      tags: ['Admin'],
      security,
      summary: 'Schedules sale prices in a region',
      description:
        'From `startsAt` until `endsAt`, each listed variant sells in the region at the lowest of its shelf price and the running lists\' prices; the storefront shows the shelf price as the compare-at ("was") price. Product pages, listings and search switch at the start and end by the server clock, without waiting for a cache TTL; carts and checkout always price at the origin. Role `catalog`.',
      middleware: writer,
      request: { body: { required: true, content: { 'application/json': { schema: PriceListCreateSchema } } } },
      responses: {
        201: { description: 'The price list', content: { 'application/json': { schema: PriceListSchema } } },
        400: errorResponse('Invalid body (unknown field, end not after start, negative amount, duplicate SKU, more than 1000 prices)'),
        401: errorResponse('No or bad admin token'),
        403: errorResponse('Role may not write the catalog'),
        422: errorResponse('Unknown SKU (`unknown_sku`), or a rule of the database (`constraint_violation`)'),
      },
    }),
    async (c) => {
      const input = c.req.valid('json');
      const db = c.var.services.db.primary;
      const id = newId('pl');
      const now = new Date();
      await db
        .transaction(async (tx) => {
          await tx.insert(priceLists).values({
            id,
            name: input.name,
            regionCode: input.region,
            currency: REGIONS[input.region].currency,
            startsAt: new Date(input.startsAt),
            endsAt: input.endsAt ? new Date(input.endsAt) : null,
            createdAt: now,
            updatedAt: now,
          });
          await writePrices(tx, id, input.prices);
        })
        .catch(constraintError);
      const list = (await loadPriceList(db, id))!;
      await republish(c, list.prices.map((p) => p.variantId));
      return c.json(list, 201);
    },
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/price-lists',
      tags: ['Admin'],
      security,
      summary: 'Lists price lists, newest first',
      middleware: reader,
      request: { query: ListQuery },
      responses: {
        200: { description: 'A page of price lists', content: { 'application/json': { schema: z.object({ items: z.array(PriceListSummarySchema), nextCursor: z.string().nullable() }) } } },
        400: errorResponse('Invalid query or cursor'),
      },
    }),
    async (c) => {
      const query = c.req.valid('query');
      const scope = `price-lists|${query.region ?? '*'}|${query.limit}`;
      const after = await readNewestFirstCursor(query.cursor, scope, signingSecrets(c.env));
      const db = c.var.services.db.primary;
      const rows = await db
        .select({
          list: priceLists,
          t: cursorKey(priceLists.createdAt),
          priceCount: sql<number>`(select count(*)::int from price_list_prices lp where lp.price_list_id = ${priceLists.id})`,
        })
        .from(priceLists)
        .where(and(query.region ? eq(priceLists.regionCode, query.region) : undefined, olderThan(priceLists.createdAt, priceLists.id, after)))
        .orderBy(desc(priceLists.createdAt), desc(priceLists.id))
        .limit(query.limit + 1);
      const page = rows.slice(0, query.limit);
      const last = page[page.length - 1];
      const nextCursor = await nextNewestFirstCursor(rows.length, query.limit, last ? { t: last.t, id: last.list.id } : undefined, scope, c.env.SIGNING_SECRET);
      return c.json({ items: page.map((r) => ({ ...fieldsOf(r.list), priceCount: Number(r.priceCount) })), nextCursor }, 200);
    },
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/price-lists/{id}',
      tags: ['Admin'],
      security,
      summary: 'One price list with its prices',
      middleware: reader,
      request: { params: IdParam },
      responses: { 200: { description: 'The price list', content: { 'application/json': { schema: PriceListSchema } } }, 404: errorResponse('Unknown price list') },
    }),
    async (c) => {
      const list = await loadPriceList(c.var.services.db.primary, c.req.valid('param').id);
      if (!list) throw notFound('No such price list.');
      return c.json(list, 200);
    },
  )
  .openapi(
    createRoute({
      method: 'patch',
      path: '/price-lists/{id}',
      tags: ['Admin'],
      security,
      summary: 'Changes a price list',
      description: 'Any of `name`, `startsAt`, `endsAt` (null: no end) and `prices` (replaces them all). The region cannot change: make a new list. Role `catalog`.',
      middleware: writer,
      request: { params: IdParam, body: { required: true, content: { 'application/json': { schema: PriceListPatchSchema } } } },
      responses: {
        200: { description: 'The price list', content: { 'application/json': { schema: PriceListSchema } } },
        400: errorResponse('Invalid body'),
        404: errorResponse('Unknown price list'),
        422: errorResponse('`unknown_sku`, `invalid_window` (the end would not be after the start) or `constraint_violation`'),
      },
    }),
    async (c) => {
      const patch = c.req.valid('json');
      const id = c.req.valid('param').id;
      const db = c.var.services.db.primary;
      const before = await db
        .transaction(async (tx) => {
          const [row] = await tx.select().from(priceLists).where(eq(priceLists.id, id)).for('update');
          if (!row) throw notFound('No such price list.');
          const startsAt = patch.startsAt !== undefined ? new Date(patch.startsAt) : row.startsAt;
          const endsAt = patch.endsAt !== undefined ? (patch.endsAt === null ? null : new Date(patch.endsAt)) : row.endsAt;
          if (endsAt && endsAt.getTime() <= startsAt.getTime()) {
            throw new ApiError(422, 'invalid_window', `endsAt (${endsAt.toISOString()}) must be after startsAt (${startsAt.toISOString()}).`, [
              { in: 'body', field: 'endsAt', message: 'Must be after startsAt.' },
            ]);
          }
          const former = await variantIdsOf(tx, id);
          await tx
            .update(priceLists)
            .set({ ...(patch.name !== undefined ? { name: patch.name } : {}), startsAt, endsAt, updatedAt: new Date() })
            .where(eq(priceLists.id, id));
          if (patch.prices) await writePrices(tx, id, patch.prices);
          return former;
        })
        .catch(constraintError);
      const list = (await loadPriceList(db, id))!;
      await republish(c, [...before, ...list.prices.map((p) => p.variantId)]);
      return c.json(list, 200);
    },
  )
  .openapi(
    createRoute({
      method: 'delete',
      path: '/price-lists/{id}',
      tags: ['Admin'],
      security,
      summary: 'Deletes a price list',
      description: 'Its prices stop at once (a running sale ends now). Role `catalog`.',
      middleware: [adminAuth({ roles: ['catalog'] })],
      request: { params: IdParam },
      responses: { 204: { description: 'Deleted' }, 404: errorResponse('Unknown price list') },
    }),
    async (c) => {
      const id = c.req.valid('param').id;
      const db = c.var.services.db.primary;
      const former = await db.transaction(async (tx) => {
        const [row] = await tx.select({ id: priceLists.id }).from(priceLists).where(eq(priceLists.id, id)).for('update');
        if (!row) throw notFound('No such price list.');
        const ids = await variantIdsOf(tx, id);
        await tx.delete(priceLists).where(eq(priceLists.id, id));
        return ids;
      });
      await republish(c, former);
      return c.body(null, 204);
    },
  );
