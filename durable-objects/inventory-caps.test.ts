/**
 * Per-shopper purchase caps (flash sales): claims held with an
 * `InventoryShard` hold, and `reserveAcross` keeping one shopper's ledger per
 * key on one shard of the region.
 *
 * Shard-level tests use their own object (`inv:test:<uuid>`); the tests
 * across shards use the region's real shards, a fresh variant each and a
 * fresh cap scope each, so they never see each other's stock or claims.
 */
import { runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { afterAll, describe, expect, it } from 'vitest';
import { createDatabase } from '../db/client';
import { stockedVariant } from '../test/workers/shop';
import { capShardOf, commitParts, regionLevels, reserveAcross, shardStub, type CapRequest } from '../workers/inventory/shards';
import type { CapClaim, InventoryShard, ReserveLine } from './inventory';

type Shard = DurableObjectStub<InventoryShard>;

const TTL = 10 * 60 * 1000;
const WEEK_AND_A_DAY = 8 * 24 * 3_600_000;

function freshShard(): Shard {
  return env.INVENTORY.get(env.INVENTORY.idFromName('inv:test:' + crypto.randomUUID()));
}

const line = (variantId: string, quantity: number): ReserveLine => ({ variantId, quantity });
const claim = (shopper: string, quantity: number, cap: number, scope = 'sale-1'): CapClaim => ({ scope, shopper, quantity, cap });
const levelOf = async (stub: Shard, variantId: string) => {
  const [l] = await stub.levels([variantId]);
  return { available: l!.available, held: l!.held, sold: l!.sold };
};

/** Hold states and claim rows as the object's SQLite has them. */
async function rows(stub: Shard) {
  return runInDurableObject(stub, (_obj, state) => ({
    holds: state.storage.sql.exec<{ hold_id: string; state: string }>('select hold_id, state from hold_state order by hold_id').toArray(),
    claims: state.storage.sql.exec<{ hold_id: string; quantity: number }>('select hold_id, quantity from hold_claims order by hold_id').toArray(),
  }));
}

/** Moves holds' expiry (`expires_at`) or last change (`updated_at`) into the past. */
async function age(stub: Shard, column: 'expires_at' | 'updated_at', holdIds: string[], byMs = 1): Promise<void> {
  await runInDurableObject(stub, (_obj, state) => {
    for (const id of holdIds) state.storage.sql.exec(`update hold_state set ${column} = ? where hold_id = ?`, Date.now() - byMs, id);
  });
}

describe('InventoryShard: cap claims', () => {
  it('holds a claim within the cap, with or without stock lines', async () => {
    const stub = freshShard();
    const only = await stub.reserve('h1', 'ck1', [], TTL, [claim('u:1', 2, 3)]);
    expect(only).toMatchObject({ ok: true, holdId: 'h1', lines: [], remaining: {} });
    expect(await stub.claimed('sale-1', 'u:1')).toEqual({ held: 2, committed: 0 });
    // Exactly at the cap is allowed; other scopes and shoppers are separate ledgers.
    expect((await stub.reserve('h2', 'ck2', [], TTL, [claim('u:1', 1, 3)])).ok).toBe(true);
    expect((await stub.reserve('h3', 'ck3', [], TTL, [claim('u:1', 3, 3, 'sale-2'), claim('u:2', 3, 3)])).ok).toBe(true);
    expect(await stub.claimed('sale-1', 'u:1')).toEqual({ held: 3, committed: 0 });
    expect(await stub.claimed('sale-2', 'u:1')).toEqual({ held: 3, committed: 0 });
    expect(await stub.claimed('sale-1', 'u:2')).toEqual({ held: 3, committed: 0 });
    expect(await stub.claimed('sale-1', 'nobody')).toEqual({ held: 0, committed: 0 });
  });

  it('refuses a claim over the cap with what is used, holds nothing, and a replay answers the same', async () => {
    const stub = freshShard();
    await stub.reserve('first', 'ck', [], TTL, [claim('d:x', 2, 3)]);
    const refused = await stub.reserve('second', 'ck', [], TTL, [claim('d:x', 2, 3), claim('ip:y', 2, 3)]);
    expect(refused).toEqual({ ok: false, reason: 'cap_exceeded', claims: [{ scope: 'sale-1', shopper: 'd:x', requested: 2, used: 2, cap: 3 }] });
    // All or nothing: the claim under ip:y, which fitted, is not held either.
    expect(await stub.claimed('sale-1', 'd:x')).toEqual({ held: 2, committed: 0 });
    expect(await stub.claimed('sale-1', 'ip:y')).toEqual({ held: 0, committed: 0 });
    // Room appears, but the refused hold id keeps its answer and still holds nothing.
    await stub.release('first');
    expect(await stub.reserve('second', 'ck', [], TTL, [claim('d:x', 2, 3), claim('ip:y', 2, 3)])).toEqual(refused);
    expect(await stub.claimed('sale-1', 'd:x')).toEqual({ held: 0, committed: 0 });
    expect(await stub.commit('second')).toEqual({ ok: false, reason: 'invalid' });
    expect(await stub.claimed('sale-1', 'd:x')).toEqual({ held: 0, committed: 0 });
    // A cap of 0 admits nothing.
    expect(await stub.reserve('zero', 'ck', [], TTL, [claim('d:x', 1, 0)])).toMatchObject({ reason: 'cap_exceeded', claims: [{ used: 0, cap: 0 }] });
  });

  it('a successful hold replayed with the same id answers the same and claims once', async () => {
    const stub = freshShard();
    const first = await stub.reserve('h', 'ck', [], TTL, [claim('u:1', 2, 2)]);
    expect(first.ok).toBe(true);
    const again = await Promise.all(Array.from({ length: 10 }, () => stub.reserve('h', 'ck', [], TTL, [claim('u:1', 2, 2)])));
    for (const r of again) expect(r).toEqual(first);
    expect(await stub.claimed('sale-1', 'u:1')).toEqual({ held: 2, committed: 0 });
  });

  it('release frees the claim; releasing again changes nothing', async () => {
    const stub = freshShard();
    await stub.reserve('h', 'ck', [], TTL, [claim('u:1', 2, 2)]);
    expect(await stub.reserve('blocked', 'ck', [], TTL, [claim('u:1', 1, 2)])).toMatchObject({ reason: 'cap_exceeded' });
    expect(await stub.release('h')).toEqual({ ok: true, state: 'released' });
    expect(await stub.release('h')).toEqual({ ok: true, state: 'released' });
    expect(await stub.claimed('sale-1', 'u:1')).toEqual({ held: 0, committed: 0 });
    expect((await stub.reserve('after', 'ck', [], TTL, [claim('u:1', 2, 2)])).ok).toBe(true);
  });

  it('expiry frees the claim: the alarm releases it once, and running it again changes nothing', async () => {
    const stub = freshShard();
    await stub.reserve('late', 'ck', [], TTL, [claim('u:1', 1, 3)]);
    await stub.reserve('keep', 'ck', [], TTL, [claim('u:1', 1, 3)]);
    await age(stub, 'expires_at', ['late']);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await stub.claimed('sale-1', 'u:1')).toEqual({ held: 1, committed: 0 });
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await stub.claimed('sale-1', 'u:1')).toEqual({ held: 1, committed: 0 });
    // Its order was paid for meanwhile: the lapsed claim is made again, within the cap.
    expect(await stub.commit('late')).toEqual({ ok: true, state: 'committed' });
    expect(await stub.claimed('sale-1', 'u:1')).toEqual({ held: 1, committed: 1 });
  });

  it('a lapsed claim is made again at commit only while the shopper is within the cap', async () => {
    const stub = freshShard();
    await stub.reserve('late', 'ck', [], TTL, [claim('u:1', 2, 2)]);
    await age(stub, 'expires_at', ['late']);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    // Meanwhile the shopper used the cap elsewhere.
    await stub.reserve('other', 'ck', [], TTL, [claim('u:1', 1, 2)]);
    expect(await stub.commit('late')).toEqual({ ok: false, reason: 'expired' });
    expect(await stub.claimed('sale-1', 'u:1')).toEqual({ held: 1, committed: 0 });
  });

  it('commit makes the claim permanent: still counted after the retention cleanup deleted the hold records', async () => {
    const stub = freshShard();
    await stub.reserve('bought', 'ck', [], TTL, [claim('u:1', 2, 3)]);
    expect(await stub.commit('bought')).toEqual({ ok: true, state: 'committed' });
    expect(await stub.commit('bought')).toEqual({ ok: true, state: 'committed' });
    expect(await stub.release('bought')).toEqual({ ok: false, reason: 'committed' });
    expect(await stub.claimed('sale-1', 'u:1')).toEqual({ held: 0, committed: 2 });
    await stub.reserve('dropped', 'ck', [], TTL, [claim('u:1', 1, 3)]);
    await stub.release('dropped');

    // A week and a day later the cleanup drops both finished holds and their claims...
    await age(stub, 'updated_at', ['bought', 'dropped'], WEEK_AND_A_DAY);
    await runInDurableObject<InventoryShard, void>(stub, (obj) => obj.alarm());
    expect(await rows(stub)).toEqual({ holds: [], claims: [] });
    // ...but not what the shopper bought.
    expect(await stub.claimed('sale-1', 'u:1')).toEqual({ held: 0, committed: 2 });
    expect(await stub.reserve('more', 'ck', [], TTL, [claim('u:1', 2, 3)])).toEqual({
      ok: false,
      reason: 'cap_exceeded',
      claims: [{ scope: 'sale-1', shopper: 'u:1', requested: 2, used: 2, cap: 3 }],
    });
    expect((await stub.reserve('last', 'ck', [], TTL, [claim('u:1', 1, 3)])).ok).toBe(true);
    await stub.commit('last');
    expect(await stub.claimed('sale-1', 'u:1')).toEqual({ held: 0, committed: 3 });
  });

  it('claims and stock in one call are all or nothing', async () => {
    const stub = freshShard();
    await stub.initVariants([{ variantId: 'x', received: 3 }]);
    // Stock short: the claim that fitted is not recorded.
    expect(await stub.reserve('short', 'ck', [line('x', 4)], TTL, [claim('u:1', 4, 10)])).toEqual({
      ok: false,
      reason: 'out_of_stock',
      shortages: [{ variantId: 'x', requested: 4, available: 3 }],
    });
    expect(await stub.claimed('sale-1', 'u:1')).toEqual({ held: 0, committed: 0 });
    // Cap exceeded: the stock that was there is not held.
    expect(await stub.reserve('over', 'ck', [line('x', 2)], TTL, [claim('u:1', 2, 1)])).toMatchObject({ ok: false, reason: 'cap_exceeded' });
    expect(await levelOf(stub, 'x')).toEqual({ available: 3, held: 0, sold: 0 });
    // Both fit: both held, and commit sells the stock and counts the claim.
    expect(await stub.reserve('both', 'ck', [line('x', 2)], TTL, [claim('u:1', 2, 2)])).toMatchObject({ ok: true, remaining: { x: 1 } });
    expect(await levelOf(stub, 'x')).toEqual({ available: 1, held: 2, sold: 0 });
    expect(await stub.claimed('sale-1', 'u:1')).toEqual({ held: 2, committed: 0 });
    await stub.commit('both');
    expect(await levelOf(stub, 'x')).toEqual({ available: 1, held: 0, sold: 2 });
    expect(await stub.claimed('sale-1', 'u:1')).toEqual({ held: 0, committed: 2 });
  });

  it('refuses invalid claims with invalid and records nothing', async () => {
    const stub = freshShard();
    const good = claim('u:1', 1, 5);
    const cases: unknown[] = [
      { ...good, scope: '' },
      { ...good, shopper: '' },
      { ...good, scope: 's'.repeat(201) },
      { ...good, shopper: 7 },
      { ...good, quantity: 0 },
      { ...good, quantity: -1 },
      { ...good, quantity: 1.5 },
      { ...good, quantity: Number.POSITIVE_INFINITY },
      { ...good, cap: -1 },
      { ...good, cap: 2.5 },
      { ...good, cap: Number.NaN },
      { ...good, cap: '5' },
      null,
    ];
    for (const c of cases) expect(await stub.reserve('h', 'ck', [], TTL, [c as CapClaim]), JSON.stringify(c)?.slice(0, 80)).toEqual({ ok: false, reason: 'invalid' });
    expect(await stub.reserve('h', 'ck', [], TTL, Array.from({ length: 21 }, (_, i) => claim(`u:${i}`, 1, 5)))).toEqual({ ok: false, reason: 'invalid' });
    expect(await stub.reserve('h', 'ck', [], TTL, 'not an array' as unknown as CapClaim[])).toEqual({ ok: false, reason: 'invalid' });
    // No lines and no claims is still nothing to hold.
    expect(await stub.reserve('h', 'ck', [], TTL, [])).toEqual({ ok: false, reason: 'invalid' });
    expect(await rows(stub)).toEqual({ holds: [], claims: [] });
    // Nothing was recorded: the same hold id still holds, and 20 claims is the limit.
    expect((await stub.reserve('h', 'ck', [], TTL, Array.from({ length: 20 }, (_, i) => claim(`u:${i}`, 1, 5)))).ok).toBe(true);
  });
});

