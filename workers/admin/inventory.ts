/**
 * Admin inventory API. Postgres holds what the merchant says was received
 * per variant per region (the source of truth); the region's InventoryShard
 * objects hold how it is split into available / held / sold right now. A
 * write updates Postgres in a transaction, then pushes the new split to the
 * shards.
 */
import { createRoute, z } from '@hono/zod-openapi';
import { and, eq, inArray, sql } from 'drizzle-orm';
import type { Context, MiddlewareHandler } from 'hono';
import { REGION_CODES, type RegionCode } from '../../db/regions';
import { orderLines, orders, stock, variants } from '../../db/schema';
import { publishChange } from '../catalog/publish';
import { ApiError, notFound } from '../lib/errors';
import { createRouter, errorResponse } from '../lib/router';
import { evenSplit, forgetStockConfig, regionLevels, SHARDS_PER_REGION, shardsOf, shardStub, type RegionLevel } from '../inventory/shards';
import { clearSoldOut } from '../inventory/soldout';
import { adminAuth } from '../middleware/admin-auth';
import { limitBody } from '../middleware/body-limit';
import type { AppEnv } from '../types';

const Region = z.enum(REGION_CODES);
const SkuParam = z.object({ sku: z.string().min(1).max(64).openapi({ example: 'PSR-696241-1' }) });
const security = [{ adminToken: [] }];
const writer: MiddlewareHandler<AppEnv>[] = [adminAuth({ roles: ['catalog'] }), limitBody(16 * 1024)];
const reader: MiddlewareHandler<AppEnv>[] = [adminAuth({ roles: ['catalog', 'fulfillment', 'readonly'] })];

const LevelSchema = z.object({
  received: z.number().int(),
  available: z.number().int(),
  held: z.number().int(),
  sold: z.number().int(),
  shards: z.number().int().openapi({ description: 'Shards the stock is split over (more than 1 for a flash sale)' }),
  borrowFrom: z.array(Region),
});
const InventorySchema = z
  .object({ sku: z.string(), variantId: z.string(), regions: z.record(z.string(), LevelSchema) })
  .openapi('Inventory', { description: 'Per region: available + held + sold = received' });

/** The variant of a SKU, or 404. */
async function variantOf(c: Context<AppEnv>, sku: string): Promise<{ id: string; productId: string }> {
  const [row] = await c.var.services.db.primary.select({ id: variants.id, productId: variants.productId }).from(variants).where(eq(variants.sku, sku));
  if (!row) throw notFound(`No variant with SKU ${sku}.`);
  return row;
}

/** The inventory view of a variant in every region. */
async function inventoryView(c: Context<AppEnv>, sku: string, variantId: string) {
  const configs = await c.var.services.db.primary.select().from(stock).where(eq(stock.variantId, variantId));
  const regions: Record<string, z.infer<typeof LevelSchema>> = {};
  await Promise.all(
    REGION_CODES.map(async (region) => {
      const cfg = configs.find((r) => r.regionCode === region);
      const live = (await regionLevels(c.env, region, [variantId])).get(variantId)!;
      // Shards that were never loaded hold nothing yet: what the origin says was received is all available.
      const level: RegionLevel = live.known ? live : { received: cfg?.received ?? 0, available: cfg?.received ?? 0, held: 0, sold: 0 };
      if (!cfg && !live.known) return;
      regions[region] = { ...level, shards: cfg?.shards ?? 1, borrowFrom: (cfg?.borrowFrom ?? []) as RegionCode[] };
    }),
  );
  return { sku, variantId, regions };
}

/**
 * Gives the region's shards their new shares of `received`: each shard keeps
 * what it has held or sold, and the units still available are spread evenly
 * over the variant's active shards (shards it no longer uses keep none).
 * A shard whose holds moved in between refuses; the split is then recomputed.
 */
async function distribute(env: Env, region: RegionCode, variantId: string, received: number, shards: number): Promise<void> {
  const active = shardsOf(variantId, shards);
  for (let attempt = 0; attempt < 5; attempt++) {
    const all = Array.from({ length: SHARDS_PER_REGION }, (_, i) => i);
    const levels = await Promise.all(all.map(async (i) => ({ i, level: (await shardStub(env, region, i).levels([variantId]))[0]! })));
    const committed = levels.reduce((n, { level }) => n + level.held + level.sold, 0);
    if (received < committed) throw new ApiError(422, 'below_committed', `Received ${received} is below the ${committed} units held or sold.`);
    const shares = evenSplit(received - committed, active.length);
    const targets = levels
      .map(({ i, level }) => ({ i, target: level.held + level.sold + (active.includes(i) ? shares[active.indexOf(i)]! : 0), level }))
      .filter(({ i, level, target }) => level.known || active.includes(i) || target > 0);
    const results = await Promise.all(targets.map(({ i, target }) => shardStub(env, region, i).setReceived(variantId, target)));
    if (results.every((r) => r.ok)) return;
    // A shard's held count grew between our read and our write: try again with fresh levels.
  }
  throw new ApiError(409, 'conflict', 'Stock is moving too fast to set right now; retry.');
}

