/**
 * `InventoryShard`: live stock for a slice of variants in one region (object
 * name `inv:<region>:<shard>`, see workers/inventory/shards.ts). Per variant it
 * keeps how many units this shard owns (`received`) and how they split into
 * available / held / sold; holds carry an expiry that an alarm enforces.
 *
 * Why it cannot oversell: a Durable Object runs one event at a time, and each
 * method below does all its reads and writes synchronously, with no `await`
 * in between, so no other call can see or interleave with a half-done
 * reservation; the writes of each operation run in `transactionSync`, so a
 * failure part-way (a storage error, a broken constraint) rolls all of them
 * back. The storage itself refuses a negative count or counts that do not add
 * up (CHECK constraints), so a bug fails loudly instead of corrupting stock.
 *
 * Per-shopper purchase caps (flash sales) live here too: a hold may carry
 * claims, units one shopper takes against a sale's cap, checked and recorded
 * in the same synchronous step as its stock, so parallel checkouts of one
 * shopper cannot each see room under the cap. A shopper's cap ledger is one
 * object (see reserveAcross in workers/inventory/shards.ts).
 *
 * Every method is idempotent by its id: the hold id for reserve / commit /
 * release (a retried call returns the first call's answer and changes nothing
 * twice), the operation id for restock, and setReceived / initVariant set
 * absolute values.
 */
import { DurableObject } from 'cloudflare:workers';
import { migrateSql } from './sql-migrations';

/** One requested line: units of one variant. */
export interface ReserveLine {
  variantId: string;
  quantity: number;
}

/**
 * Units one shopper (one of their keys: `u:<userId>`, `d:<deviceId>`,
 * `ip:<address>`) takes against a sale's cap (`scope`) with this hold.
 */
export interface CapClaim {
  scope: string;
  shopper: string;
  quantity: number;
  /** Units this shopper may have held or bought in `scope`, this hold included. */
  cap: number;
}

/** A claim that did not fit: `used` is what the shopper already holds or bought in `scope`. */
export interface CapOverrun {
  scope: string;
  shopper: string;
  requested: number;
  used: number;
  cap: number;
}

/** Why a reservation or a hold operation was refused. */
export type InventoryRefusal =
  | { ok: false; reason: 'out_of_stock'; shortages: { variantId: string; requested: number; available: number }[] }
  | { ok: false; reason: 'cap_exceeded'; claims: CapOverrun[] }
  | { ok: false; reason: 'unknown_variant'; variantIds: string[] }
  | { ok: false; reason: 'released' | 'expired' | 'committed' | 'unknown_hold' | 'invalid' };

/** A reservation that holds every line until `expiresAt` (epoch ms). */
export interface ReserveSuccess {
  ok: true;
  holdId: string;
  expiresAt: number;
  lines: ReserveLine[];
  /** Units of each line's variant still available in this shard right after the hold (claims are not stock: `{}` for a claim-only hold). */
  remaining: Record<string, number>;
}

export type ReserveResult = ReserveSuccess | InventoryRefusal;
export type HoldResult = { ok: true; state: 'committed' | 'released' } | InventoryRefusal;

/** Stock of one variant in this shard. `known: false` means the shard has never been told about it. */
export interface StockLevel {
  variantId: string;
  known: boolean;
  received: number;
  available: number;
  held: number;
  sold: number;
}

/** Default hold lifetime: ten minutes, time enough to pay. */
export const DEFAULT_HOLD_TTL_MS = 10 * 60 * 1000;
/** How long finished holds and operations are kept for idempotent replays. */
const HOLD_RECORD_RETENTION_MS = 7 * 24 * 3_600_000;
/** Lines one reservation may carry (a cart holds at most 100). */
const MAX_LINES = 100;
/** Claims one reservation may carry (a few sales times a few keys of one shopper). */
const MAX_CLAIMS = 20;
/** Longest id, scope or shopper key accepted. */
const MAX_ID = 200;

type HoldState = 'held' | 'committed' | 'released' | 'rejected';

