/**
 * Property-based test of `InventoryShard` (fast-check): random sequences of
 * reserve / commit / release / expire / restock / setReceived / initVariants
 * run against a fresh object and against a plain reference model of the same
 * semantics; after every step the object's answer, its hold states and its
 * stock must match the model, and the invariant must hold.
 *
 * Holds get either a huge TTL or 1 ms. A 1 ms hold is released by the
 * object's own alarm at a moment the test does not control, so the model
 * allows exactly that and nothing else: a held, short hold may turn into
 * `released` at any point (all holds due at one alarm time together). The
 * `expire` command waits past every short expiry and runs the alarm; after it
 * no short hold may still be held.
 */
import { runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { InventoryShard, ReserveLine, StockLevel } from './inventory';

type Shard = DurableObjectStub<InventoryShard>;

const HUGE_TTL = 60 * 60 * 1000;
const SHORT_TTL = 1;
const HOLDS = ['h0', 'h1', 'h2', 'h3', 'h4'] as const;
const OPS = ['op0', 'op1', 'op2', 'op3'] as const;
/** `w` starts unknown to the shard: reserving it is refused until it is initialised. */
const VARIANTS = ['x', 'y', 'z', 'w'] as const;
const INITIAL = ['x', 'y', 'z'] as const;

type Cmd =
  | { t: 'reserve'; hold: string; lines: ReserveLine[]; short: boolean }
  | { t: 'commit'; hold: string }
  | { t: 'release'; hold: string }
  | { t: 'expire' }
  | { t: 'pause'; ms: number }
  | { t: 'restock'; op: string; variant: string; quantity: number }
  | { t: 'setReceived'; variant: string; received: number }
  | { t: 'init'; variant: string; received: number };

type HoldState = 'held' | 'committed' | 'released' | 'rejected';
interface ModelHold {
  state: HoldState;
  lines: ReserveLine[];
  first: unknown;
  expiresAt: number;
  short: boolean;
}
interface ModelStock {
  received: number;
  available: number;
  held: number;
  sold: number;
}

/** The reference: the documented semantics of InventoryShard, in plain JS. */
class Model {
  stock = new Map<string, ModelStock>();
  holds = new Map<string, ModelHold>();
  ops = new Map<string, unknown>();

  clone(): Model {
    const m = new Model();
    m.stock = new Map([...this.stock].map(([k, v]) => [k, { ...v }]));
    m.holds = new Map([...this.holds].map(([k, v]) => [k, { ...v }]));
    m.ops = new Map(this.ops);
    return m;
  }

  level(variantId: string): StockLevel {
    const s = this.stock.get(variantId);
    return s ? { variantId, known: true, ...s } : { variantId, known: false, received: 0, available: 0, held: 0, sold: 0 };
  }

  private moveHeld(hold: ModelHold, to: 'available' | 'sold'): void {
    for (const l of hold.lines) {
      const s = this.stock.get(l.variantId)!;
      s.held -= l.quantity;
      s[to] += l.quantity;
    }
  }

  /** What an alarm at time `t` does: releases every held hold due by then. */
  expireUpTo(t: number): void {
    for (const h of this.holds.values()) {
      if (h.state === 'held' && h.expiresAt <= t) {
        this.moveHeld(h, 'available');
        h.state = 'released';
      }
    }
  }

  /** The object's own alarm released this (short, held) hold. */
  releaseByAlarm(holdId: string): void {
    const h = this.holds.get(holdId)!;
    this.moveHeld(h, 'available');
    h.state = 'released';
  }

  reserve(holdId: string, lines: ReserveLine[], short: boolean, actual: unknown): unknown {
    const prev = this.holds.get(holdId);
    if (prev) return prev.state === 'released' ? { ok: false, reason: 'released' } : prev.first;
    const byVariant = new Map<string, number>();
    for (const l of lines) byVariant.set(l.variantId, (byVariant.get(l.variantId) ?? 0) + l.quantity);
    const merged = [...byVariant].map(([variantId, quantity]) => ({ variantId, quantity }));
    const unknown = merged.filter((l) => !this.stock.has(l.variantId)).map((l) => l.variantId);
    if (unknown.length) return { ok: false, reason: 'unknown_variant', variantIds: unknown };
    const shortages = merged
      .filter((l) => this.stock.get(l.variantId)!.available < l.quantity)
      .map((l) => ({ variantId: l.variantId, requested: l.quantity, available: this.stock.get(l.variantId)!.available }));
    if (shortages.length) {
      const first = { ok: false, reason: 'out_of_stock', shortages };
      this.holds.set(holdId, { state: 'rejected', lines: merged, first, expiresAt: 0, short });
      return first;
    }
    // The expiry is the object's clock; take it from its answer.
    const expiresAt = (actual as { ok?: boolean; expiresAt?: number })?.ok ? (actual as { expiresAt: number }).expiresAt : Number.NaN;
    const remaining = Object.fromEntries(merged.map((l) => [l.variantId, this.stock.get(l.variantId)!.available - l.quantity]));
    const first = { ok: true, holdId, expiresAt, lines: merged, remaining };
    for (const l of merged) {
      const s = this.stock.get(l.variantId)!;
      s.available -= l.quantity;
      s.held += l.quantity;
    }
    this.holds.set(holdId, { state: 'held', lines: merged, first, expiresAt, short });
    return first;
  }

  commit(holdId: string): unknown {
    const h = this.holds.get(holdId);
    if (!h) return { ok: false, reason: 'unknown_hold' };
    if (h.state === 'committed') return { ok: true, state: 'committed' };
    if (h.state === 'released') return { ok: false, reason: 'expired' };
    if (h.state === 'rejected') return { ok: false, reason: 'invalid' };
    this.moveHeld(h, 'sold');
    h.state = 'committed';
    return { ok: true, state: 'committed' };
  }

  release(holdId: string): unknown {
    const h = this.holds.get(holdId);
    if (!h) {
      this.holds.set(holdId, { state: 'released', lines: [], first: { ok: false, reason: 'released' }, expiresAt: 0, short: false });
      return { ok: true, state: 'released' };
    }
    if (h.state === 'committed') return { ok: false, reason: 'committed' };
    if (h.state === 'held') {
      this.moveHeld(h, 'available');
      h.state = 'released';
    }
    return { ok: true, state: 'released' };
  }

  restock(opId: string, variantId: string, quantity: number): unknown {
    if (this.ops.has(opId)) return this.ops.get(opId);
    if (!Number.isInteger(quantity) || quantity <= 0) return { ok: false, reason: 'invalid' };
    const s = this.stock.get(variantId);
    let result: unknown;
    if (!s) result = { ok: false, reason: 'unknown_variant', variantIds: [variantId] };
    else if (s.sold < quantity) result = { ok: false, reason: 'invalid' };
    else {
      s.sold -= quantity;
      s.available += quantity;
      result = { ok: true };
    }
    // Only a restock that happened is remembered under its op id.
    if ((result as { ok: boolean }).ok) this.ops.set(opId, result);
    return result;
  }

  setReceived(variantId: string, received: number): unknown {
    if (!Number.isInteger(received) || received < 0) return { ok: false, reason: 'invalid' };
    const s = this.stock.get(variantId);
    if (!s) this.stock.set(variantId, { received, available: received, held: 0, sold: 0 });
    else {
      if (received < s.held + s.sold) return { ok: false, reason: 'below_committed', level: this.level(variantId) };
      s.received = received;
      s.available = received - s.held - s.sold;
    }
    return { ok: true, level: this.level(variantId) };
  }

  init(variantId: string, received: number): unknown {
    if (Number.isInteger(received) && received >= 0 && !this.stock.has(variantId)) {
      this.stock.set(variantId, { received, available: received, held: 0, sold: 0 });
    }
    return [this.level(variantId)];
  }

  apply(cmd: Cmd, actual: unknown): unknown {
    switch (cmd.t) {
      case 'reserve':
        return this.reserve(cmd.hold, cmd.lines, cmd.short, actual);
      case 'commit':
        return this.commit(cmd.hold);
      case 'release':
        return this.release(cmd.hold);
      case 'restock':
        return this.restock(cmd.op, cmd.variant, cmd.quantity);
      case 'setReceived':
        return this.setReceived(cmd.variant, cmd.received);
      case 'init':
        return this.init(cmd.variant, cmd.received);
      case 'expire':
      case 'pause':
        return undefined;
    }
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** JSON with sorted keys: structural equality that ignores key order. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b))) : v,
  );
}

