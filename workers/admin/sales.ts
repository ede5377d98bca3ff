/**
 * Admin API for flash sales: schedule a sale (variants, regions, start,
 * per-shopper cap, admission rate), change or end it, and read its report.
 *
 * Every write goes to Postgres first, then the settings are pushed to every
 * queue object of the sale (one per region per queue shard) and the sale's
 * products are republished to KV with the sale on them, so product pages
 * show the countdown and the catalog is warm before the first shopper
 * arrives. A push that fails leaves the write standing and answers 503: the
 * same request again pushes again (every step is idempotent).
 */
import { createRoute, z } from '@hono/zod-openapi';
import { and, eq, gte, inArray, lte, ne, sql } from 'drizzle-orm';
import type { Context, MiddlewareHandler } from 'hono';
import { REGION_CODES } from '../../db/regions';
import { orderLines, orders } from '../../db/schema';
import { publishChange } from '../catalog/publish';
import { notFound, unavailable } from '../lib/errors';
import { createRouter, errorResponse } from '../lib/router';
import { adminAuth } from '../middleware/admin-auth';
import { limitBody } from '../middleware/body-limit';
import { saleRejections } from '../sales/rejections';
import { assertFutureStart, createSale, publishSale, effectiveEnd, endSale, listSales, loadSale, queueConfig, updateSale, type Sale } from '../sales/store';
import { SaleSchema } from '../sales/schemas';
import { configureQueues, queueStub } from '../sales/tickets';
import type { AppEnv } from '../types';

const security = [{ adminToken: [] }];
const writer: MiddlewareHandler<AppEnv>[] = [adminAuth({ roles: ['catalog'] }), limitBody(16 * 1024)];
const reader: MiddlewareHandler<AppEnv>[] = [adminAuth({ roles: ['catalog', 'fulfillment', 'readonly'] })];

const Region = z.enum(REGION_CODES);
const Instant = z.iso.datetime({ offset: true }).openapi({ description: 'ISO 8601 instant (stored in UTC)', example: '2026-12-11T04:00:00Z' });

const SaleFields = {
  name: z.string().trim().min(1).max(200).regex(/^[^\u0000-\u001f\u007f-\u009f]*$/, 'Must not contain control characters.').openapi({ example: '11.11 sambal drop' }),
  skus: z.array(z.string().min(1).max(64)).min(1).max(50).openapi({ description: 'Variants sold in the sale, by SKU' }),
  regions: z.array(Region).min(1).max(REGION_CODES.length),
  startsAt: Instant,
  endsAt: Instant.nullable().optional().openapi({ description: 'Planned end; none: until ended by `POST .../end`' }),
  perShopperCap: z.number().int().min(1).max(99).openapi({ description: 'Units of the sale\'s variants one shopper may buy per region (per account; per device and per IP for guests)' }),
  admissionRate: z.number().int().min(1).max(100_000).openapi({ description: 'Shoppers let through the queue per second, in each region' }),
  queueShards: z.number().int().min(1).max(16).optional().openapi({ description: 'Queue objects per region (default 1); more when arrivals would exceed one object (about 1,000 tickets/s each)' }),
  admissionTtlSeconds: z.number().int().min(60).max(7200).optional().openapi({ description: 'How long an admitted shopper may take to check out (default 600)' }),
  turnstile: z.boolean().optional().openapi({ description: 'Require a Turnstile token for a ticket where the environment has Turnstile configured (default true)' }),
};

const SaleInputSchema = z
  .object(SaleFields)
  .strict()
  .refine((s) => !s.endsAt || Date.parse(s.endsAt) > Date.parse(s.startsAt), { message: 'Must be after startsAt.', path: ['endsAt'] })
  .openapi('SaleCreate');
const SalePatchSchema = z.object(SaleFields).partial().strict().openapi('SalePatch');


const Percentiles = z.object({ p50: z.number().nullable(), p95: z.number().nullable(), p99: z.number().nullable() });
const SaleReportSchema = z
  .object({
    saleId: z.string(),
    state: z.enum(['scheduled', 'live', 'ended']),
    totals: z.object({ ticketsIssued: z.number().int(), admitted: z.number().int(), orders: z.number().int(), unitsSold: z.number().int() }),
    regions: z.record(
      z.string(),
      z.object({
        ticketsIssued: z.number().int(),
        admitted: z.number().int(),
        orders: z.number().int(),
        unitsSold: z.number().int(),
        soldOutAt: z.string().nullable(),
        checkoutLatencyMs: Percentiles,
      }),
    ),
    checkoutLatencyMs: Percentiles.openapi({ description: 'From `POST /api/checkout` to confirmed, over the sale\'s confirmed checkouts' }),
    rejected: z.record(z.string(), z.number().int()).openapi({ description: 'Refused attempts by reason: ticket refusals (rate_limited, turnstile_failed, invalid_ticket, not_started, ended) and failed checkouts (not_admitted, cap_exceeded, out_of_stock, payment_declined, ...)' }),
  })
  .openapi('SaleReport');