const MIGRATIONS = [
  `create table stock (
     variant_id text primary key,
     received integer not null check (received >= 0),
     available integer not null check (available >= 0),
     held integer not null default 0 check (held >= 0),
     sold integer not null default 0 check (sold >= 0),
     check (available + held + sold = received)
   );
   create table hold_state (
     hold_id text primary key,
     checkout_id text not null,
     state text not null check (state in ('held', 'committed', 'released', 'rejected')),
     expires_at integer not null,
     result text not null,
     updated_at integer not null
   );
   create index hold_state_expiry on hold_state (expires_at) where state = 'held';
   create table hold_lines (
     hold_id text not null references hold_state (hold_id),
     variant_id text not null references stock (variant_id),
     quantity integer not null check (quantity > 0),
     primary key (hold_id, variant_id)
   );
   create table ops (
     op_id text primary key,
     result text not null,
     at integer not null
   );`,
  // Purchase caps. A hold's claims count while it is held; commit adds them
  // to claim_totals, which the retention cleanup never touches, so a
  // shopper's bought units outlive the hold records.
  `create table hold_claims (
     hold_id text not null references hold_state (hold_id),
     scope text not null,
     shopper text not null,
     quantity integer not null check (quantity > 0),
     primary key (hold_id, scope, shopper)
   );
   create index hold_claims_shopper on hold_claims (scope, shopper);
   create table claim_totals (
     scope text not null,
     shopper text not null,
     committed integer not null check (committed >= 0),
     primary key (scope, shopper)
   );`,
  // The cap each claim was made under, so a claim whose hold lapsed can be
  // made again at commit (claims are not scarce the way units are).
  `alter table hold_claims add column cap integer;`,
] as const;

