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
 * Pools are built per request and ended with `close()` (via `waitUntil`):
 * Workers may not share I/O objects such as sockets between requests.
 */
import { Pool, neonConfig } from '@neondatabase/serverless';
import { drizzle, type NeonDatabase } from 'drizzle-orm/neon-serverless';
import * as schema from './schema';

/** A drizzle database bound to the schema. */
export type Database = NeonDatabase<typeof schema>;

/** The configuration the client reads from the Worker's environment. */
export interface DatabaseConfig {
  /** Primary: every write and every transaction. */
  DATABASE_URL: string;
  /** Comma-separated read replica URLs (optional). */
  DATABASE_REPLICA_URLS?: string;
  /** Local only: `host:port/path` of the WebSocket bridge (no scheme). */
  NEON_WS_PROXY?: string;
}

/** Primary and read handles for one request. */
export interface DatabaseClients {
  /** Writes, transactions, and reads that must see the caller's own writes. */
  primary: Database;
  /** Reads that may be served by a replica (falls back to the primary). */
  read: Database;
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

/** Splits `DATABASE_REPLICA_URLS` (comma or whitespace separated). */
export function parseReplicaUrls(value: string | undefined): string[] {
  return (value ?? '')
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter(Boolean);
}

/**
 * Builds the clients for one request. Nothing connects until the first
 * query, so a request that never touches the origin costs nothing.
 */
export function createDatabase(config: DatabaseConfig): DatabaseClients {
  configureDriver(config.NEON_WS_PROXY);
  const pools: Pool[] = [];
  const open = (connectionString: string): Database => {
    const pool = new Pool({ connectionString, max: 4, connectionTimeoutMillis: 5_000 });
    // An idle client that loses its socket emits 'error' on the pool; without
    // a listener that would be an uncaught exception in the isolate.
    pool.on('error', () => {});
    pools.push(pool);
    return drizzle({ client: pool, schema });
  };
  const primary = open(config.DATABASE_URL);
  // Replica routing (nearest, read-your-writes, circuit breaking) builds on
  // this: for now the first configured replica serves reads.
  const [replicaUrl] = parseReplicaUrls(config.DATABASE_REPLICA_URLS);
  const read = replicaUrl ? open(replicaUrl) : primary;
  return {
    primary,
    read,
    close: async () => {
      await Promise.allSettled(pools.map((p) => p.end()));
    },
  };
}
