/**
 * Admin API for promotions and shipping rates.
 *
 * A promotion's shape (kind, amounts, targets, region) is fixed at
 * creation: orders keep their own copy of every discount, but a merchant
 * reading "10% off audio" in a report must be able to trust what it meant.
 * Its schedule, limits, title and `active` may change. Validation mirrors
 * the CHECK constraints of `promotions` (db/schema.ts), so a bad request is
 * a 400 naming the field, never a database error.
 */
import { createRoute, z } from '@hono/zod-openapi';
import { and, eq, inArray, lt, sql, type SQL } from 'drizzle-orm';
import type { MiddlewareHandler } from 'hono';
import type { Database } from '../../db/client';
import { REGIONS, REGION_CODES, type RegionCode } from '../../db/regions';
import { categories, promotionCategories, promotions, promotionVariants, shippingRates, variants } from '../../db/schema';
import { pgError } from '../lib/db-errors';
import { ApiError, invalidRequest, notFound } from '../lib/errors';
import { newId } from '../lib/ids';
import { MoneySchema } from '../lib/money';
import { createRouter, errorResponse } from '../lib/router';
import { adminAuth } from '../middleware/admin-auth';
import { limitBody } from '../middleware/body-limit';
import { normalizeCode } from '../promotions/engine';
import { promotionSelect, toPromotion, usageCounts } from '../promotions/store';
import type { AppEnv } from '../types';

const security = [{ adminToken: [] }];
const writer: MiddlewareHandler<AppEnv>[] = [adminAuth({ roles: ['catalog'] }), limitBody(64 * 1024)];
const reader: MiddlewareHandler<AppEnv>[] = [adminAuth({ roles: ['catalog', 'fulfillment', 'readonly'] })];

const Region = z.enum(REGION_CODES);
const Instant = z.iso
  .datetime({ offset: true })
  // Postgres timestamps cannot hold year 0; nothing sensible lies outside these years.
  .refine((v) => {
    const year = new Date(v).getUTCFullYear();
    return year >= 2000 && year <= 9999;
  }, 'Must be between the years 2000 and 9999.')
  .openapi({ description: 'ISO 8601 instant (stored in UTC)', example: '2026-12-11T04:00:00Z' });
const Title = z.string().trim().min(1).max(200).regex(/^[^\u0000-\u001f\u007f-\u009f]*$/, 'Must not contain control characters.');
const Code = z
  .string()
  .trim()
  .transform(normalizeCode)
  .pipe(z.string().regex(/^[A-Z0-9][A-Z0-9_-]{2,39}$/, '3-40 letters, digits, - or _, starting with a letter or digit.'));
const Limit = z.number().int().min(1).max(100_000_000).nullable().optional();

