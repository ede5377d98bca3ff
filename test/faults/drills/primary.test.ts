/**
 * The primary stopped (pg_ctl stop -m fast), for real: browsing, search and
 * carts keep going on the caches and the replica, new checkouts are accepted
 * and wait in their objects, admin writes answer 503; once it is back every
 * waiting checkout completes exactly once.
 */
import { afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { admin, stockedVariant } from '../../workers/shop';
import { Shopper, dbServer, expectBooksBalance, expectStock, fault, healAll, replica } from './harness';

let variantId: string;

beforeAll(async () => {
  ({ variantId } = await stockedVariant(10, 2100));
  await replica('caught-up');
});

afterEach(async () => {
  await healAll();
});

describe('primary down', () => {
  it('keeps browsing, search and carts working, accepts checkouts and completes them once it returns, exactly once', async () => {
    const shopper = new Shopper();
    // Warm the product's documents while everything is up, as traffic would.
    const listing = await (await shopper.call('/api/products?limit=5')).json<any>();
    const slug = listing.items[0].slug as string;
    expect((await shopper.call(`/api/products/${slug}`)).status).toBe(200);
    const cartId = await shopper.cartWith(variantId, 2);

    await fault('primary', 'stop');

    const page = await shopper.call(`/api/products/${slug}`);
    expect(page.status).toBe(200);
    const browse = await shopper.call('/api/products?limit=5');
    expect(browse.status).toBe(200);
    // A search no cache has seen: answered by the replica.
    const search = await shopper.call(`/api/products?q=sambal${Date.now()}`);
    expect(search.status).toBe(200);
    expect(dbServer(search)).toBe('replica-1');
    // Carts live in Redis, their prices on the replica.
    const other = await shopper.cartWith(variantId, 1);
    expect((await shopper.call(`/api/carts/${other}`)).status).toBe(200);

    const checkoutId = await shopper.checkout(cartId);
    await new Promise((r) => setTimeout(r, 3_000));
    const waiting = await (await shopper.call(`/api/checkout/${checkoutId}`)).json<any>();
    expect(waiting.status).toBe('pending');

    const write = await admin('/admin/api/products', 'POST', {
      title: 'Written while the primary is down',
      category: inject('seedFixtures').busiestCategorySlug,
      variants: [{ sku: `DOWN-${Date.now()}`, title: 'one', prices: { sg: { amount: 100 } } }],
    });
    expect(write.status).toBe(503);
    expect(write.headers.get('retry-after')).toMatch(/^\d+$/);
    expect((await write.json<any>()).error.code).toBe('unavailable');

    await fault('primary', 'start');
    const done = await shopper.settle(checkoutId, 60_000);
    expect(done.status).toBe('confirmed');
    await expectBooksBalance(checkoutId, 'confirmed');
    await expectStock(variantId, 10, 2);
    // The order can be read straight away: read-your-writes.
    expect((await shopper.call(`/api/orders/${done.orderId}?token=${done.orderToken}`)).status).toBe(200);
  }, 120_000);

  it('answers admin writes 503 when the primary\'s network black-holes, not a hang', async () => {
    await fault('primary', 'drop');
    const started = Date.now();
    const write = await admin(`/admin/api/inventory/NO-SUCH-SKU`, 'PUT', { region: 'sg', quantity: 1 });
    expect(write.status).toBe(503);
    expect(Date.now() - started).toBeLessThan(20_000);
  }, 60_000);
});
