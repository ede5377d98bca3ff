/**
 * observe(): the request log line and `Server-Timing: total`, through the
 * real Worker (real Postgres, Redis, KV), and on a small app for a 500 from
 * an unexpected exception (which the real Worker cannot be made to throw on
 * demand).
 */
import { env, exports } from 'cloudflare:workers';
import { Hono } from 'hono';
import { requestId } from 'hono/request-id';
import { afterEach, describe, expect, inject, it, vi } from 'vitest';
import { randomToken } from '../lib/ids';
import type { AppEnv } from '../types';
import { errorHandler, notFoundHandler } from './errors';
import { isApiPath, observe, type RequestLogLine } from './observe';

const fx = inject('seedFixtures');
const bootstrap = env.ADMIN_BOOTSTRAP_TOKEN!;

const call = (path: string, init?: RequestInit) => exports.default.fetch(new Request(`http://pasar.test${path}`, init));

/** Every console line observe() may have written (it uses log, and warn for 5xx). */
function spyLines() {
  const log = vi.spyOn(console, 'log');
  const warn = vi.spyOn(console, 'warn');
  const texts = () => [...log.mock.calls, ...warn.mock.calls].map(([first]) => String(first));
  return {
    /** The request line of the request that produced `res`, and its raw text. */
    lineFor(res: Response): { line: RequestLogLine; text: string } {
      const id = res.headers.get('x-request-id');
      expect(id).toBeTruthy();
      const matches = texts().filter((t) => t.includes('"msg":"request"') && t.includes(id!));
      expect(matches).toHaveLength(1);
      return { line: JSON.parse(matches[0]!) as RequestLogLine, text: matches[0]! };
    },
    /** Every line written by anyone that mentions `needle`. */
    mentioning: (needle: string) => texts().filter((t) => t.includes(needle)),
  };
}

/** The `Server-Timing` entries of an answer, in order. */
const timings = (res: Response) => (res.headers.get('server-timing') ?? '').split(',').map((s) => s.trim()).filter(Boolean);

afterEach(() => {
  vi.restoreAllMocks();
});

describe('observe(): the request log line (through the Worker)', () => {
  it('logs one JSON line per request with requestId, method, route pattern, status, duration, region, cache tier', async () => {
    const lines = spyLines();
    const slug = fx.productSlugs[0]!;
    const res = await call(`/api/products/${slug}`, { headers: { 'x-region': 'th' } });
    expect(res.status).toBe(200);
    const { line } = lines.lineFor(res);
    expect(line).toMatchObject({
      level: 'info',
      msg: 'request',
      requestId: res.headers.get('x-request-id'),
      method: 'GET',
      route: '/api/products/:slug',
      status: 200,
      region: 'th',
      cacheTier: res.headers.get('x-cache-tier'),
      environment: 'development',
    });
    expect(['cache', 'kv', 'origin']).toContain(line.cacheTier);
    expect(typeof line.durationMs).toBe('number');
    expect(line.durationMs).toBeGreaterThanOrEqual(0);
    // Locally there is no edge location, so no colo.
    expect(line).not.toHaveProperty('colo');
    // The route, never the path as sent.
    expect(JSON.stringify(line)).not.toContain(slug);
  });

  it('logs the colo of the edge location when the request has one', async () => {
    const lines = spyLines();
    const res = await exports.default.fetch(new Request('http://pasar.test/api/regions', { cf: { colo: 'SIN', country: 'SG' } } as RequestInit));
    expect(res.status).toBe(200);
    expect(lines.lineFor(res).line).toMatchObject({ route: '/api/regions', colo: 'SIN', status: 200 });
  });

  it('names the route pattern, not the ids, and never logs an order token from the query', async () => {
    const lines = spyLines();
    const token = `tok-${randomToken(16)}`;
    const orderId = `ord_${'7'.repeat(26)}`;
    const res = await call(`/api/orders/${orderId}?token=${token}`);
    expect(res.status).toBeGreaterThanOrEqual(400);
    const { line, text } = lines.lineFor(res);
    expect(line).toMatchObject({ method: 'GET', route: '/api/orders/:orderId', status: res.status });
    expect(text).not.toContain(token);
    expect(text).not.toContain(orderId);
    // Nobody else logged the token either.
    expect(lines.mentioning(token)).toEqual([]);
  });

  it('logs admin requests without the bearer token', async () => {
    const lines = spyLines();
    const res = await call('/admin/api/tokens', { headers: { authorization: `Bearer ${bootstrap}` } });
    expect(res.status).toBe(200);
    const { line, text } = lines.lineFor(res);
    expect(line).toMatchObject({ route: '/admin/api/tokens', status: 200, method: 'GET' });
    expect(text).not.toContain(bootstrap);
    expect(lines.mentioning(bootstrap)).toEqual([]);
  });

  it('logs refusals with the status the client got: 404 with no route, 400 from middleware before the route, 405', async () => {
    const lines = spyLines();
    const missing = await call(`/api/no-such-thing/${randomToken(6)}`);
    expect(missing.status).toBe(404);
    expect(lines.lineFor(missing).line).toMatchObject({ route: null, status: 404 });

    // region() refuses before the route handler runs: still the route's pattern.
    const badRegion = await call(`/api/products/${fx.productSlugs[0]}`, { headers: { 'x-region': 'zz' } });
    expect(badRegion.status).toBe(400);
    expect(lines.lineFor(badRegion).line).toMatchObject({ route: '/api/products/:slug', status: 400 });
    expect(lines.lineFor(badRegion).line).not.toHaveProperty('region');

    const wrongMethod = await call('/api/regions', { method: 'DELETE' });
    expect(wrongMethod.status).toBe(405);
    expect(lines.lineFor(wrongMethod).line).toMatchObject({ method: 'DELETE', status: 405 });
  });

  it('logs pages too, with the deepest catalog tier their reads needed', async () => {
    const lines = spyLines();
    const res = await call(`/p/${fx.productSlugs[1]}`);
    expect(res.status).toBe(200);
    const { line } = lines.lineFor(res);
    expect(line).toMatchObject({ route: '/p/:slug', status: 200 });
    expect(['cache', 'kv', 'origin']).toContain(line.cacheTier);
  });
});

