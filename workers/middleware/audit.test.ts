/**
 * The admin audit trail: through the real Worker (rows in Postgres, found by
 * the request id each answer carries, since other files write rows at the
 * same time), and on a small app with a stand-in database for the failure
 * and ordering guarantees a real database cannot be made to show on demand.
 */
import { env, exports } from 'cloudflare:workers';
import { eq } from 'drizzle-orm';
import { Hono } from 'hono';
import { requestId } from 'hono/request-id';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { createDatabase, type DatabaseClients } from '../../db/client';
import { adminAudit, apiTokens } from '../../db/schema';
import { newId, randomToken } from '../lib/ids';
import type { Services } from '../services';
import type { AppEnv } from '../types';
import { hashToken } from './admin-auth';
import { auditAdminWrites } from './audit';
import { errorHandler } from './errors';

const fx = inject('seedFixtures');
const bootstrap = env.ADMIN_BOOTSTRAP_TOKEN!;
const call = (path: string, init?: RequestInit) => exports.default.fetch(new Request(`http://pasar.test${path}`, init));
const admin = (path: string, method: string, body?: unknown, token: string | null = bootstrap) =>
  call(path, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });

let db: DatabaseClients;
const ids = { catalog: newId('tok'), readonly: newId('tok') };
const secrets = { catalog: `pasar_c_${randomToken(20)}`, readonly: `pasar_r_${randomToken(20)}` };
beforeAll(async () => {
  db = createDatabase(env);
  await db.primary.insert(apiTokens).values([
    { id: ids.catalog, name: 'audit test catalog', tokenHash: await hashToken(secrets.catalog), role: 'catalog' },
    { id: ids.readonly, name: 'audit test readonly', tokenHash: await hashToken(secrets.readonly), role: 'readonly' },
  ]);
});
afterAll(async () => {
  await db.close();
});
afterEach(() => {
  vi.restoreAllMocks();
});

/** The audit rows of the request that produced `res`. */
async function rowsFor(res: Response) {
  const id = res.headers.get('x-request-id');
  expect(id).toBeTruthy();
  return db.primary.select().from(adminAudit).where(eq(adminAudit.requestId, id!));
}

function newProduct() {
  const sku = `AUD-${randomToken(6).toUpperCase()}`;
  return { title: `Audit test kueh ${sku}`, category: fx.busiestCategorySlug, variants: [{ sku, title: 'Box of 6', prices: { sg: { amount: 1200 } } }] };
}

describe('admin audit trail (through the Worker)', () => {
  it('records an accepted write: token, role, method, route pattern, path, status, request id, time', async () => {
    const before = Date.now();
    const created = await admin('/admin/api/products', 'POST', newProduct(), secrets.catalog);
    expect(created.status).toBe(201);
    const product = await created.json<{ id: string }>();
    const [row] = await rowsFor(created);
    expect(row).toMatchObject({
      tokenId: ids.catalog,
      role: 'catalog',
      method: 'POST',
      route: '/admin/api/products',
      path: '/admin/api/products',
      status: 201,
      requestId: created.headers.get('x-request-id'),
    });
    expect(row!.id).toMatch(/^aud_/);
    expect(row!.createdAt.getTime()).toBeGreaterThan(before - 5_000);

    // A route with a parameter is recorded by its pattern, the path as sent.
    const patched = await admin(`/admin/api/products/${product.id}`, 'PATCH', { title: 'Audit test kueh, renamed' }, secrets.catalog);
    expect(patched.status).toBe(200);
    expect(await rowsFor(patched)).toEqual([
      expect.objectContaining({ method: 'PATCH', route: '/admin/api/products/:id', path: `/admin/api/products/${product.id}`, status: 200 }),
    ]);
  });

  it('records a write the role check refused (403) under the refused token', async () => {
    const res = await admin('/admin/api/products', 'POST', newProduct(), secrets.readonly);
    expect(res.status).toBe(403);
    expect(await rowsFor(res)).toEqual([
      expect.objectContaining({ tokenId: ids.readonly, role: 'readonly', method: 'POST', route: '/admin/api/products', status: 403 }),
    ]);
  });

  it('records writes refused after authentication: validation (400) and an unknown id (404)', async () => {
    const invalid = await admin('/admin/api/products', 'POST', { title: 'x', price: 1 }, secrets.catalog);
    expect(invalid.status).toBe(400);
    expect(await rowsFor(invalid)).toEqual([expect.objectContaining({ tokenId: ids.catalog, status: 400, route: '/admin/api/products' })]);
    const missing = await admin(`/admin/api/orders/ord_${'0'.repeat(26)}/cancel`, 'POST', undefined, bootstrap);
    expect(missing.status).toBe(404);
    expect(await rowsFor(missing)).toEqual([expect.objectContaining({ tokenId: 'bootstrap', role: 'owner', route: '/admin/api/orders/:id/cancel', status: 404 })]);
  });

  it('records each write method: PUT and DELETE too', async () => {
    const put = await admin(`/admin/api/inventory/${fx.onSaleSku}`, 'PUT', { region: 'sg' }, secrets.catalog);
    expect(put.status).toBe(400);
    expect(await rowsFor(put)).toEqual([expect.objectContaining({ method: 'PUT', route: '/admin/api/inventory/:sku' })]);
    const del = await admin(`/admin/api/tokens/${newId('tok')}`, 'DELETE');
    expect(del.status).toBe(404);
    expect(await rowsFor(del)).toEqual([expect.objectContaining({ method: 'DELETE', route: '/admin/api/tokens/:id', tokenId: 'bootstrap' })]);
  });

  it('writes no row for reads', async () => {
    for (const path of [`/admin/api/inventory/${fx.onSaleSku}`, '/admin/api/orders?limit=1', '/admin/api/tokens']) {
      const res = await admin(path, 'GET');
      expect(res.status).toBe(200);
      expect(await rowsFor(res)).toEqual([]);
    }
  });

  it('writes no row for an unauthenticated write (401), and logs it instead', async () => {
    const warn = vi.spyOn(console, 'warn');
    const res = await admin('/admin/api/products', 'POST', newProduct(), null);
    expect(res.status).toBe(401);
    expect(await rowsFor(res)).toEqual([]);
    const logged = warn.mock.calls.map((args) => String(args[0])).find((line) => line.includes(res.headers.get('x-request-id')!));
    expect(JSON.parse(logged!)).toMatchObject({ level: 'warn', msg: 'admin request without a valid token', method: 'POST', path: '/admin/api/products' });
  });

  it('is append-only: the database refuses to update or delete a row', async () => {
    const res = await admin(`/admin/api/tokens/${newId('tok')}`, 'DELETE');
    const [row] = await rowsFor(res);
    expect(row).toBeDefined();
    const refusal = (work: Promise<unknown>) =>
      work.then(
        () => 'allowed',
        (err: { message?: string; cause?: { message?: string } }) => `${err.message} ${err.cause?.message ?? ''}`,
      );
    expect(await refusal(db.primary.update(adminAudit).set({ status: 200 }).where(eq(adminAudit.id, row!.id)))).toMatch(/append-only/);
    expect(await refusal(db.primary.delete(adminAudit).where(eq(adminAudit.id, row!.id)))).toMatch(/append-only/);
    const [still] = await db.primary.select().from(adminAudit).where(eq(adminAudit.id, row!.id));
    expect(still).toEqual(row);
  });
});

