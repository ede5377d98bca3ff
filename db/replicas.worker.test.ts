/**
 * Replica routing: parsing, lag measurement, order of preference, and the
 * read handle's fallbacks, against the machine's Postgres. The streaming
 * replica itself (delayed replay, stopped servers) is exercised in
 * test/faults/.
 */
import { env } from 'cloudflare:workers';
import { sql } from 'drizzle-orm';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createDatabase, currentLsn, type DatabaseClients } from './client';
import { ReplicaHealth, healthOf, parseLsn, parseReplicas, replicaOrder, resetReplicaHealth, serverUnavailable } from './replicas';

const policy = { maxLagMs: 5_000, retryMs: 10_000, probeIntervalMs: 1_000 };

describe('parseReplicas', () => {
  it('reads plain URLs separated by commas, semicolons and whitespace', () => {
    expect(parseReplicas(' postgres://a/x, postgres://b/x\npostgresql://c/x?sslmode=require ;').map((r) => [r.name, r.url, r.regions])).toEqual([
      ['replica-1', 'postgres://a/x', []],
      ['replica-2', 'postgres://b/x', []],
      ['replica-3', 'postgresql://c/x?sslmode=require', []],
    ]);
    expect(parseReplicas(undefined)).toEqual([]);
    expect(parseReplicas('')).toEqual([]);
  });

  it('reads the regions a replica is nearest to', () => {
    const parsed = parseReplicas('sg,my,id=postgres://u@sg/db; tw+ph=postgres://u@tw/db postgres://u@any/db');
    expect(parsed.map((r) => [r.url, r.regions])).toEqual([
      ['postgres://u@sg/db', ['sg', 'my', 'id']],
      ['postgres://u@tw/db', ['tw', 'ph']],
      ['postgres://u@any/db', []],
    ]);
  });
});

describe('LSNs', () => {
  it('compares positions across the high word', () => {
    expect(parseLsn('1/0') > parseLsn('0/FFFFFFFF')).toBe(true);
    expect(parseLsn('16/B374D848')).toBe((0x16n << 32n) | 0xb374d848n);
    expect(() => parseLsn('not/an-lsn')).toThrow(/not an LSN/);
    expect(() => parseLsn('nope')).toThrow(/not an LSN/);
  });
});

describe('ReplicaHealth', () => {
  it('takes the lag to be the age of the last applied commit while WAL waits, and 0 when nothing does', () => {
    const h = new ReplicaHealth();
    h.record(1_000, { replay: '0/100', receive: '0/100', replay_age_ms: 60_000 });
    expect(h.lagMs(1_000)).toBe(0);
    // WAL arrives and waits (a delayed or paused replay): never under-estimated.
    h.record(2_000, { replay: '0/100', receive: '0/200', replay_age_ms: 3_000 });
    expect(h.lagMs(2_000)).toBe(3_000);
    expect(h.lagMs(4_500)).toBe(5_500);
    h.record(5_000, { replay: '0/200', receive: '0/200', replay_age_ms: 2_000 });
    expect(h.lagMs(5_000)).toBe(0);
    // Waiting WAL and no commit applied yet: as far behind as can be.
    h.record(6_000, { replay: '0/200', receive: '0/300', replay_age_ms: null });
    expect(h.lagMs(6_000)).toBe(Number.POSITIVE_INFINITY);
  });

  it('keeps a standby that stopped receiving (its primary down) in service', () => {
    const h = new ReplicaHealth();
    h.record(0, { replay: '0/100', receive: null, replay_age_ms: 600_000 });
    expect(h.lagMs(0)).toBe(0);
  });

  it('serves a read that must see a write only once it has replayed that write', () => {
    const h = new ReplicaHealth();
    h.record(0, { replay: '0/100', receive: '0/180' });
    expect(h.hasReplayed(parseLsn('0/100'))).toBe(true);
    expect(h.hasReplayed(parseLsn('0/101'))).toBe(false);
    expect(h.needsProbe(10, policy, parseLsn('0/101'))).toBe(true);
    expect(h.needsProbe(10, policy, parseLsn('0/100'))).toBe(false);
    expect(h.needsProbe(1_000, policy, undefined)).toBe(true);
  });

  it('never lets a server that is not a standby serve a read-your-writes read', () => {
    const h = new ReplicaHealth();
    h.record(0, { replay: null, receive: null });
    expect(h.hasReplayed(0n)).toBe(false);
  });

  it('skips a replica for the retry interval, then lets it be tried again', () => {
    const h = new ReplicaHealth();
    h.skip(1_000, 10_000, 'error');
    expect(h.usable(5_000)).toBe(false);
    expect(h.skipped(5_000)).toBe('error');
    expect(h.usable(11_000)).toBe(true);
    expect(h.needsProbe(11_000, policy, undefined)).toBe(true);
  });
});

