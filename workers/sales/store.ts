/**
 * Flash sales in the origin: what a sale is, which sales are open for a
 * cart's variants, and the admin writes. Postgres is the source of truth;
 * every write is followed by a push of the settings to the sale's queue
 * objects (workers/sales/tickets.ts) and a republish of its products.
 */
import { and, eq, inArray, sql } from 'drizzle-orm';
import type { Database } from '../../db/client';
import type { RegionCode } from '../../db/regions';
import { products, saleRegions, sales, saleVariants, variants } from '../../db/schema';
import { ApiError } from '../lib/errors';
import { newId } from '../lib/ids';
import type { SaleQueueConfig } from '../../durable-objects/sale-queue';

/** A sale as the admin API shows it. */
export interface Sale {
  id: string;
  name: string;
  startsAt: string;
  endsAt: string | null;
  endedAt: string | null;
  perShopperCap: number;
  admissionRate: number;
  queueShards: number;
  admissionTtlSeconds: number;
  turnstile: boolean;
  regions: RegionCode[];
  variants: { variantId: string; sku: string; productSlug: string; productId: string }[];
  state: SaleState;
  createdAt: string;
  updatedAt: string;
}

/** `scheduled` before the start, `live` while it runs, `ended` after its end (planned or early). */
export type SaleState = 'scheduled' | 'live' | 'ended';

/** What a merchant sends to create a sale. */
export interface SaleInput {
  name: string;
  skus: string[];
  regions: RegionCode[];
  startsAt: string;
  endsAt?: string | null;
  perShopperCap: number;
  admissionRate: number;
  queueShards?: number;
  admissionTtlSeconds?: number;
  turnstile?: boolean;
}

/** What may change; the variants, regions, start, cap and shards only before the start. */
export type SalePatch = Partial<SaleInput>;

/** When the sale stops taking shoppers: its planned end or a merchant's early end, whichever is first (epoch ms, or null). */
export function effectiveEnd(sale: Pick<Sale, 'endsAt' | 'endedAt'>): number | null {
  const ends = [sale.endsAt, sale.endedAt].filter((t): t is string => t !== null).map((t) => Date.parse(t));
  return ends.length ? Math.min(...ends) : null;
}

function stateOf(sale: Pick<Sale, 'startsAt' | 'endsAt' | 'endedAt'>, now = Date.now()): SaleState {
  const end = effectiveEnd(sale);
  if (end !== null && now >= end) return 'ended';
  return now >= Date.parse(sale.startsAt) ? 'live' : 'scheduled';
}

