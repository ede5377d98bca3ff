/**
 * The cache_read counter and the request's `cacheTier`: every tiered catalog
 * read (API and pages alike go through ./service.ts) writes one data point
 * by tier and document. The app is built here with a recording stand-in for
 * the Analytics Engine dataset (a write-only sink); KV, Redis and Postgres
 * are the real ones.
 */
import { env } from 'cloudflare:workers';
import { describe, expect, inject, it } from 'vitest';
import { createApp } from '../app';

const fx = inject('seedFixtures');

function counted() {
  const points: AnalyticsEngineDataPoint[] = [];
  const e = { ...env, METRICS: { writeDataPoint: (p?: AnalyticsEngineDataPoint) => void points.push(p!) } as AnalyticsEngineDataset };
  const app = createApp();
  return { points, get: (path: string, headers: Record<string, string> = {}) => app.request(path, { headers }, e) };
}

describe('cache_read counter', () => {
  it('counts a product read by the tier that answered, as x-cache-tier says', async () => {
    const { points, get } = counted();
    const res = await get(`/api/products/${fx.productSlugs[3]}`, { 'x-region': 'tw' });
    expect(res.status).toBe(200);
    expect(points).toEqual([
      { indexes: ['cache_read'], blobs: ['cache_read', res.headers.get('x-cache-tier'), 'product', 'tw'], doubles: [1, expect.any(Number)] },
    ]);
  });

  it('names the document: listing, search, categories', async () => {
    const { points, get } = counted();
    expect((await get(`/api/products?category=${fx.busiestCategorySlug}&limit=3`)).status).toBe(200);
    expect((await get(`/api/products?q=${encodeURIComponent(fx.searchTerm)}&limit=3`)).status).toBe(200);
    expect((await get('/api/categories')).status).toBe(200);
    expect(points.map((p) => p.blobs![2])).toEqual(['listing', 'search', 'categories']);
    expect(points.every((p) => ['cache', 'kv', 'redis', 'origin'].includes(p.blobs![1] as string))).toBe(true);
  });

  it('a page counts each of its reads', async () => {
    const { points, get } = counted();
    expect((await get(`/p/${fx.productSlugs[4]}`)).status).toBe(200);
    expect(points.map((p) => p.blobs![2]).sort()).toEqual(['categories', 'product']);
  });
});