async function call(stub: Shard, cmd: Cmd): Promise<unknown> {
  switch (cmd.t) {
    case 'reserve':
      return stub.reserve(cmd.hold, 'ck', cmd.lines, cmd.short ? SHORT_TTL : HUGE_TTL);
    case 'commit':
      return stub.commit(cmd.hold);
    case 'release':
      return stub.release(cmd.hold);
    case 'restock':
      return stub.restock(cmd.op, cmd.variant, cmd.quantity);
    case 'setReceived':
      return stub.setReceived(cmd.variant, cmd.received);
    case 'init':
      return stub.initVariants([{ variantId: cmd.variant, received: cmd.received }]);
    case 'expire':
      return undefined;
    case 'pause':
      await sleep(cmd.ms);
      return undefined;
  }
}

interface Snapshot {
  now: number;
  alarm: number | null;
  stock: Map<string, ModelStock>;
  holds: Map<string, { state: string; expiresAt: number }>;
  heldLines: Map<string, number>;
}

/** Everything the object stores, read in one synchronous step inside it. */
async function snapshot(stub: Shard): Promise<Snapshot> {
  return runInDurableObject(stub, async (_obj, state) => {
    const sql = state.storage.sql;
    const stock = new Map(
      sql
        .exec<{ variant_id: string; received: number; available: number; held: number; sold: number }>('select variant_id, received, available, held, sold from stock')
        .toArray()
        .map((r) => [r.variant_id, { received: r.received, available: r.available, held: r.held, sold: r.sold }] as const),
    );
    const holds = new Map(
      sql
        .exec<{ hold_id: string; state: string; expires_at: number }>('select hold_id, state, expires_at from hold_state')
        .toArray()
        .map((r) => [r.hold_id, { state: r.state, expiresAt: r.expires_at }] as const),
    );
    const heldLines = new Map(
      sql
        .exec<{ variant_id: string; q: number }>(
          `select l.variant_id, sum(l.quantity) as q from hold_lines l join hold_state h on h.hold_id = l.hold_id where h.state = 'held' group by l.variant_id`,
        )
        .toArray()
        .map((r) => [r.variant_id, r.q] as const),
    );
    const now = Date.now();
    const alarm = await state.storage.getAlarm();
    return { now, alarm, stock, holds, heldLines };
  });
}

