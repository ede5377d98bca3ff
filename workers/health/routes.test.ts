import { env, exports } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { createApp } from '../app';

const call = (path: string, init?: RequestInit) => exports.default.fetch(new Request(`http://pasar.test${path}`, init));

describe('GET /api/health', () => {
  it('reports Postgres, Redis and KV up when they answer', async () => {
    const res = await call('/api/health');
    const body = await res.json<any>();
    expect(res.status, JSON.stringify(body)).toBe(200);
    expect(body).toMatchObject({ ok: true, region: 'sg', checks: { postgres: 'up', redis: 'up', kv: 'up' } });
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('x-request-id')).toBeTruthy();
  });

  it('answers 503 JSON with Retry-After when Redis is stopped', async () => {
    expect(env.TEST_DEAD_UPSTASH_URL).toBeTruthy();
    const app = createApp();
    const res = await app.request('/api/health', {}, { ...env, UPSTASH_REDIS_REST_URL: env.TEST_DEAD_UPSTASH_URL! });
    expect(res.status).toBe(503);
    expect(res.headers.get('content-type')).toContain('application/json');
    expect(res.headers.get('retry-after')).toBe('5');
    const body = await res.json<any>();
    expect(body.ok).toBe(false);
    expect(body.checks).toEqual({ postgres: 'up', redis: 'down', kv: 'up' });
    expect(body.errors.redis).toEqual(expect.any(String));
  });

  it('answers 503 when Postgres is unreachable', async () => {
    const app = createApp();
    // Port 1 on loopback: nothing listens, the bridge refuses the target.
    const res = await app.request('/api/health', {}, { ...env, DATABASE_URL: 'postgres://postgres@127.0.0.1:1/nowhere' });
    expect(res.status).toBe(503);
    const body = await res.json<any>();
    expect(body.checks.postgres).toBe('down');
    expect(body.checks.redis).toBe('up');
  });

  it('uses the region the request names', async () => {
    const res = await call('/api/health', { headers: { 'x-region': 'vn' } });
    expect(res.headers.get('x-region')).toBe('vn');
    expect((await res.json<any>()).region).toBe('vn');
  });
});