/** The sale `id`, or null. */
export async function loadSale(db: Database, id: string): Promise<Sale | null> {
  const [row] = await db.select().from(sales).where(eq(sales.id, id));
  if (!row) return null;
  const [regionRows, variantRows] = await Promise.all([
    db.select({ code: saleRegions.regionCode }).from(saleRegions).where(eq(saleRegions.saleId, id)),
    db
      .select({ variantId: variants.id, sku: variants.sku, productSlug: products.slug, productId: products.id })
      .from(saleVariants)
      .innerJoin(variants, eq(variants.id, saleVariants.variantId))
      .innerJoin(products, eq(products.id, variants.productId))
      .where(eq(saleVariants.saleId, id))
      .orderBy(variants.sku),
  ]);
  const sale = {
    id: row.id,
    name: row.name,
    startsAt: row.startsAt.toISOString(),
    endsAt: row.endsAt?.toISOString() ?? null,
    endedAt: row.endedAt?.toISOString() ?? null,
    perShopperCap: row.perShopperCap,
    admissionRate: row.admissionRate,
    queueShards: row.queueShards,
    admissionTtlSeconds: row.admissionTtlSeconds,
    turnstile: row.turnstile,
    regions: regionRows.map((r) => r.code as RegionCode).sort(),
    variants: variantRows,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
  return { ...sale, state: stateOf(sale) };
}

/** Sales, newest start first. */
export async function listSales(db: Database, limit = 100): Promise<Sale[]> {
  const rows = await db.select({ id: sales.id }).from(sales).orderBy(sql`${sales.startsAt} desc`).limit(limit);
  return (await Promise.all(rows.map((r) => loadSale(db, r.id)))).filter((s): s is Sale => s !== null);
}

const saleMemo = new Map<string, { sale: Sale | null; until: number }>();
const saleLoads = new Map<string, Promise<Sale | null>>();
/** How long an isolate reuses a sale it read for shoppers (a change reaches them within this). */
export const SALE_MEMO_MS = 2_000;
/** KV lifetime of a sale's shopper document; rewritten on every admin change. */
const SALE_DOC_TTL_SECONDS = 7 * 86_400;
/** How long a request waits on another request's origin read before reading itself. */
const SHARED_LOAD_WAIT_MS = 3_000;

/** The KV key of a sale's document for shoppers. */
export function saleDocKey(id: string): string {
  return `sale:v1:${id}`;
}

/** Writes the sale's document for shoppers to KV (every admin change does, after the write commits). */
export async function publishSale(kv: KVNamespace, sale: Sale): Promise<void> {
  await kv.put(saleDocKey(sale.id), JSON.stringify(sale), { expirationTtl: SALE_DOC_TTL_SECONDS });
}

/**
 * The sale for a shopper's request: this isolate's copy (for
 * {@link SALE_MEMO_MS}), else the KV document the admin API writes, else
 * the origin, read once per isolate however many requests miss at the same
 * moment (at the start of a sale every shopper asks for it at once, and one
 * origin read each would make Postgres the sale's ceiling), then put in KV.
 */
export async function saleForShoppers(db: Database, kv: KVNamespace, id: string): Promise<Sale | null> {
  const now = Date.now();
  const hit = saleMemo.get(id);
  if (hit && hit.until > now) return hit.sale && { ...hit.sale, state: stateOf(hit.sale, now) };
  const doc = await kv.get<Sale>(saleDocKey(id), { type: 'json' }).catch(() => null);
  const sale = doc ?? (await sharedLoad(db, kv, id));
  if (saleMemo.size > 1_000) saleMemo.clear();
  saleMemo.set(id, { sale, until: Date.now() + SALE_MEMO_MS });
  return sale && { ...sale, state: stateOf(sale) };
}

/** One origin read of a sale per isolate at a time; a follower that waits too long reads for itself. */
async function sharedLoad(db: Database, kv: KVNamespace, id: string): Promise<Sale | null> {
  const running = saleLoads.get(id);
  if (running) {
    const shared = await Promise.race([running.catch(() => undefined), new Promise<undefined>((r) => setTimeout(r, SHARED_LOAD_WAIT_MS))]);
    if (shared !== undefined) return shared;
  }
  const load = loadSale(db, id).then(async (sale) => {
    if (sale) await publishSale(kv, sale).catch(() => {});
    return sale;
  });
  saleLoads.set(id, load);
  try {
    return await load;
  } finally {
    if (saleLoads.get(id) === load) saleLoads.delete(id);
  }
}

/** The settings a sale's queue objects run on. */
export function queueConfig(sale: Sale): Omit<SaleQueueConfig, 'region' | 'shard'> & { regions: RegionCode[] } {
  return {
    saleId: sale.id,
    regions: sale.regions,
    shards: sale.queueShards,
    startsAt: Date.parse(sale.startsAt),
    endsAt: effectiveEnd(sale),
    admissionRate: sale.admissionRate,
    admissionTtlMs: sale.admissionTtlSeconds * 1000,
    variantIds: sale.variants.map((v) => v.variantId),
    version: Date.parse(sale.updatedAt),
  };
}

/** A sale open (scheduled or live) for some of a cart's variants in a region. */
export interface OpenSale {
  saleId: string;
  cap: number;
  startsAt: number;
  queueShards: number;
  /** The sale's variants among those asked about. */
  variantIds: string[];
}

/**
 * The sales not yet ended that sell any of `variantIds` in `region`: a
 * checkout of those variants must come through the sale's queue, within its
 * cap. Read on the primary by the checkout saga.
 */
export async function openSalesFor(db: Database, region: RegionCode, variantIds: string[]): Promise<OpenSale[]> {
  if (variantIds.length === 0) return [];
  const rows = await db
    .select({ saleId: sales.id, cap: sales.perShopperCap, startsAt: sales.startsAt, queueShards: sales.queueShards, variantId: saleVariants.variantId })
    .from(sales)
    .innerJoin(saleVariants, eq(saleVariants.saleId, sales.id))
    .innerJoin(saleRegions, and(eq(saleRegions.saleId, sales.id), eq(saleRegions.regionCode, region)))
    .where(
      and(
        inArray(saleVariants.variantId, variantIds),
        sql`${sales.endedAt} is null`,
        sql`(${sales.endsAt} is null or ${sales.endsAt} > now())`,
      ),
    );
  const bySale = new Map<string, OpenSale>();
  for (const r of rows) {
    const s = bySale.get(r.saleId) ?? { saleId: r.saleId, cap: r.cap, startsAt: r.startsAt.getTime(), queueShards: r.queueShards, variantIds: [] };
    s.variantIds.push(r.variantId);
    bySale.set(r.saleId, s);
  }
  return [...bySale.values()];
}

/** Which of `variantIds` are in a sale not yet ended, in any region: they never borrow stock across regions. */
export async function variantsInOpenSales(db: Database, variantIds: string[]): Promise<Set<string>> {
  if (variantIds.length === 0) return new Set();
  const rows = await db
    .selectDistinct({ variantId: saleVariants.variantId })
    .from(saleVariants)
    .innerJoin(sales, eq(sales.id, saleVariants.saleId))
    .where(and(inArray(saleVariants.variantId, variantIds), sql`${sales.endedAt} is null`, sql`(${sales.endsAt} is null or ${sales.endsAt} > now())`));
  return new Set(rows.map((r) => r.variantId));
}

/** The variants of `skus`; 422 `unknown_sku` naming the missing ones. */
async function variantsOfSkus(tx: Database, skus: string[]): Promise<{ id: string; sku: string }[]> {
  const rows = await tx.select({ id: variants.id, sku: variants.sku }).from(variants).where(inArray(variants.sku, skus));
  const missing = skus.filter((s) => !rows.some((r) => r.sku === s));
  if (missing.length) throw new ApiError(422, 'unknown_sku', `No variant with SKU ${missing.join(', ')}.`, { skus: missing });
  return rows;
}

/**
 * Refuses a variant that another open sale already sells in one of the same
 * regions: two caps and two queues for one shelf would contradict each
 * other. Runs under per-variant advisory locks, so two sales created at once
 * cannot both pass.
 */
async function assertNoOverlap(tx: Database, saleId: string, variantIds: string[], regions: RegionCode[]): Promise<void> {
  for (const id of [...variantIds].sort()) await tx.execute(sql`select pg_advisory_xact_lock(hashtext(${`sale-variant:${id}`}))`);
  const clash = await tx
    .select({ saleId: sales.id, sku: variants.sku, region: saleRegions.regionCode })
    .from(saleVariants)
    .innerJoin(sales, eq(sales.id, saleVariants.saleId))
    .innerJoin(saleRegions, eq(saleRegions.saleId, sales.id))
    .innerJoin(variants, eq(variants.id, saleVariants.variantId))
    .where(
      and(
        inArray(saleVariants.variantId, variantIds),
        inArray(saleRegions.regionCode, regions),
        sql`${sales.id} <> ${saleId}`,
        sql`${sales.endedAt} is null`,
        sql`(${sales.endsAt} is null or ${sales.endsAt} > now())`,
      ),
    )
    .limit(5);
  if (clash.length) {
    throw new ApiError(409, 'variant_in_sale', `SKU ${clash[0]!.sku} is already in sale ${clash[0]!.saleId} in ${clash[0]!.region}.`, { clashes: clash });
  }
}

/** Creates a sale; answers it as stored. */
export async function createSale(db: Database, input: SaleInput): Promise<Sale> {
  const id = newId('sale');
  await db.transaction(async (tx) => {
    const found = await variantsOfSkus(tx as unknown as Database, [...new Set(input.skus)]);
    await assertNoOverlap(tx as unknown as Database, id, found.map((v) => v.id), input.regions);
    await tx.insert(sales).values({
      id,
      name: input.name,
      startsAt: new Date(input.startsAt),
      endsAt: input.endsAt ? new Date(input.endsAt) : null,
      perShopperCap: input.perShopperCap,
      admissionRate: input.admissionRate,
      queueShards: input.queueShards ?? 1,
      admissionTtlSeconds: input.admissionTtlSeconds ?? 600,
      turnstile: input.turnstile ?? true,
    });
    await tx.insert(saleVariants).values(found.map((v) => ({ saleId: id, variantId: v.id })));
    await tx.insert(saleRegions).values([...new Set(input.regions)].map((code) => ({ saleId: id, regionCode: code })));
  });
  return (await loadSale(db, id))!;
}

/** Fields that shape the queue and the caps: fixed once shoppers are in it. */
const FIXED_AT_START = ['skus', 'regions', 'startsAt', 'perShopperCap', 'queueShards'] as const;

/** 422 `starts_in_past` for a start already in the past: a sale must be announced before it opens. */
export function assertFutureStart(startsAt: string | undefined, now = Date.now()): void {
  if (startsAt !== undefined && Date.parse(startsAt) <= now) {
    throw new ApiError(422, 'starts_in_past', 'A sale must start in the future, so shoppers can see the countdown and the catalog is warm.', { startsAt });
  }
}

/** Changes a sale; 409 `sale_started` for a field that is fixed once it started, `sale_ended` after its end. */
export async function updateSale(db: Database, id: string, patch: SalePatch): Promise<Sale | null> {
  const current = await loadSale(db, id);
  if (!current) return null;
  if (current.state === 'ended') throw new ApiError(409, 'sale_ended', 'This sale has ended; create a new one.');
  const fixed = FIXED_AT_START.filter((k) => patch[k] !== undefined);
  if (current.state === 'live' && fixed.length) {
    throw new ApiError(409, 'sale_started', `The sale has started: ${fixed.join(', ')} can no longer change.`, { fields: fixed });
  }
  assertFutureStart(patch.startsAt);
  const startsAt = patch.startsAt ?? current.startsAt;
  const endsAt = patch.endsAt === undefined ? current.endsAt : patch.endsAt;
  if (endsAt !== null && Date.parse(endsAt) <= Date.parse(startsAt)) {
    throw new ApiError(422, 'invalid_window', 'The sale must end after it starts.', { startsAt, endsAt });
  }
  await db.transaction(async (tx) => {
    const t = tx as unknown as Database;
    // Checked again under the row lock: a change arriving just as the sale
    // starts (or as another PATCH ends it) must not slip past the rules above.
    const locked = await t.execute<{ starts_at: string; ended: boolean }>(
      sql`select starts_at, (ended_at is not null or (ends_at is not null and ends_at <= now())) as ended from sales where id = ${id} for update`,
    );
    const row = locked.rows[0];
    if (!row) throw new ApiError(404, 'not_found', 'No such sale.');
    if (row.ended) throw new ApiError(409, 'sale_ended', 'This sale has ended; create a new one.');
    if (fixed.length && Date.parse(String(row.starts_at)) <= Date.now()) {
      throw new ApiError(409, 'sale_started', `The sale has started: ${fixed.join(', ')} can no longer change.`, { fields: fixed });
    }
    const variantIds = patch.skus ? (await variantsOfSkus(t, [...new Set(patch.skus)])).map((v) => v.id) : current.variants.map((v) => v.variantId);
    const regions = patch.regions ?? current.regions;
    if (patch.skus || patch.regions) await assertNoOverlap(t, id, variantIds, regions);
    await tx
      .update(sales)
      .set({
        ...(patch.name !== undefined ? { name: patch.name } : {}),
        startsAt: new Date(startsAt),
        endsAt: endsAt === null ? null : new Date(endsAt),
        ...(patch.perShopperCap !== undefined ? { perShopperCap: patch.perShopperCap } : {}),
        ...(patch.admissionRate !== undefined ? { admissionRate: patch.admissionRate } : {}),
        ...(patch.queueShards !== undefined ? { queueShards: patch.queueShards } : {}),
        ...(patch.admissionTtlSeconds !== undefined ? { admissionTtlSeconds: patch.admissionTtlSeconds } : {}),
        ...(patch.turnstile !== undefined ? { turnstile: patch.turnstile } : {}),
        updatedAt: new Date(),
      })
      .where(eq(sales.id, id));
    if (patch.skus) {
      await tx.delete(saleVariants).where(eq(saleVariants.saleId, id));
      await tx.insert(saleVariants).values(variantIds.map((variantId) => ({ saleId: id, variantId })));
    }
    if (patch.regions) {
      await tx.delete(saleRegions).where(eq(saleRegions.saleId, id));
      await tx.insert(saleRegions).values([...new Set(patch.regions)].map((code) => ({ saleId: id, regionCode: code })));
    }
  });
  return loadSale(db, id);
}

/** Ends a sale now (idempotent: a sale already ended keeps its end). */
export async function endSale(db: Database, id: string): Promise<Sale | null> {
  await db.update(sales).set({ endedAt: sql`coalesce(${sales.endedAt}, now())`, updatedAt: new Date() }).where(eq(sales.id, id));
  return loadSale(db, id);
}
