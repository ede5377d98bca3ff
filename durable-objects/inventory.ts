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

/** Why a reservation or a hold operation was refused. */
export type InventoryRefusal =
  | { ok: false; reason: 'out_of_stock'; shortages: { variantId: string; requested: number; available: number }[] }
  | { ok: false; reason: 'unknown_variant'; variantIds: string[] }
  | { ok: false; reason: 'released' | 'expired' | 'committed' | 'unknown_hold' | 'invalid' };

/** A reservation that holds every line until `expiresAt` (epoch ms). */
export interface ReserveSuccess {
  ok: true;
  holdId: string;
  expiresAt: number;
  lines: ReserveLine[];
  /** Units of each line's variant still available in this shard right after the hold. */
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
] as const;

export class InventoryShard extends DurableObject<Env> {
  private readonly sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    void ctx.blockConcurrencyWhile(async () => migrateSql(ctx.storage.sql, MIGRATIONS));
  }

  /**
   * Holds every line or none. A line for a variant this shard does not know
   * is refused with `unknown_variant` (and not recorded, so the caller can
   * initialise the variant and retry with the same hold id).
   */
  async reserve(holdId: string, checkoutId: string, lines: ReserveLine[], ttlMs: number = DEFAULT_HOLD_TTL_MS): Promise<ReserveResult> {
    const previous = this.holdRow(holdId);
    if (previous) return this.replay(previous);
    const merged = mergeLines(lines);
    if (!merged || !holdId || holdId.length > 200 || !(ttlMs > 0 && ttlMs <= 24 * 3_600_000)) return { ok: false, reason: 'invalid' };

    const now = Date.now();
    const unknown: string[] = [];
    const shortages: { variantId: string; requested: number; available: number }[] = [];
    for (const line of merged) {
      const row = this.sql.exec<{ available: number }>('select available from stock where variant_id = ?', line.variantId).toArray()[0];
      if (!row) unknown.push(line.variantId);
      else if (row.available < line.quantity) shortages.push({ variantId: line.variantId, requested: line.quantity, available: row.available });
    }
    if (unknown.length) return { ok: false, reason: 'unknown_variant', variantIds: unknown };
    if (shortages.length) {
      const refusal: ReserveResult = { ok: false, reason: 'out_of_stock', shortages };
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
    });
    // The writes above are committed together; the alarm only needs to be
    // no later than the earliest expiry.
    await this.scheduleAlarm(expiresAt);
    return result;
  }

  /**
   * Held -> sold. A hold that is still held commits, even a moment past its
   * expiry if the alarm has not released it yet: whichever of commit and
   * release runs first wins, and the other is refused.
   */
  commit(holdId: string): HoldResult {
    const hold = this.holdRow(holdId);
    if (!hold) return { ok: false, reason: 'unknown_hold' };
    if (hold.state === 'committed') return { ok: true, state: 'committed' };
    // Released (by the alarm or the caller) before this commit arrived.
    if (hold.state === 'released') return { ok: false, reason: 'expired' };
    if (hold.state === 'rejected') return { ok: false, reason: 'invalid' };
    this.ctx.storage.transactionSync(() => {
      for (const line of this.holdLines(holdId)) {
        this.sql.exec('update stock set held = held - ?1, sold = sold + ?1 where variant_id = ?2', line.quantity, line.variantId);
      }
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
    if (!holdId || holdId.length > 200) return { ok: false, reason: 'invalid' };
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
    const horizon = now - HOLD_RECORD_RETENTION_MS;
    this.ctx.storage.transactionSync(() => {
      this.sql.exec(`delete from hold_lines where hold_id in (select hold_id from hold_state where state <> 'held' and updated_at < ?)`, horizon);
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

/** Validates lines and merges repeats of a variant; null when invalid. */
function mergeLines(lines: ReserveLine[]): ReserveLine[] | null {
  if (!Array.isArray(lines) || lines.length === 0 || lines.length > MAX_LINES) return null;
  const byVariant = new Map<string, number>();
  for (const line of lines) {
    if (typeof line?.variantId !== 'string' || !line.variantId || !Number.isInteger(line.quantity) || line.quantity <= 0) return null;
    byVariant.set(line.variantId, (byVariant.get(line.variantId) ?? 0) + line.quantity);
  }
  return [...byVariant].map(([variantId, quantity]) => ({ variantId, quantity }));
}
