/**
 * `npm run dev` end to end: the one command a new developer runs must bring
 * up a working store, with embedded PGlite and with a real Postgres, and
 * Ctrl-C must leave nothing running.
 */
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { dropDatabaseOn } from '../../dev/postgres';
import { isListening } from '../../dev/processes';
import { running, startStack, stopStack } from '../stack';

const adminUrl = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

afterEach(async () => {
  for (const r of running.splice(0)) {
    await stopStack(r);
    rmSync(r.dataDir, { recursive: true, force: true });
  }
});

async function expectServing(port: number) {
  const health = await fetch(`http://127.0.0.1:${port}/api/health`);
  const body = (await health.json()) as { ok: boolean; checks: Record<string, string> };
  expect(health.status, JSON.stringify(body)).toBe(200);
  expect(body.checks).toEqual({ postgres: 'up', redis: 'up', kv: 'up' });
  const regions = await fetch(`http://127.0.0.1:${port}/api/regions`);
  expect(((await regions.json()) as { items: unknown[] }).items).toHaveLength(7);
}

/** Register, sign in over real HTTP through wrangler dev, use the cookie; and the stack's RATE_LIMITS reached the Worker. */
async function expectAccounts(port: number) {
  const base = `http://127.0.0.1:${port}`;
  const post = (path: string, body: unknown) => fetch(base + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const shopper = { email: `stack.${randomBytes(4).toString('hex')}@example.com`, password: 'kopi-kaya-toast', name: 'Stack Test' };
  expect((await post('/api/auth/register', shopper)).status).toBe(201);
  expect((await post('/api/auth/register', { ...shopper, email: `second.${shopper.email}` })).status).toBe(429);
  const login = await post('/api/auth/login', { email: shopper.email, password: shopper.password });
  expect(login.status).toBe(200);
  const cookie = login.headers.getSetCookie().find((c) => c.startsWith('__Host-pasar_session='))!;
  expect(cookie).toMatch(/HttpOnly/);
  const me = await fetch(`${base}/api/me`, { headers: { cookie: cookie.split(';')[0]! } });
  expect(me.status).toBe(200);
  expect(((await me.json()) as { email: string }).email).toBe(shopper.email);
}

describe('npm run dev', () => {
  it('serves a healthy store on embedded PGlite and stops everything on Ctrl-C', async () => {
    const r = await startStack({ DATABASE_URL: '', REDIS_URL: '' });
    expect(r.output()).toContain('PGlite');
    expect(r.output()).toMatch(/seeded the catalog/);
    await expectServing(r.port);
    expect(await stopStack(r)).toBe(0);
    for (const p of [r.port, ...r.ports]) expect(await isListening('127.0.0.1', p)).toBe(false);
  }, 240_000);

  it('serves a healthy store on a real Postgres named by DATABASE_URL, creating the database', async () => {
    const name = `pasar_stack_${randomBytes(5).toString('hex')}`;
    const url = new URL(adminUrl);
    url.pathname = `/${name}`;
    try {
      const r = await startStack({
        DATABASE_URL: url.toString(),
        REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
        // Passed through to the Worker as a wrangler var: one sign-up per
        // address per (about an) hour. The window is this run's own: counters
        // live in the machine's Redis, which every run shares, and a limiter's
        // keys are named by its figures.
        RATE_LIMITS: `on; register_ip=1/${3_000 + Math.floor(Math.random() * 1_000)}s`,
      });
      expect(r.output()).toContain(`created database ${name}`);
      await expectServing(r.port);
      await expectAccounts(r.port);
      expect(await stopStack(r)).toBe(0);
    } finally {
      await dropDatabaseOn(adminUrl, name);
    }
  }, 240_000);
});
