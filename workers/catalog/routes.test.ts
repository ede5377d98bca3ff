import { env, exports } from 'cloudflare:workers';
import { Redis } from '@upstash/redis/cloudflare';
import { describe, expect, inject, it } from 'vitest';
import { productKey } from './service';
import { cacheRequest } from './tiers';
import { readVersion } from './versions';

const fx = inject('seedFixtures');
const call = (path: string, init?: RequestInit) => exports.default.fetch(new Request(`http://pasar.test${path}`, init));
/** The tier entry, which leads `Server-Timing` (`total;dur=` of observe() follows it). */
const tierOf = (res: Response) => /^(cache|kv|redis|origin);dur=[\d.]+(?:,|$)/.exec(res.headers.get('server-timing') ?? '')?.[1];

/** Waits for the store tier fill that runs after the response (waitUntil). */
async function until(check: () => Promise<boolean>, ms = 3_000) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('GET /api/products/:slug read path', () => {
  it('is served by the origin, then the location cache, then KV once the cache copy is gone', async () => {
    const slug = fx.productSlugs[0]!;
    const first = await call(`/api/products/${slug}`, { headers: { 'x-region': 'th' } });
    expect(first.status).toBe(200);
    expect(tierOf(first)).toBe('origin');
    const doc = await first.json<any>();
    expect(doc.slug).toBe(slug);
    expect(doc.variants.length).toBeGreaterThan(0);
    for (const v of doc.variants) {
      expect(v.price.currency).toBe('THB');
      expect(Number.isInteger(v.price.amount)).toBe(true);
    }

    const second = await call(`/api/products/${slug}`, { headers: { 'x-region': 'th' } });
    expect(tierOf(second)).toBe('cache');
    expect(second.headers.get('etag')).toBe(first.headers.get('etag'));

    const key = productKey(await readVersion(env.CATALOG, 'products'), 'th', slug);
    await until(async () => (await env.CATALOG.get(key)) !== null);
    await caches.default.delete(cacheRequest(key));
    const third = await call(`/api/products/${slug}`, { headers: { 'x-region': 'th' } });
    expect(tierOf(third)).toBe('kv');
    expect(await third.json()).toEqual(doc);
  });

  it('answers 304 to a matching If-None-Match, with the same ETag', async () => {
    const slug = fx.productSlugs[1]!;
    const res = await call(`/api/products/${slug}`);
    const etag = res.headers.get('etag')!;
    expect(etag).toMatch(/^W\/"[0-9a-f]+"$/);
    expect(res.headers.get('cache-control')).toContain('must-revalidate');
    const again = await call(`/api/products/${slug}`, { headers: { 'if-none-match': etag } });
    expect(again.status).toBe(304);
    expect(again.headers.get('etag')).toBe(etag);
    expect(await again.text()).toBe('');
    const other = await call(`/api/products/${slug}`, { headers: { 'if-none-match': 'W/"nope"' } });
    expect(other.status).toBe(200);
  });

  it('prices in whole units for IDR and VND', async () => {
    const slug = fx.productSlugs[2]!;
    const idr = await (await call(`/api/products/${slug}`, { headers: { 'x-region': 'id' } })).json<any>();
    const sgd = await (await call(`/api/products/${slug}`, { headers: { 'x-region': 'sg' } })).json<any>();
    expect(idr.variants[0].price.currency).toBe('IDR');
    expect(sgd.variants[0].price.currency).toBe('SGD');
    // Rupiah prices are rounded to thousands of whole rupiah, far above cents of a dollar.
    expect(idr.variants[0].price.amount % 1000).toBe(0);
    expect(idr.variants[0].price.amount).toBeGreaterThan(sgd.variants[0].price.amount);
  });

  it('404s an archived product, a draft, an unknown slug and one not sold in the region', async () => {
    for (const slug of [fx.archivedSlug, fx.draftSlug, 'no-such-product-anywhere']) {
      const res = await call(`/api/products/${slug}`);
      expect(res.status).toBe(404);
      expect((await res.json<any>()).error.code).toBe('not_found');
    }
    const notSold = await call(`/api/products/${fx.regionLimitedSlug}`, { headers: { 'x-region': fx.regionLimitedNotSoldIn[0]! } });
    expect(notSold.status).toBe(404);
    const sold = await call(`/api/products/${fx.regionLimitedSlug}`, { headers: { 'x-region': fx.regionLimitedSoldIn[0]! } });
    expect(sold.status).toBe(200);
  });

  it('404s a slug that is not a slug without asking the origin', async () => {
    const res = await call(`/api/products/${encodeURIComponent("x'; drop table products; --")}`);
    expect(res.status).toBe(404);
  });
});

