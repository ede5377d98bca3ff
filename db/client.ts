/**
 * The Worker's database client: drizzle over the Neon serverless driver, for
 * the primary and for read replicas.
 *
 * There is one code path. Deployed, the driver opens secure WebSockets to
 * Neon's proxy. Locally and in tests `NEON_WS_PROXY` names dev/'s
 * WebSocket-to-TCP bridge (plain `ws://`, no TLS inside), which forwards to
 * local Postgres or PGlite: the same driver, the same SQL, the same
 * transactions.
 *
 * Reads that may be served by a replica go through `read`, which routes
 * them (nearest replica, read-your-writes, circuit breaker: db/replicas.ts);
 * writes and transactions go through `primary`.
 *
 * Pools are built per request and ended with `close()` (via `waitUntil`):
 * Workers may not share I/O objects such as sockets between requests.
 */
import { Pool, neonConfig } from '@neondatabase/serverless';
import { drizzle, type NeonDatabase } from 'drizzle-orm/neon-serverless';
import { sql } from 'drizzle-orm';
import {
  PROBE_SQL,
  healthOf,
  isLsn,
  parseLsn,
  parseReplicas,
  replicaOrder,
  replicaPolicy,
  serverUnavailable,
  type ProbeReading,
  type ReplicaConfig,
  type ReplicaPolicy,
} from './replicas';
import * as schema from './schema';

/** A drizzle database bound to the schema. */
export type Database = NeonDatabase<typeof schema>;

/** The configuration the client reads from the Worker's environment. */
export interface DatabaseConfig {
  /** Primary: every write and every transaction. */
  DATABASE_URL: string;
  /** Read replica URLs, optionally labelled with their regions (see {@link parseReplicas}). */
  DATABASE_REPLICA_URLS?: string;
  /** Local only: `host:port/path` of the WebSocket bridge (no scheme). */
  NEON_WS_PROXY?: string;
  /** Lag bound in ms (default 10,000): see {@link ReplicaPolicy}. */
  REPLICA_MAX_LAG_MS?: string;
  /** How long a failed replica is skipped, in ms (default 15,000). */
  REPLICA_RETRY_MS?: string;
}

/** How one request's reads are routed. */
export interface ReadOptions {
  /** The request's region: its nearest replica serves its reads. */
  region?: string;
  /**
   * The WAL position the request must see (its shopper's last write), if
   * any; asked once, on the first read. Reads are served by a replica only
   * once it has replayed that far, else by the primary.
   */
  readAfter?: () => Promise<string | undefined>;
}

/** Primary and read handles for one request. */
export interface DatabaseClients {
  /** Writes, transactions, and reads that must see the latest data whatever the shopper did. */
  primary: Database;
  /**
   * Reads that may be served by a replica: the nearest healthy one that has
   * replayed the request's own writes, else the primary. Never for
   * transactions.
   */
  read: Database;
  /**
   * Looks a row up on `read`; when a replica found nothing, asks the
   * primary, which may hold a row the replica has not replayed yet. Returns
   * the handle that answered, for follow-up reads that must be as fresh.
   */
  lookup<T>(query: (db: Database) => Promise<T | undefined>): Promise<{ row: T | undefined; db: Database }>;
  /** Which server answered this request's reads (`primary`, `replica-1`), once one has; and why not a replica. */
  readSource(): { server: string; why?: string } | undefined;
  /** Ends every pool opened for this request. */
  close(): Promise<void>;
}

/**
 * Points the Neon driver at the local bridge when one is configured. The
 * settings are global to the isolate, and every request of a given
 * deployment carries the same value, so setting them per request is safe.
 */
function configureDriver(wsProxy: string | undefined): void {
  if (!wsProxy) return;
  neonConfig.wsProxy = (host, port) => `${wsProxy}?address=${host}:${port}`;
  neonConfig.useSecureWebSocket = false;
  // Pipelining the startup and TLS handshakes is a Neon-proxy feature; a
  // plain Postgres behind the bridge needs the ordinary message sequence.
  neonConfig.pipelineConnect = false;
  neonConfig.pipelineTLS = false;
}

/** The part of a pg-style client drizzle's Neon session calls for plain queries. */
type Queryable = Pick<Pool, 'query'>;

/**
 * The client behind `read`: decides on its first query which server serves
 * the request (see db/replicas.ts), then sends every read there. A replica
 * that fails mid-request is skipped and the read is answered by the primary.
 */