const IdParam = z.object({ id: z.string().min(1).max(64) });

/**
 * Pushes the sale to its queue objects and republishes its products (and
 * `formerSlugs`: products a change took out of the sale, whose documents
 * would otherwise keep showing it); 503 when that cannot be done now.
 */
async function propagate(c: Context<AppEnv>, sale: Sale, formerSlugs: string[] = []): Promise<void> {
  try {
    await configureQueues(c.env, queueConfig(sale));
    await publishSale(c.env.CATALOG, sale);
    const slugs = [...new Set([...sale.variants.map((v) => v.productSlug), ...formerSlugs])];
    await publishChange(c.var.services.db.primary, c.env.CATALOG, { slugs, categoryIds: [] });
  } catch (err) {
    console.warn(JSON.stringify({ level: 'warn', requestId: c.get('requestId'), event: 'sale.propagate_failed', saleId: sale.id, error: String(err).slice(0, 300) }));
    throw unavailable('The sale is saved but could not be pushed to its queues yet. Send the same request again.');
  }
}

/** p50/p95/p99 of sorted samples (nearest rank), null without any. */
function percentiles(sorted: number[]) {
  const at = (p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]! : null);
  return { p50: at(50), p95: at(95), p99: at(99) };
}

/** The report of a sale: queue figures from its objects, orders from the origin, refusals from both. */
async function saleReport(c: Context<AppEnv>, sale: Sale): Promise<z.infer<typeof SaleReportSchema>> {
  const variantIds = sale.variants.map((v) => v.variantId);
  const end = effectiveEnd(sale);
  const db = c.var.services.db.primary;
  const [perRegion, orderRows, rejections] = await Promise.all([
    Promise.all(
      sale.regions.map(async (region) => ({
        region,
        shards: await Promise.all(Array.from({ length: sale.queueShards }, (_, s) => queueStub(c.env, sale.id, region, s).report())),
      })),
    ),
    db
      .select({ region: orders.regionCode, orders: sql<number>`count(distinct ${orders.id})::int`, units: sql<number>`coalesce(sum(${orderLines.quantity}), 0)::int` })
      .from(orders)
      .innerJoin(orderLines, eq(orderLines.orderId, orders.id))
      .where(
        and(
          inArray(orderLines.variantId, variantIds),
          inArray(orders.regionCode, sale.regions),
          ne(orders.status, 'cancelled'),
          gte(orders.createdAt, new Date(sale.startsAt)),
          ...(end !== null ? [lte(orders.createdAt, new Date(end + 3_600_000))] : []),
        ),
      )
      .groupBy(orders.regionCode),
    saleRejections(c.var.services.redis, sale.id),
  ]);
  const rejected: Record<string, number> = { ...rejections };
  const all: number[] = [];
  const regions: z.infer<typeof SaleReportSchema>['regions'] = {};
  for (const { region, shards } of perRegion) {
    const latencies = shards.flatMap((s) => s.latenciesMs).sort((a, b) => a - b);
    all.push(...latencies);
    for (const s of shards) for (const row of s.checkouts) if (row.outcome === 'failed') rejected[row.reason ?? 'failed'] = (rejected[row.reason ?? 'failed'] ?? 0) + row.count;
    const soldOut = shards.map((s) => s.soldOutAt).filter((t): t is number => t !== null);
    const o = orderRows.find((r) => r.region === region);
    regions[region] = {
      ticketsIssued: shards.reduce((n, s) => n + s.issued, 0),
      admitted: shards.reduce((n, s) => n + s.admitted, 0),
      orders: o?.orders ?? 0,
      unitsSold: o?.units ?? 0,
      soldOutAt: soldOut.length ? new Date(Math.min(...soldOut)).toISOString() : null,
      checkoutLatencyMs: percentiles(latencies),
    };
  }
  const sum = (k: 'ticketsIssued' | 'admitted' | 'orders' | 'unitsSold') => Object.values(regions).reduce((n, r) => n + r[k], 0);
  return {
    saleId: sale.id,
    state: sale.state,
    totals: { ticketsIssued: sum('ticketsIssued'), admitted: sum('admitted'), orders: sum('orders'), unitsSold: sum('unitsSold') },
    regions,
    checkoutLatencyMs: percentiles(all.sort((a, b) => a - b)),
    rejected,
  };
}

