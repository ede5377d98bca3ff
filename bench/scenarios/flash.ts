/**
 * The flash-sale scenarios: reservations of one unit of one variant, as fast
 * as wrk can ask, through the real `reserveAcross` and the real
 * `InventoryShard` objects (bench/flash-worker.js), with stock and sharding
 * set through the store's real admin API beforehand and the counts checked
 * through it afterwards.
 *
 * - `flash-object`: the object's own cost: `InventoryShard.reserve` on the
 *   variant's one shard, called straight from the Worker (no reserveAcross);
 * - `flash-1-shard`: a large stock on one shard (never runs out in the window);
 * - `flash-K-shards`: the same stock split over K shards (BENCH_FLASH_SHARDS, 8);
 * - `flash-sellout`: a real sale, 1,000 units (BENCH_FLASH_SALE_UNITS) over K
 *   shards, hammered from cold (no warm-up) until long after they are gone;
 * - `flash-sellout-1-shard`: the same sale on one shard.
 *
 * Each scenario has a variant of its own (holds last an hour, so a variant's
 * stock cannot be set back below them), and the Postgres stock row it changed
 * is put back afterwards (a BENCH_DATABASE_URL database is not dropped).
 */
import { Redis } from 'ioredis';
import pg from 'pg';
import { buildSeed, seedFixtures } from '../../db/seed';
import type { RunningWorker } from '../lib/workers';
import type { WrkResult } from '../lib/wrk';
import type { RequestLine, Scenario } from './catalog';
import { envInt } from '../lib/settings';

/** What a flash scenario sets up. */
export interface FlashSpec {
  variantId: string;
  sku: string;
  region: 'sg';
  shards: number;
  /** Units received in the region (set through the admin API). */
  stock: number;
  /** A sale that must sell out: no warm-up, and every unit must go, exactly once. */
  sale: boolean;
}

/** Settings (env): BENCH_FLASH_SHARDS (8), BENCH_FLASH_STOCK (1,000,000), BENCH_FLASH_SALE_UNITS (1,000). */
export interface FlashSettings {
  shards: number;
  stock: number;
  saleUnits: number;
}

export function flashSettings(env: NodeJS.ProcessEnv): FlashSettings {
  const num = (name: string, fallback: number, min: number, max: number) => envInt(env, name, fallback, min, max);
  // Shards per region is 16 (workers/inventory/shards.ts); the admin API takes 1..16.
  return { shards: num('BENCH_FLASH_SHARDS', 8, 2, 16), stock: num('BENCH_FLASH_STOCK', 1_000_000, 1, 10_000_000), saleUnits: num('BENCH_FLASH_SALE_UNITS', 1_000, 1, 1_000_000) };
}

/** `count` variants: the hot variant of the seed, then the next live variants sold in Singapore (one per scenario). */
function pickVariants(count: number): { id: string; sku: string }[] {
  const fx = seedFixtures();
  const data = buildSeed();
  const activeProducts = new Set(data.products.filter((p) => p.status === 'active').map((p) => p.id));
  const inSg = new Set(data.prices.filter((p) => p.regionCode === 'sg').map((p) => p.variantId));
  const skip = new Set([fx.hotVariantId, fx.soldOutVariantId]);
  const others = data.variants.filter((v) => v.status === 'active' && activeProducts.has(v.productId) && inSg.has(v.id) && !skip.has(v.id));
  if (others.length < count - 1) throw new Error('the seed has too few live variants sold in sg for the flash scenarios');
  return [{ id: fx.hotVariantId, sku: fx.hotVariantSku }, ...others.slice(0, count - 1).map((v) => ({ id: v.id, sku: v.sku }))];
}