/** Where a request's reads go. */
type ReadTarget = { name: string; pool: Pool; replica?: ReplicaConfig; why?: string };

class ReadRouter {
  private decision: Promise<ReadTarget> | undefined;
  source: { server: string; why?: string } | undefined;

  constructor(
    private readonly primary: Pool,
    private readonly replicas: ReplicaConfig[],
    private readonly policy: ReplicaPolicy,
    private readonly options: ReadOptions,
    private readonly openReplica: (url: string) => Pool,
  ) {}

  /** Same signature as `Pool.query`, which is all drizzle calls. */
  query = (async (config: unknown, values?: unknown) => {
    // Whatever goes wrong while choosing, the primary can still answer.
    const target = await (this.decision ??= this.decide().catch((err: unknown) => {
      console.warn(JSON.stringify({ level: 'warn', dependency: 'Postgres replica', event: 'routing_failed', error: errorText(err) }));
      return this.toPrimary('replica routing failed');
    }));
    const q = (pool: Pool) => (pool.query as (c: unknown, v?: unknown) => Promise<unknown>)(config, values);
    if (!target.replica) return q(target.pool);
    try {
      return await q(target.pool);
    } catch (err) {
      // The query itself is wrong: the primary would refuse it the same way.
      if (queryRefused(err)) throw err;
      // Only an outage opens the breaker. A slow query, or a replica's own
      // hiccup (a statement timeout, an internal error), is answered by the
      // primary this once and leaves the replica in service for the next.
      if (serverUnavailable(err) && !queryTimedOut(err)) skipReplica(target.replica, this.policy, `error: ${errorText(err)}`);
      this.decision = Promise.resolve(this.toPrimary(`${target.name} failed`));
      return q(this.primary);
    }
  }) as unknown as Pool['query'];

  /** Sends this request's reads to the primary from now on, saying why. */
  toPrimary(why: string): ReadTarget {
    this.source = { server: 'primary', why };
    return { name: 'primary', pool: this.primary, why };
  }

  private async decide(): Promise<ReadTarget> {
    if (!this.replicas.length) return this.toPrimary('no replicas');
    const wanted = await this.options.readAfter?.();
    const minLsn = wanted && isLsn(wanted) ? parseLsn(wanted) : undefined;
    const order = replicaOrder(this.replicas, this.options.region, Date.now());
    if (!order.length) return this.toPrimary('replicas skipped');
    let why = 'replicas skipped';
    for (const replica of order) {
      const h = healthOf(replica.url);
      const pool = this.openReplica(replica.url);
      const verdict = h.needsProbe(Date.now(), this.policy, minLsn) ? await probeReplica(pool, replica, this.policy) : 'up';
      // The shopper's own write not replayed yet says the most about why the
      // primary answers (a lagging replica usually has not replayed it either).
      if (verdict !== 'down' && minLsn !== undefined && !h.hasReplayed(minLsn)) {
        why = 'read-your-writes';
        continue;
      }
      if (verdict !== 'up') {
        why = `${replica.name} ${verdict === 'down' ? 'failed' : 'lagging'}`;
        continue;
      }
      this.source = { server: replica.name };
      return { name: replica.name, pool, replica };
    }
    return this.toPrimary(why);
  }
}

/** Opens the breaker of `replica` and says so in the logs. */
function skipReplica(replica: ReplicaConfig, policy: ReplicaPolicy, reason: string): void {
  healthOf(replica.url).skip(Date.now(), policy.retryMs, reason);
  console.warn(JSON.stringify({ level: 'warn', dependency: 'Postgres replica', replica: replica.name, skippedForMs: policy.retryMs, reason }));
}

/**
 * Reads a replica's replay position into this isolate's health record and
 * judges it: `down` (no answer, or any error: skipped), `lagging` (beyond
 * the bound: skipped) or `up`.
 */
async function probeReplica(pool: Pool, replica: ReplicaConfig, policy: ReplicaPolicy): Promise<'up' | 'lagging' | 'down'> {
  const h = healthOf(replica.url);
  try {
    const { rows } = await pool.query<ProbeReading>(PROBE_SQL);
    h.record(Date.now(), rows[0] ?? { replay: null, receive: null });
  } catch (err) {
    // The probe is fixed SQL: whatever its error, this replica cannot serve now.
    skipReplica(replica, policy, `error: ${errorText(err)}`);
    return 'down';
  }
  const lag = h.lagMs(Date.now());
  if (lag <= policy.maxLagMs) return 'up';
  skipReplica(replica, policy, `lagging ${lag} ms`);
  return 'lagging';
}

