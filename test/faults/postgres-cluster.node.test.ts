import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseLsn } from '../../db/replicas';
import { currentLsn, pauseReplay, replayLsn, resumeReplay, startPrimary, startReplica, waitForReplay, type PgCluster } from './postgres-cluster';

const APPLY_DELAY_MS = 1_500;
let primary: PgCluster | undefined;
let replica: PgCluster | undefined;

beforeAll(async () => {
  primary = await startPrimary();
  replica = await startReplica(primary, { applyDelayMs: APPLY_DELAY_MS });
});

afterAll(async () => {
  await Promise.allSettled([replica?.destroy(), primary?.destroy()]);
});

/** Runs one statement on a fresh connection. */
async function query<R extends pg.QueryResultRow>(url: string, sql: string, params: unknown[] = []): Promise<R[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<R>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

/** The ids in the test table, as the cluster at `url` sees them. */
async function ids(url: string): Promise<number[]> {
  return (await query<{ id: number }>(url, 'select id from items order by id')).map((r) => r.id);
}

/** The two clusters, which beforeAll started. */
function clusters(): { primary: PgCluster; replica: PgCluster } {
  if (!primary || !replica) throw new Error('clusters did not start');
  return { primary, replica };
}

describe('private primary + delayed hot standby', () => {
  it('starts a primary and a standby in recovery', async () => {
    const { primary, replica } = clusters();
    expect(primary.running() && replica.running()).toBe(true);
    expect(await query(primary.url(), 'select pg_is_in_recovery() as r')).toEqual([{ r: false }]);
    expect(await query(replica.url(), 'select pg_is_in_recovery() as r')).toEqual([{ r: true }]);
  });

  it('applies a commit on the standby only after the apply delay', async () => {
    const { primary, replica } = clusters();
    await query(primary.url(), 'create table items (id int primary key)');
    await waitForReplay(primary.url(), replica.url(), 10_000);

    await query(primary.url(), 'insert into items values (1)');
    const committed = Date.now();
    expect(await ids(replica.url())).toEqual([]);
    await waitForReplay(primary.url(), replica.url(), 10_000);
    // The delay runs from the commit time; allow for clock granularity.
    expect(Date.now() - committed).toBeGreaterThanOrEqual(APPLY_DELAY_MS - 500);
    expect(await ids(replica.url())).toEqual([1]);
  });

  it('keeps streaming after the primary stops and starts again', async () => {
    const { primary, replica } = clusters();
    for (let round = 0; round < 2; round++) {
      await primary.stop('fast');
      expect(primary.running()).toBe(false);
      // A standby without its primary still serves reads.
      expect(await ids(replica.url())).toEqual([1]);
      await primary.start();
    }
    await query(primary.url(), 'insert into items values (2)');
    await waitForReplay(primary.url(), replica.url(), 15_000);
    expect(await ids(replica.url())).toEqual([1, 2]);
  });

  it('recovers from an immediate (crash) stop', async () => {
    const { primary, replica } = clusters();
    await query(primary.url(), 'insert into items values (3)');
    await primary.stop('immediate');
    await primary.start();
    expect(await ids(primary.url())).toEqual([1, 2, 3]);
    await waitForReplay(primary.url(), replica.url(), 15_000);
    expect(await ids(replica.url())).toEqual([1, 2, 3]);
  });

  it('pauses and resumes replay', async () => {
    const { primary, replica } = clusters();
    await pauseReplay(replica.url());
    try {
      await query(primary.url(), 'insert into items values (4)');
      const target = parseLsn(await currentLsn(primary.url()));
      await new Promise((r) => setTimeout(r, APPLY_DELAY_MS + 500));
      expect(parseLsn((await replayLsn(replica.url())) ?? '0/0')).toBeLessThan(target);
      expect(await ids(replica.url())).toEqual([1, 2, 3]);
    } finally {
      await resumeReplay(replica.url());
    }
    await waitForReplay(primary.url(), replica.url(), 10_000);
    expect(await ids(replica.url())).toEqual([1, 2, 3, 4]);
  });
});