const PromotionCreateSchema = z
  .object({
    title: Title.openapi({ description: 'Shown to shoppers on the cart and the order', example: '10% off audio' }),
    code: Code.nullable().optional().openapi({ description: 'What shoppers type (case-insensitive); none: automatic, applied to every cart that qualifies' }),
    kind: z.enum(['percentage', 'fixed', 'free_shipping', 'buy_x_get_y']),
    percentBps: z.number().int().min(1).max(10_000).optional().openapi({ description: '`percentage`: basis points off (1000 = 10%); `buy_x_get_y`: off each Y unit (10000 = free)' }),
    amount: z.number().int().min(1).max(1e12).optional().openapi({ description: '`fixed`: minor units off, in the region\'s currency (needs `region`)' }),
    region: Region.nullable().optional().openapi({ description: 'Only in this region (and its currency); none: every region (not for `fixed` or `minSubtotal`)' }),
    minSubtotal: z.number().int().min(1).max(1e12).optional().openapi({ description: 'Subtotal the cart must reach, minor units (needs `region`)' }),
    appliesTo: z.enum(['cart', 'categories', 'variants']).default('cart'),
    categories: z.array(z.string().min(1).max(100)).min(1).max(100).optional().openapi({ description: '`categories`: category slugs (sub-categories included)' }),
    skus: z.array(z.string().min(1).max(64)).min(1).max(500).optional().openapi({ description: '`variants`: the SKUs' }),
    buyQuantity: z.number().int().min(1).max(99).optional(),
    getQuantity: z.number().int().min(1).max(99).optional(),
    startsAt: Instant.optional().openapi({ description: 'Default: now' }),
    endsAt: Instant.nullable().optional(),
    usageLimit: Limit.openapi({ description: 'Orders that may use it in all (1: single-use); none: unlimited' }),
    usageLimitPerCustomer: Limit.openapi({ description: 'Orders per customer (account or email)' }),
    active: z.boolean().optional(),
  })
  .strict()
  .superRefine((p, ctx) => {
    const need = (ok: boolean, path: string, message: string) => {
      if (!ok) ctx.addIssue({ code: 'custom', path: [path], message });
    };
    need(p.kind !== 'percentage' || p.percentBps !== undefined, 'percentBps', 'A percentage promotion needs percentBps.');
    need(p.kind !== 'buy_x_get_y' || p.percentBps !== undefined, 'percentBps', 'A buy-X-get-Y promotion needs percentBps (10000 = free).');
    need(p.kind === 'percentage' || p.kind === 'buy_x_get_y' || p.percentBps === undefined, 'percentBps', `A ${p.kind} promotion takes no percentBps.`);
    need(p.kind !== 'fixed' || p.amount !== undefined, 'amount', 'A fixed promotion needs amount.');
    need(p.kind === 'fixed' || p.amount === undefined, 'amount', `A ${p.kind} promotion takes no amount.`);
    need(p.kind !== 'fixed' || !!p.region, 'region', 'A fixed amount is in one currency: name its region.');
    need(p.minSubtotal === undefined || !!p.region, 'region', 'A minimum subtotal is in one currency: name its region.');
    need(p.kind !== 'free_shipping' || p.appliesTo === 'cart', 'appliesTo', 'Free shipping applies to the whole cart.');
    need(p.kind !== 'buy_x_get_y' || p.appliesTo !== 'cart', 'appliesTo', 'A buy-X-get-Y promotion names categories or variants.');
    need((p.kind === 'buy_x_get_y') === (p.buyQuantity !== undefined && p.getQuantity !== undefined), 'buyQuantity', p.kind === 'buy_x_get_y' ? 'Needs buyQuantity and getQuantity.' : 'Only a buy-X-get-Y promotion takes buyQuantity and getQuantity.');
    need(p.appliesTo !== 'categories' || !!p.categories, 'categories', 'Name the categories.');
    need(p.appliesTo !== 'variants' || !!p.skus, 'skus', 'Name the SKUs.');
    need(p.appliesTo === 'categories' || !p.categories, 'categories', 'Only for appliesTo "categories".');
    need(p.appliesTo === 'variants' || !p.skus, 'skus', 'Only for appliesTo "variants".');
    need(!p.endsAt || Date.parse(p.endsAt) > Date.parse(p.startsAt ?? new Date().toISOString()), 'endsAt', 'Must be after startsAt.');
  })
  .openapi('PromotionCreate');

const PromotionPatchSchema = z
  .object({
    title: Title.optional(),
    startsAt: Instant.optional(),
    endsAt: Instant.nullable().optional(),
    usageLimit: Limit,
    usageLimitPerCustomer: Limit,
    active: z.boolean().optional(),
  })
  .strict()
  .openapi('PromotionPatch');

const PromotionSchema = z
  .object({
    id: z.string(),
    title: z.string(),
    code: z.string().nullable(),
    kind: z.enum(['percentage', 'fixed', 'free_shipping', 'buy_x_get_y']),
    percentBps: z.number().int().nullable(),
    amount: MoneySchema.nullable(),
    region: z.string().nullable(),
    minSubtotal: MoneySchema.nullable(),
    appliesTo: z.enum(['cart', 'categories', 'variants']),
    categoryIds: z.array(z.string()),
    variantIds: z.array(z.string()),
    buyQuantity: z.number().int().nullable(),
    getQuantity: z.number().int().nullable(),
    startsAt: z.string(),
    endsAt: z.string().nullable(),
    usageLimit: z.number().int().nullable(),
    usageLimitPerCustomer: z.number().int().nullable(),
    active: z.boolean(),
    state: z.enum(['scheduled', 'running', 'ended', 'disabled']),
    uses: z.object({ redeemed: z.number().int(), held: z.number().int() }).openapi({ description: 'Orders that used it, and checkouts holding a use now' }),
    createdAt: z.string(),
  })
  .openapi('Promotion');
type PromotionView = z.infer<typeof PromotionSchema>;

