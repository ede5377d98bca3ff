/**
 * `GET /api/health`: a real probe of every dependency the storefront needs,
 * for load balancers, uptime checks and the local stack's start-up banner.
 */
import { createRoute, z } from '@hono/zod-openapi';
import { sql } from 'drizzle-orm';
import { replicaStatus } from '../../db/client';
import { REGION_CODES } from '../../db/regions';
import { createRouter, errorResponse } from '../lib/router';
import { withTimeout } from '../lib/timeout';

/** How long one probe may take before the dependency counts as down. */
const PROBE_TIMEOUT_MS = 3_000;

const CheckStatus = z.enum(['up', 'down']);

const HealthSchema = z
  .object({
    ok: z.boolean(),
    region: z.enum(REGION_CODES),
    checks: z.object({ postgres: CheckStatus, redis: CheckStatus, kv: CheckStatus }),
    latencyMs: z.object({ postgres: z.number(), redis: z.number(), kv: z.number() }),
    errors: z.record(z.string(), z.string()).optional().openapi({ description: 'Why each failing check failed.' }),
    replicas: z
      .array(z.object({ name: z.string(), state: z.enum(['up', 'lagging', 'down']), lagMs: z.number() }))
      .optional()
      .openapi({ description: 'Read replicas, when configured. Not required: a replica down or lagging leaves `ok` true (its reads go to the primary).' }),
  })
  .openapi('Health');

type CheckName = 'postgres' | 'redis' | 'kv';

/** The innermost message of an error chain (drizzle wraps driver errors as `cause`). */
function describeError(err: unknown): string {
  let e: unknown = err;
  while (e instanceof Error && e.cause !== undefined) e = e.cause;
  return e instanceof Error ? e.message : String(e);
}

/** Runs one probe, timing it and never throwing. */
async function probe(run: () => Promise<unknown>, what: string): Promise<{ up: boolean; ms: number; error?: string }> {
  const started = performance.now();
  try {
    await withTimeout(run(), PROBE_TIMEOUT_MS, what);
    return { up: true, ms: Math.round(performance.now() - started) };
  } catch (err) {
    return { up: false, ms: Math.round(performance.now() - started), error: describeError(err) };
  }
}

export const healthRoutes = createRouter().openapi(
  createRoute({
    method: 'get',
    path: '/health',
    tags: ['Operations'],
    summary: 'Checks Postgres, Redis and KV',
    responses: {
      200: { description: 'Every dependency answered', content: { 'application/json': { schema: HealthSchema } } },
      503: {
        description: 'A required dependency is down (same body, `ok: false`, with `Retry-After`)',
        content: { 'application/json': { schema: HealthSchema } },
      },
      400: errorResponse('Unknown region'),
    },
  }),
  async (c) => {
    const { db, redis } = c.var.services;
    // Probes run in parallel so health answers within one timeout, not three.
    const [postgres, redisResult, kv, replicas] = await Promise.all([
      probe(() => db.primary.execute(sql`select 1`), 'Postgres'),
      probe(() => redis.ping(), 'Redis'),
      probe(() => c.env.CATALOG.get('health:probe'), 'KV'),
      // Not required: reads fall back to the primary when one is down or behind.
      replicaStatus(c.env),
    ]);
    const results: Record<CheckName, Awaited<ReturnType<typeof probe>>> = { postgres, redis: redisResult, kv };
    const names = Object.keys(results) as CheckName[];
    const ok = names.every((n) => results[n].up);
    const errors = Object.fromEntries(names.filter((n) => !results[n].up).map((n) => [n, results[n].error ?? 'down']));
    const body = {
      ok,
      region: c.var.region.code,
      checks: { postgres: postgres.up ? 'up' : 'down', redis: redisResult.up ? 'up' : 'down', kv: kv.up ? 'up' : 'down' } as const,
      latencyMs: { postgres: postgres.ms, redis: redisResult.ms, kv: kv.ms },
      ...(replicas.length ? { replicas } : {}),
      ...(ok ? {} : { errors }),
    };
    c.header('cache-control', 'no-store');
    if (!ok) return c.json(body, 503, { 'Retry-After': '5' });
    return c.json(body, 200);
  },
);
