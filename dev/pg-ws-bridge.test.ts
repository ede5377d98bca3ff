import { neonConfig, Pool } from '@neondatabase/serverless';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { WebSocket } from 'ws';
import { startPgWsBridge, type PgWsBridge } from './pg-ws-bridge';

let bridge: PgWsBridge;
const databaseUrl = inject('databaseUrl');
const target = new URL(databaseUrl);

beforeAll(async () => {
  bridge = await startPgWsBridge({ allowedTargets: [`${target.hostname}:${target.port || 5432}`] });
  neonConfig.webSocketConstructor = WebSocket;
  neonConfig.wsProxy = (host, port) => `${bridge.wsProxy}?address=${host}:${port}`;
  neonConfig.useSecureWebSocket = false;
  neonConfig.pipelineConnect = false;
  neonConfig.pipelineTLS = false;
});
afterAll(async () => {
  await bridge.close();
});

describe('Postgres WebSocket bridge', () => {
  it('relays the Neon driver to Postgres and counts the queries it carries', async () => {
    const before = bridge.stats();
    const pool = new Pool({ connectionString: databaseUrl });
    const simple = await pool.query('select 1 as one');
    const extended = await pool.query('select $1::int + 1 as two', [1]);
    await pool.end();
    expect(simple.rows[0].one).toBe(1);
    expect(extended.rows[0].two).toBe(2);
    const after = bridge.stats();
    expect(after.connections - before.connections).toBe(1);
    expect(after.queries - before.queries).toBe(2);
  });

  it('refuses a target it was not started for, with a Postgres error', async () => {
    const pool = new Pool({ connectionString: 'postgres://postgres@127.0.0.1:1/elsewhere' });
    await expect(pool.query('select 1')).rejects.toThrow(/does not forward/);
    await pool.end().catch(() => {});
  });
});

describe('Postgres WebSocket bridge: limits and outages', () => {
  it('queues connections beyond its limit instead of refusing them', async () => {
    const small = await startPgWsBridge({ allowedTargets: [`${target.hostname}:${target.port || 5432}`], maxConnections: 2 });
    neonConfig.wsProxy = (host, port) => `${small.wsProxy}?address=${host}:${port}`;
    let peak = 0;
    const timer = setInterval(() => (peak = Math.max(peak, small.openConnections())), 5);
    try {
      const results = await Promise.all(
        Array.from({ length: 6 }, async () => {
          const pool = new Pool({ connectionString: databaseUrl, max: 1 });
          try {
            return (await pool.query('select pg_sleep(0.1), 1 as one')).rows[0].one;
          } finally {
            await pool.end();
          }
        }),
      );
      expect(results).toEqual([1, 1, 1, 1, 1, 1]);
      expect(peak).toBeLessThanOrEqual(2);
      expect(peak).toBeGreaterThan(0);
    } finally {
      clearInterval(timer);
      neonConfig.wsProxy = (host, port) => `${bridge.wsProxy}?address=${host}:${port}`;
      await small.close();
    }
  });

  it('refuses connections while paused and serves again after resume', async () => {
    bridge.pause();
    const down = new Pool({ connectionString: databaseUrl });
    await expect(down.query('select 1')).rejects.toThrow(/not accepting connections/);
    await down.end().catch(() => {});
    bridge.resume();
    const up = new Pool({ connectionString: databaseUrl });
    expect((await up.query('select 1 as one')).rows[0].one).toBe(1);
    await up.end();
  });
});
