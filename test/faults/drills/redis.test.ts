/**
 * Redis stopped for real (the private redis-server, append-only file on):
 * the catalog keeps serving, carts and sessions answer 503 (never an empty
 * cart), and what was written before is all there when it returns.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { stockedVariant } from '../../workers/shop';
import { Shopper, fault, healAll, replica } from './harness';

afterEach(async () => {
  await healAll();
});

describe('Redis down', () => {
  it('serves the catalog, refuses carts and sessions with 503, and loses nothing', async () => {
    const { variantId } = await stockedVariant(5, 990);
    await replica('caught-up');
    const shopper = new Shopper();
    await shopper.signUp();
    const listing = await (await shopper.call('/api/products?limit=3')).json<any>();
    const slug = listing.items[0].slug as string;
    expect((await shopper.call(`/api/products/${slug}`)).status).toBe(200);
    const cartId = await shopper.cartWith(variantId, 3);
    const before = await (await shopper.call(`/api/carts/${cartId}`)).json<any>();

    await fault('redis', 'stop');

    expect((await shopper.call(`/api/products/${slug}`)).status).toBe(200);
    expect((await shopper.call('/api/products?limit=3')).status).toBe(200);
    // Search results are cached in Redis; without it the origin answers.
    expect((await shopper.call(`/api/products?q=kopi${Date.now()}`)).status).toBe(200);

    for (const res of [
      await shopper.call(`/api/carts/${cartId}`),
      await shopper.call('/api/carts', { method: 'POST', body: {} }),
      await shopper.call(`/api/carts/${cartId}/items`, { method: 'POST', body: { variantId, quantity: 1 } }),
      await shopper.call('/api/me'),
    ]) {
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toMatch(/^\d+$/);
      expect((await res.json<any>()).error.code).toBe('unavailable');
    }

    await fault('redis', 'start');
    const after = await shopper.call(`/api/carts/${cartId}`);
    expect(after.status).toBe(200);
    expect((await after.json<any>()).items).toEqual(before.items);
    // The session written before the outage is still good.
    expect((await shopper.call('/api/me')).status).toBe(200);
  }, 60_000);

  it('answers 503 quickly when Redis\'s network black-holes, rather than hanging', async () => {
    const shopper = new Shopper();
    const cart = await (await shopper.call('/api/carts', { method: 'POST', body: {} })).json<any>();
    await fault('redis', 'drop');
    const started = Date.now();
    const res = await shopper.call(`/api/carts/${cart.id}`);
    expect(res.status).toBe(503);
    expect(Date.now() - started).toBeLessThan(10_000);
    await fault('redis', 'pass');
    expect((await shopper.call(`/api/carts/${cart.id}`)).status).toBe(200);
  }, 60_000);
});
