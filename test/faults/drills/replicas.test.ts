/**
 * Read replicas for real: a streaming hot standby whose replay is held 2 s
 * behind the primary (recovery_min_apply_delay), stopped, and paused.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { stockedVariant } from '../../workers/shop';
import { Shopper, dbServer, fault, healAll, replica, until } from './harness';

let variantId: string;

beforeAll(async () => {
  ({ variantId } = await stockedVariant(50, 1500));
  // The cart reads the new variant from the replica.
  await replica('caught-up');
});

afterEach(async () => {
  await replica('resume');
  await healAll();
});

/** A confirmed order of a new signed-in shopper; the shopper and the order. */
async function placeOrder(): Promise<{ buyer: Shopper; orderId: string; orderToken: string }> {
  const buyer = new Shopper();
  await buyer.signUp();
  const checkoutId = await buyer.checkout(await buyer.cartWith(variantId, 1));
  const done = await buyer.settle(checkoutId);
  expect(done.status).toBe('confirmed');
  return { buyer, orderId: done.orderId!, orderToken: done.orderToken! };
}

/** Reads an order as a client with no cookies (no write of its own). */
const readAsStranger = (orderId: string, token: string) => new Shopper().call(`/api/orders/${orderId}?token=${token}`);

describe('read-your-writes with replay delayed 2 s', () => {
  it('shows the buyer their order the moment the checkout confirms, by id and in their order list', async () => {
    const { buyer, orderId, orderToken } = await placeOrder();
    // The confirmed checkout's answer pinned the buyer's reads to the order's writes.
    expect(buyer.has('__Host-pasar_rw')).toBe(true);

    const byId = await buyer.call(`/api/orders/${orderId}?token=${orderToken}`);
    expect(byId.status).toBe(200);
    expect((await byId.json<any>()).id).toBe(orderId);
    // Two seconds of replay delay: only the primary can have it yet.
    expect(dbServer(byId)).toBe('primary (read-your-writes)');

    const mine = await buyer.call('/api/me/orders');
    expect(mine.status).toBe(200);
    expect((await mine.json<any>()).items.map((o: any) => o.id)).toContain(orderId);
    expect(dbServer(mine)).toBe('primary (read-your-writes)');
  });

  it('finds a brand-new order for a client that keeps no cookies, from the primary when the replica has not replayed it', async () => {
    const { orderId, orderToken } = await placeOrder();
    const res = await readAsStranger(orderId, orderToken);
    expect(res.status).toBe(200);
    // From the primary: after the replica missed it, or because its replay is
    // behind the (conservative) lag bound and it was not asked at all.
    expect(dbServer(res)).toMatch(/^primary \((not on the replica yet|replica-1 lagging|replicas skipped)\)$/);
  });

  it('serves a read with no write of its own from the replica', async () => {
    const { orderId, orderToken } = await placeOrder();
    await replica('caught-up');
    const res = await readAsStranger(orderId, orderToken);
    expect(res.status).toBe(200);
    expect(dbServer(res)).toBe('replica-1');
    expect((await res.json<any>()).id).toBe(orderId);
    const health = await (await new Shopper().call('/api/health')).json<any>();
    expect(health.replicas).toEqual([{ name: 'replica-1', state: 'up', lagMs: expect.any(Number) }]);
  });

  it('moves the buyer back to the replica once it has replayed their write', async () => {
    const { buyer, orderId, orderToken } = await placeOrder();
    await replica('caught-up');
    const res = await buyer.call(`/api/orders/${orderId}?token=${orderToken}`);
    expect(res.status).toBe(200);
    expect(dbServer(res)).toBe('replica-1');
  });

  it('ignores a forged read-your-writes cookie', async () => {
    const { orderId, orderToken } = await placeOrder();
    await replica('caught-up');
    const forged = await new Shopper().call(`/api/orders/${orderId}?token=${orderToken}`, {
      headers: { cookie: `__Host-pasar_rw=${encodeURIComponent(`FF/FFFFFFFF~${Date.now() + 60_000}.bm90LWEtc2lnbmF0dXJl`)}` },
    });
    expect(forged.status).toBe(200);
    expect(dbServer(forged)).toBe('replica-1');
  });
});

describe('replica down or lagging: everything works from the primary', () => {
  it('answers from the primary while the replica is stopped, and goes back to it once it returns', async () => {
    const { orderId, orderToken } = await placeOrder();
    await replica('caught-up');
    await fault('replica', 'stop');
    // Health names the replica down, and stays ok: reads have the primary.
    const health = await new Shopper().call('/api/health');
    expect(health.status).toBe(200);
    expect((await health.json<any>()).replicas).toEqual([{ name: 'replica-1', state: 'down', lagMs: expect.any(Number) }]);
    const during = await readAsStranger(orderId, orderToken);
    expect(during.status).toBe(200);
    expect(dbServer(during)).toMatch(/^primary/);
    // Catalog reads that miss every cache reach the origin too.
    const search = await new Shopper().call(`/api/products?q=drill${Date.now()}`);
    expect(search.status).toBe(200);

    await fault('replica', 'start');
    await replica('caught-up');
    const back = await until(
      () => readAsStranger(orderId, orderToken),
      (r) => dbServer(r) === 'replica-1',
    );
    expect(back.status).toBe(200);
    expect(dbServer(back)).toBe('replica-1');
  });

  it('answers from the primary when the replica\'s network black-holes, within the connect timeout', async () => {
    const { orderId, orderToken } = await placeOrder();
    await replica('caught-up');
    await fault('replica', 'drop');
    const started = Date.now();
    const res = await until(
      () => readAsStranger(orderId, orderToken),
      (r) => r.status === 200 && /^primary/.test(dbServer(r) ?? ''),
      20_000,
    );
    expect(res.status).toBe(200);
    expect(dbServer(res)).toMatch(/^primary/);
    expect(Date.now() - started).toBeLessThan(15_000);
  });

  it('skips a replica whose replay falls behind the 5 s bound, and uses it again once it catches up', async () => {
    const { orderId, orderToken } = await placeOrder();
    await replica('caught-up');
    await replica('pause');
    // A write the paused standby receives but does not apply: lag builds.
    await stockedVariant(1, 100);
    const skipped = await until(
      () => readAsStranger(orderId, orderToken),
      (r) => dbServer(r) === 'primary (replica-1 lagging)' || dbServer(r) === 'primary (replicas skipped)',
      20_000,
      500,
    );
    expect(skipped.status).toBe(200);
    expect(dbServer(skipped)).toMatch(/^primary \((replica-1 lagging|replicas skipped)\)$/);

    await replica('resume');
    await replica('caught-up');
    const back = await until(
      () => readAsStranger(orderId, orderToken),
      (r) => dbServer(r) === 'replica-1',
    );
    expect(dbServer(back)).toBe('replica-1');
  });
});