export class InventoryShard extends DurableObject<Env> {
  private readonly sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    void ctx.blockConcurrencyWhile(async () => migrateSql(ctx.storage.sql, MIGRATIONS));
  }

  /**
   * Holds every line and every claim, or none. A line for a variant this
   * shard does not know is refused with `unknown_variant` (and not recorded,
   * so the caller can initialise the variant and retry with the same hold id).
   * A claim fits when the shopper's units in its scope (claims of holds still
   * held, plus committed ones) stay within its cap; `lines` may be empty when
   * there are claims (a claim-only hold). Refusals for stock or caps are
   * recorded, so a retry answers the same.
   */
  async reserve(
    holdId: string,
    checkoutId: string,
    lines: ReserveLine[],
    ttlMs: number = DEFAULT_HOLD_TTL_MS,
    claims: CapClaim[] = [],
  ): Promise<ReserveResult> {
    const previous = this.holdRow(holdId);
    if (previous) return this.replay(previous);
    const mergedClaims = mergeClaims(claims);
    const merged = mergedClaims && mergeLines(lines, mergedClaims.length > 0);
    if (!merged || !mergedClaims || !isId(holdId) || !(ttlMs > 0 && ttlMs <= 24 * 3_600_000)) return { ok: false, reason: 'invalid' };

    const now = Date.now();
    const unknown: string[] = [];
    const shortages: { variantId: string; requested: number; available: number }[] = [];
    for (const line of merged) {
      const row = this.sql.exec<{ available: number }>('select available from stock where variant_id = ?', line.variantId).toArray()[0];
      if (!row) unknown.push(line.variantId);
      else if (row.available < line.quantity) shortages.push({ variantId: line.variantId, requested: line.quantity, available: row.available });
    }
    if (unknown.length) return { ok: false, reason: 'unknown_variant', variantIds: unknown };
    const overruns: CapOverrun[] = [];
    for (const c of mergedClaims) {
      const used = this.used(c.scope, c.shopper);
      if (used + c.quantity > c.cap) overruns.push({ scope: c.scope, shopper: c.shopper, requested: c.quantity, used, cap: c.cap });
    }
    // Over the cap is the answer even when stock is short too: more stock would not help this shopper.
    if (overruns.length || shortages.length) {
      const refusal: ReserveResult = overruns.length ? { ok: false, reason: 'cap_exceeded', claims: overruns } : { ok: false, reason: 'out_of_stock', shortages };
      this.sql.exec(
        `insert into hold_state (hold_id, checkout_id, state, expires_at, result, updated_at) values (?, ?, 'rejected', ?, ?, ?)`,
        holdId, checkoutId, now, JSON.stringify(refusal), now,
      );
      return refusal;
    }
    const expiresAt = now + ttlMs;
    const remaining: Record<string, number> = {};
    for (const line of merged) {
      const row = this.sql.exec<{ available: number }>('select available from stock where variant_id = ?', line.variantId).one();
      remaining[line.variantId] = row.available - line.quantity;
    }
    const result: ReserveSuccess = { ok: true, holdId, expiresAt, lines: merged, remaining };
    this.ctx.storage.transactionSync(() => {
      this.sql.exec(
        `insert into hold_state (hold_id, checkout_id, state, expires_at, result, updated_at) values (?, ?, 'held', ?, ?, ?)`,
        holdId, checkoutId, expiresAt, JSON.stringify(result), now,
      );
      for (const line of merged) {
        this.sql.exec('update stock set available = available - ?1, held = held + ?1 where variant_id = ?2', line.quantity, line.variantId);
        this.sql.exec('insert into hold_lines (hold_id, variant_id, quantity) values (?, ?, ?)', holdId, line.variantId, line.quantity);
      }
      for (const c of mergedClaims) {
        this.sql.exec('insert into hold_claims (hold_id, scope, shopper, quantity, cap) values (?, ?, ?, ?, ?)', holdId, c.scope, c.shopper, c.quantity, c.cap);
      }
    });
    // The writes above are committed together; the alarm only needs to be
    // no later than the earliest expiry.
    await this.scheduleAlarm(expiresAt);
    return result;
  }

  /**
   * Held -> sold, and the hold's claims become the shoppers' committed
   * units. A hold that is still held commits, even a moment past its expiry
   * if the alarm has not released it yet: whichever of commit and release
   * runs first wins, and the other is refused.
   */
  commit(holdId: string): HoldResult {
    const hold = this.holdRow(holdId);
    if (!hold) return { ok: false, reason: 'unknown_hold' };
    if (hold.state === 'committed') return { ok: true, state: 'committed' };
    // Released (by the alarm or the caller) before this commit arrived. A
    // claim-only hold is taken again if the shopper is still within the cap:
    // its order is paid for, and refusing would cancel it while the units,
    // held elsewhere, commit.
    if (hold.state === 'released') return this.reclaim(holdId) ? { ok: true, state: 'committed' } : { ok: false, reason: 'expired' };
    if (hold.state === 'rejected') return { ok: false, reason: 'invalid' };
    this.ctx.storage.transactionSync(() => {
      for (const line of this.holdLines(holdId)) {
        this.sql.exec('update stock set held = held - ?1, sold = sold + ?1 where variant_id = ?2', line.quantity, line.variantId);
      }
      this.sql.exec(
        `insert into claim_totals (scope, shopper, committed) select scope, shopper, quantity from hold_claims where hold_id = ?
         on conflict (scope, shopper) do update set committed = committed + excluded.committed`,
        holdId,
      );
      this.sql.exec(`update hold_state set state = 'committed', updated_at = ? where hold_id = ?`, Date.now(), holdId);
    });
    return { ok: true, state: 'committed' };
  }

  /**
   * Held -> available. Releasing a hold this shard never saw records it as
   * released, so a reservation that arrives late (a retry still in flight
   * when the caller gave up and compensated) cannot hold stock afterwards.
   */
  release(holdId: string, checkoutId = ''): HoldResult {
    if (!isId(holdId)) return { ok: false, reason: 'invalid' };
    const hold = this.holdRow(holdId);
    const now = Date.now();
    if (!hold) {
      this.sql.exec(
        `insert into hold_state (hold_id, checkout_id, state, expires_at, result, updated_at) values (?, ?, 'released', ?, ?, ?)`,
        holdId, checkoutId, now, JSON.stringify({ ok: false, reason: 'released' }), now,
      );
      return { ok: true, state: 'released' };
    }
    if (hold.state === 'committed') return { ok: false, reason: 'committed' };
    if (hold.state === 'held') this.releaseHeld(holdId, now);
    return { ok: true, state: 'released' };
  }

  /**
   * Sold -> available, for units that come back (a cancelled or returned
   * order). Idempotent by `opId`; refuses to restock more than was sold.
   */
  restock(opId: string, variantId: string, quantity: number): { ok: true } | InventoryRefusal {
    const done = this.sql.exec<{ result: string }>('select result from ops where op_id = ?', opId).toArray()[0];
    if (done) return JSON.parse(done.result) as { ok: true } | InventoryRefusal;
    if (!Number.isInteger(quantity) || quantity <= 0) return { ok: false, reason: 'invalid' };
    const row = this.sql.exec<{ sold: number }>('select sold from stock where variant_id = ?', variantId).toArray()[0];
    let result: { ok: true } | InventoryRefusal;
    if (!row) result = { ok: false, reason: 'unknown_variant', variantIds: [variantId] };
    else if (row.sold < quantity) result = { ok: false, reason: 'invalid' };
    else result = { ok: true };
    // Only a restock that happened is remembered: a refusal (unknown variant,
    // more than sold) may succeed later under the same operation id.
    if (result.ok) {
      this.ctx.storage.transactionSync(() => {
        this.sql.exec('update stock set sold = sold - ?1, available = available + ?1 where variant_id = ?2', quantity, variantId);
        this.sql.exec('insert into ops (op_id, result, at) values (?, ?, ?)', opId, JSON.stringify(result), Date.now());
      });
    }
    return result;
  }

  /**
   * Sets the units this shard owns. Refused below what is already held or
   * sold here: those units are spoken for.
   */
  setReceived(variantId: string, received: number): { ok: true; level: StockLevel } | { ok: false; reason: 'below_committed'; level: StockLevel } | InventoryRefusal {
    if (!Number.isInteger(received) || received < 0) return { ok: false, reason: 'invalid' };
    const row = this.level(variantId);
    if (!row.known) {
      this.sql.exec('insert into stock (variant_id, received, available) values (?, ?, ?)', variantId, received, received);
    } else {
      if (received < row.held + row.sold) return { ok: false, reason: 'below_committed', level: row };
      this.sql.exec('update stock set received = ?1, available = ?1 - held - sold where variant_id = ?2', received, variantId);
    }
    return { ok: true, level: this.level(variantId) };
  }

  /** Sets `received` only for variants this shard has never seen (lazy first load from the origin). */
  initVariants(entries: { variantId: string; received: number }[]): StockLevel[] {
    this.ctx.storage.transactionSync(() => {
      for (const e of entries) {
        if (!Number.isInteger(e.received) || e.received < 0) continue;
        this.sql.exec('insert into stock (variant_id, received, available) values (?1, ?2, ?2) on conflict (variant_id) do nothing', e.variantId, e.received);
      }
    });
    return this.levels(entries.map((e) => e.variantId));
  }

  /** Commits a lapsed claim-only hold whose claims still fit their caps; false otherwise (nothing changes). */
  private reclaim(holdId: string): boolean {
    if (this.holdLines(holdId).length) return false;
    const claims = this.sql
      .exec<{ scope: string; shopper: string; quantity: number; cap: number | null }>('select scope, shopper, quantity, cap from hold_claims where hold_id = ?', holdId)
      .toArray();
    if (!claims.length || claims.some((c) => c.cap === null)) return false;
    for (const c of claims) {
      const used = this.claimed(c.scope, c.shopper);
      if (used.held + used.committed + c.quantity > c.cap!) return false;
    }
    this.ctx.storage.transactionSync(() => {
      this.sql.exec(
        `insert into claim_totals (scope, shopper, committed) select scope, shopper, quantity from hold_claims where hold_id = ?
         on conflict (scope, shopper) do update set committed = committed + excluded.committed`,
        holdId,
      );
      this.sql.exec(`update hold_state set state = 'committed', updated_at = ? where hold_id = ?`, Date.now(), holdId);
    });
    return true;
  }

  /** A shopper's units in a cap's scope: in holds still held, and bought (committed). */
  claimed(scope: string, shopper: string): { held: number; committed: number } {
    return this.sql
      .exec<{ held: number; committed: number }>(
        `select coalesce((select sum(c.quantity) from hold_claims c join hold_state h on h.hold_id = c.hold_id
                          where c.scope = ?1 and c.shopper = ?2 and h.state = 'held'), 0) as held,
                coalesce((select committed from claim_totals where scope = ?1 and shopper = ?2), 0) as committed`,
        scope,
        shopper,
      )
      .one();
  }

  /** Levels of the given variants in this shard. */
  levels(variantIds: string[]): StockLevel[] {
    return variantIds.map((id) => this.level(id));
  }

  /** Releases every hold whose time is up; safe to run any number of times. */
  override async alarm(): Promise<void> {
    const now = Date.now();
    const due = this.sql
      .exec<{ hold_id: string }>(`select hold_id from hold_state where state = 'held' and expires_at <= ?`, now)
      .toArray();
    for (const { hold_id } of due) this.releaseHeld(hold_id, now);
    // Finished holds only matter for replays of recent calls; keep a week.
    // Committed claims live on in claim_totals, which is never cleaned.
    const horizon = now - HOLD_RECORD_RETENTION_MS;
    this.ctx.storage.transactionSync(() => {
      this.sql.exec(`delete from hold_lines where hold_id in (select hold_id from hold_state where state <> 'held' and updated_at < ?)`, horizon);
      this.sql.exec(`delete from hold_claims where hold_id in (select hold_id from hold_state where state <> 'held' and updated_at < ?)`, horizon);
      this.sql.exec(`delete from hold_state where state <> 'held' and updated_at < ?`, horizon);
      this.sql.exec('delete from ops where at < ?', horizon);
    });
    const next = this.sql.exec<{ at: number | null }>(`select min(expires_at) as at from hold_state where state = 'held'`).one().at;
    if (next !== null) await this.ctx.storage.setAlarm(next);
  }

  private level(variantId: string): StockLevel {
    const row = this.sql
      .exec<{ received: number; available: number; held: number; sold: number }>(
        'select received, available, held, sold from stock where variant_id = ?',
        variantId,
      )
      .toArray()[0];
    return row ? { variantId, known: true, ...row } : { variantId, known: false, received: 0, available: 0, held: 0, sold: 0 };
  }

  private used(scope: string, shopper: string): number {
    const { held, committed } = this.claimed(scope, shopper);
    return held + committed;
  }

  private holdRow(holdId: string): { state: HoldState; result: string } | undefined {
    return this.sql.exec<{ state: HoldState; result: string }>('select state, result from hold_state where hold_id = ?', holdId).toArray()[0];
  }

  private holdLines(holdId: string): ReserveLine[] {
    return this.sql
      .exec<{ variant_id: string; quantity: number }>('select variant_id, quantity from hold_lines where hold_id = ?', holdId)
      .toArray()
      .map((r) => ({ variantId: r.variant_id, quantity: r.quantity }));
  }

  /** What a repeated reserve answers: the first answer, unless the hold has moved on since. */
  private replay(hold: { state: HoldState; result: string }): ReserveResult {
    const first = JSON.parse(hold.result) as ReserveResult;
    if (hold.state === 'held' || hold.state === 'rejected' || hold.state === 'committed') return first;
    return { ok: false, reason: 'released' };
  }

  private releaseHeld(holdId: string, now: number): void {
    // One transaction per hold: a failure part-way leaves this hold exactly as
    // it was (still held), so the retried alarm releases it once.
    this.ctx.storage.transactionSync(() => {
      for (const line of this.holdLines(holdId)) {
        this.sql.exec('update stock set held = held - ?1, available = available + ?1 where variant_id = ?2', line.quantity, line.variantId);
      }
      this.sql.exec(`update hold_state set state = 'released', updated_at = ? where hold_id = ?`, now, holdId);
    });
  }

  private async scheduleAlarm(at: number): Promise<void> {
    const current = await this.ctx.storage.getAlarm();
    if (current === null || current > at) await this.ctx.storage.setAlarm(at);
  }
}

