import { exports } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';

const call = (path: string, init?: RequestInit) => exports.default.fetch(new Request(`http://pasar.test${path}`, init));

describe('GET /api/regions', () => {
  it('lists the seven regions with their currencies', async () => {
    const res = await call('/api/regions');
    expect(res.status).toBe(200);
    const { items } = await res.json<{ items: { code: string; currency: string; currencyExponent: number }[] }>();
    expect(items.map((r) => `${r.code}:${r.currency}`)).toEqual(['sg:SGD', 'my:MYR', 'th:THB', 'id:IDR', 'vn:VND', 'ph:PHP', 'tw:TWD']);
    expect(items.find((r) => r.code === 'id')?.currencyExponent).toBe(0);
  });
});

describe('region resolution', () => {
  it('prefers the x-region header over the cookie and the query', async () => {
    const res = await call('/api/regions?region=th', { headers: { 'x-region': 'MY', cookie: 'region=id' } });
    expect(res.headers.get('x-region')).toBe('my');
  });

  it('prefers the region cookie over the query', async () => {
    const res = await call('/api/regions?region=th', { headers: { cookie: 'region=id' } });
    expect(res.headers.get('x-region')).toBe('id');
  });

  it('takes ?region= when nothing else names one', async () => {
    const res = await call('/api/regions?region=th');
    expect(res.headers.get('x-region')).toBe('th');
  });

  it('falls back to the edge location country', async () => {
    const res = await exports.default.fetch(new Request('http://pasar.test/api/regions', { cf: { country: 'PH' } } as RequestInit));
    expect(res.headers.get('x-region')).toBe('ph');
  });

  it('falls back to DEFAULT_REGION for a country outside APAC', async () => {
    const res = await exports.default.fetch(new Request('http://pasar.test/api/regions', { cf: { country: 'DE' } } as RequestInit));
    expect(res.headers.get('x-region')).toBe('sg');
  });

  it('rejects an unknown region with 400 invalid_region', async () => {
    const res = await call('/api/regions', { headers: { 'x-region': 'zz' } });
    expect(res.status).toBe(400);
    const body = await res.json<any>();
    expect(body.error.code).toBe('invalid_region');
    expect(body.error.message).toContain('zz');
  });
});