export function flashScenarios(settings: FlashSettings): Scenario[] {
  type V = { id: string; sku: string };
  const [one, many, sale, object, sale1] = pickVariants(5) as [V, V, V, V, V];
  const line = (variantId: string, route = '/reserve'): RequestLine[] => [
    { path: `${route}?variant=${encodeURIComponent(variantId)}&region=sg&qty=1`, region: '', method: 'POST' },
  ];
  const k = settings.shards;
  return [
    {
      name: 'flash-object',
      title: `\`InventoryShard.reserve\` of 1 unit called straight from the Worker, ${settings.stock.toLocaleString('en')} units on 1 shard: the object's own work, without reserveAcross`,
      target: 'flash',
      mode: 'random',
      measure: line(object.id, '/reserve-object'),
      expect: '-',
      flash: { variantId: object.id, sku: object.sku, region: 'sg', shards: 1, stock: settings.stock, sale: false },
    },
    {
      name: 'flash-1-shard',
      title: `Reserve 1 unit of the hot variant, ${settings.stock.toLocaleString('en')} units on 1 shard (never runs out): \`reserveAcross\` -> \`InventoryShard.reserve\``,
      target: 'flash',
      mode: 'random',
      measure: line(one.id),
      expect: '-',
      flash: { variantId: one.id, sku: one.sku, region: 'sg', shards: 1, stock: settings.stock, sale: false },
    },
    {
      name: 'flash-K-shards',
      title: `The same, ${settings.stock.toLocaleString('en')} units split over ${k} shards`,
      target: 'flash',
      mode: 'random',
      measure: line(many.id),
      expect: '-',
      flash: { variantId: many.id, sku: many.sku, region: 'sg', shards: k, stock: settings.stock, sale: false },
    },
    {
      name: 'flash-sellout',
      title: `A sale: ${settings.saleUnits.toLocaleString('en')} units over ${k} shards, hammered from cold (no warm-up) until well after they are gone`,
      target: 'flash',
      mode: 'random',
      measure: line(sale.id),
      expect: '-',
      noWarmup: true,
      // Long enough to sell out and then answer "sold out" for a while, whatever BENCH_DURATION says.
      minDurationSeconds: 20,
      flash: { variantId: sale.id, sku: sale.sku, region: 'sg', shards: k, stock: settings.saleUnits, sale: true },
    },
    {
      name: 'flash-sellout-1-shard',
      title: `The same sale, ${settings.saleUnits.toLocaleString('en')} units on 1 shard`,
      target: 'flash',
      mode: 'random',
      measure: line(sale1.id),
      expect: '-',
      noWarmup: true,
      minDurationSeconds: 20,
      flash: { variantId: sale1.id, sku: sale1.sku, region: 'sg', shards: 1, stock: settings.saleUnits, sale: true },
    },
  ];
}

/** Counters of bench/flash-worker.js (`GET /stats`). */
interface WorkerCounters {
  requests: number;
  ok: number;
  outOfStock: number;
  failed: number;
  rpcsOk: number;
  rpcsOutOfStock: number;
  rpcsFailed: number;
  firstAt: number | null;
  lastOkAt: number | null;
  firstOutOfStockAt: number | null;
  firstError: string | null;
}

interface Level {
  received: number;
  available: number;
  held: number;
  sold: number;
}

/** What a flash scenario found (ScenarioResult.flash). */
export interface FlashOutcome {
  sku: string;
  variantId: string;
  region: string;
  shards: number;
  stock: number;
  sale: boolean;
  /**
   * Measured window (wrk): 200s and 409s; per second over the window, but for
   * a sale, units ÷ the time to sell out and 409s ÷ the rest of the window.
   */
  reserved: number;
  soldOut: number;
  reservationsPerSecond: number;
  soldOutPerSecond: number;
  /** reservations/s ÷ `ceiling-do` req/s of this run (null when it did not run). */
  ratioToCeilingDo: number | null;
  /** requests/s (200 + 409) ÷ `ceiling-do` req/s. */
  requestRatioToCeilingDo: number | null;
  /** The Worker's own counts since setup (warm-up included). */
  worker: {
    requests: number;
    ok: number;
    outOfStock: number;
    failed: number;
    /** InventoryShard calls per successful reservation / per sold-out answer. */
    objectCallsPerReservation: number | null;
    objectCallsPerSoldOut: number | null;
    firstError: string | null;
  };
  /** Admin API (`GET /admin/api/inventory/:sku`), region level after the run. */
  admin: Level & { shards: number };
  /** Per shard, from the objects themselves (only shards that know the variant). */
  perShard: (Level & { shard: number })[];
  /** max(0, held + sold - received): must be 0. */
  oversold: number;
  /** The checks, each with what was seen. */
  checks: { name: string; ok: boolean; detail: string }[];
  /** A sale: ms from the first reservation request to the last unit held, and what came after. */
  sellout?: { soldOutAfterMs: number | null; unitsSold: number; soldOutAnswers: number };
}

/** Calls the store's admin API through the flash Worker's service binding. */
async function admin(worker: RunningWorker, token: string, method: string, path: string, body?: unknown): Promise<unknown> {
  const res = await fetch(`${worker.url}/admin/api${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`admin ${method} ${path} answered ${res.status}: ${text.slice(0, 500)}`);
  return JSON.parse(text) as unknown;
}

async function getJson<T>(url: string, method = 'GET'): Promise<T> {
  const res = await fetch(url, { method, signal: AbortSignal.timeout(30_000) });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${url} answered ${res.status}: ${text.slice(0, 500)}`);
  return JSON.parse(text) as T;
}