describe('observe(): Server-Timing total on API answers (through the Worker)', () => {
  it('appends total;dur= after the tier and database entries of a catalog answer', async () => {
    const res = await call(`/api/products/${fx.productSlugs[2]}`);
    expect(res.status).toBe(200);
    const entries = timings(res);
    const tier = res.headers.get('x-cache-tier')!;
    expect(entries[0]).toMatch(new RegExp(`^${tier};dur=\\d+`));
    expect(entries.at(-1)).toMatch(/^total;dur=\d+$/);
    expect(entries.filter((e) => e.startsWith('total;'))).toHaveLength(1);
  });

  it('is on every API answer: listings, 304s, errors, 404s, 405s and the admin API', async () => {
    const listing = await call(`/api/products?category=${fx.busiestCategorySlug}&limit=2`);
    expect(listing.status).toBe(200);
    const revalidated = await call(`/api/products?category=${fx.busiestCategorySlug}&limit=2`, { headers: { 'if-none-match': listing.headers.get('etag')! } });
    expect(revalidated.status).toBe(304);
    const answers = [
      listing,
      revalidated,
      await call('/api/health'),
      await call('/api/products/no-such-product-anywhere'),
      await call(`/api/no-such-thing/${randomToken(6)}`),
      await call('/api/products?limit=0'),
      await call('/api/regions', { method: 'DELETE' }),
      await call('/admin/api/tokens'),
      await call('/admin/api/tokens', { headers: { authorization: `Bearer ${bootstrap}` } }),
      await call('/admin/api/nothing-here', { headers: { authorization: `Bearer ${bootstrap}` } }),
    ];
    expect(answers.map((r) => r.status)).toEqual([200, 304, expect.any(Number), 404, 404, 400, 405, 401, 200, 404]);
    for (const res of answers) expect(timings(res).filter((e) => /^total;dur=\d+$/.test(e)), `${res.url} ${res.status}`).toHaveLength(1);
  });

  it('leaves pages and media alone (pages carry their own reads)', async () => {
    const page = await call('/no-such-page-anywhere');
    expect(page.status).toBe(404);
    expect(timings(page).some((e) => e.startsWith('total;'))).toBe(false);
  });

  it('isApiPath matches /api and /admin/api only', () => {
    expect(['/api', '/api/x', '/admin/api', '/admin/api/x'].every(isApiPath)).toBe(true);
    expect(['/', '/apis', '/admin', '/admin/apix', '/p/x', '/media/a.png'].some(isApiPath)).toBe(false);
  });
});

describe('observe() on its own: an unexpected exception still goes through the error handler', () => {
  function harness() {
    const written: RequestLogLine[] = [];
    const app = new Hono<AppEnv>();
    app.use(requestId());
    app.use(observe({ write: (line) => written.push(line) }));
    app.get('/api/boom/:id', () => {
      throw new Error('kaboom with a secret inside');
    });
    app.get('/api/fine', (c) => {
      c.header('Server-Timing', 'cache;dur=1');
      return c.json({ ok: true });
    });
    app.onError(errorHandler());
    app.notFound(notFoundHandler());
    return { app, written };
  }

  it('answers the 500 envelope naming the request, logs status 500 and the route, and sets total', async () => {
    vi.spyOn(console, 'error').mockImplementation(() => {});
    const { app, written } = harness();
    const res = await app.request('/api/boom/42?token=abc');
    expect(res.status).toBe(500);
    const body = await res.json<{ error: { code: string; message: string } }>();
    expect(body.error.code).toBe('internal');
    expect(body.error.message).toContain(res.headers.get('x-request-id')!);
    expect(timings(res).at(-1)).toMatch(/^total;dur=\d+$/);
    expect(written).toEqual([expect.objectContaining({ level: 'warn', route: '/api/boom/:id', status: 500, method: 'GET', requestId: res.headers.get('x-request-id') })]);
    expect(JSON.stringify(written)).not.toMatch(/abc|42|secret/);
  });

  it('appends to the entries the route set, and does not replace them', async () => {
    const { app, written } = harness();
    const res = await app.request('/api/fine');
    expect(timings(res)).toEqual(['cache;dur=1', expect.stringMatching(/^total;dur=\d+$/)]);
    expect(written[0]).toMatchObject({ level: 'info', route: '/api/fine', status: 200 });
  });

  it('a logger that throws does not change the answer', async () => {
    const app = new Hono<AppEnv>();
    app.use(observe({ write: () => { throw new Error('log sink down'); } }));
    app.get('/api/fine', (c) => c.json({ ok: true }));
    const res = await app.request('/api/fine');
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true });
  });
});
