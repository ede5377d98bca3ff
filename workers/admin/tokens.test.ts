/**
 * Admin API tokens end to end through the Worker: minting (shown once, stored
 * hashed), listing, revoking, the last-owner guard, last-used tracking, and
 * which role may call which admin route (the BFLA matrix).
 *
 * Other test files share the database and run at the same time: every
 * assertion names rows this file created.
 */
import { env, exports } from 'cloudflare:workers';
import { and, eq, isNull, ne, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createDatabase, type DatabaseClients } from '../../db/client';
import { apiTokens, type ApiTokenRole } from '../../db/schema';
import { createApp } from '../app';
import { newId, randomToken } from '../lib/ids';
import { hashToken } from '../middleware/admin-auth';
import { API_TOKEN_FORMAT } from '../lib/api-token';
import { revokeApiToken } from './tokens';

const fx = inject('seedFixtures');
const bootstrap = env.ADMIN_BOOTSTRAP_TOKEN!;
const call = (path: string, init?: RequestInit) => exports.default.fetch(new Request(`http://pasar.test${path}`, init));
const admin = (path: string, method = 'GET', body?: unknown, token: string | null = bootstrap, headers: Record<string, string> = {}) =>
  call(path, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), 'content-type': 'application/json', ...headers },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });

interface Minted {
  id: string;
  name: string;
  role: ApiTokenRole;
  token: string;
  createdBy: string;
  createdAt: string;
}

/** Mints a token through the API (as the bootstrap owner unless `as` is given). */
async function mint(role: ApiTokenRole, as: string = bootstrap): Promise<Minted> {
  const res = await admin('/admin/api/tokens', 'POST', { name: `tokens test ${role} ${randomToken(4)}`, role }, as);
  expect(res.status).toBe(201);
  return res.json<Minted>();
}

let db: DatabaseClients;
const tokens = {} as Record<ApiTokenRole, Minted>;
beforeAll(async () => {
  db = createDatabase(env);
  for (const role of ['owner', 'catalog', 'fulfillment', 'readonly'] as const) tokens[role] = await mint(role);
});
afterAll(async () => {
  await db.close();
});

const rowOf = async (id: string) => (await db.primary.select().from(apiTokens).where(eq(apiTokens.id, id)))[0];

