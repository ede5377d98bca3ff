/**
 * The origin side of a bench run, as the tests bring it up
 * (test/global-setup.ts): a fresh Postgres database on the machine's server,
 * migrated and seeded, dev/'s Neon WebSocket bridge in front of it (which
 * counts the queries it relays), and dev/'s Upstash REST bridge in front of
 * the machine's Redis.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { runMigrations } from '../../db/migrate';
import { seedDatabase } from '../../db/seed';
import { startPgWsBridge, type PgWsBridge } from '../../dev/pg-ws-bridge';
import { createDatabaseOn, dropDatabaseOn } from '../../dev/postgres';
import { startUpstashBridge, type UpstashBridge } from '../../dev/upstash-bridge';
import { startPooler } from './pooler';
import type { Cleanup } from './cleanup';

export interface Origin {
  /** The database itself (migrations, seed, checks, the Node baseline). */
  databaseUrl: string;
  /** What the Worker's `DATABASE_URL` is: the same database through PgBouncer, as on Neon's pooled endpoint (or `databaseUrl` with `BENCH_POOLER=none`). */
  workerDatabaseUrl: string;
  /** Which pooler ran, for the report. */
  pooler: string;
  /** What was used: "fresh database pasar_bench_…" or "BENCH_DATABASE_URL". */
  databaseLabel: string;
  postgresVersion: string;
  maxConnections: number;
  pgBridge: PgWsBridge;
  redisUrl: string;
  upstash: UpstashBridge;
  upstashToken: string;
}

/** Starts the origin; every piece registers its own teardown on `cleanup` as soon as it exists. */
export async function startOrigin(cleanup: Cleanup, log: (m: string) => void): Promise<Origin> {
  const redisUrl = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
  let databaseUrl: string;
  let databaseLabel: string;
  const started = Date.now();
  if (process.env.BENCH_DATABASE_URL) {
    // A database someone else owns: migrate, seed only if empty, never drop.
    databaseUrl = process.env.BENCH_DATABASE_URL;
    databaseLabel = 'BENCH_DATABASE_URL';
    await runMigrations(databaseUrl);
    const seeded = await seedDatabase(databaseUrl, { ifEmpty: true });
    log(`database from BENCH_DATABASE_URL${seeded.inserted ? ', seeded' : ' (already seeded; it must hold the standard seed catalog)'}`);
  } else {
    const adminUrl = process.env.BENCH_POSTGRES_URL || 'postgres://postgres@127.0.0.1:5432/postgres';
    const dbName = `pasar_bench_${randomBytes(6).toString('hex')}`;
    databaseUrl = await createDatabaseOn(adminUrl, dbName);
    cleanup.add(`drop database ${dbName}`, () => dropDatabaseOn(adminUrl, dbName));
    databaseLabel = `fresh database ${dbName}`;
    await runMigrations(databaseUrl);
    await seedDatabase(databaseUrl);
    log(`created, migrated and seeded ${dbName} in ${Date.now() - started} ms`);
  }

  const client = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 5_000 });
  await client.connect();
  let postgresVersion = 'unknown';
  let maxConnections = 0;
  try {
    const { rows } = await client.query<{ v: string; m: string }>(
      "select current_setting('server_version') as v, current_setting('max_connections') as m",
    );
    postgresVersion = rows[0]?.v ?? 'unknown';
    maxConnections = Number(rows[0]?.m ?? 0);
  } finally {
    await client.end();
  }

  const target = new URL(databaseUrl);
  let workerDatabaseUrl = databaseUrl;
  let pooler = 'none (BENCH_POOLER=none): a Postgres backend per Worker request';
  if (process.env.BENCH_POOLER !== 'none') {
    const p = await startPooler({ host: target.hostname, port: Number(target.port || 5432) }, log);
    cleanup.add('PgBouncer', () => p.stop());
    const pooled = new URL(databaseUrl);
    pooled.host = p.address;
    workerDatabaseUrl = pooled.toString();
    pooler = p.label;
    log(`pooler: ${p.label} on ${p.address}`);
  }
  const pgBridge = await startPgWsBridge({ allowedTargets: [new URL(workerDatabaseUrl).host] });
  cleanup.add('Neon WebSocket bridge', () => pgBridge.close());
  const upstashToken = randomBytes(16).toString('hex');
  const upstash = await startUpstashBridge({ redisUrl, token: upstashToken });
  cleanup.add('Upstash REST bridge', () => upstash.close());

  return { databaseUrl, workerDatabaseUrl, pooler, databaseLabel, postgresVersion, maxConnections, pgBridge, redisUrl, upstash, upstashToken };
}
