/**
 * Local Postgres for the dev stack and tests: either a server named by URL
 * (the machine's Postgres, CI's) or PGlite embedded in this process and
 * served over TCP by pglite-socket, so a laptop with no Postgres installed
 * still runs the whole stack.
 */
import { mkdirSync } from 'node:fs';
import pg from 'pg';

/** A Postgres the stack can connect to over TCP. */
export interface LocalPostgres {
  /** Connection string for TCP clients (migrations, seed, the WS bridge's target). */
  url: string;
  /** `host:port` the WebSocket bridge must be allowed to reach. */
  target: string;
  kind: 'server' | 'pglite';
  stop(): Promise<void>;
}

/** Wraps an existing server named by `databaseUrl`; checks it answers. */
export async function useServer(databaseUrl: string): Promise<LocalPostgres> {
  const client = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 5_000 });
  await client.connect();
  await client.query('select 1');
  await client.end();
  const u = new URL(databaseUrl);
  return { url: databaseUrl, target: `${u.hostname}:${u.port || '5432'}`, kind: 'server', stop: async () => {} };
}

/**
 * Starts PGlite with its data in `dataDir` (or in memory when `dataDir` is
 * 'memory://') and serves it on 127.0.0.1:`port` (0 = any free port).
 * `withTrigram: false` leaves pg_trgm out, as on a Postgres without contrib.
 */
export async function startPglite(dataDir: string, port = 0, maxConnections = 16, withTrigram = true): Promise<LocalPostgres> {
  const { PGlite } = await import('@electric-sql/pglite');
  const { PGLiteSocketServer } = await import('@electric-sql/pglite-socket');
  // pg_trgm gives search its typo tolerance, as on Neon and Postgres with contrib.
  const { pg_trgm } = await import('@electric-sql/pglite/contrib/pg_trgm');
  if (!dataDir.startsWith('memory://')) mkdirSync(dataDir, { recursive: true });
  const db = await PGlite.create(dataDir, withTrigram ? { extensions: { pg_trgm } } : {});
  const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port, maxConnections });
  await server.start();
  const address = server.getServerConn();
  const actualPort = Number(address.split(':').pop());
  return {
    url: `postgres://postgres@127.0.0.1:${actualPort}/postgres`,
    target: `127.0.0.1:${actualPort}`,
    kind: 'pglite',
    stop: async () => {
      await server.stop();
      await db.close();
    },
  };
}

/** Creates database `name` through the server at `adminUrl`; returns its URL. */
export async function createDatabaseOn(adminUrl: string, name: string): Promise<string> {
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`unsafe database name ${name}`);
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(`create database ${name}`);
  } finally {
    await client.end();
  }
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  return u.toString();
}

/** Drops database `name`, disconnecting whoever is still on it. */
export async function dropDatabaseOn(adminUrl: string, name: string): Promise<void> {
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`unsafe database name ${name}`);
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(`drop database if exists ${name} with (force)`);
  } finally {
    await client.end();
  }
}