const ShippingRateSchema = z
  .object({ region: Region, amount: MoneySchema, freeOver: MoneySchema.nullable().openapi({ description: 'Goods total (after item and order discounts) from which shipping is free' }) })
  .openapi('ShippingRate');
const ShippingRateBody = z
  .object({
    amount: z.number().int().min(0).max(1e12).openapi({ description: 'Minor units of the region\'s currency', example: 500 }),
    freeOverAmount: z.number().int().min(1).max(1e12).nullable().optional(),
  })
  .strict()
  .openapi('ShippingRatePut');

const IdParam = z.object({ id: z.string().max(64).openapi({ param: { name: 'id', in: 'path' } }) });
const RegionParam = z.object({ region: z.string().max(8).openapi({ param: { name: 'region', in: 'path' }, example: 'sg' }) });

/** Loads promotions with their targets and usage, as the admin API shows them. */
async function loadViews(db: Database, where: SQL): Promise<PromotionView[]> {
  const { rows } = await db.execute<Parameters<typeof toPromotion>[0]>(sql`${promotionSelect()} where ${where} order by p.created_at desc, p.id limit 200`);
  const usage = await usageCounts(db, rows.map((r) => r.id));
  const now = Date.now();
  return rows.map((r) => {
    const p = toPromotion(r);
    const currency = p.currency;
    const state = !p.active ? 'disabled' : p.startsAt.getTime() > now ? 'scheduled' : p.endsAt && p.endsAt.getTime() <= now ? 'ended' : 'running';
    return {
      id: p.id,
      title: p.title,
      code: p.code,
      kind: p.kind,
      percentBps: p.percentBps,
      amount: p.amount !== null && currency ? { amount: p.amount, currency } : null,
      region: p.regionCode,
      minSubtotal: p.minSubtotalAmount !== null && currency ? { amount: p.minSubtotalAmount, currency } : null,
      appliesTo: p.appliesTo,
      categoryIds: [...p.categoryIds].sort(),
      variantIds: [...p.variantIds].sort(),
      buyQuantity: p.buyQuantity,
      getQuantity: p.getQuantity,
      startsAt: p.startsAt.toISOString(),
      endsAt: p.endsAt?.toISOString() ?? null,
      usageLimit: p.usageLimit,
      usageLimitPerCustomer: p.usageLimitPerCustomer,
      active: p.active,
      state,
      uses: usage.get(p.id) ?? { redeemed: 0, held: 0 },
      createdAt: p.createdAt.toISOString(),
    };
  });
}

const promotionNotFound = () => notFound('No such promotion.');