/** A usable hold id, scope or shopper key. */
function isId(s: unknown): s is string {
  return typeof s === 'string' && s.length > 0 && s.length <= MAX_ID;
}

/** Validates lines and merges repeats of a variant; null when invalid. Empty only when `mayBeEmpty` (a claim-only hold). */
function mergeLines(lines: ReserveLine[], mayBeEmpty = false): ReserveLine[] | null {
  if (!Array.isArray(lines) || (lines.length === 0 && !mayBeEmpty) || lines.length > MAX_LINES) return null;
  const byVariant = new Map<string, number>();
  for (const line of lines) {
    if (typeof line?.variantId !== 'string' || !line.variantId || !Number.isInteger(line.quantity) || line.quantity <= 0) return null;
    byVariant.set(line.variantId, (byVariant.get(line.variantId) ?? 0) + line.quantity);
  }
  return [...byVariant].map(([variantId, quantity]) => ({ variantId, quantity }));
}

/**
 * Validates claims and merges repeats of a (scope, shopper): their units add
 * up against the strictest cap given. Null when invalid.
 */
function mergeClaims(claims: CapClaim[]): CapClaim[] | null {
  if (!Array.isArray(claims) || claims.length > MAX_CLAIMS) return null;
  const byShopper = new Map<string, CapClaim>();
  for (const c of claims) {
    if (!isId(c?.scope) || !isId(c.shopper) || !Number.isSafeInteger(c.quantity) || c.quantity <= 0 || !Number.isSafeInteger(c.cap) || c.cap < 0) return null;
    const key = JSON.stringify([c.scope, c.shopper]);
    const seen = byShopper.get(key);
    byShopper.set(key, { scope: c.scope, shopper: c.shopper, quantity: (seen?.quantity ?? 0) + c.quantity, cap: Math.min(seen?.cap ?? c.cap, c.cap) });
  }
  return [...byShopper.values()];
}
