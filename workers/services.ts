/**
 * Per-request services: the origin database and Redis, built once for the
 * request on first use and torn down after the response.
 */
import { Redis } from '@upstash/redis/cloudflare';
import type { MiddlewareHandler } from 'hono';
import { createDatabase, type DatabaseClients, type ReadOptions } from '../db/client';
import { afterResponse } from './lib/context';
import { readAfter } from './lib/read-your-writes';
import type { AppEnv } from './types';

/** Lazily built clients for one request. */
export interface Services {
  /** Postgres: `primary` for writes, `read` for replica-eligible reads. */
  readonly db: DatabaseClients;
  /** Redis over Upstash REST. */
  readonly redis: Redis;
  /** Which Postgres server answered this request's reads, if any did (see {@link DatabaseClients.readSource}). */
  readSource(): { server: string; why?: string } | undefined;
  /** Releases what was opened; safe when nothing was. */
  close(): Promise<void>;
}

/**
 * Builds {@link Services} for an environment; clients are created on first
 * access. `readOptions` is asked then too, so the region and the shopper's
 * read-your-writes position are those the request has by that time.
 */
export function createServices(env: Env, readOptions: () => ReadOptions = () => ({})): Services {
  let db: DatabaseClients | undefined;
  let redis: Redis | undefined;
  return {
    get db() {
      db ??= createDatabase(env, readOptions());
      return db;
    },
    readSource: () => db?.readSource(),
    get redis() {
      redis ??= new Redis({
        url: env.UPSTASH_REDIS_REST_URL,
        token: env.UPSTASH_REDIS_REST_TOKEN,
        // The edge answers fast or says 503; the client's default of five
        // retries with backoff would turn a Redis outage into slow requests.
        retry: { retries: 1, backoff: () => 50 },
        enableTelemetry: false,
      });
      return redis;
    },
    close: async () => {
      await db?.close();
    },
  };
}

/**
 * Middleware: puts a {@link Services} on `c.var.services` and closes it once
 * the response is out (in `waitUntil`, so closing never delays the answer).
 * Reads are routed for the request's region and the shopper's last write;
 * the server that answered them is named in `Server-Timing` (`db;desc=`).
 */
export function services(): MiddlewareHandler<AppEnv> {
  return async function services(c, next) {
    const s = createServices(c.env, () => ({ region: c.get('region')?.code, readAfter: () => readAfter(c) }));
    c.set('services', s);
    try {
      await next();
      const source = s.readSource();
      if (source) c.header('Server-Timing', `db;desc="${source.why ? `${source.server} (${source.why})` : source.server}"`, { append: true });
    } finally {
      await afterResponse(c, s.close());
    }
  };
}
