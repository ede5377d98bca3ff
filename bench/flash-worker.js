/**
 * The flash-sale bench Worker: the real inventory code behind a bench-only
 * route, because no public route reserves stock yet (checkout does, later, from
 * its Durable Object). It re-exports the real `InventoryShard` class and
 * reserves with the real `reserveAcross`, with what the checkout's reserve
 * step passes it (a fresh hold id, the real database client, sold-out flags
 * to Redis), so what it measures is the reservation path of a flash sale
 * (called from a Worker here, from the Checkout object there).
 *
 *   POST /reserve?variant=<id>&region=sg&qty=1
 *        one reservation under a fresh hold id: 200 {"ok":true} or
 *        409 {"ok":false,"reason":"out_of_stock"}; 500 on a failure;
 *   POST /reserve-object?variant=<id>&region=sg&qty=1
 *        the same straight to the variant's home shard's `reserve` (no
 *        reserveAcross, no database client, no sold-out report): what the
 *        object's own work costs, for a variant on one shard;
 *   GET  /stats            counters since the last reset (below);
 *   POST /stats/reset      zeroes them;
 *   GET  /levels?variant=<id>&region=sg
 *        the variant's levels on each of the region's shards, and their sum;
 *   *    /admin/...        forwarded to the store (service binding STORE), so
 *        the bench sets stock and sharding through the real admin API, on the
 *        very objects this Worker reserves from (the store's INVENTORY binding
 *        names this Worker's class);
 *   GET  /health.
 *
 * Counters live in the isolate: workerd runs one isolate per Worker here, so
 * they count every request. They include the inventory-object calls each
 * reservation made (the env handed to reserveAcross wraps the INVENTORY
 * namespace and counts calls on its stubs), and when the sale sold out.
 *
 * Plain JavaScript (checked with bench/tsconfig.flash.json): bench/ is type
 * checked with Node's types, which clash with the Workers runtime's. Built by
 * `wrangler deploy --dry-run --config bench/flash.wrangler.toml` (bench/lib/workers.ts).
 * It imports only the inventory modules and the database client, never
 * workers/index.ts.
 */
import { Redis } from '@upstash/redis/cloudflare';
import { createDatabase } from '../db/client';
import { REGION_CODES } from '../db/regions';
import { InventoryShard } from '../durable-objects/inventory';
import { reserveAcross, SHARDS_PER_REGION, shardStub, shardsOf } from '../workers/inventory/shards';
import { markSoldOut } from '../workers/inventory/soldout';

export { InventoryShard };

/** Holds outlive any bench run (the store's default is 10 minutes; a long run must not see expiries). */
const HOLD_TTL_MS = 3_600_000;
const JSON_HEADERS = { 'content-type': 'application/json; charset=UTF-8' };
const OK_BODY = '{"ok":true}';
const SOLD_OUT_BODY = '{"ok":false,"reason":"out_of_stock"}';

/**
 * @typedef {{
 *   requests: number; ok: number; outOfStock: number; failed: number;
 *   rpcsOk: number; rpcsOutOfStock: number; rpcsFailed: number;
 *   firstAt: number | null; lastOkAt: number | null; firstOutOfStockAt: number | null;
 *   firstError: string | null; since: number;
 * }} Counters
 */

/** @returns {Counters} */
function zero() {
  return {
    requests: 0,
    ok: 0,
    outOfStock: 0,
    failed: 0,
    rpcsOk: 0,
    rpcsOutOfStock: 0,
    rpcsFailed: 0,
    firstAt: null,
    lastOkAt: null,
    firstOutOfStockAt: null,
    firstError: null,
    since: Date.now(),
  };
}

/** @type {Counters} */
let counters = zero();

/** @type {Redis | undefined} */
let redis;

/**
 * An error and its causes, one line each (drizzle wraps the driver's error).
 * @param {unknown} err
 * @returns {string}
 */
function describe(err) {
  const parts = [];
  for (let e = err, depth = 0; e !== undefined && e !== null && depth < 4; depth++) {
    parts.push(e instanceof Error ? `${e.name}: ${e.message.split('\n')[0]}` : String(e));
    e = e instanceof Error ? e.cause : undefined;
  }
  return parts.join(' <- caused by ');
}

/**
 * The env handed to reserveAcross: the same bindings, with an INVENTORY
 * namespace whose stubs count the calls made on them (the methods
 * workers/inventory/shards.ts uses).
 * @param {Env} env
 * @param {{ n: number }} calls
 * @returns {Env}
 */
function countingEnv(env, calls) {
  const ns = env.INVENTORY;
  /** @type {(stub: any, name: string) => (...args: any[]) => any} */
  const counted = (stub, name) => (...args) => {
    calls.n++;
    return stub[name](...args);
  };
  const INVENTORY = {
    idFromName: (/** @type {string} */ name) => ns.idFromName(name),
    get: (/** @type {DurableObjectId} */ id, /** @type {DurableObjectNamespaceGetDurableObjectOptions | undefined} */ options) => {
      const stub = ns.get(id, options);
      return {
        id: stub.id,
        reserve: counted(stub, 'reserve'),
        release: counted(stub, 'release'),
        commit: counted(stub, 'commit'),
        levels: counted(stub, 'levels'),
        initVariants: counted(stub, 'initVariants'),
      };
    },
  };
  return /** @type {Env} */ (/** @type {unknown} */ ({ ...env, INVENTORY }));
}

/**
 * @param {URL} url
 * @returns {import('../db/regions').RegionCode}
 */