/** One replica as the health check reports it. */
export interface ReplicaStatus {
  name: string;
  /** `up`; `lagging` or `down` (its reads go to the primary for a while). */
  state: 'up' | 'lagging' | 'down';
  /** Measured lag in this isolate, in ms. */
  lagMs: number;
}

/** Probes every configured replica now, for the health check; never throws for an outage. */
export async function replicaStatus(config: DatabaseConfig): Promise<ReplicaStatus[]> {
  const replicas = parseReplicas(config.DATABASE_REPLICA_URLS);
  if (!replicas.length) return [];
  configureDriver(config.NEON_WS_PROXY);
  const policy = replicaPolicy(config);
  const pools = replicas.map((r) => replicaPool(r.url));
  try {
    return await Promise.all(
      replicas.map(async (replica, i) => {
        const state = await probeReplica(pools[i]!, replica, policy).catch(() => 'down' as const);
        return { name: replica.name, state, lagMs: healthOf(replica.url).lagMs(Date.now()) };
      }),
    );
  } finally {
    await Promise.allSettled(pools.map((p) => p.end()));
  }
}

/**
 * A pool for one request. A replica that does not answer quickly is
 * skipped for the primary; the primary itself gets the patience of the
 * only copy.
 */
function newPool(connectionString: string, replica: boolean): Pool {
  const p = new Pool({
    connectionString,
    max: 4,
    connectionTimeoutMillis: replica ? 2_000 : 5_000,
    ...(replica ? { query_timeout: 5_000 } : {}),
  });
  // An idle client that loses its socket emits 'error' on the pool; without
  // a listener that would be an uncaught exception in the isolate.
  p.on('error', () => {});
  return p;
}

const replicaPool = (url: string) => newPool(url, true);

/** SQLSTATE classes 22 (data), 23 (integrity), 42 (syntax, missing objects): deterministic refusals. */
function queryRefused(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return /^(22|23|42)/.test(code);
  }
  return false;
}

/** The driver's own `query_timeout` (no SQLSTATE: the server never answered in time). */
function queryTimedOut(err: unknown): boolean {
  return err instanceof Error && /query read timeout/i.test(err.message);
}

function errorText(err: unknown): string {
  return String(err instanceof Error ? err.message : err).slice(0, 200);
}

/**
 * Builds the clients for one request. Nothing connects until the first
 * query, so a request that never touches the origin costs nothing.
 */
export function createDatabase(config: DatabaseConfig, options: ReadOptions = {}): DatabaseClients {
  configureDriver(config.NEON_WS_PROXY);
  const pools: Pool[] = [];
  const pool = (connectionString: string, replica: boolean): Pool => {
    const p = newPool(connectionString, replica);
    pools.push(p);
    return p;
  };
  const primaryPool = pool(config.DATABASE_URL, false);
  const primary = drizzle({ client: primaryPool, schema });
  const replicas = parseReplicas(config.DATABASE_REPLICA_URLS);
  const opened = new Map<string, Pool>();
  const router = replicas.length
    ? new ReadRouter(primaryPool, replicas, replicaPolicy(config), options, (url) => {
        let p = opened.get(url);
        if (!p) opened.set(url, (p = pool(url, true)));
        return p;
      })
    : undefined;
  const read = router ? drizzle({ client: router as Queryable as Pool, schema }) : primary;
  return {
    primary,
    read,
    lookup: async (query) => {
      const row = await query(read);
      if (row !== undefined || !router || router.source?.server === 'primary') return { row, db: read };
      router.toPrimary('not on the replica yet');
      return { row: await query(primary), db: primary };
    },
    readSource: () => router?.source,
    close: async () => {
      await Promise.allSettled(pools.map((p) => p.end()));
    },
  };
}

/**
 * The primary's current WAL position, read after a commit: a replica that
 * has replayed this far has that commit. What read-your-writes pins a
 * shopper's reads to.
 */
export async function currentLsn(db: Database): Promise<string> {
  // The insert position, not the flushed one: past the commit record even
  // where commits are asynchronous (synchronous_commit = off).
  const { rows } = await db.execute<{ lsn: string }>(sql`select pg_current_wal_insert_lsn()::text as lsn`);
  return rows[0]!.lsn;
}
