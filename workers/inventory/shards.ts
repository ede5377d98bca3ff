/**
 * How the Worker talks to the inventory objects: which shard owns a variant,
 * how a region's stock is split over a hot variant's shards, and a
 * reservation across shards that holds every line or none.
 *
 * Each region has {@link SHARDS_PER_REGION} `InventoryShard` objects
 * (`inv:<region>:<n>`), created with the region's location hint. A variant
 * lives on the shard its id hashes to; a hot variant (flash sale) is split
 * over K consecutive shards from there, each owning part of its stock, so one
 * object is never the ceiling of a sale.
 *
 * A sale's per-shopper cap is kept per (scope, shopper key) on one shard of
 * the region picked by hashing the two, wherever the stock lives: one
 * shopper's ledger is one object (so their parallel checkouts are serialised
 * there) while different shoppers spread over all of the region's shards.
 */
import { and, eq, inArray } from 'drizzle-orm';
import type { Database } from '../../db/client';
import { REGIONS, type RegionCode } from '../../db/regions';
import { stock } from '../../db/schema';
import { countOutOfStock } from '../lib/metrics';
import type { CapClaim, CapOverrun, InventoryShard, ReserveLine, StockLevel } from '../../durable-objects/inventory';

/** Shards per region. Fixed: changing it would move variants between objects. */
export const SHARDS_PER_REGION = 16;

/** Object name of shard `index` of `region`. */
export function shardName(region: RegionCode, index: number): string {
  return `inv:${region}:${index}`;
}

/** FNV-1a: a stable, well-spread hash of a variant id. */
export function stableHash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** The shard indexes a variant's stock is split over, home shard first. */
export function shardsOf(variantId: string, shards = 1): number[] {
  const home = stableHash(variantId) % SHARDS_PER_REGION;
  return Array.from({ length: Math.min(Math.max(shards, 1), SHARDS_PER_REGION) }, (_, i) => (home + i) % SHARDS_PER_REGION);
}

/** The stub of a shard, placed near its region. */
export function shardStub(env: Env, region: RegionCode, index: number): DurableObjectStub<InventoryShard> {
  const ns = env.INVENTORY;
  return ns.get(ns.idFromName(shardName(region, index)), { locationHint: REGIONS[region].locationHint });
}

/** Splits `total` units over `parts` shards as evenly as possible. */
export function evenSplit(total: number, parts: number): number[] {
  return Array.from({ length: parts }, (_, i) => Math.floor(total / parts) + (i < total % parts ? 1 : 0));
}

/** What the origin says about a variant's stock in a region. */
export interface StockConfig {
  variantId: string;
  region: RegionCode;
  received: number;
  shards: number;
  borrowFrom: RegionCode[];
}

/** How long an isolate reuses a variant's stock configuration (shard count, lenders). */
export const STOCK_CONFIG_MEMO_MS = 5_000;
const configMemo = new Map<string, { cfg: StockConfig; until: number }>();

/** Drops this isolate's remembered configuration (after a change made here, or in tests standing in for the memo's lapse). */
export function forgetStockConfig(): void {
  configMemo.clear();
}

/**
 * Stock configuration from the primary (absent rows: nothing received),
 * remembered per isolate for {@link STOCK_CONFIG_MEMO_MS}: at the start of a
 * flash sale every reservation of the hot variant needs it, and one origin
 * query each would make Postgres the ceiling of the sale. A change of shard
 * count reaches reservations within that time.
 */
export async function loadStockConfig(db: Database, region: RegionCode, variantIds: string[], fresh = false): Promise<Map<string, StockConfig>> {
  const now = Date.now();
  const out = new Map<string, StockConfig>();
  const missing = variantIds.filter((id) => {
    const hit = fresh ? undefined : configMemo.get(`${region}:${id}`);
    if (hit && hit.until > now) out.set(id, hit.cfg);
    return !out.has(id);
  });
  if (missing.length) {
    const rows = await db
      .select({ variantId: stock.variantId, received: stock.received, shards: stock.shards, borrowFrom: stock.borrowFrom })
      .from(stock)
      .where(and(eq(stock.regionCode, region), inArray(stock.variantId, missing)));
    const byId = new Map(rows.map((r) => [r.variantId, { ...r, region, borrowFrom: r.borrowFrom as RegionCode[] }]));
    for (const id of missing) {
      const cfg = byId.get(id) ?? { variantId: id, region, received: 0, shards: 1, borrowFrom: [] };
      configMemo.set(`${region}:${id}`, { cfg, until: now + STOCK_CONFIG_MEMO_MS });
      out.set(id, cfg);
    }
  }
  return out;
}