/**
 * Matches the object's answer against the model, allowing the object's own
 * alarm to have released some due short holds first (always every hold due
 * by some time t, so: a prefix of the held short holds by expiry).
 */
function stepModel(model: Model, cmd: Cmd, actual: unknown, trace: string[]): Model {
  const due = [...new Set([...model.holds.values()].filter((h) => h.state === 'held' && h.short).map((h) => h.expiresAt))].sort((a, b) => a - b);
  const tried: string[] = [];
  for (const t of [Number.NEGATIVE_INFINITY, ...due]) {
    const m = model.clone();
    m.expireUpTo(t);
    const expected = m.apply(cmd, actual);
    if (canonical(expected) === canonical(actual)) return m;
    tried.push(canonical(expected));
  }
  throw new Error(`answer differs from the model\n  command: ${canonical(cmd)}\n  object:  ${canonical(actual)}\n  model:   ${tried.join('\n      or:  ')}\n  trace:\n    ${trace.join('\n    ')}`);
}

/** Brings the model's holds in line with what the object's alarm did, then compares everything. */
function checkAgainst(model: Model, snap: Snapshot, context: string): void {
  const holdIds = new Set([...model.holds.keys(), ...snap.holds.keys()]);
  for (const id of holdIds) {
    const m = model.holds.get(id);
    const o = snap.holds.get(id);
    if (!m || !o) throw new Error(`hold ${id}: model ${m?.state ?? 'absent'}, object ${o?.state ?? 'absent'}\n${context}`);
    if (m.state === o.state) continue;
    if (m.state === 'held' && m.short && o.state === 'released') {
      // The object's alarm released it: allowed for a due short hold.
      model.releaseByAlarm(id);
      continue;
    }
    throw new Error(`hold ${id}: model ${m.state}, object ${o.state}\n${context}`);
  }
  const variants = new Set([...model.stock.keys(), ...snap.stock.keys()]);
  for (const v of variants) {
    const m = model.stock.get(v);
    const o = snap.stock.get(v);
    expect(o, `${v} in object\n${context}`).toEqual(m);
    // The invariant, read straight from SQLite.
    expect(o!.available + o!.held + o!.sold, context).toBe(o!.received);
    expect(Math.min(o!.available, o!.held, o!.sold), context).toBeGreaterThanOrEqual(0);
    expect(o!.held, `held = units of live holds (${v})\n${context}`).toBe(snap.heldLines.get(v) ?? 0);
  }
}

function checkLevels(levels: StockLevel[], model: Model, context: string): void {
  for (const l of levels) {
    const m = model.level(l.variantId);
    expect(l.known, context).toBe(m.known);
    if (!l.known) continue;
    expect(Math.min(l.available, l.held, l.sold), context).toBeGreaterThanOrEqual(0);
    expect(l.available + l.held + l.sold, context).toBe(l.received);
    // Only the object's alarm may have moved held -> available since the call.
    expect({ received: l.received, sold: l.sold, availablePlusHeld: l.available + l.held }, context).toEqual({
      received: m.received,
      sold: m.sold,
      availablePlusHeld: m.available + m.held,
    });
  }
}

