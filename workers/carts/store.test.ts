import { env } from 'cloudflare:workers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDatabase } from '../../db/client';
import { REGIONS } from '../../db/regions';
import {
  CART_TTL_SECONDS,
  CartStoreUnavailableError,
  addLine,
  cartKey,
  clearCart,
  createCart,
  isCartId,
  priceCart,
  readCart,
  removeLine,
  setLineQuantity,
  type StoredCart,
} from './store';
import { admin, archiveCreatedProducts, createProduct, testRedis, type TestProduct } from './test-helpers';

const redis = testRedis();
const db = createDatabase(env);
afterAll(async () => {
  await archiveCreatedProducts();
  await db.close();
});

let product: TestProduct;
beforeAll(async () => {
  product = await createProduct({ count: 3, prices: { tw: { amount: 1200 }, th: { amount: 9900 } } });
});
const vid = (i: number) => product.variants[i]!.id;

async function added(id: string, variantId: string, quantity: number, unitAmount = 1200): Promise<StoredCart> {
  const change = await addLine(redis, id, '', variantId, quantity, unitAmount);
  if (!change.ok) throw new Error(`add refused: ${change.reason}`);
  return change.cart;
}

describe('readCart', () => {
  it('reads back what was written, lines in first-added order, with the price each was added at', async () => {
    const cart = await createCart(redis, 'th');
    expect(isCartId(cart.id)).toBe(true);
    await added(cart.id, vid(2), 1, 9900);
    await added(cart.id, vid(0), 2, 9900);
    await added(cart.id, vid(2), 3, 9500);
    const read = await readCart(redis, cart.id, '');
    expect(read).toEqual({
      id: cart.id,
      region: 'th',
      createdAt: cart.createdAt,
      lines: [
        { variantId: vid(2), quantity: 4, addedUnitAmount: 9500 },
        { variantId: vid(0), quantity: 2, addedUnitAmount: 9900 },
      ],
    });
    expect(new Date(read!.createdAt).getTime()).toBeGreaterThan(Date.now() - 60_000);
  });

  it('returns null for an unknown cart or a malformed id, without creating anything', async () => {
    const unknown = `cart_${'2'.repeat(32)}`;
    expect(await readCart(redis, unknown, '')).toBeNull();
    expect(await redis.exists(cartKey(unknown))).toBe(0);
    expect(await readCart(redis, 'not-a-cart', '')).toBeNull();
  });

  it('slides the TTL back to 30 days', async () => {
    const { id } = await createCart(redis, 'tw');
    await redis.expire(cartKey(id), 10);
    await readCart(redis, id, '');
    expect(await redis.ttl(cartKey(id))).toBeGreaterThan(CART_TTL_SECONDS - 60);
  });

  it('throws CartStoreUnavailableError when Redis is down', async () => {
    const dead = testRedis(env.TEST_DEAD_UPSTASH_URL!);
    await expect(readCart(dead, `cart_${'3'.repeat(32)}`, '')).rejects.toBeInstanceOf(CartStoreUnavailableError);
    await expect(clearCart(dead, `cart_${'3'.repeat(32)}`)).rejects.toBeInstanceOf(CartStoreUnavailableError);
  });
});

describe('addLine / setLineQuantity / removeLine', () => {
  it('refuses past 99 and past 100 lines without writing, and reports a missing cart or line', async () => {
    const { id } = await createCart(redis, 'tw');
    await added(id, vid(0), 99);
    expect(await addLine(redis, id, '', vid(0), 1, 1200)).toEqual({ ok: false, reason: 'quantity_limit', currentQuantity: 99 });
    expect(await setLineQuantity(redis, id, '', vid(1), 3)).toEqual({ ok: false, reason: 'no_item' });
    expect(await addLine(redis, `cart_${'4'.repeat(32)}`, '', vid(0), 1, 1200)).toEqual({ ok: false, reason: 'not_found' });
    expect(await removeLine(redis, 'nope', '', vid(0))).toEqual({ ok: false, reason: 'not_found' });
    await expect(setLineQuantity(redis, id, '', vid(0), 100)).rejects.toBeInstanceOf(RangeError);

    // Lines are counted by the scripts: fill to 100 with ids Redis only sees here.
    for (let i = 1; i < 100; i++) await added(id, `var_fake${i}`, 1);
    expect(await addLine(redis, id, '', 'var_fake100', 1, 1)).toEqual({ ok: false, reason: 'cart_full', currentQuantity: 0 });
    const removed = await removeLine(redis, id, '', 'var_fake1');
    expect(removed.ok && removed.cart.lines.length).toBe(99);
    expect((await addLine(redis, id, '', 'var_fake100', 1, 1)).ok).toBe(true);
    expect((await readCart(redis, id, ''))!.lines).toHaveLength(100);
  });
});