describe('reserveAcross with caps: one ledger per shopper key', () => {
  const db = createDatabase(env);
  afterAll(() => db.close());

  const scope = () => `sale-${crypto.randomUUID()}`;
  const capOf = (s: string, cap: number, variantIds: string[], keys: string[]): CapRequest => ({ scope: s, cap, variantIds, keys });
  const reserve = (holdId: string, variantId: string, quantity: number, caps: CapRequest[]) =>
    reserveAcross(env, db.primary, 'sg', holdId, `ck-${holdId}`, [{ variantId, quantity }], 60_000, undefined, caps);
  const claimedOn = (s: string, key: string) => shardStub(env, 'sg', capShardOf(s, key)).claimed(s, key);
  const heldOf = async (variantId: string) => (await regionLevels(env, 'sg', [variantId])).get(variantId)!.held;

  /** A guest's two keys, on different ledger shards, so the lock order matters. */
  function guest(s: string): string[] {
    const device = `d:${crypto.randomUUID()}`;
    for (;;) {
      const ip = `ip:10.0.${Math.floor(Math.random() * 256)}.${Math.floor(Math.random() * 256)}`;
      if (capShardOf(s, ip) !== capShardOf(s, device)) return [device, ip];
    }
  }

  /** 50 parallel attempts of one shopper, `quantity` each, with different hold ids. */
  async function burst(variantId: string, quantity: number, caps: CapRequest[]) {
    const results = await Promise.all(Array.from({ length: 50 }, () => reserve(`hold_${crypto.randomUUID()}`, variantId, quantity, caps)));
    return { ok: results.filter((r) => r.ok), capped: results.filter((r) => !r.ok && r.reason === 'cap_exceeded'), results };
  }

  it('50 parallel 1-unit checkouts of one guest (device and ip keys), hot variant on 4 shards, cap 2: exactly 2 hold', async () => {
    const { variantId } = await stockedVariant(100, 1990, 4);
    const s = scope();
    const keys = guest(s);
    const { ok, capped } = await burst(variantId, 1, [capOf(s, 2, [variantId], keys)]);
    expect(ok).toHaveLength(2);
    expect(capped).toHaveLength(48);
    expect(await heldOf(variantId)).toBe(2);
    for (const key of keys) expect(await claimedOn(s, key)).toEqual({ held: 2, committed: 0 });
  }, 60_000);

  it('50 parallel 2-unit checkouts with cap 2: exactly 1 holds; 3 units with cap 2 is refused and holds nothing', async () => {
    const { variantId } = await stockedVariant(100, 1990, 4);
    const s = scope();
    const keys = guest(s);
    const caps = [capOf(s, 2, [variantId], keys)];
    const { ok, capped } = await burst(variantId, 2, caps);
    expect(ok).toHaveLength(1);
    expect(capped).toHaveLength(49);
    expect(await heldOf(variantId)).toBe(2);

    const other = scope();
    const three = await reserve(`hold_${crypto.randomUUID()}`, variantId, 3, [capOf(other, 2, [variantId], guest(other))]);
    expect(three).toMatchObject({ ok: false, reason: 'cap_exceeded', claims: [{ scope: other, requested: 3, used: 0, cap: 2 }] });
    expect(await heldOf(variantId)).toBe(2);
  }, 60_000);

  it('two shoppers in one sale are independent, and a cap ignores variants outside its sale', async () => {
    const { variantId } = await stockedVariant(100, 1990, 4);
    const { variantId: other } = await stockedVariant(10);
    const s = scope();
    const [alice, bob] = [guest(s), guest(s)];
    const caps = (keys: string[]) => [capOf(s, 2, [variantId], keys)];
    expect((await reserve(`hold_${crypto.randomUUID()}`, variantId, 2, caps(alice))).ok).toBe(true);
    expect(await reserve(`hold_${crypto.randomUUID()}`, variantId, 1, caps(alice))).toMatchObject({ reason: 'cap_exceeded' });
    expect((await reserve(`hold_${crypto.randomUUID()}`, variantId, 2, caps(bob))).ok).toBe(true);
    // A cart without the sale's variants claims nothing.
    expect((await reserve(`hold_${crypto.randomUUID()}`, other, 5, caps(alice))).ok).toBe(true);
    expect(await claimedOn(s, alice[0]!)).toEqual({ held: 2, committed: 0 });
  }, 60_000);

  it('a stock failure after the claims held releases them, so the shopper can try again', async () => {
    const { variantId } = await stockedVariant(1);
    const s = scope();
    const keys = guest(s);
    const caps = [capOf(s, 2, [variantId], keys)];
    expect(await reserve(`hold_${crypto.randomUUID()}`, variantId, 2, caps)).toMatchObject({ ok: false, reason: 'out_of_stock' });
    for (const key of keys) expect(await claimedOn(s, key)).toEqual({ held: 0, committed: 0 });
    const retry = await reserve(`hold_${crypto.randomUUID()}`, variantId, 1, caps);
    expect(retry.ok).toBe(true);
    // Committed, the unit counts for good.
    if (!retry.ok) throw new Error('reserve failed');
    expect(await commitParts(env, retry.parts)).toEqual([]);
    for (const key of keys) expect(await claimedOn(s, key)).toEqual({ held: 0, committed: 1 });
    expect(await reserve(`hold_${crypto.randomUUID()}`, variantId, 2, caps)).toMatchObject({ reason: 'cap_exceeded', claims: [{ used: 1, cap: 2 }] });
  }, 60_000);

  it('a retried reservation with the same hold id replays its answers instead of claiming twice', async () => {
    const { variantId } = await stockedVariant(100, 1990, 4);
    const s = scope();
    const keys = guest(s);
    const caps = [capOf(s, 2, [variantId], keys)];
    const first = await reserve('hold_same_' + crypto.randomUUID(), variantId, 2, caps);
    if (!first.ok) throw new Error('reserve failed');
    expect(await reserve(first.holdId, variantId, 2, caps)).toEqual(first);
    for (const key of keys) expect(await claimedOn(s, key)).toEqual({ held: 2, committed: 0 });
    expect(await heldOf(variantId)).toBe(2);
  }, 60_000);

  it('asks the ledger shards one at a time in ascending order, before any stock: a refusal on the lower one means the higher one is never asked', async () => {
    // In local workerd parallel calls arrive in the order they were made, so
    // the bursts above cannot tell ordered claims from parallel ones; what
    // each shard recorded can.
    const { variantId } = await stockedVariant(10);
    const s = scope();
    const [low, high] = guest(s).sort((a, b) => capShardOf(s, a) - capShardOf(s, b)) as [string, string];
    const caps = [capOf(s, 2, [variantId], [low, high])];
    const ledger = (key: string) => shardStub(env, 'sg', capShardOf(s, key));
    const partState = (key: string, holdId: string) =>
      runInDurableObject(ledger(key), (_obj, state) =>
        state.storage.sql.exec<{ state: string }>('select state from hold_state where hold_id = ?', `${holdId}:sg:${capShardOf(s, key)}:cap`).toArray()[0]?.state,
      );

    // The lower key is at its cap (an earlier checkout under it alone).
    await ledger(low).reserve(`earlier_${crypto.randomUUID()}`, 'ck', [], 60_000, [{ scope: s, shopper: low, quantity: 2, cap: 2 }]);
    const refusedLow = `hold_${crypto.randomUUID()}`;
    expect(await reserve(refusedLow, variantId, 1, caps)).toMatchObject({ reason: 'cap_exceeded', claims: [{ shopper: low, used: 2 }] });
    expect(await partState(low, refusedLow)).toBe('rejected');
    expect(await partState(high, refusedLow)).toBeUndefined();
    expect(await heldOf(variantId)).toBe(0);

    // The higher key at its cap: the lower part was held, and is released.
    const t = scope();
    const [low2, high2] = guest(t).sort((a, b) => capShardOf(t, a) - capShardOf(t, b)) as [string, string];
    await shardStub(env, 'sg', capShardOf(t, high2)).reserve(`earlier_${crypto.randomUUID()}`, 'ck', [], 60_000, [{ scope: t, shopper: high2, quantity: 2, cap: 2 }]);
    const refusedHigh = `hold_${crypto.randomUUID()}`;
    expect(await reserve(refusedHigh, variantId, 1, [capOf(t, 2, [variantId], [high2, low2])])).toMatchObject({ reason: 'cap_exceeded', claims: [{ shopper: high2 }] });
    expect(await claimedOn(t, low2)).toEqual({ held: 0, committed: 0 });
    expect(await heldOf(variantId)).toBe(0);
  }, 60_000);

  it('an account shopper (u:<id>) gets exactly the cap out of 50 parallel attempts', async () => {
    const { variantId } = await stockedVariant(100, 1990, 4);
    const s = scope();
    const { ok, capped } = await burst(variantId, 1, [capOf(s, 3, [variantId], [`u:${crypto.randomUUID()}`])]);
    expect(ok).toHaveLength(3);
    expect(capped).toHaveLength(47);
    expect(await heldOf(variantId)).toBe(3);
  }, 60_000);

  it('a cap that applies but names no key of the shopper fails loudly instead of allowing anything', async () => {
    const { variantId } = await stockedVariant(10);
    await expect(reserve(`hold_${crypto.randomUUID()}`, variantId, 1, [capOf(scope(), 2, [variantId], [])])).rejects.toThrow(/no key/);
    expect(await heldOf(variantId)).toBe(0);
  });
});