export const adminSaleRoutes = createRouter()
  .openapi(
    createRoute({
      method: 'post',
      path: '/sales',
      tags: ['Admin'],
      security,
      summary: 'Schedules a flash sale',
      description: 'From creation until the sale ends, its variants in its regions are sold only through the sale\'s queue, at most `perShopperCap` units per shopper. Role `catalog`.',
      middleware: writer,
      request: { body: { required: true, content: { 'application/json': { schema: SaleInputSchema } } } },
      responses: {
        201: { description: 'The sale', content: { 'application/json': { schema: SaleSchema } } },
        400: errorResponse('Invalid body'),
        409: errorResponse('A variant is already in another open sale in one of the regions (`variant_in_sale`)'),
        422: errorResponse('Unknown SKU (`unknown_sku`), or a start in the past (`starts_in_past`)'),
      },
    }),
    async (c) => {
      const input = c.req.valid('json');
      assertFutureStart(input.startsAt);
      const sale = await createSale(c.var.services.db.primary, input);
      await propagate(c, sale);
      return c.json(sale, 201);
    },
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/sales',
      tags: ['Admin'],
      security,
      summary: 'Lists sales, newest start first',
      middleware: reader,
      responses: { 200: { description: 'Sales', content: { 'application/json': { schema: z.object({ items: z.array(SaleSchema) }) } } } },
    }),
    async (c) => c.json({ items: await listSales(c.var.services.db.primary) }, 200),
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/sales/{id}',
      tags: ['Admin'],
      security,
      summary: 'One sale',
      middleware: reader,
      request: { params: IdParam },
      responses: { 200: { description: 'The sale', content: { 'application/json': { schema: SaleSchema } } }, 404: errorResponse('Unknown sale') },
    }),
    async (c) => {
      const sale = await loadSale(c.var.services.db.primary, c.req.valid('param').id);
      if (!sale) throw notFound('No such sale.');
      return c.json(sale, 200);
    },
  )
  .openapi(
    createRoute({
      method: 'patch',
      path: '/sales/{id}',
      tags: ['Admin'],
      security,
      summary: 'Changes a sale',
      description: 'Before the start anything may change. Once it has started only `name`, `endsAt`, `admissionRate`, `admissionTtlSeconds` and `turnstile` may (409 `sale_started` otherwise); an ended sale cannot change (409 `sale_ended`).',
      middleware: writer,
      request: { params: IdParam, body: { required: true, content: { 'application/json': { schema: SalePatchSchema } } } },
      responses: {
        200: { description: 'The sale', content: { 'application/json': { schema: SaleSchema } } },
        400: errorResponse('Invalid body'),
        404: errorResponse('Unknown sale'),
        409: errorResponse('`sale_started`, `sale_ended` or `variant_in_sale`'),
        422: errorResponse('`unknown_sku`, `starts_in_past` or `invalid_window`'),
      },
    }),
    async (c) => {
      // A start in the past is refused by updateSale, after the sale's own
      // state: a started or ended sale answers 409 for any new start.
      const patch = c.req.valid('json');
      const db = c.var.services.db.primary;
      const before = patch.skus ? await loadSale(db, c.req.valid('param').id) : null;
      const sale = await updateSale(db, c.req.valid('param').id, patch);
      if (!sale) throw notFound('No such sale.');
      await propagate(c, sale, before?.variants.map((v) => v.productSlug) ?? []);
      return c.json(sale, 200);
    },
  )
  .openapi(
    createRoute({
      method: 'post',
      path: '/sales/{id}/end',
      tags: ['Admin'],
      security,
      summary: 'Ends a sale now',
      description: 'The queue closes (open pages are told), no new admission checks out, and the variants sell normally again. Idempotent.',
      middleware: writer,
      request: { params: IdParam },
      responses: { 200: { description: 'The sale', content: { 'application/json': { schema: SaleSchema } } }, 404: errorResponse('Unknown sale') },
    }),
    async (c) => {
      const sale = await endSale(c.var.services.db.primary, c.req.valid('param').id);
      if (!sale) throw notFound('No such sale.');
      await propagate(c, sale);
      return c.json(sale, 200);
    },
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/sales/{id}/report',
      tags: ['Admin'],
      security,
      summary: 'What happened in a sale',
      description: 'Tickets issued and admitted, orders and units sold per region, when each region sold out, checkout latency percentiles, and refused attempts by reason.',
      middleware: reader,
      request: { params: IdParam },
      responses: { 200: { description: 'The report', content: { 'application/json': { schema: SaleReportSchema } } }, 404: errorResponse('Unknown sale') },
    }),
    async (c) => {
      const sale = await loadSale(c.var.services.db.primary, c.req.valid('param').id);
      if (!sale) throw notFound('No such sale.');
      return c.json(await saleReport(c, sale), 200);
    },
  );