describe('POST /admin/api/tokens', () => {
  it('mints a token shown once, stored only as its SHA-256, that works at once on a route its role allows', async () => {
    const res = await admin('/admin/api/tokens', 'POST', { name: '  warehouse integration  ', role: 'fulfillment' });
    expect(res.status).toBe(201);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const created = await res.json<Minted>();
    expect(Object.keys(created).sort()).toEqual(['createdAt', 'createdBy', 'id', 'name', 'role', 'token']);
    expect(created).toMatchObject({ name: 'warehouse integration', role: 'fulfillment', createdBy: 'bootstrap' });
    expect(created.id).toMatch(/^tok_[0-9a-z]{26}$/);
    expect(created.token).toMatch(API_TOKEN_FORMAT);
    expect(created.token).toMatch(/^pasar_f_/);

    const row = await rowOf(created.id);
    expect(row!.tokenHash).toBe(await hashToken(created.token));
    expect(JSON.stringify(row)).not.toContain(created.token);

    const orders = await admin('/admin/api/orders?limit=1', 'GET', undefined, created.token);
    expect(orders.status).toBe(200);
  });

  it('mints distinct tokens with the role initial in the prefix', async () => {
    const prefixes = Object.values(tokens).map((t) => t.token.slice(0, 8));
    expect(prefixes.sort()).toEqual(['pasar_c_', 'pasar_f_', 'pasar_o_', 'pasar_r_']);
    expect(new Set(Object.values(tokens).map((t) => t.token)).size).toBe(4);
  });

  it('records the calling token as createdBy', async () => {
    const child = await mint('readonly', tokens.owner.token);
    expect(child.createdBy).toBe(tokens.owner.id);
    expect((await rowOf(child.id))!.createdBy).toBe(tokens.owner.id);
  });

  it('refuses fields the client may not set (id, tokenHash, createdBy, token, revokedAt) with 400 naming each', async () => {
    const res = await admin('/admin/api/tokens', 'POST', {
      name: 'sneaky',
      role: 'catalog',
      id: 'tok_mine',
      tokenHash: 'a'.repeat(64),
      createdBy: 'cli',
      token: 'pasar_o_chosen',
      revokedAt: null,
    });
    expect(res.status).toBe(400);
    const body = await res.json<any>();
    expect(body.error.code).toBe('invalid_request');
    expect(body.error.details.map((d: { field: string }) => d.field).sort()).toEqual(['createdBy', 'id', 'revokedAt', 'token', 'tokenHash']);
    const [named] = await db.primary.select({ id: apiTokens.id }).from(apiTokens).where(eq(apiTokens.id, 'tok_mine'));
    expect(named).toBeUndefined();
  });

  it('refuses a missing, blank, overlong or control-character name and an unknown role', async () => {
    for (const body of [
      { role: 'catalog' },
      { name: '   ', role: 'catalog' },
      { name: 'x'.repeat(101), role: 'catalog' },
      { name: 'line\nbreak', role: 'catalog' },
      { name: 'superuser', role: 'admin' },
      { name: 'no role' },
    ]) {
      const res = await admin('/admin/api/tokens', 'POST', body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect((await res.json<any>()).error.code).toBe('invalid_request');
    }
  });

  it('answers malformed JSON with 400 invalid_json and a body over 4 KiB with 413', async () => {
    const bad = await admin('/admin/api/tokens', 'POST', '{"name": ');
    expect(bad.status).toBe(400);
    expect((await bad.json<any>()).error.code).toBe('invalid_json');
    const big = await admin('/admin/api/tokens', 'POST', { name: 'big', role: 'catalog', pad: 'x'.repeat(5000) });
    expect(big.status).toBe(413);
    expect((await big.json<any>()).error.code).toBe('payload_too_large');
  });
});

describe('GET /admin/api/tokens', () => {
  it('lists tokens with their metadata, never the token or its hash', async () => {
    const res = await admin('/admin/api/tokens');
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toContain('no-store');
    const text = await res.text();
    const { items } = JSON.parse(text) as { items: Record<string, unknown>[] };
    const mine = items.find((t) => t.id === tokens.catalog.id);
    expect(mine).toEqual({
      id: tokens.catalog.id,
      name: tokens.catalog.name,
      role: 'catalog',
      createdBy: 'bootstrap',
      createdAt: tokens.catalog.createdAt,
      lastUsedAt: mine?.lastUsedAt ?? null,
      revokedAt: null,
    });
    expect(mine!.lastUsedAt === null || typeof mine!.lastUsedAt === 'string').toBe(true);
    for (const t of Object.values(tokens)) {
      expect(text).not.toContain(t.token);
      expect(text).not.toContain(await hashToken(t.token));
    }
    for (const item of items) expect(Object.keys(item).sort()).toEqual(['createdAt', 'createdBy', 'id', 'lastUsedAt', 'name', 'revokedAt', 'role']);
  });
});

describe('DELETE /admin/api/tokens/:id', () => {
  it('revokes: the token is refused with 401 from the next request on', async () => {
    const t = await mint('fulfillment');
    expect((await admin('/admin/api/orders?limit=1', 'GET', undefined, t.token)).status).toBe(200);
    const res = await admin(`/admin/api/tokens/${t.id}`, 'DELETE');
    expect(res.status).toBe(200);
    const revoked = await res.json<any>();
    expect(revoked).toMatchObject({ id: t.id, role: 'fulfillment', revokedAt: expect.any(String) });
    expect(revoked.token).toBeUndefined();
    const after = await admin('/admin/api/orders?limit=1', 'GET', undefined, t.token);
    expect(after.status).toBe(401);
    expect(after.headers.get('www-authenticate')).toContain('invalid_token');
    expect((await after.json<any>()).error.code).toBe('unauthorized');
  });

  it('keeps the first revocation time when revoked twice', async () => {
    const t = await mint('readonly');
    const first = await (await admin(`/admin/api/tokens/${t.id}`, 'DELETE')).json<any>();
    await new Promise((r) => setTimeout(r, 20));
    const second = await admin(`/admin/api/tokens/${t.id}`, 'DELETE');
    expect(second.status).toBe(200);
    expect((await second.json<any>()).revokedAt).toBe(first.revokedAt);
  });

  it('answers 404 not_found for an unknown id and for the bootstrap token, which has no row', async () => {
    for (const id of [newId('tok'), 'bootstrap']) {
      const res = await admin(`/admin/api/tokens/${id}`, 'DELETE');
      expect(res.status).toBe(404);
      expect((await res.json<any>()).error.code).toBe('not_found');
    }
  });

  it('lets a token revoke itself; the answer still arrives, the next request is 401', async () => {
    const t = await mint('owner');
    const res = await admin(`/admin/api/tokens/${t.id}`, 'DELETE', undefined, t.token);
    expect(res.status).toBe(200);
    expect((await res.json<any>()).revokedAt).toEqual(expect.any(String));
    expect((await admin('/admin/api/tokens', 'GET', undefined, t.token)).status).toBe(401);
  });

  it('without a bootstrap token, lets an owner revoke another owner token while one stays active', async () => {
    const app = createApp();
    const noBootstrap = { ...env, ADMIN_BOOTSTRAP_TOKEN: '' };
    const keeper = await mint('owner');
    const leaving = await mint('owner');
    // The bootstrap token is no longer accepted by this app...
    const byBootstrap = await app.request(`/admin/api/tokens/${leaving.id}`, { method: 'DELETE', headers: { authorization: `Bearer ${bootstrap}` } }, noBootstrap);
    expect(byBootstrap.status).toBe(401);
    // ...but a remaining owner token is.
    const res = await app.request(`/admin/api/tokens/${leaving.id}`, { method: 'DELETE', headers: { authorization: `Bearer ${keeper.token}` } }, noBootstrap);
    expect(res.status).toBe(200);
    expect((await rowOf(leaving.id))!.revokedAt).not.toBeNull();
  });

  it('refuses to revoke the last active owner token while no bootstrap token is configured (409 last_owner)', async () => {
    const last = await mint('owner');
    // Inside a transaction that is rolled back: the other owner tokens of the
    // shared database look revoked only to this check, and only for its length.
    const rolledBack = db.primary.transaction(async (tx) => {
      await tx
        .update(apiTokens)
        .set({ revokedAt: sql`now()` })
        .where(and(eq(apiTokens.role, 'owner'), isNull(apiTokens.revokedAt), ne(apiTokens.id, last.id)));
      await expect(revokeApiToken(tx, last.id, false)).rejects.toMatchObject({ status: 409, code: 'last_owner' });
      expect((await tx.select().from(apiTokens).where(eq(apiTokens.id, last.id)))[0]!.revokedAt).toBeNull();
      // With a usable bootstrap token the store cannot lock itself out, so it may go.
      expect((await revokeApiToken(tx, last.id, true)).revokedAt).not.toBeNull();
      tx.rollback();
    });
    await expect(rolledBack).rejects.toThrow(/rollback/i);
    expect((await rowOf(last.id))!.revokedAt).toBeNull();
  });

  it('applies the last-owner rule to owner tokens only', async () => {
    const t = await mint('catalog');
    const tx = db.primary.transaction((tx) => revokeApiToken(tx, t.id, false));
    expect((await tx).revokedAt).not.toBeNull();
  });
});

describe('last used', () => {
  it('records the first use, then writes again only once the last write is a minute old', async () => {
    const t = await mint('readonly');
    expect((await rowOf(t.id))!.lastUsedAt).toBeNull();
    const use = () => admin(`/admin/api/inventory/${fx.onSaleSku}`, 'GET', undefined, t.token);
    expect((await use()).status).toBe(200);
    // Written after the response (waitUntil): poll for it.
    const deadline = Date.now() + 5_000;
    let first: Date | null = null;
    while (!first && Date.now() < deadline) {
      first = (await rowOf(t.id))!.lastUsedAt;
      if (!first) await new Promise((r) => setTimeout(r, 50));
    }
    expect(first).not.toBeNull();

    // A second use within the minute leaves it alone.
    expect((await use()).status).toBe(200);
    await new Promise((r) => setTimeout(r, 300));
    expect((await rowOf(t.id))!.lastUsedAt!.getTime()).toBe(first!.getTime());

    // Once the recorded use is over a minute old, the next use moves it.
    await db.primary.update(apiTokens).set({ lastUsedAt: sql`now() - interval '2 minutes'` }).where(eq(apiTokens.id, t.id));
    const aged = (await rowOf(t.id))!.lastUsedAt!;
    expect((await use()).status).toBe(200);
    const moved = Date.now() + 5_000;
    let latest = aged;
    while (latest.getTime() === aged.getTime() && Date.now() < moved) {
      await new Promise((r) => setTimeout(r, 50));
      latest = (await rowOf(t.id))!.lastUsedAt!;
    }
    expect(latest.getTime()).toBeGreaterThan(aged.getTime() + 60_000);
  });

  it('does not record a use by a revoked token', async () => {
    const t = await mint('readonly');
    await admin(`/admin/api/tokens/${t.id}`, 'DELETE');
    expect((await admin(`/admin/api/inventory/${fx.onSaleSku}`, 'GET', undefined, t.token)).status).toBe(401);
    await new Promise((r) => setTimeout(r, 300));
    expect((await rowOf(t.id))!.lastUsedAt).toBeNull();
  });
});

// ---- which role may call what ---------------------------------------------------------

type Principal = 'bootstrap' | ApiTokenRole;
const UNKNOWN_ORDER = `ord_${'0'.repeat(26)}`;
const UNKNOWN_PRODUCT = newId('prod');

/**
 * One representative route per admin sub-app and direction. Requests are
 * built so an allowed caller gets a harmless answer (a read, a validation
 * error, an unknown id): the matrix changes nothing. `allowed` is the status
 * an allowed caller gets; everyone else must get 403 `forbidden`.
 */
const matrix: { name: string; method: string; path: string; body?: unknown; headers?: Record<string, string>; allowed: number; roles: Principal[] }[] = [
  { name: 'products: create', method: 'POST', path: '/admin/api/products', body: {}, allowed: 400, roles: ['bootstrap', 'owner', 'catalog'] },
  { name: 'products: read', method: 'GET', path: `/admin/api/products/${UNKNOWN_PRODUCT}`, allowed: 404, roles: ['bootstrap', 'owner', 'catalog', 'readonly'] },
  { name: 'products: archive', method: 'DELETE', path: `/admin/api/products/${UNKNOWN_PRODUCT}`, allowed: 404, roles: ['bootstrap', 'owner', 'catalog'] },
  { name: 'inventory: set', method: 'PUT', path: `/admin/api/inventory/${fx.onSaleSku}`, body: {}, allowed: 400, roles: ['bootstrap', 'owner', 'catalog'] },
  { name: 'inventory: read', method: 'GET', path: `/admin/api/inventory/${fx.onSaleSku}`, allowed: 200, roles: ['bootstrap', 'owner', 'catalog', 'fulfillment', 'readonly'] },
  { name: 'orders: list', method: 'GET', path: '/admin/api/orders?limit=1', allowed: 200, roles: ['bootstrap', 'owner', 'fulfillment', 'readonly'] },
  { name: 'orders: cancel', method: 'POST', path: `/admin/api/orders/${UNKNOWN_ORDER}/cancel`, allowed: 404, roles: ['bootstrap', 'owner', 'fulfillment'] },
  { name: 'orders: fulfill', method: 'POST', path: `/admin/api/orders/${UNKNOWN_ORDER}/fulfill`, allowed: 404, roles: ['bootstrap', 'owner', 'fulfillment'] },
  { name: 'media: upload', method: 'POST', path: '/admin/api/media', body: 'not an image', headers: { 'content-type': 'image/png' }, allowed: 400, roles: ['bootstrap', 'owner', 'catalog'] },
  { name: 'tokens: list', method: 'GET', path: '/admin/api/tokens', allowed: 200, roles: ['bootstrap', 'owner'] },
  { name: 'tokens: create', method: 'POST', path: '/admin/api/tokens', body: {}, allowed: 400, roles: ['bootstrap', 'owner'] },
  { name: 'tokens: revoke', method: 'DELETE', path: `/admin/api/tokens/${newId('tok')}`, allowed: 404, roles: ['bootstrap', 'owner'] },
];
const principals: Principal[] = ['bootstrap', 'owner', 'catalog', 'fulfillment', 'readonly'];
const tokenOf = (p: Principal) => (p === 'bootstrap' ? bootstrap : tokens[p].token);

describe('roles: every admin sub-app checks the role (BFLA)', () => {
  it.each(matrix)('$name ($method) without a token is 401 with WWW-Authenticate', async (route) => {
    const res = await admin(route.path, route.method, route.body, null, route.headers);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer realm="pasar-admin"/);
    expect((await res.json<any>()).error.code).toBe('unauthorized');
  });

  it.each(matrix)('$name ($method) with an unknown or malformed token is 401', async (route) => {
    for (const token of [`pasar_o_${randomToken(20)}`, 'short', `${bootstrap}x`]) {
      const res = await admin(route.path, route.method, route.body, token, route.headers);
      expect(res.status, token).toBe(401);
    }
  });

  it.each(matrix)('$name ($method): allowed roles get through, every other role is 403 forbidden', async (route) => {
    for (const p of principals) {
      const res = await admin(route.path, route.method, route.body, tokenOf(p), route.headers);
      const body = await res.json<any>();
      if (route.roles.includes(p)) {
        expect(res.status, `${p}: ${JSON.stringify(body)}`).toBe(route.allowed);
      } else {
        expect(res.status, `${p}: ${JSON.stringify(body)}`).toBe(403);
        expect(body.error.code).toBe('forbidden');
      }
    }
  });

  it('refuses a role before reading the body: a readonly write with a bad body is 403, not 400', async () => {
    const res = await admin('/admin/api/products', 'POST', '{not json', tokens.readonly.token);
    expect(res.status).toBe(403);
  });
});

describe('OpenAPI', () => {
  it('documents the token routes as owner-only bearer routes, with the one-time token and last_owner', async () => {
    const doc = await (await call('/api/openapi.json')).json<any>();
    const create = doc.paths['/admin/api/tokens'].post;
    const list = doc.paths['/admin/api/tokens'].get;
    const revoke = doc.paths['/admin/api/tokens/{id}'].delete;
    for (const op of [create, list, revoke]) {
      expect(op.security).toEqual([{ adminToken: [] }]);
      expect(op.tags).toEqual(['Admin']);
      expect(op.summary).toMatch(/owner only/);
    }
    expect(Object.keys(create.responses)).toEqual(expect.arrayContaining(['201', '400', '401', '403', '413']));
    expect(doc.components.schemas.AdminTokenCreated.properties.token.description).toMatch(/only in this answer/);
    expect(doc.components.schemas.AdminToken.properties).not.toHaveProperty('tokenHash');
    expect(doc.components.schemas.AdminTokenCreate.additionalProperties).toBe(false);
    expect(revoke.responses['409'].description).toMatch(/last_owner/);
  });
});