// ---- the middleware on its own ---------------------------------------------------------

/** An app with auditAdminWrites() in front of fake admin routes and a stand-in database. */
function harness(insert: (row: Record<string, unknown>) => Promise<void>) {
  const app = new Hono<AppEnv>();
  app.use(requestId());
  app.use('/admin/api/*', async (c, next) => {
    const values = (row: Record<string, unknown>) => insert(row);
    c.set('services', { db: { primary: { insert: () => ({ values }) } } } as unknown as Services);
    await next();
  });
  app.use('/admin/api/*', auditAdminWrites());
  const sub = new Hono<AppEnv>();
  sub.post('/things/:id/archive', (c) => {
    c.set('admin', { tokenId: 'tok_test', role: 'catalog' });
    return c.json({ ok: true }, 200);
  });
  sub.get('/things/:id', (c) => {
    c.set('admin', { tokenId: 'tok_test', role: 'catalog' });
    return c.json({ ok: true }, 200);
  });
  app.route('/admin/api', sub);
  app.onError(errorHandler());
  return app;
}

describe('auditAdminWrites() on its own', () => {
  it('answers only after the row is written, so a 2xx means it is on record', async () => {
    const events: string[] = [];
    const app = harness(async (row) => {
      await new Promise((r) => setTimeout(r, 50));
      events.push(`insert ${String(row.route)}`);
    });
    const res = await app.request('/admin/api/things/42/archive', { method: 'POST' });
    events.push('response');
    expect(res.status).toBe(200);
    expect(events).toEqual(['insert /admin/api/things/:id/archive', 'response']);
  });

  it('still answers when the insert fails, and logs the whole record as an error', async () => {
    const error = vi.spyOn(console, 'error').mockImplementation(() => {});
    const app = harness(async () => {
      throw new Error('connection reset');
    });
    const res = await app.request('/admin/api/things/42/archive', { method: 'POST' });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true });
    const line = JSON.parse(String(error.mock.calls.at(-1)![0]));
    expect(line).toMatchObject({
      level: 'error',
      msg: 'admin audit row not written',
      audit: { tokenId: 'tok_test', role: 'catalog', method: 'POST', route: '/admin/api/things/:id/archive', path: '/admin/api/things/42/archive', status: 200 },
    });
    expect(line.error).toContain('connection reset');
  });

  it('records nothing for a read or a path no route answers', async () => {
    const rows: unknown[] = [];
    const app = harness(async (row) => void rows.push(row));
    expect((await app.request('/admin/api/things/42')).status).toBe(200);
    expect((await app.request('/admin/api/nothing', { method: 'POST' })).status).toBe(404);
    expect(rows).toEqual([]);
  });
});