function regionOf(url) {
  const region = url.searchParams.get('region') ?? 'sg';
  if (!(/** @type {readonly string[]} */ (REGION_CODES)).includes(region)) throw new Error(`unknown region ${region}`);
  return /** @type {import('../db/regions').RegionCode} */ (region);
}

/**
 * One reservation, as the checkout's reserve step makes it.
 * @param {URL} url
 * @param {Env} env
 * @param {ExecutionContext} ctx
 * @returns {Promise<Response>}
 */
async function reserve(url, env, ctx) {
  const variantId = url.searchParams.get('variant') ?? '';
  const quantity = Number(url.searchParams.get('qty') ?? '1');
  const region = regionOf(url);
  const c = counters;
  c.requests++;
  c.firstAt ??= Date.now();
  const calls = { n: 0 };
  const db = createDatabase(env);
  redis ??= new Redis({
    url: env.UPSTASH_REDIS_REST_URL,
    token: env.UPSTASH_REDIS_REST_TOKEN,
    enableTelemetry: false,
    retry: { retries: 1, backoff: () => 100 },
  });
  const r = redis;
  const holdId = crypto.randomUUID();
  try {
    const result = await reserveAcross(
      countingEnv(env, calls),
      db.primary,
      region,
      holdId,
      `bench_${holdId}`,
      [{ variantId, quantity }],
      HOLD_TTL_MS,
      (ids) => markSoldOut(r, region, ids).catch(() => {}),
    );
    if (result.ok) {
      c.ok++;
      c.rpcsOk += calls.n;
      c.lastOkAt = Date.now();
      return new Response(OK_BODY, { headers: JSON_HEADERS });
    }
    c.outOfStock++;
    c.rpcsOutOfStock += calls.n;
    c.firstOutOfStockAt ??= Date.now();
    return new Response(SOLD_OUT_BODY, { status: 409, headers: JSON_HEADERS });
  } catch (err) {
    c.failed++;
    c.rpcsFailed += calls.n;
    c.firstError ??= describe(err);
    return new Response(JSON.stringify({ ok: false, reason: 'error', error: String(err) }), { status: 500, headers: JSON_HEADERS });
  } finally {
    ctx.waitUntil(db.close());
  }
}

/**
 * One reservation on the variant's home shard, called directly.
 * @param {URL} url
 * @param {Env} env
 * @returns {Promise<Response>}
 */
async function reserveObject(url, env) {
  const variantId = url.searchParams.get('variant') ?? '';
  const quantity = Number(url.searchParams.get('qty') ?? '1');
  const region = regionOf(url);
  const c = counters;
  c.requests++;
  c.firstAt ??= Date.now();
  const calls = { n: 0 };
  const holdId = crypto.randomUUID();
  try {
    const stub = shardStub(countingEnv(env, calls), region, /** @type {number} */ (shardsOf(variantId, 1)[0]));
    const result = await stub.reserve(holdId, `bench_${holdId}`, [{ variantId, quantity }], HOLD_TTL_MS);
    if (result.ok) {
      c.ok++;
      c.rpcsOk += calls.n;
      c.lastOkAt = Date.now();
      return new Response(OK_BODY, { headers: JSON_HEADERS });
    }
    if (result.reason !== 'out_of_stock') throw new Error(`reserve refused: ${JSON.stringify(result)}`);
    c.outOfStock++;
    c.rpcsOutOfStock += calls.n;
    c.firstOutOfStockAt ??= Date.now();
    return new Response(SOLD_OUT_BODY, { status: 409, headers: JSON_HEADERS });
  } catch (err) {
    c.failed++;
    c.rpcsFailed += calls.n;
    c.firstError ??= describe(err);
    return new Response(JSON.stringify({ ok: false, reason: 'error', error: String(err) }), { status: 500, headers: JSON_HEADERS });
  }
}

/**
 * Per-shard levels of one variant in one region.
 * @param {URL} url
 * @param {Env} env
 */
async function levels(url, env) {
  const variantId = url.searchParams.get('variant') ?? '';
  const region = regionOf(url);
  const shards = await Promise.all(
    Array.from({ length: SHARDS_PER_REGION }, async (_, i) => ({ shard: i, ...(await shardStub(env, region, i).levels([variantId]))[0] })),
  );
  const sum = { received: 0, available: 0, held: 0, sold: 0 };
  for (const s of shards) {
    sum.received += s.received ?? 0;
    sum.available += s.available ?? 0;
    sum.held += s.held ?? 0;
    sum.sold += s.sold ?? 0;
  }
  return Response.json({ variantId, region, sum, shards: shards.filter((s) => s.known) });
}

export default {
  /**
   * @param {Request} request
   * @param {Env & { STORE: Fetcher }} env
   * @param {ExecutionContext} ctx
   */
  async fetch(request, env, ctx) {
    const url = new URL(request.url);
    if ((url.pathname === '/reserve' || url.pathname === '/reserve-object') && request.method === 'POST') {
      // The reservation finishes (and is counted) even if wrk hangs up at the end of its run.
      const answer = url.pathname === '/reserve' ? reserve(url, env, ctx) : reserveObject(url, env);
      ctx.waitUntil(answer.then(() => {}, () => {}));
      return answer;
    }
    if (url.pathname === '/stats') return Response.json(counters);
    if (url.pathname === '/stats/reset' && request.method === 'POST') {
      counters = zero();
      return Response.json(counters);
    }
    if (url.pathname === '/levels') return levels(url, env);
    if (url.pathname.startsWith('/admin/')) return env.STORE.fetch(request);
    if (url.pathname === '/health') return Response.json({ ok: true, service: 'flash' });
    return new Response('{"error":"not_found"}', { status: 404, headers: JSON_HEADERS });
  },
};