describe('clearCart', () => {
  it('empties the lines and keeps the cart, its region and its TTL', async () => {
    const cart = await createCart(redis, 'th');
    await added(cart.id, vid(0), 2, 9900);
    await added(cart.id, vid(1), 1, 9900);
    await clearCart(redis, cart.id);
    const after = await readCart(redis, cart.id, '');
    expect(after).toEqual({ id: cart.id, region: 'th', createdAt: cart.createdAt, lines: [] });
    expect(await redis.ttl(cartKey(cart.id))).toBeGreaterThan(CART_TTL_SECONDS - 60);
    // The cart works as before: the line limit counter was reset with the lines.
    expect((await added(cart.id, vid(1), 1, 9900)).lines).toEqual([{ variantId: vid(1), quantity: 1, addedUnitAmount: 9900 }]);
  });

  it('with the purchased lines, takes away only those quantities', async () => {
    const { id } = await createCart(redis, 'tw');
    await added(id, vid(0), 2);
    await added(id, vid(1), 1);
    const snapshot = (await readCart(redis, id, ''))!.lines;
    // Meanwhile, in another tab:
    await added(id, vid(0), 3);
    await added(id, vid(2), 1);
    await clearCart(redis, id, snapshot);
    expect((await readCart(redis, id, ''))!.lines.map((l) => [l.variantId, l.quantity])).toEqual([
      [vid(0), 3],
      [vid(2), 1],
    ]);
  });

  it('is a no-op for a cart that does not exist', async () => {
    await expect(clearCart(redis, `cart_${'5'.repeat(32)}`)).resolves.toBeUndefined();
    await expect(clearCart(redis, 'garbage')).resolves.toBeUndefined();
    expect(await redis.exists(cartKey(`cart_${'5'.repeat(32)}`))).toBe(0);
  });
});

describe('priceCart', () => {
  it("prices lines from the origin in the region's currency", async () => {
    const priced = await priceCart(db.primary, REGIONS.th, [
      { variantId: vid(0), quantity: 2 },
      { variantId: vid(1), quantity: 1, addedUnitAmount: 9900 },
    ]);
    expect(priced.subtotal).toEqual({ amount: 3 * 9900, currency: 'THB' });
    expect(priced.items).toHaveLength(2);
    expect(priced.items[0]).toMatchObject({
      id: vid(0),
      variantId: vid(0),
      sku: product.variants[0]!.sku,
      title: expect.stringMatching(/^Cart Test Kopi .+ – Size 1$/),
      variantTitle: 'Size 1',
      productSlug: product.slug,
      quantity: 2,
      unitPrice: { amount: 9900, currency: 'THB' },
      lineTotal: { amount: 19800, currency: 'THB' },
      status: 'ok',
    });
    expect(priced.items[1]).not.toHaveProperty('previousUnitPrice');
    expect(await priceCart(db.primary, REGIONS.tw, [])).toEqual({ items: [], subtotal: { amount: 0, currency: 'TWD' } });
  });

  it('marks unknown, unpriced and archived variants unavailable and leaves them out of the subtotal', async () => {
    const archived = await createProduct({ prices: { th: { amount: 100 } } });
    expect((await admin(`/admin/api/products/${archived.id}`, 'DELETE')).status).toBeLessThan(300);
    const priced = await priceCart(db.primary, REGIONS.th, [
      { variantId: vid(0), quantity: 1 },
      { variantId: 'var_gone', quantity: 2, addedUnitAmount: 700 },
      { variantId: archived.variants[0]!.id, quantity: 1, addedUnitAmount: 100 },
    ]);
    expect(priced.items.map((i) => [i.status, i.problem, i.lineTotal.amount])).toEqual([
      ['ok', undefined, 9900],
      ['unavailable', 'unknown_variant', 0],
      ['unavailable', 'archived', 0],
    ]);
    expect(priced.items[1]!.unitPrice).toEqual({ amount: 700, currency: 'THB' });
    expect(priced.subtotal.amount).toBe(9900);
    const my = await priceCart(db.primary, REGIONS.my, [{ variantId: vid(0), quantity: 1, addedUnitAmount: 5 }]);
    expect(my.items[0]).toMatchObject({ status: 'unavailable', problem: 'not_sold_in_region' });
    expect(my.subtotal).toEqual({ amount: 0, currency: 'MYR' });
  });

  it('says when the price changed since the line was added', async () => {
    const priced = await priceCart(db.primary, REGIONS.tw, [{ variantId: vid(2), quantity: 3, addedUnitAmount: 1500 }]);
    expect(priced.items[0]).toMatchObject({ unitPrice: { amount: 1200 }, lineTotal: { amount: 3600 }, previousUnitPrice: { amount: 1500, currency: 'TWD' } });
    expect(priced.subtotal.amount).toBe(3600);
  });

  it('reads the origin, not a cache: a price written a moment ago is the price', async () => {
    const p = await createProduct({ prices: { tw: { amount: 1000 } } });
    const lines = [{ variantId: p.variants[0]!.id, quantity: 1 }];
    expect((await priceCart(db.primary, REGIONS.tw, lines)).subtotal.amount).toBe(1000);
    await admin(`/admin/api/products/${p.id}`, 'PATCH', { variants: [{ sku: p.variants[0]!.sku, prices: { tw: { amount: 1111 } } }] });
    expect((await priceCart(db.primary, REGIONS.tw, lines)).subtotal.amount).toBe(1111);
  });
});