type InventoryView = { regions: Record<string, (Level & { shards: number }) | undefined> };

/** The Postgres stock row a scenario changes, to put back afterwards. */
export interface SavedStockRow {
  databaseUrl: string;
  variantId: string;
  region: string;
  row: { received: number; shards: number; borrow_from: string[] } | null;
}

/**
 * Sets the scenario's stock through the admin API (sharding first, then the
 * quantity, which spreads it over the shards), checks the admin view, and
 * zeroes the Worker's counters. Returns the stock row as it was.
 */
export async function prepareFlash(worker: RunningWorker, spec: FlashSpec, adminToken: string, databaseUrl: string): Promise<SavedStockRow> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  let row: SavedStockRow['row'] = null;
  try {
    const { rows } = await client.query<{ received: number; shards: number; borrow_from: string[] }>(
      'select received, shards, borrow_from from stock where variant_id = $1 and region_code = $2',
      [spec.variantId, spec.region],
    );
    row = rows[0] ?? null;
  } finally {
    await client.end();
  }
  await admin(worker, adminToken, 'PUT', `/inventory/${encodeURIComponent(spec.sku)}/sharding`, { region: spec.region, shards: spec.shards, borrowFrom: [] });
  const view = (await admin(worker, adminToken, 'PUT', `/inventory/${encodeURIComponent(spec.sku)}`, { region: spec.region, quantity: spec.stock })) as InventoryView;
  const level = view.regions[spec.region];
  if (!level || level.received !== spec.stock || level.available !== spec.stock || level.shards !== spec.shards || level.held !== 0 || level.sold !== 0) {
    throw new Error(`${spec.sku}: the admin API shows ${JSON.stringify(level)} after setting ${spec.stock} units on ${spec.shards} shard(s)`);
  }
  await getJson(`${worker.url}/stats/reset`, 'POST');
  return { databaseUrl, variantId: spec.variantId, region: spec.region, row };
}

/** Puts the stock row back as it was (the objects go with the workerd instance). */
export async function restoreStockRow(saved: SavedStockRow): Promise<void> {
  const client = new pg.Client({ connectionString: saved.databaseUrl });
  await client.connect();
  try {
    if (saved.row) {
      await client.query('update stock set received = $3, shards = $4, borrow_from = $5 where variant_id = $1 and region_code = $2', [
        saved.variantId,
        saved.region,
        saved.row.received,
        saved.row.shards,
        saved.row.borrow_from,
      ]);
    } else {
      await client.query('delete from stock where variant_id = $1 and region_code = $2', [saved.variantId, saved.region]);
    }
  } finally {
    await client.end();
  }
}

/** Drops the sold-out flag a sale left in Redis (it would lapse within a minute anyway). */
export async function clearSoldOutFlag(redisUrl: string, region: string, variantId: string): Promise<void> {
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.zrem(`soldout:${region}`, variantId);
  } finally {
    await redis.quit().catch(() => redis.disconnect());
  }
}

const round = (n: number, digits = 3) => Math.round(n * 10 ** digits) / 10 ** digits;

/**
 * Reads the counts back (the Worker's counters, each shard, the admin view)
 * and checks them: nothing oversold, available + held + sold = received on
 * every shard and in the region, every unit held by exactly one 200, and for
 * a sale every unit gone.
 */