describe('GET /api/products listing', () => {
  it('pages through a category with opaque cursors, without overlap', async () => {
    const seen = new Set<string>();
    let cursor: string | null = null;
    let pages = 0;
    do {
      const qs = new URLSearchParams({ category: fx.busiestCategorySlug, limit: '20', ...(cursor ? { cursor } : {}) });
      const res = await call(`/api/products?${qs}`);
      expect(res.status).toBe(200);
      const body = await res.json<{ items: { id: string; price: { currency: string }; category: string }[]; nextCursor: string | null }>();
      for (const item of body.items) {
        expect(seen.has(item.id)).toBe(false);
        seen.add(item.id);
        expect(item.price.currency).toBe('SGD');
      }
      cursor = body.nextCursor;
      pages++;
    } while (cursor && pages < 50);
    expect(pages).toBeGreaterThan(1);
    expect(seen.size).toBeGreaterThan(20);
  });

  it('serves a repeated listing from the location cache', async () => {
    const url = `/api/products?limit=7&region=vn`;
    const first = await call(url);
    expect(['origin', 'kv']).toContain(tierOf(first));
    const second = await call(url);
    expect(tierOf(second)).toBe('cache');
  });

  it('rejects a cursor the server did not issue, or one issued for another query', async () => {
    const bad = await call('/api/products?cursor=eyJpZCI6InByb2RfeCJ9.AAAAAAAAAAAAAAAAAAAAAA');
    expect(bad.status).toBe(400);
    expect((await bad.json<any>()).error).toMatchObject({ code: 'invalid_request', details: [{ field: 'cursor' }] });
    const page = await (await call(`/api/products?category=${fx.busiestCategorySlug}&limit=5`)).json<any>();
    const replayed = await call(`/api/products?limit=5&cursor=${encodeURIComponent(page.nextCursor)}`);
    expect(replayed.status).toBe(400);
  });

  it('rejects limits outside 1-100 and unknown parameters', async () => {
    for (const qs of ['limit=0', 'limit=101', 'limit=abc', 'price=1', 'minPrice=-1', 'minPrice=500&maxPrice=100']) {
      const res = await call(`/api/products?${qs}`);
      expect(res.status, qs).toBe(400);
      expect((await res.json<any>()).error.code).toBe('invalid_request');
    }
  });

  it('404s an unknown category', async () => {
    const res = await call('/api/products?category=no-such-category');
    expect(res.status).toBe(404);
  });

  it('filters by price range in the region currency', async () => {
    const res = await call('/api/products?limit=100&minPrice=1000&maxPrice=5000&region=sg');
    const { items } = await res.json<{ items: { price: { amount: number } }[] }>();
    expect(items.length).toBeGreaterThan(0);
    for (const i of items) expect(i.price.amount).toBeGreaterThanOrEqual(1000), expect(i.price.amount).toBeLessThanOrEqual(5000);
  });
});

describe('search', () => {
  it('ranks full-text matches for a word in many products', async () => {
    const res = await call(`/api/products?q=${fx.searchTerm}&limit=10`);
    expect(res.status).toBe(200);
    const body = await res.json<{ items: { title: string }[] }>();
    expect(body.items.length).toBe(10);
    expect(['origin', 'redis', 'cache']).toContain(tierOf(res));
  });

  it('finds a product by a misspelled word (pg_trgm)', async () => {
    const exact = await (await call(`/api/products?q=${encodeURIComponent('batik')}&limit=5`)).json<{ items: { slug: string }[] }>();
    expect(exact.items.length).toBeGreaterThan(0);
    const typo = await (await call(`/api/products?q=${encodeURIComponent('battik')}&limit=20`)).json<{ items: { slug: string; title: string }[] }>();
    expect(typo.items.length).toBeGreaterThan(0);
    expect(typo.items.some((i) => /batik/i.test(i.title))).toBe(true);
  });

  it('caches results in Redis, where a location without its own copy finds them', async () => {
    const url = `/api/products?q=${encodeURIComponent('durian')}&limit=3&region=my`;
    const first = await call(url);
    expect(tierOf(first)).toBe('origin');
    const body = await first.json();
    expect(tierOf(await call(url))).toBe('cache');
    const redis = new Redis({ url: env.UPSTASH_REDIS_REST_URL, token: env.UPSTASH_REDIS_REST_TOKEN });
    let keys: string[] = [];
    await until(async () => (keys = await redis.keys('search:v1:my:*')).length > 0);
    // The same key names the entry in every tier: drop this location's copy.
    for (const key of keys) await caches.default.delete(cacheRequest(key));
    const fromRedis = await call(url);
    expect(tierOf(fromRedis)).toBe('redis');
    expect(await fromRedis.json()).toEqual(body);
  });

  it('pages search results with cursors', async () => {
    const first = await (await call(`/api/products?q=${fx.searchTerm}&limit=5`)).json<any>();
    const second = await (await call(`/api/products?q=${fx.searchTerm}&limit=5&cursor=${encodeURIComponent(first.nextCursor)}`)).json<any>();
    const ids = new Set([...first.items, ...second.items].map((i: { id: string }) => i.id));
    expect(ids.size).toBe(10);
  });
});

describe('GET /api/categories', () => {
  it('lists categories with product counts in the region', async () => {
    const res = await call('/api/categories', { headers: { 'x-region': 'ph' } });
    expect(res.status).toBe(200);
    const { items } = await res.json<{ items: { slug: string; parent: string | null; productCount: number }[] }>();
    expect(items.length).toBeGreaterThanOrEqual(20);
    expect(items.find((c) => c.slug === fx.busiestCategorySlug)!.productCount).toBeGreaterThan(0);
    expect(items.some((c) => c.parent === null)).toBe(true);
  });
});
