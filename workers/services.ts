/**
 * Per-request services: the origin database and Redis, built once for the
 * request on first use and torn down after the response.
 */
import { Redis } from '@upstash/redis/cloudflare';
import type { MiddlewareHandler } from 'hono';
import { createDatabase, type DatabaseClients } from '../db/client';
import { afterResponse } from './lib/context';
import type { AppEnv } from './types';

/** Lazily built clients for one request. */
export interface Services {
  /** Postgres: `primary` for writes, `read` for replica-eligible reads. */
  readonly db: DatabaseClients;
  /** Redis over Upstash REST. */
  readonly redis: Redis;
  /** Releases what was opened; safe when nothing was. */
  close(): Promise<void>;
}

/** Builds {@link Services} for an environment; clients are created on first access. */
export function createServices(env: Env): Services {
  let db: DatabaseClients | undefined;
  let redis: Redis | undefined;
  return {
    get db() {
      db ??= createDatabase(env);
      return db;
    },
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
 */
export function services(): MiddlewareHandler<AppEnv> {
  return async function services(c, next) {
    const s = createServices(c.env);
    c.set('services', s);
    try {
      await next();
    } finally {
      await afterResponse(c, s.close());
    }
  };
}