/**
 * First load of variants into their shards: each shard of a variant gets its
 * even share of what the origin says was received. Only variants a shard has
 * never seen are set, so a retry or a race with another request is harmless.
 */
export async function initShards(env: Env, configs: StockConfig[]): Promise<void> {
  const perShard = new Map<string, { region: RegionCode; index: number; entries: { variantId: string; received: number }[] }>();
  for (const cfg of configs) {
    const indexes = shardsOf(cfg.variantId, cfg.shards);
    const shares = evenSplit(cfg.received, indexes.length);
    indexes.forEach((index, i) => {
      const key = `${cfg.region}:${index}`;
      const entry = perShard.get(key) ?? { region: cfg.region, index, entries: [] };
      entry.entries.push({ variantId: cfg.variantId, received: shares[i]! });
      perShard.set(key, entry);
    });
  }
  await Promise.all([...perShard.values()].map((s) => shardStub(env, s.region, s.index).initVariants(s.entries)));
}

/** Region-wide levels of a variant: the sum over the given shards. */
export interface RegionLevel {
  received: number;
  available: number;
  held: number;
  sold: number;
}

/** Sums levels over every shard a variant may have stock in (all of the region's, for admin accuracy). */
export async function regionLevels(env: Env, region: RegionCode, variantIds: string[], shardIndexes?: number[]): Promise<Map<string, RegionLevel & { known: boolean }>> {
  const indexes = shardIndexes ?? Array.from({ length: SHARDS_PER_REGION }, (_, i) => i);
  const perShard = await Promise.all(indexes.map((i) => shardStub(env, region, i).levels(variantIds)));
  const out = new Map<string, RegionLevel & { known: boolean }>();
  for (const id of variantIds) out.set(id, { received: 0, available: 0, held: 0, sold: 0, known: false });
  for (const levels of perShard) {
    for (const l of levels as StockLevel[]) {
      const sum = out.get(l.variantId)!;
      sum.received += l.received;
      sum.available += l.available;
      sum.held += l.held;
      sum.sold += l.sold;
      sum.known ||= l.known;
    }
  }
  return out;
}

/**
 * Units available now for each variant in a region, from the shards that
 * sell it, initialising variants no shard has seen yet from the origin.
 */
export async function liveAvailability(env: Env, db: Database, region: RegionCode, variants: { variantId: string; shards: number }[]): Promise<Map<string, number>> {
  const byShard = new Map<number, string[]>();
  for (const v of variants) for (const i of shardsOf(v.variantId, v.shards)) byShard.set(i, [...(byShard.get(i) ?? []), v.variantId]);
  const read = async () => {
    const results = await Promise.all([...byShard].map(([i, ids]) => shardStub(env, region, i).levels(ids)));
    return results.flat() as StockLevel[];
  };
  let levels = await read();
  const unknown = [...new Set(levels.filter((l) => !l.known).map((l) => l.variantId))];
  if (unknown.length) {
    await initShards(env, [...(await loadStockConfig(db, region, unknown, true)).values()]);
    levels = await read();
  }
  const out = new Map<string, number>();
  for (const l of levels) out.set(l.variantId, (out.get(l.variantId) ?? 0) + l.available);
  return out;
}

/** One part of a hold: some lines held on one shard of one region. */
export interface HoldPart {
  region: RegionCode;
  shard: number;
  /** The id this part is held under on that shard. */
  partId: string;
  lines: ReserveLine[];
}

/** A sale's cap on what one shopper may buy, applied to some variants. */
export interface CapRequest {
  /** The sale (one cap ledger per scope). */
  scope: string;
  /** Units of `variantIds`, summed, one shopper may hold or buy in the region. */
  cap: number;
  variantIds: string[];
  /** Every key the shopper is known by (`u:<userId>`; a guest's `d:<deviceId>`, `ip:<address>`): the cap holds under each. */
  keys: string[];
}

/** A reservation across shards. */
export type Reservation =
  | { ok: true; holdId: string; parts: HoldPart[]; expiresAt: number }
  | { ok: false; reason: 'out_of_stock'; shortages: { variantId: string; requested: number }[] }
  | { ok: false; reason: 'cap_exceeded'; claims: CapOverrun[] };

/** The shard of a region that keeps a shopper key's ledger for a cap's scope. */
export function capShardOf(scope: string, key: string): number {
  return stableHash(`${scope}:${key}`) % SHARDS_PER_REGION;
}