export const adminInventoryRoutes = createRouter()
  .openapi(
    createRoute({
      method: 'get',
      path: '/inventory/{sku}',
      tags: ['Admin'],
      security,
      middleware: reader,
      summary: 'Received, available, held and sold per region',
      request: { params: SkuParam },
      responses: {
        200: { description: 'Stock of the variant', content: { 'application/json': { schema: InventorySchema } } },
        404: errorResponse('Unknown SKU'),
      },
    }),
    async (c) => {
      const { sku } = c.req.valid('param');
      const variant = await variantOf(c, sku);
      return c.json(await inventoryView(c, sku, variant.id), 200);
    },
  )
  .openapi(
    createRoute({
      method: 'put',
      path: '/inventory/{sku}',
      tags: ['Admin'],
      security,
      middleware: writer,
      summary: 'Sets the stock received in a region (all units ever made sellable there)',
      request: {
        params: SkuParam,
        body: {
          required: true,
          content: { 'application/json': { schema: z.object({ region: Region, quantity: z.number().int().min(0).max(10_000_000) }).strict() } },
        },
      },
      responses: {
        200: { description: 'New stock', content: { 'application/json': { schema: InventorySchema } } },
        400: errorResponse('Invalid body'),
        404: errorResponse('Unknown SKU'),
        409: errorResponse('Stock moved during the update; retry'),
        422: errorResponse('Below what is held and sold (`below_committed`)'),
      },
    }),
    async (c) => {
      const { sku } = c.req.valid('param');
      const { region, quantity } = c.req.valid('json');
      const variant = await variantOf(c, sku);
      const db = c.var.services.db.primary;
      const [cfg] = await db.select().from(stock).where(and(eq(stock.variantId, variant.id), eq(stock.regionCode, region)));
      // Check first, so a refused change leaves Postgres untouched.
      const live = (await regionLevels(c.env, region, [variant.id])).get(variant.id)!;
      if (quantity < live.held + live.sold) {
        throw new ApiError(422, 'below_committed', `Received ${quantity} is below the ${live.held + live.sold} units held or sold in ${region}.`, {
          held: live.held,
          sold: live.sold,
        });
      }
      // The origin's row commits only if the shards took the new split, so a
      // refused or failed push leaves both as they were.
      await db.transaction(async (tx) => {
        await tx
          .insert(stock)
          .values({ variantId: variant.id, regionCode: region, received: quantity })
          .onConflictDoUpdate({ target: [stock.variantId, stock.regionCode], set: { received: quantity, updatedAt: new Date() } });
        await distribute(c.env, region, variant.id, quantity, cfg?.shards ?? 1);
      });
      await clearSoldOut(c.var.services.redis, region, [variant.id]).catch(() => {});
      await republishVariant(c, variant.productId);
      return c.json(await inventoryView(c, sku, variant.id), 200);
    },
  )
  .openapi(
    createRoute({
      method: 'put',
      path: '/inventory/{sku}/sharding',
      tags: ['Admin'],
      security,
      middleware: writer,
      summary: 'Splits a hot variant over several shards (flash sale) and sets which regions it may borrow from',
      request: {
        params: SkuParam,
        body: {
          required: true,
          content: {
            'application/json': {
              schema: z
                .object({
                  region: Region,
                  shards: z.number().int().min(1).max(SHARDS_PER_REGION),
                  borrowFrom: z.array(Region).max(6).optional(),
                })
                .strict(),
            },
          },
        },
      },
      responses: {
        200: { description: 'New stock split', content: { 'application/json': { schema: InventorySchema } } },
        400: errorResponse('Invalid body'),
        404: errorResponse('Unknown SKU'),
      },
    }),
    async (c) => {
      const { sku } = c.req.valid('param');
      const { region, shards, borrowFrom } = c.req.valid('json');
      if (borrowFrom?.includes(region)) {
        throw new ApiError(400, 'invalid_request', 'A region cannot borrow from itself.', [{ in: 'body', field: 'borrowFrom', message: 'Contains the region itself.' }]);
      }
      const variant = await variantOf(c, sku);
      const db = c.var.services.db.primary;
      await db.transaction(async (tx) => {
        const [row] = await tx
          .insert(stock)
          .values({ variantId: variant.id, regionCode: region, received: 0, shards, borrowFrom: borrowFrom ?? [] })
          .onConflictDoUpdate({
            target: [stock.variantId, stock.regionCode],
            set: { shards, ...(borrowFrom ? { borrowFrom } : {}), updatedAt: new Date() },
          })
          .returning({ received: stock.received });
        await distribute(c.env, region, variant.id, row!.received, shards);
      });
      forgetStockConfig();
      return c.json(await inventoryView(c, sku, variant.id), 200);
    },
  )
  .openapi(
    createRoute({
      method: 'post',
      path: '/inventory/reconcile',
      tags: ['Admin'],
      security,
      middleware: writer,
      summary: "Compares the shards' sold counts with order lines in Postgres; optionally repairs",
      description:
        'For each variant (all with orders, or the SKUs given), per region: units sold according to the shards vs units on confirmed or fulfilled orders. ' +
        'With `repair: true`, shards that count more sold than orders hold get the difference back as available (restock); a shortfall is reported, never invented.',
      request: {
        body: {
          required: true,
          content: {
            'application/json': {
              schema: z.object({ skus: z.array(z.string().max(64)).max(500).optional(), repair: z.boolean().default(false) }).strict(),
            },
          },
        },
      },
      responses: {
        200: {
          description: 'Drift per variant and region',
          content: {
            'application/json': {
              schema: z.object({
                checked: z.number().int(),
                drift: z.array(
                  z.object({ sku: z.string(), region: z.string(), shardSold: z.number().int(), orderedUnits: z.number().int(), repaired: z.boolean() }),
                ),
              }),
            },
          },
        },
      },
    }),
    async (c) => {
      const { skus, repair } = c.req.valid('json');
      const db = c.var.services.db.primary;
      const ordered = await db
        .select({
          variantId: orderLines.variantId,
          sku: variants.sku,
          region: orders.regionCode,
          units: sql<number>`sum(${orderLines.quantity})::int`,
        })
        .from(orderLines)
        .innerJoin(orders, eq(orders.id, orderLines.orderId))
        .innerJoin(variants, eq(variants.id, orderLines.variantId))
        .where(and(inArray(orders.status, ['confirmed', 'fulfilled']), skus ? inArray(variants.sku, skus) : undefined))
        .groupBy(orderLines.variantId, variants.sku, orders.regionCode)
        .limit(5_000);
      const named = skus?.length ? await db.select({ id: variants.id, sku: variants.sku }).from(variants).where(inArray(variants.sku, skus)) : [];
      const checks = new Map<string, { variantId: string; sku: string; region: RegionCode; units: number }>();
      for (const o of ordered) checks.set(`${o.variantId}:${o.region}`, { variantId: o.variantId, sku: o.sku, region: o.region as RegionCode, units: o.units });
      for (const v of named) for (const region of REGION_CODES) if (!checks.has(`${v.id}:${region}`)) checks.set(`${v.id}:${region}`, { variantId: v.id, sku: v.sku, region, units: 0 });

      const drift: { sku: string; region: string; shardSold: number; orderedUnits: number; repaired: boolean }[] = [];
      const stamp = Date.now();
      for (const check of checks.values()) {
        const perShard = await Promise.all(
          Array.from({ length: SHARDS_PER_REGION }, async (_, i) => ({ i, level: (await shardStub(c.env, check.region, i).levels([check.variantId]))[0]! })),
        );
        const shardSold = perShard.reduce((n, s) => n + s.level.sold, 0);
        if (shardSold === check.units) continue;
        let repaired = false;
        if (repair && shardSold > check.units) {
          let excess = shardSold - check.units;
          for (const { i, level } of perShard) {
            const take = Math.min(excess, level.sold);
            if (take <= 0) continue;
            const r = await shardStub(c.env, check.region, i).restock(`reconcile:${stamp}:${check.variantId}:${i}`, check.variantId, take);
            if (r.ok) excess -= take;
          }
          repaired = excess === 0;
        }
        drift.push({ sku: check.sku, region: check.region, shardSold, orderedUnits: check.units, repaired });
      }
      return c.json({ checked: checks.size, drift }, 200);
    },
  );

/** Republishes the product a stock change belongs to (listings show an availability flag). */
async function republishVariant(c: Context<AppEnv>, productId: string): Promise<void> {
  const db = c.var.services.db.primary;
  const { rows } = await db.execute<{ slug: string; category_id: string }>(sql`select slug, category_id from products where id = ${productId}`);
  const row = rows[0];
  if (row) await publishChange(db, c.env.CATALOG, { slugs: [row.slug], categoryIds: [row.category_id] });
}
