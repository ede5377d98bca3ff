/**
 * Price lists on the storefront: the effective price and its compare-at
 * price in product documents, listings and search, and the switch at a
 * list's start and end served from warm caches (Cache API, KV, Redis)
 * without any write in between: each cached copy carries the instant its
 * prices next change (`validUntil`) and is a miss from then on. Carts price
 * at the origin and switch at the same instant.
 *
 * Every product here is this file's own (fresh SKUs, unique titles and
 * shelf amounts); other files run at the same time against the same DB.
 */
import { env, exports } from 'cloudflare:workers';
import { describe, expect, inject, it } from 'vitest';
import { REGIONS } from '../../db/regions';
import { randomToken } from '../lib/ids';
import { formatMoney } from '../lib/money';
import { productKey } from './service';
import { readThrough, type StoreTier, type Stored } from './tiers';
import { readVersion } from './versions';

const fx = inject('seedFixtures');
const call = (path: string, init?: RequestInit) => exports.default.fetch(new Request(`http://pasar.test${path}`, init));
const sg = { headers: { 'x-region': 'sg' } };
const admin = (path: string, method: string, body?: unknown) =>
  call(path, {
    method,
    headers: { authorization: `Bearer ${env.ADMIN_BOOTSTRAP_TOKEN}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
const json = (method: string, body: unknown) => ({ method, headers: { 'content-type': 'application/json', 'x-region': 'sg' }, body: JSON.stringify(body) });
const tierOf = (res: Response) => res.headers.get('x-cache-tier');
const sleepUntil = async (t: number) => {
  while (Date.now() < t) await new Promise((r) => setTimeout(r, Math.min(50, Math.max(1, t - Date.now()))));
};
async function until(check: () => Promise<boolean>, ms = 3_000) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A fresh, stocked product with one variant priced in sg. */
async function product(amount: number, compareAtAmount?: number) {
  const token = randomToken(6);
  const sku = `PLC-${token.toUpperCase()}`;
  const res = await admin('/admin/api/products', 'POST', {
    title: `Pricelist kecap ${token}`,
    category: fx.busiestCategorySlug,
    variants: [{ sku, title: '600 ml', prices: { sg: { amount, ...(compareAtAmount ? { compareAtAmount } : {}) } } }],
  });
  expect(res.status).toBe(201);
  const p = await res.json<any>();
  expect((await admin(`/admin/api/inventory/${sku}`, 'PUT', { region: 'sg', quantity: 10 })).status).toBe(200);
  return { token, sku, slug: p.slug as string, productId: p.id as string, variantId: p.variants[0].id as string };
}

async function priceList(sku: string, amount: number, startsAt: Date, endsAt: Date | null = null): Promise<any> {
  const res = await admin('/admin/api/price-lists', 'POST', {
    name: `Catalog switch ${randomToken(4)}`,
    region: 'sg',
    startsAt: startsAt.toISOString(),
    endsAt: endsAt?.toISOString() ?? null,
    prices: [{ sku, amount }],
  });
  expect(res.status, await res.clone().text()).toBe(201);
  return res.json<any>();
}

const money = (amount: number) => ({ amount, currency: 'SGD' });

async function productDoc(slug: string) {
  const res = await call(`/api/products/${slug}`, sg);
  expect(res.status).toBe(200);
  return { tier: tierOf(res), doc: await res.json<any>() };
}

/** The item of `productId` in a listing URL's first page. */
async function listed(url: string, productId: string) {
  const res = await call(url, sg);
  expect(res.status).toBe(200);
  const body = await res.json<any>();
  expect(Object.keys(body).sort()).toEqual(['items', 'nextCursor']);
  return { tier: tierOf(res), item: body.items.find((i: any) => i.id === productId) };
}

async function cartUnitPrice(variantId: string): Promise<number> {
  const cart = await (await call('/api/carts', json('POST', {}))).json<{ id: string }>();
  expect((await call(`/api/carts/${cart.id}/items`, json('POST', { variantId, quantity: 1 }))).status).toBe(200);
  const got = await (await call(`/api/carts/${cart.id}`, sg)).json<any>();
  return got.items[0].unitPrice.amount;
}

describe('effective price and compare-at in the catalog', () => {
  it('shows a running list price with the shelf price as compare-at; the higher shelf compare-at wins; a list above the shelf changes nothing', async () => {
    const past = new Date(Date.now() - 60_000);
    const plain = await product(2500);
    const withWas = await product(2500, 3000);
    const above = await product(2500);
    const two = await product(2500);
    await priceList(plain.sku, 1900, past);
    await priceList(withWas.sku, 1900, past);
    await priceList(above.sku, 2800, past);
    await priceList(two.sku, 2000, past);
    await priceList(two.sku, 1800, past, new Date(Date.now() + 3_600_000));

    const expectations: [typeof plain, number, number | null][] = [
      [plain, 1900, 2500],
      [withWas, 1900, 3000],
      [above, 2500, null],
      [two, 1800, 2500],
    ];
    for (const [p, price, was] of expectations) {
      const { doc } = await productDoc(p.slug);
      expect(doc.variants[0].price, p.slug).toEqual(money(price));
      expect(doc.variants[0].compareAtPrice, p.slug).toEqual(was === null ? null : money(was));
      expect(doc.validUntil).toBeUndefined();
      const { item } = await listed(`/api/products?q=${p.token}&limit=10`, p.productId);
      expect(item.price, p.slug).toEqual(money(price));
      expect(item.compareAtPrice, p.slug).toEqual(was === null ? null : money(was));
    }
    expect(await cartUnitPrice(plain.variantId)).toBe(1900);
    // The page shows the sale price with the shelf price struck through as "was".
    const html = await (await call(`/p/${plain.slug}`, sg)).text();
    expect(html).toContain(`<span class="price__now">${formatMoney(money(1900), REGIONS.sg)}</span>`);
    expect(html).toMatch(new RegExp(`<s class="price__was"><span class="visually-hidden">, was </span>${formatMoney(money(2500), REGIONS.sg).replace(/[.$]/g, '\\$&')}</s>`));
  });

  it('filters listings by the effective price', async () => {
    const p = await product(4_999_950);
    await priceList(p.sku, 4_999_910, new Date(Date.now() - 60_000));
    const inside = await listed(`/api/products?category=${fx.busiestCategorySlug}&minPrice=4999900&maxPrice=4999920&limit=100`, p.productId);
    expect(inside.item?.price).toEqual(money(4_999_910));
    const shelfOnly = await listed(`/api/products?category=${fx.busiestCategorySlug}&minPrice=4999940&maxPrice=4999960&limit=100`, p.productId);
    expect(shelfOnly.item).toBeUndefined();
  });
});

describe('the switch at a list start and end, from warm caches', () => {
  it('serves the shelf price before the start, the sale price from the start, and the shelf price again from the end, in product, search, listing, page and cart', async () => {
    const SHELF = 2_999_950;
    const SALE = 2_999_910;
    const p = await product(SHELF);
    const startsAt = new Date(Date.now() + 3_000);
    const endsAt = new Date(startsAt.getTime() + 3_000);
    await priceList(p.sku, SALE, startsAt, endsAt);
    const search = `/api/products?q=${p.token}&limit=10`;
    const listing = `/api/products?category=${fx.busiestCategorySlug}&minPrice=2999900&maxPrice=2999999&limit=100`;

    // Before the start: the shelf price everywhere, and every tier warm.
    const before = await productDoc(p.slug);
    expect(before.doc.variants[0].price).toEqual(money(SHELF));
    expect(before.doc.variants[0].compareAtPrice).toBeNull();
    expect((await productDoc(p.slug)).tier).toBe('cache');
    const searchBefore = await listed(search, p.productId);
    expect(searchBefore.item.price).toEqual(money(SHELF));
    expect(searchBefore.item.compareAtPrice).toBeNull();
    expect((await listed(search, p.productId)).tier).toBe('cache');
    const listingBefore = await listed(listing, p.productId);
    expect(listingBefore.item.price).toEqual(money(SHELF));
    expect(await cartUnitPrice(p.variantId)).toBe(SHELF);
    // The store tiers hold the pre-start copies (published to KV; search filled into Redis).
    const key = productKey(await readVersion(env.CATALOG, 'products'), 'sg', p.slug);
    await until(async () => (await env.CATALOG.get<Stored<any>>(key, 'json'))?.body?.validUntil === startsAt.getTime());
    expect(Date.now()).toBeLessThan(startsAt.getTime());

    // From the start (bound: 0 s by the server clock): the sale price, compare-at = shelf.
    await sleepUntil(startsAt.getTime() + 20);
    const during = await productDoc(p.slug);
    expect(during.tier).toBe('origin');
    expect(during.doc.variants[0].price).toEqual(money(SALE));
    expect(during.doc.variants[0].compareAtPrice).toEqual(money(SHELF));
    const searchDuring = await listed(search, p.productId);
    expect(searchDuring.tier).toBe('origin');
    expect(searchDuring.item.price).toEqual(money(SALE));
    expect(searchDuring.item.compareAtPrice).toEqual(money(SHELF));
    const listingDuring = await listed(listing, p.productId);
    expect(listingDuring.item.price).toEqual(money(SALE));
    expect(listingDuring.item.compareAtPrice).toEqual(money(SHELF));
    expect(await cartUnitPrice(p.variantId)).toBe(SALE);
    const page = await (await call(`/p/${p.slug}`, sg)).text();
    expect(page).toContain(`<span class="price__now">${formatMoney(money(SALE), REGIONS.sg)}</span>`);
    expect(page).toContain('class="price__was"');
    // Warm again during the sale (the next copies expire at the end).
    expect((await productDoc(p.slug)).doc.variants[0].price).toEqual(money(SALE));
    expect((await listed(search, p.productId)).item.price).toEqual(money(SALE));
    expect(Date.now()).toBeLessThan(endsAt.getTime());

    // From the end: the shelf price again everywhere.
    await sleepUntil(endsAt.getTime() + 20);
    const after = await productDoc(p.slug);
    expect(after.doc.variants[0].price).toEqual(money(SHELF));
    expect(after.doc.variants[0].compareAtPrice).toBeNull();
    const searchAfter = await listed(search, p.productId);
    expect(searchAfter.item.price).toEqual(money(SHELF));
    expect(searchAfter.item.compareAtPrice).toBeNull();
    expect((await listed(listing, p.productId)).item.price).toEqual(money(SHELF));
    expect(await cartUnitPrice(p.variantId)).toBe(SHELF);
    const pageAfter = await (await call(`/p/${p.slug}`, sg)).text();
    expect(pageAfter).toContain(`<span class="price__now">${formatMoney(money(SHELF), REGIONS.sg)}</span>`);
    expect(pageAfter).not.toContain('class="price__was"');
  });
});

describe('readThrough and validUntil', () => {
  /** An in-memory store tier that records its puts. */
  function memoryStore(initial?: Stored<{ v: number; validUntil: number | null }>) {
    const puts: { ttl: number; value: Stored<unknown> }[] = [];
    let held = initial ?? null;
    const store: StoreTier = {
      name: 'redis',
      get: async <T>() => held as Stored<T> | null,
      put: async (_key, value, ttl) => {
        puts.push({ ttl, value });
        held = value as never;
      },
    };
    return { store, puts };
  }
  const run = async (key: string, store: StoreTier, validUntil: number | null, pending: Promise<unknown>[]) =>
    readThrough<{ v: number; validUntil: number | null }>({
      key,
      store,
      storeTtlSeconds: 60,
      load: async () => ({ v: 2, validUntil }),
      waitUntil: (p) => void pending.push(p),
      validUntil: (b) => b.validUntil,
    });

  it('treats a stored copy past its validUntil as a miss, and cuts the store TTL to the next switch', async () => {
    const key = `test:price-lists:${randomToken(8)}`;
    const { store, puts } = memoryStore({ etag: 'W/"old"', body: { v: 1, validUntil: Date.now() - 1 } });
    const pending: Promise<unknown>[] = [];
    const served = await run(key, store, Date.now() + 30_000, pending);
    await Promise.all(pending);
    expect(served.tier).toBe('origin');
    expect(served.body?.v).toBe(2);
    expect(puts).toHaveLength(1);
    expect(puts[0]!.ttl).toBeLessThanOrEqual(30);
    expect(puts[0]!.ttl).toBeGreaterThanOrEqual(29);
    // Now cached in this location for its 1 s.
    expect((await run(key, store, null, [])).tier).toBe('cache');
  });

  it('keeps no Cache API copy of a document whose switch is less than a second away', async () => {
    const key = `test:price-lists:${randomToken(8)}`;
    const { store } = memoryStore();
    const pending: Promise<unknown>[] = [];
    const soon = Date.now() + 400;
    expect((await run(key, store, soon, pending)).tier).toBe('origin');
    await Promise.all(pending);
    // The store copy answers (not the cache) until the switch, then the origin.
    expect((await run(key, store, soon, [])).tier).toBe('redis');
    await sleepUntil(soon + 5);
    expect((await run(key, store, soon + 60_000, [])).tier).toBe('origin');
  });
});