export async function checkFlash(
  worker: RunningWorker,
  spec: FlashSpec,
  adminToken: string,
  measured: WrkResult,
  ceilingDoRps: number | undefined,
): Promise<FlashOutcome> {
  // Reservations still running when wrk hung up finish in waitUntil.
  let counters = await getJson<WorkerCounters>(`${worker.url}/stats`);
  for (let i = 0; i < 50; i++) {
    await new Promise((r) => setTimeout(r, 200));
    const again = await getJson<WorkerCounters>(`${worker.url}/stats`);
    const settled = again.requests === again.ok + again.outOfStock + again.failed && again.requests === counters.requests;
    counters = again;
    if (settled) break;
  }
  const shardView = await getJson<{ sum: Level; shards: (Level & { shard: number; known: boolean })[] }>(
    `${worker.url}/levels?variant=${encodeURIComponent(spec.variantId)}&region=${spec.region}`,
  );
  const view = (await admin(worker, adminToken, 'GET', `/inventory/${encodeURIComponent(spec.sku)}`)) as InventoryView;
  const level = view.regions[spec.region] ?? { received: 0, available: 0, held: 0, sold: 0, shards: 0 };

  const seconds = measured.duration_us / 1e6;
  const reserved = measured.status['2xx'];
  const soldOut = measured.status['409'] ?? 0;
  // A sale's rate is its units over the time they took; its sold-out answers come after.
  const saleSeconds =
    spec.sale && counters.ok === spec.stock && counters.firstAt !== null && counters.lastOkAt !== null ? Math.max(0.001, (counters.lastOkAt - counters.firstAt) / 1000) : null;
  const rps = saleSeconds !== null ? spec.stock / saleSeconds : seconds > 0 ? reserved / seconds : 0;
  const soldOutSeconds = saleSeconds !== null ? Math.max(0.001, seconds - saleSeconds) : seconds;
  const perShard = shardView.shards.map(({ shard, received, available, held, sold }) => ({ shard, received, available, held, sold }));
  const oversold = Math.max(0, level.held + level.sold - level.received);

  const checks: FlashOutcome['checks'] = [];
  const check = (name: string, ok: boolean, detail: string) => checks.push({ name, ok, detail });
  check('oversold = 0', oversold === 0, `held ${level.held} + sold ${level.sold} vs received ${level.received}`);
  check(
    'available + held + sold = received (region, admin API)',
    level.available + level.held + level.sold === level.received && level.received === spec.stock,
    `${level.available} + ${level.held} + ${level.sold} = ${level.available + level.held + level.sold}; received ${level.received} (set ${spec.stock})`,
  );
  const badShards = perShard.filter((s) => s.available + s.held + s.sold !== s.received || s.available < 0 || s.held < 0);
  check('available + held + sold = received (each shard)', badShards.length === 0, badShards.length ? `off on shards ${badShards.map((s) => s.shard).join(', ')}` : `${perShard.length} shard(s)`);
  const sums = shardView.sum;
  check(
    'shards sum to the admin view',
    sums.received === level.received && sums.available === level.available && sums.held === level.held && sums.sold === level.sold,
    `shards ${JSON.stringify(sums)}`,
  );
  check('one hold per 200 (nothing committed)', level.held === counters.ok && level.sold === 0, `held ${level.held}, 200s counted by the Worker ${counters.ok}`);
  check('no failed reservations', counters.failed === 0, counters.firstError ? `first: ${counters.firstError.slice(0, 200)}` : `${counters.failed}`);
  check('shards as set', level.shards === spec.shards && perShard.length === spec.shards, `admin says ${level.shards}, ${perShard.length} shard(s) hold the variant`);
  let sale: FlashOutcome['sellout'];
  if (spec.sale) {
    // The Worker counts every 200 it sent; wrk misses those still in flight when its window closed.
    check('every unit sold, each to exactly one 200', counters.ok === spec.stock && level.available === 0 && level.held === spec.stock, `200s: Worker ${counters.ok} (wrk read ${reserved}); available ${level.available}, held ${level.held}`);
    sale = {
      soldOutAfterMs: counters.firstAt !== null && counters.lastOkAt !== null && counters.ok === spec.stock ? counters.lastOkAt - counters.firstAt : null,
      unitsSold: counters.ok,
      soldOutAnswers: counters.outOfStock,
    };
  } else {
    check('never ran out', counters.outOfStock === 0 && level.available > 0, `409s ${counters.outOfStock}, available ${level.available}`);
  }

  return {
    sku: spec.sku,
    variantId: spec.variantId,
    region: spec.region,
    shards: spec.shards,
    stock: spec.stock,
    sale: spec.sale,
    reserved,
    soldOut,
    reservationsPerSecond: round(rps, 1),
    soldOutPerSecond: round(soldOutSeconds > 0 ? soldOut / soldOutSeconds : 0, 1),
    ratioToCeilingDo: ceilingDoRps ? round(rps / ceilingDoRps) : null,
    requestRatioToCeilingDo: ceilingDoRps && seconds > 0 ? round(measured.requests / seconds / ceilingDoRps) : null,
    worker: {
      requests: counters.requests,
      ok: counters.ok,
      outOfStock: counters.outOfStock,
      failed: counters.failed,
      objectCallsPerReservation: counters.ok ? round(counters.rpcsOk / counters.ok, 2) : null,
      objectCallsPerSoldOut: counters.outOfStock ? round(counters.rpcsOutOfStock / counters.outOfStock, 2) : null,
      firstError: counters.firstError,
    },
    admin: { received: level.received, available: level.available, held: level.held, sold: level.sold, shards: level.shards },
    perShard,
    oversold,
    checks,
    ...(sale ? { sellout: sale } : {}),
  };
}