const holdArb = fc.constantFrom(...HOLDS);
const variantArb = fc.constantFrom(...VARIANTS);
const cmdArb: fc.Arbitrary<Cmd> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      t: fc.constant('reserve' as const),
      hold: holdArb,
      lines: fc.array(
        // fc.record builds null-prototype objects, which RPC cannot serialise: copy them.
        fc.record({ variantId: fc.constantFrom(...VARIANTS, 'x', 'y', 'z'), quantity: fc.integer({ min: 1, max: 5 }) }).map((l) => ({ ...l })),
        { minLength: 1, maxLength: 3 },
      ),
      short: fc.integer({ min: 0, max: 2 }).map((n) => n === 0),
    }),
  },
  { weight: 4, arbitrary: fc.record({ t: fc.constant('commit' as const), hold: holdArb }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('release' as const), hold: holdArb }) },
  { weight: 2, arbitrary: fc.constant({ t: 'expire' as const }) },
  // Lets the object's own alarm fire between two commands.
  { weight: 1, arbitrary: fc.record({ t: fc.constant('pause' as const), ms: fc.integer({ min: 1, max: 25 }) }) },
  {
    weight: 2,
    arbitrary: fc.record({ t: fc.constant('restock' as const), op: fc.constantFrom(...OPS), variant: variantArb, quantity: fc.integer({ min: 0, max: 3 }) }),
  },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('setReceived' as const), variant: variantArb, received: fc.integer({ min: -1, max: 20 }) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('init' as const), variant: variantArb, received: fc.integer({ min: 0, max: 10 }) }) },
);

describe('InventoryShard against a reference model (fast-check)', () => {
  it('random interleavings of reserve/commit/release/expire/restock/setReceived/initVariants keep the object equal to the model and balanced after every step', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.tuple(fc.integer({ min: 0, max: 15 }), fc.integer({ min: 0, max: 15 }), fc.integer({ min: 0, max: 15 })),
        fc.array(cmdArb, { minLength: 1, maxLength: 40, size: 'max' }),
        async (initial, cmds) => {
          const stub = env.INVENTORY.get(env.INVENTORY.idFromName('inv:test:' + crypto.randomUUID()));
          let model = new Model();
          const entries = INITIAL.map((variantId, i) => ({ variantId, received: initial[i]! }));
          await stub.initVariants(entries);
          for (const e of entries) model.init(e.variantId, e.received);
          const trace: string[] = [`initVariants ${canonical(entries)}`];

          for (const cmd of cmds) {
            let expireBefore = 0;
            if (cmd.t === 'expire') {
              const lastShort = Math.max(0, ...[...model.holds.values()].filter((h) => h.state === 'held' && h.short).map((h) => h.expiresAt));
              while (Date.now() <= lastShort + 1) await sleep(2);
              expireBefore = Date.now();
              await runDurableObjectAlarm(stub);
            }
            const actual = await call(stub, cmd);
            trace.push(`${canonical(cmd)} -> ${canonical(actual)}`);
            if (cmd.t !== 'expire' && cmd.t !== 'pause') model = stepModel(model, cmd, actual, trace);

            const levels = await stub.levels([...VARIANTS]);
            const snap = await snapshot(stub);
            const context = `after ${canonical(cmd)}\n  trace:\n    ${trace.join('\n    ')}`;
            checkLevels(levels, model, context);
            checkAgainst(model, snap, context);

            if (cmd.t === 'expire') {
              // Every short hold due before the alarm ran is released now.
              const stillHeld = [...model.holds.entries()].filter(([, h]) => h.state === 'held' && h.short && h.expiresAt < expireBefore);
              expect(stillHeld.map(([id]) => id), `short holds still held after expire\n${context}`).toEqual([]);
            }
            // While anything is held an alarm is set, no later than the earliest expiry.
            const heldExpiries = [...snap.holds.values()].filter((h) => h.state === 'held').map((h) => h.expiresAt);
            if (heldExpiries.length) {
              const ok = (s: Snapshot) => s.alarm !== null && s.alarm <= Math.min(...[...s.holds.values()].filter((h) => h.state === 'held').map((h) => h.expiresAt), Infinity);
              if (!ok(snap)) {
                // The object's own alarm may be mid-delivery; look again.
                await sleep(30);
                const again = await snapshot(stub);
                checkAgainst(model, again, context);
                const stillHeld = [...again.holds.values()].some((h) => h.state === 'held');
                if (stillHeld) expect(ok(again), `alarm ${again.alarm} vs held holds ${canonical([...again.holds])}\n${context}`).toBe(true);
              }
            }
          }
        },
      ),
      { numRuns: 100 },
    );
  }, 120_000);
});