export const adminPromotionRoutes = createRouter()
  .openapi(
    createRoute({
      method: 'post',
      path: '/promotions',
      tags: ['Admin'],
      security,
      summary: 'Creates a promotion (automatic, or redeemed by a code)',
      description:
        'Stacking: at most one item promotion (on categories or variants), one order promotion (on the whole cart) and one free shipping apply to a cart, each the best for the shopper among those that qualify; a cart carries one code. Single-use and limited codes are redeemed atomically at checkout. Role `catalog`.',
      middleware: writer,
      request: { body: { required: true, content: { 'application/json': { schema: PromotionCreateSchema } } } },
      responses: {
        201: { description: 'The promotion', content: { 'application/json': { schema: PromotionSchema } } },
        400: errorResponse('Invalid body'),
        409: errorResponse('The code is taken (`code_taken`)'),
        422: errorResponse('Unknown category (`unknown_category`) or SKU (`unknown_sku`)'),
      },
    }),
    async (c) => {
      const p = c.req.valid('json');
      const db = c.var.services.db.primary;
      const id = newId('promo');
      const region = p.region ? REGIONS[p.region as RegionCode] : null;
      try {
        await db.transaction(async (tx) => {
          let categoryIds: string[] = [];
          let variantIds: string[] = [];
          if (p.categories) {
            const found = await tx.select({ id: categories.id, slug: categories.slug }).from(categories).where(inArray(categories.slug, p.categories));
            const missing = p.categories.filter((s) => !found.some((f) => f.slug === s));
            if (missing.length) throw new ApiError(422, 'unknown_category', `No category ${missing.map((m) => `"${m}"`).join(', ')}.`, { categories: missing });
            categoryIds = found.map((f) => f.id);
          }
          if (p.skus) {
            const found = await tx.select({ id: variants.id, sku: variants.sku }).from(variants).where(inArray(variants.sku, p.skus));
            const missing = p.skus.filter((s) => !found.some((f) => f.sku === s));
            if (missing.length) throw new ApiError(422, 'unknown_sku', `No variant with SKU ${missing.map((m) => `"${m}"`).join(', ')}.`, { skus: missing });
            variantIds = found.map((f) => f.id);
          }
          await tx.insert(promotions).values({
            id,
            title: p.title,
            code: p.code ?? null,
            kind: p.kind,
            percentBps: p.percentBps ?? null,
            amount: p.amount ?? null,
            regionCode: region?.code ?? null,
            currency: region?.currency ?? null,
            minSubtotalAmount: p.minSubtotal ?? null,
            appliesTo: p.appliesTo,
            buyQuantity: p.buyQuantity ?? null,
            getQuantity: p.getQuantity ?? null,
            startsAt: p.startsAt ? new Date(p.startsAt) : new Date(),
            endsAt: p.endsAt ? new Date(p.endsAt) : null,
            usageLimit: p.usageLimit ?? null,
            usageLimitPerCustomer: p.usageLimitPerCustomer ?? null,
            active: p.active ?? true,
          });
          if (categoryIds.length) await tx.insert(promotionCategories).values(categoryIds.map((categoryId) => ({ promotionId: id, categoryId })));
          if (variantIds.length) await tx.insert(promotionVariants).values(variantIds.map((variantId) => ({ promotionId: id, variantId })));
        });
      } catch (err) {
        if (err instanceof ApiError) throw err;
        const refusal = pgError(err)?.code;
        if (refusal === '23505') throw new ApiError(409, 'code_taken', `The code ${p.code} is already used by another promotion.`, { code: p.code });
        // Validation mirrors the CHECKs; this is the net for a race (an end a moment after "now").
        if (refusal === '23514' || refusal === '23503') throw new ApiError(422, 'constraint_violation', 'The promotion breaks a rule of the store (see the field rules in the API documentation).');
        throw err;
      }
      const [view] = await loadViews(db, sql`p.id = ${id}`);
      return c.json(view!, 201);
    },
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/promotions',
      tags: ['Admin'],
      security,
      summary: 'Lists promotions, newest first (200 at most per page)',
      middleware: reader,
      request: {
        query: z.object({
          code: z.string().max(40).optional().openapi({ description: 'Only the promotion with this code' }),
          before: Instant.optional().openapi({ description: 'Only promotions created before this instant (the last `createdAt` of a page, for the next)' }),
        }),
      },
      responses: { 200: { description: 'Promotions', content: { 'application/json': { schema: z.object({ items: z.array(PromotionSchema) }) } } } },
    }),
    async (c) => {
      const { code, before } = c.req.valid('query');
      const where = and(code ? eq(promotions.code, normalizeCode(code)) : undefined, before ? lt(promotions.createdAt, new Date(before)) : undefined);
      const filter = where ? sql`p.id in (select ${promotions.id} from ${promotions} where ${where})` : sql`true`;
      return c.json({ items: await loadViews(c.var.services.db.primary, filter) }, 200);
    },
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/promotions/{id}',
      tags: ['Admin'],
      security,
      summary: 'A promotion with its uses',
      middleware: reader,
      request: { params: IdParam },
      responses: { 200: { description: 'The promotion', content: { 'application/json': { schema: PromotionSchema } } }, 404: errorResponse('No such promotion') },
    }),
    async (c) => {
      const [view] = await loadViews(c.var.services.db.primary, sql`p.id = ${c.req.valid('param').id}`);
      if (!view) throw promotionNotFound();
      return c.json(view, 200);
    },
  )
  .openapi(
    createRoute({
      method: 'patch',
      path: '/promotions/{id}',
      tags: ['Admin'],
      security,
      summary: "Changes a promotion's title, schedule, limits or `active`",
      description: 'Lowering a limit below the uses already made stops further uses; it never undoes an order. Role `catalog`.',
      middleware: writer,
      request: { params: IdParam, body: { required: true, content: { 'application/json': { schema: PromotionPatchSchema } } } },
      responses: {
        200: { description: 'The promotion', content: { 'application/json': { schema: PromotionSchema } } },
        400: errorResponse('Invalid body, or an end not after the start'),
        404: errorResponse('No such promotion'),
      },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      const patch = c.req.valid('json');
      const db = c.var.services.db.primary;
      const [current] = await db.select({ startsAt: promotions.startsAt, endsAt: promotions.endsAt }).from(promotions).where(eq(promotions.id, id));
      if (!current) throw promotionNotFound();
      const startsAt = patch.startsAt ? new Date(patch.startsAt) : current.startsAt;
      const endsAt = patch.endsAt === undefined ? current.endsAt : patch.endsAt === null ? null : new Date(patch.endsAt);
      if (endsAt && endsAt <= startsAt) throw invalidRequest('endsAt must be after startsAt.', [{ in: 'body', field: 'endsAt', message: 'Must be after startsAt.' }]);
      await db
        .update(promotions)
        .set({
          ...(patch.title !== undefined ? { title: patch.title } : {}),
          startsAt,
          endsAt,
          ...(patch.usageLimit !== undefined ? { usageLimit: patch.usageLimit } : {}),
          ...(patch.usageLimitPerCustomer !== undefined ? { usageLimitPerCustomer: patch.usageLimitPerCustomer } : {}),
          ...(patch.active !== undefined ? { active: patch.active } : {}),
          updatedAt: new Date(),
        })
        .where(eq(promotions.id, id));
      const [view] = await loadViews(db, sql`p.id = ${id}`);
      return c.json(view!, 200);
    },
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/shipping-rates',
      tags: ['Admin'],
      security,
      summary: "Every region's shipping rate (a region without one ships free)",
      middleware: reader,
      responses: { 200: { description: 'Rates', content: { 'application/json': { schema: z.object({ items: z.array(ShippingRateSchema) }) } } } },
    }),
    async (c) => {
      const rows = await c.var.services.db.primary.select().from(shippingRates).orderBy(shippingRates.regionCode);
      return c.json({ items: rows.map((r) => ({ region: r.regionCode as RegionCode, amount: { amount: r.amount, currency: r.currency }, freeOver: r.freeOverAmount === null ? null : { amount: r.freeOverAmount, currency: r.currency } })) }, 200);
    },
  )
  .openapi(
    createRoute({
      method: 'put',
      path: '/shipping-rates/{region}',
      tags: ['Admin'],
      security,
      summary: "Sets a region's flat shipping rate, optionally free from a goods total on",
      description: 'Applies to carts at once and to checkouts priced from now on. Role `catalog`.',
      middleware: writer,
      request: { params: RegionParam, body: { required: true, content: { 'application/json': { schema: ShippingRateBody } } } },
      responses: { 200: { description: 'The rate', content: { 'application/json': { schema: ShippingRateSchema } } }, 400: errorResponse('Invalid body or region') },
    }),
    async (c) => {
      const code = c.req.valid('param').region;
      const region = (REGION_CODES as readonly string[]).includes(code) ? REGIONS[code as RegionCode] : null;
      if (!region) throw new ApiError(400, 'invalid_region', `Unknown region "${code.slice(0, 8)}".`);
      const { amount, freeOverAmount } = c.req.valid('json');
      await c.var.services.db.primary
        .insert(shippingRates)
        .values({ regionCode: region.code, currency: region.currency, amount, freeOverAmount: freeOverAmount ?? null })
        .onConflictDoUpdate({ target: shippingRates.regionCode, set: { amount, freeOverAmount: freeOverAmount ?? null, updatedAt: new Date() } });
      return c.json({ region: region.code, amount: { amount, currency: region.currency }, freeOver: freeOverAmount ? { amount: freeOverAmount, currency: region.currency } : null }, 200);
    },
  )
  .openapi(
    createRoute({
      method: 'delete',
      path: '/shipping-rates/{region}',
      tags: ['Admin'],
      security,
      summary: "Removes a region's shipping rate: the region ships free",
      middleware: writer,
      request: { params: RegionParam },
      responses: { 204: { description: 'Removed' }, 404: errorResponse('The region has no rate') },
    }),
    async (c) => {
      const deleted = await c.var.services.db.primary.delete(shippingRates).where(eq(shippingRates.regionCode, c.req.valid('param').region)).returning({ r: shippingRates.regionCode });
      if (!deleted.length) throw notFound('That region has no shipping rate.');
      return c.body(null, 204);
    },
  );