describe('replicaOrder', () => {
  beforeEach(() => resetReplicaHealth());

  it('puts the region\'s own replica first and rotates over all of them for other regions', () => {
    const replicas = parseReplicas('sg,my=postgres://sg/db postgres://a/db postgres://b/db');
    expect(replicaOrder(replicas, 'my', 0)[0]!.url).toBe('postgres://sg/db');
    const firsts = new Set([0, 1, 2, 3].map(() => replicaOrder(replicas, 'tw', 0)[0]!.url));
    expect(firsts).toEqual(new Set(['postgres://sg/db', 'postgres://a/db', 'postgres://b/db']));
  });

  it('leaves out skipped replicas', () => {
    const replicas = parseReplicas('sg=postgres://sg/db postgres://a/db');
    healthOf('postgres://sg/db').skip(Date.now(), 60_000, 'error');
    expect(replicaOrder(replicas, 'sg', Date.now()).map((r) => r.url)).toEqual(['postgres://a/db']);
  });
});

describe('serverUnavailable', () => {
  const pgError = (code: string) => Object.assign(new Error('pg'), { code });

  it('is true for outages and false for errors the primary would give too', () => {
    expect(serverUnavailable(new Error('Connection terminated unexpectedly'))).toBe(true);
    expect(serverUnavailable(pgError('57P01'))).toBe(true);
    expect(serverUnavailable(pgError('08006'))).toBe(true);
    expect(serverUnavailable(pgError('40001'))).toBe(true);
    expect(serverUnavailable(new Error('wrapped', { cause: pgError('57P03') }))).toBe(true);
    expect(serverUnavailable(pgError('42P01'))).toBe(false);
    expect(serverUnavailable(pgError('23505'))).toBe(false);
  });
});

describe('the read handle', () => {
  let clients: DatabaseClients | undefined;
  beforeEach(() => resetReplicaHealth());
  afterEach(async () => {
    await clients?.close();
    clients = undefined;
  });

  it('answers from the primary when the replica cannot be reached, and skips it afterwards', async () => {
    // The bridge refuses this target: to the Worker, a replica that is down.
    const down = 'postgres://postgres@10.255.255.1:5432/replica';
    clients = createDatabase({ ...env, DATABASE_REPLICA_URLS: down });
    const { rows } = await clients.read.execute<{ one: number }>(sql`select 1 as one`);
    expect(rows[0]!.one).toBe(1);
    expect(clients.readSource()).toMatchObject({ server: 'primary', why: 'replica-1 failed' });
    expect(healthOf(down).usable(Date.now())).toBe(false);
  });

  it('keeps a query error a query error: the primary is not asked to fail it again', async () => {
    clients = createDatabase({ ...env, DATABASE_REPLICA_URLS: env.DATABASE_URL });
    await expect(clients.read.execute(sql`select * from no_such_table`)).rejects.toThrow();
    expect(clients.readSource()).toMatchObject({ server: 'replica-1' });
  });

  it('sends a read that must see a write to the primary when the replica cannot prove it has it', async () => {
    // The primary listed as a replica is no standby: it cannot report replay.
    const plain = createDatabase(env);
    const lsn = await currentLsn(plain.primary);
    await plain.close();
    clients = createDatabase({ ...env, DATABASE_REPLICA_URLS: env.DATABASE_URL }, { readAfter: async () => lsn });
    await clients.read.execute(sql`select 1`);
    expect(clients.readSource()).toEqual({ server: 'primary', why: 'read-your-writes' });
  });

  it('prefers the replica for reads with nothing to wait for', async () => {
    clients = createDatabase({ ...env, DATABASE_REPLICA_URLS: env.DATABASE_URL }, { readAfter: async () => undefined });
    await clients.read.execute(sql`select 1`);
    expect(clients.readSource()).toEqual({ server: 'replica-1' });
  });
});