/**
 * Reserves every line or none. Lines are grouped by first shard (the home
 * shard, or for a hot variant one of its K shards picked by the hold id) and
 * reserved there in one call per shard; a line its first shard cannot fill
 * moves to the variant's other shards, then to the regions it may borrow from. If any
 * line still cannot be held, every part already held is released.
 *
 * With `caps`, the shopper's claims are held first, as claim-only parts on
 * their ledger shards (see {@link capShardOf}), one shard at a time in
 * ascending order: every attempt takes the ledgers in the same order, so two
 * parallel attempts of one shopper whose keys live on different shards cannot
 * each win one of them and both fail. A claim over its cap fails
 * the reservation (`cap_exceeded`) before any stock is asked for; a stock
 * failure afterwards releases the claims with the rest.
 *
 * Part ids derive from the hold id and the attempt (shard, line), and the
 * order of attempts is fixed, so calling this again with the same hold id
 * (a retried saga step) replays the same answers instead of holding twice.
 */
export async function reserveAcross(
  env: Env,
  db: Database,
  region: RegionCode,
  holdId: string,
  checkoutId: string,
  lines: ReserveLine[],
  ttlMs: number,
  /** Told which variants have nothing left in the region (see ./soldout.ts). */
  onSoldOut?: (variantIds: string[]) => Promise<void>,
  caps: CapRequest[] = [],
  /** Variants that may not borrow from other regions (those in an open flash sale: a lender's units are its own sale's, behind its queue). */
  noBorrow: ReadonlySet<string> = new Set(),
): Promise<Reservation> {
  const parts: HoldPart[] = [];
  let expiresAt = Number.POSITIVE_INFINITY;

  // 0. Claims, before stock (and before the origin query: a shopper over the
  // cap costs no more than their ledger shards' calls).
  for (const [shard, claims] of [...capClaims(lines, caps)].sort((a, b) => a[0] - b[0])) {
    const partId = `${holdId}:${region}:${shard}:cap`;
    const result = await shardStub(env, region, shard).reserve(partId, checkoutId, [], ttlMs, claims);
    if (result.ok) {
      parts.push({ region, shard, partId, lines: [] });
      expiresAt = Math.min(expiresAt, result.expiresAt);
      continue;
    }
    await releaseParts(env, parts);
    if (result.reason === 'cap_exceeded') return { ok: false, reason: 'cap_exceeded', claims: result.claims };
    // Invalid claims (a caller's bug), or this hold id's claim already given
    // up (expired or compensated): no answer to give but an error.
    throw new Error(`cap claim on ${shardName(region, shard)} refused: ${result.reason}`);
  }

  const configs = await loadStockConfig(db, region, lines.map((l) => l.variantId));
  /** Units seen available per variant per shard of the home region. */
  const seen = new Map<string, Map<number, number>>();
  const observe = (variantId: string, shard: number, available: number) => {
    const m = seen.get(variantId) ?? new Map<number, number>();
    m.set(shard, available);
    seen.set(variantId, m);
  };

  /** Reserves `group` on one shard, initialising unknown variants once. */
  const attempt = async (r: RegionCode, shard: number, partId: string, group: ReserveLine[]) => {
    const stub = shardStub(env, r, shard);
    let result = await stub.reserve(partId, checkoutId, group, ttlMs);
    if (!result.ok && result.reason === 'unknown_variant') {
      const cfgs = [...(await loadStockConfig(db, r, result.variantIds, true)).values()];
      await initShards(env, cfgs);
      result = await stub.reserve(partId, checkoutId, group, ttlMs);
    }
    if (result.ok) {
      parts.push({ region: r, shard, partId, lines: group });
      expiresAt = Math.min(expiresAt, result.expiresAt);
      if (r === region) for (const [id, left] of Object.entries(result.remaining ?? {})) observe(id, shard, left);
    } else if (result.reason === 'out_of_stock' && r === region) {
      for (const s of result.shortages) observe(s.variantId, shard, s.available);
    }
    return result.ok;
  };

  // 1. One call per first shard for all its lines. A hot variant's first
  // shard is picked by the hold id among its K shards, so a sale's buyers
  // spread over all of them (and a retried hold picks the same one).
  const firstShard = new Map<string, number>();
  const byFirst = new Map<number, ReserveLine[]>();
  for (const line of lines) {
    const own = shardsOf(line.variantId, configs.get(line.variantId)!.shards);
    const first = own[stableHash(`${holdId}:${line.variantId}`) % own.length]!;
    firstShard.set(line.variantId, first);
    byFirst.set(first, [...(byFirst.get(first) ?? []), line]);
  }
  const pending: { line: ReserveLine; alone: boolean }[] = [];
  for (const [shard, group] of [...byFirst].sort((a, b) => a[0] - b[0])) {
    if (!(await attempt(region, shard, `${holdId}:${region}:${shard}`, group))) pending.push(...group.map((line) => ({ line, alone: group.length === 1 })));
  }

  // 2. Lines of a group that failed, one at a time: the variant's other
  // shards in order after its first (and the first again if the group failed
  // for another line), then the regions it may borrow from.
  const shortages: { variantId: string; requested: number }[] = [];
  for (const { line, alone } of pending) {
    const cfg = configs.get(line.variantId)!;
    const own = shardsOf(line.variantId, cfg.shards);
    const start = own.indexOf(firstShard.get(line.variantId)!);
    const rotated = [...own.slice(start), ...own.slice(0, start)].slice(alone ? 1 : 0);
    const candidates: [RegionCode, number][] = rotated.map((s): [RegionCode, number] => [region, s]);
    for (const lender of noBorrow.has(line.variantId) ? [] : cfg.borrowFrom) {
      const lenderCfg = (await loadStockConfig(db, lender, [line.variantId])).get(line.variantId)!;
      candidates.push(...shardsOf(line.variantId, lenderCfg.shards).map((s): [RegionCode, number] => [lender, s]));
    }
    let held = false;
    for (const [r, s] of candidates) {
      if (await attempt(r, s, `${holdId}:${r}:${s}:${line.variantId}`, [line])) {
        held = true;
        break;
      }
    }
    // A hot variant's stock may be spread thinner than one line: not split
    // across shards here; the line fails and the shopper sees out of stock.
    if (!held) shortages.push({ variantId: line.variantId, requested: line.quantity });
  }

  if (shortages.length) await releaseParts(env, parts);
  if (onSoldOut) await reportSoldOut(env, region, configs, seen, onSoldOut);
  if (shortages.length) {
    // A retried saga step replays this answer and counts it again: rare, and
    // a counter of refusals may overcount by a retry, never undercount.
    countOutOfStock(env, { region, kind: 'refused', source: 'reserve', variants: shortages.map((s) => ({ variantId: s.variantId, units: s.requested })) });
    return { ok: false, reason: 'out_of_stock', shortages };
  }
  return { ok: true, holdId, parts, expiresAt };
}

/**
 * The claims of a reservation per ledger shard: for each cap, the cart's units
 * of its variants under every key of the shopper. A cap that applies to the
 * cart but names no key is refused: it would silently allow anything.
 */
function capClaims(lines: ReserveLine[], caps: CapRequest[]): Map<number, CapClaim[]> {
  const byShard = new Map<number, CapClaim[]>();
  for (const cap of caps) {
    const variants = new Set(cap.variantIds);
    const quantity = lines.reduce((n, l) => n + (variants.has(l.variantId) ? l.quantity : 0), 0);
    if (quantity === 0) continue;
    if (!cap.keys.length) throw new Error(`cap ${cap.scope} applies but the shopper has no key`);
    for (const key of new Set(cap.keys)) {
      const shard = capShardOf(cap.scope, key);
      byShard.set(shard, [...(byShard.get(shard) ?? []), { scope: cap.scope, shopper: key, quantity, cap: cap.cap }]);
    }
  }
  return byShard;
}

/**
 * Tells `onSoldOut` about variants with nothing left on any of their shards
 * in the region: those seen at 0, after asking the shards not seen in this
 * reservation. Only runs when a 0 was seen, so the usual reservation costs
 * no extra call. Never fails the reservation.
 */
async function reportSoldOut(
  env: Env,
  region: RegionCode,
  configs: Map<string, StockConfig>,
  seen: Map<string, Map<number, number>>,
  onSoldOut: (variantIds: string[]) => Promise<void>,
): Promise<void> {
  try {
    const soldOut: string[] = [];
    for (const [variantId, byShard] of seen) {
      if (![...byShard.values()].some((n) => n === 0)) continue;
      const unseen = shardsOf(variantId, configs.get(variantId)?.shards ?? 1).filter((i) => !byShard.has(i));
      const rest = unseen.length ? (await regionLevels(env, region, [variantId], unseen)).get(variantId)!.available : 0;
      if (rest === 0 && [...byShard.values()].every((n) => n === 0)) soldOut.push(variantId);
    }
    if (soldOut.length) await onSoldOut(soldOut);
  } catch (err) {
    console.warn(JSON.stringify({ level: 'warn', msg: 'sold-out report failed', error: String(err) }));
  }
}

/** Releases every part (compensation, or a checkout that failed after reserving). */
export async function releaseParts(env: Env, parts: HoldPart[]): Promise<void> {
  await Promise.all(parts.map((p) => shardStub(env, p.region, p.shard).release(p.partId)));
}

/** Commits every part: held units become sold. Returns the parts that could not be committed. */
export async function commitParts(env: Env, parts: HoldPart[]): Promise<HoldPart[]> {
  const results = await Promise.all(parts.map(async (p) => ({ p, r: await shardStub(env, p.region, p.shard).commit(p.partId) })));
  return results.filter(({ r }) => !r.ok).map(({ p }) => p);
}
