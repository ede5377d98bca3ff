/**
 * The baseline the edge design is measured against: the same catalog read
 * and add-to-cart, served the way a team would build it without the edge —
 * one Node.js process (Hono on `@hono/node-server`), `pg` to the same
 * Postgres, `ioredis` to the same Redis, and no cache in front of Postgres.
 *
 * It is meant to be a competent monolith, not a straw man, so the bench's
 * table shows what the edge buys rather than what a careless origin costs:
 * - pooled connections (pg.Pool, one ioredis connection with auto-pipelining);
 * - named (prepared) parameterised statements, planned once per connection;
 * - one round trip where one suffices: a product page is one query
 *   (product, category, images and the region's variants with price and
 *   stock aggregated in Postgres); a cart read is one Redis pipeline plus one
 *   priced query for all lines; an add is Redis read, one Postgres query that
 *   both checks the new variant and prices the lines already there, then one
 *   atomic Lua script — the same round trips the store's own cart makes;
 * - input validated (zod, strict bodies, a body size limit) and every error a
 *   JSON envelope `{ error: { code, message, details? } }` (shared/API.md).
 *
 * What it deliberately lacks is the point of the comparison: no CDN, no KV or
 * in-process cache of product documents, no replicas, no edge placement.
 * Availability is the region's `stock.received` from Postgres (the monolith's
 * stock column); the store overlays live counts from its inventory objects.
 *
 * Run alone: `DATABASE_URL=… REDIS_URL=… PORT=8790 npx tsx bench/baseline/server.ts`.
 */
import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { Redis } from 'ioredis';
import pg from 'pg';
import { z } from 'zod';
import { REGIONS, isRegionCode, type Region, type RegionCode } from '../../db/regions';
import { closeOnSignals, runIfMain } from '../../dev/processes';

/** Options of {@link startBaseline}. */
export interface BaselineOptions {
  /** Postgres connection string (the same database the Worker's origin uses). */
  databaseUrl: string;
  /** Redis URL, `redis://host:port` (the Redis behind the store's Upstash bridge). */
  redisUrl: string;
  /** TCP port; 0 (the default) lets the OS pick a free one. */
  port?: number;
  /** Interface to listen on; default `127.0.0.1`. */
  host?: string;
  /** Postgres connections in the pool; default 16. */
  poolSize?: number;
}

/** A running baseline server. */
export interface BaselineServer {
  /** Base URL, e.g. `http://127.0.0.1:40123` (no trailing slash). */
  url: string;
  port: number;
  /** Stops accepting requests, drops open connections, ends the pool and the Redis connection. */
  close(): Promise<void>;
}

/** Carts expire 30 days after the last write, as the store's do. */
export const CART_TTL_SECONDS = 30 * 24 * 60 * 60;
/** Most units of one variant a cart line may hold (shared/API.md). */
export const MAX_LINE_QUANTITY = 99;
/** Most lines a cart may hold (shared/API.md). */
export const MAX_LINES = 100;
/** Request bodies here are a few dozen bytes; anything this large is refused before parsing. */
const MAX_BODY_BYTES = 16 * 1024;
/** Seconds a client should wait before retrying when Postgres or Redis fails. */
const RETRY_AFTER_SECONDS = 5;

/** Cart ids: 16 random bytes (128 bits), base64url, so exactly 22 characters. */
const CART_ID = /^[A-Za-z0-9_-]{22}$/;
const linesKey = (id: string) => `bcart:${id}`;
const metaKey = (id: string) => `bcart:${id}:meta`;

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/** An answer other than 2xx, sent as the JSON envelope of shared/API.md. */
class BaselineError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

const notFound = (message: string) => new BaselineError(404, 'not_found', message);
const cartNotFound = () => notFound('No such cart. It may have expired after 30 days without use.');

function errorBody(code: string, message: string, details?: unknown) {
  return { error: { code, message, ...(details === undefined ? {} : { details }) } };
}

/** zod issues as `details`: one entry per bad field. */
function fieldIssues(error: z.ZodError) {
  return error.issues.map((i) => ({ path: i.path.join('.') || '(body)', message: i.message }));
}

// ---------------------------------------------------------------------------
// Postgres
// ---------------------------------------------------------------------------

/**
 * A product page in one statement: the product and its category, its images
 * and the region's sellable variants (active, priced there) with price and
 * stock, aggregated to JSON by Postgres so the page costs one round trip.
 * `$1` slug, `$2` region code.
 */
const PRODUCT_QUERY: pg.QueryConfig = {
  name: 'baseline_product',
  text: `
    select p.id, p.slug, p.title, p.description, p.brand,
           c.slug as category_slug, c.name as category_name,
           coalesce((
             select json_agg(json_build_object('key', m.key, 'alt', m.alt, 'width', m.width, 'height', m.height)
                             order by m.position, m.key)
             from media m where m.product_id = p.id
           ), '[]'::json) as images,
           coalesce((
             select json_agg(json_build_object(
                      'id', v.id, 'sku', v.sku, 'title', v.title, 'options', v.options,
                      'amount', pr.amount, 'compareAt', pr.compare_at_amount,
                      'received', coalesce(s.received, 0))
                    order by v.position, v.sku)
             from variants v
             join prices pr on pr.variant_id = v.id and pr.region_code = $2
             left join stock s on s.variant_id = v.id and s.region_code = $2
             where v.product_id = p.id and v.status = 'active'
           ), '[]'::json) as variants
    from products p
    join categories c on c.id = p.category_id
    where p.slug = $1 and p.status = 'active'`,
};

/**
 * What pricing needs about a set of variants in one region, in one statement
 * whatever the number of lines (`= any($1)` keeps it one prepared plan).
 * Unknown ids are simply absent. `$1` variant ids, `$2` region code.
 */
const VARIANT_FACTS_QUERY = {
  name: 'baseline_variant_facts',
  text: `
    select v.id, v.sku, v.title as variant_title, p.title as product_title,
           (v.status = 'active' and p.status = 'active') as active,
           pr.amount::float8 as amount
    from variants v
    join products p on p.id = v.product_id
    left join prices pr on pr.variant_id = v.id and pr.region_code = $2
    where v.id = any($1::text[])`,
} as const;

interface ProductRow {
  id: string;
  slug: string;
  title: string;
  description: string;
  brand: string | null;
  category_slug: string;
  category_name: string;
  images: { key: string; alt: string; width: number | null; height: number | null }[];
  variants: { id: string; sku: string; title: string; options: Record<string, string>; amount: number; compareAt: number | null; received: number }[];
}

interface VariantFacts {
  id: string;
  sku: string;
  variantTitle: string;
  productTitle: string;
  /** Variant and product both active. */
  active: boolean;
  /** Price in the region, or null when not sold there. */
  amount: number | null;
}

/** Money on the wire: integer minor units plus ISO 4217 currency. */
interface Money {
  amount: number;
  currency: string;
}
const money = (amount: number, region: Region): Money => ({ amount, currency: region.currency });

async function loadProduct(pool: pg.Pool, region: Region, slug: string) {
  const { rows } = await pool.query<ProductRow>({ ...PRODUCT_QUERY, values: [slug, region.code] });
  const p = rows[0];
  // A product with no variant priced in the region is not sold there: 404, as on the store.
  if (!p || p.variants.length === 0) return null;
  return {
    id: p.id,
    slug: p.slug,
    title: p.title,
    description: p.description,
    brand: p.brand,
    category: { slug: p.category_slug, name: p.category_name },
    images: p.images.map((m) => ({ url: `/media/${m.key}`, alt: m.alt, width: m.width, height: m.height })),
    variants: p.variants.map((v) => ({
      id: v.id,
      sku: v.sku,
      title: v.title,
      options: v.options,
      price: money(Number(v.amount), region),
      compareAtPrice: v.compareAt === null ? null : money(Number(v.compareAt), region),
      available: Number(v.received),
    })),
  };
}

async function loadVariantFacts(pool: pg.Pool, region: Region, ids: readonly string[]): Promise<Map<string, VariantFacts>> {
  const unique = [...new Set(ids)];
  if (unique.length === 0) return new Map();
  const { rows } = await pool.query<{ id: string; sku: string; variant_title: string; product_title: string; active: boolean; amount: number | null }>({
    ...VARIANT_FACTS_QUERY,
    values: [unique, region.code],
  });
  return new Map(
    rows.map((r) => [
      r.id,
      { id: r.id, sku: r.sku, variantTitle: r.variant_title, productTitle: r.product_title, active: r.active, amount: r.amount === null ? null : Number(r.amount) },
    ]),
  );
}

/** Whether a variant can be added to a cart of the region: known, active, priced there. */
const sellable = (f: VariantFacts | undefined): f is VariantFacts & { amount: number } => !!f && f.active && f.amount !== null;

/** `Product – Variant`, or just the product title for a default variant (as the store titles lines). */
function lineTitle(productTitle: string, variantTitle: string): string {
  const v = variantTitle.trim();
  return !v || v === productTitle || /^default( title)?$/i.test(v) ? productTitle : `${productTitle} – ${v}`;
}

// ---------------------------------------------------------------------------
// Redis
// ---------------------------------------------------------------------------

/** A cart line as Redis holds it: variant id → quantity. */
interface Line {
  variantId: string;
  quantity: number;
}

/** HGETALL's flat `[field, value, …]` (from the script) or object (from ioredis) as lines. */
function linesOf(hash: Record<string, string> | string[]): Line[] {
  const pairs: [string, string][] = [];
  if (Array.isArray(hash)) for (let i = 0; i + 1 < hash.length; i += 2) pairs.push([hash[i]!, hash[i + 1]!]);
  else pairs.push(...Object.entries(hash));
  // Small hashes (listpack, up to 128 fields > MAX_LINES) keep insertion order: lines come back in the order first added.
  return pairs.map(([variantId, q]) => ({ variantId, quantity: Number(q) }));
}

/**
 * Adds to a line atomically: in one script the cart's existence, the 99-unit
 * line limit and the 100-line cart limit are checked and the increment is
 * applied (or nothing is), so concurrent adds cannot push a line past 99.
 * KEYS: lines hash, meta key. ARGV: variant id, quantity, max quantity, max
 * lines, TTL seconds. Answers `{'ok', HGETALL}`, `{'not_found'}`,
 * `{'quantity_limit', current}` or `{'cart_full'}`.
 */
const ADD_LINE_LUA = `
if redis.call('EXISTS', KEYS[2]) == 0 then return {'not_found'} end
local current = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if current == 0 and redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[4]) then return {'cart_full'} end
local nextQuantity = current + tonumber(ARGV[2])
if nextQuantity > tonumber(ARGV[3]) then return {'quantity_limit', current} end
redis.call('HSET', KEYS[1], ARGV[1], nextQuantity)
redis.call('EXPIRE', KEYS[1], ARGV[5])
redis.call('EXPIRE', KEYS[2], ARGV[5])
return {'ok', redis.call('HGETALL', KEYS[1])}
`;

type AddLineReply = ['ok', string[]] | ['not_found'] | ['quantity_limit', number] | ['cart_full'];

interface BaselineRedis extends Redis {
  baselineAddLine(lines: string, meta: string, variantId: string, quantity: number, max: number, maxLines: number, ttl: number): Promise<AddLineReply>;
}

/** The cart's region and lines in one pipelined round trip, or null for an unknown cart. */
async function readCart(redis: BaselineRedis, id: string): Promise<{ region: Region; lines: Line[] } | null> {
  const replies = await redis.pipeline().get(metaKey(id)).hgetall(linesKey(id)).exec();
  if (!replies) throw new Error('Redis pipeline returned no replies');
  for (const [err] of replies) if (err) throw err;
  const region = replies[0]![1] as string | null;
  if (region === null || !isRegionCode(region)) return null;
  return { region: REGIONS[region], lines: linesOf(replies[1]![1] as Record<string, string>) };
}

// ---------------------------------------------------------------------------
// Carts
// ---------------------------------------------------------------------------

const AddItemBody = z
  .object({
    variantId: z.string().min(1).max(64),
    quantity: z.number().int().min(1).max(MAX_LINE_QUANTITY),
  })
  .strict();

/** The priced cart: every line from current Postgres prices in the cart's region. */
function pricedCart(id: string, region: Region, lines: readonly Line[], facts: Map<string, VariantFacts>) {
  let subtotal = 0;
  const items = lines.map((line) => {
    const f = facts.get(line.variantId);
    const ok = sellable(f);
    // A line whose variant was archived or unpriced since it was added stays visible but counts 0.
    const unit = ok ? f.amount : (f?.amount ?? 0);
    const total = ok ? unit * line.quantity : 0;
    subtotal += total;
    return {
      id: line.variantId,
      variantId: line.variantId,
      sku: f?.sku ?? '',
      title: f ? lineTitle(f.productTitle, f.variantTitle) : 'No longer available',
      quantity: line.quantity,
      unitPrice: money(unit, region),
      lineTotal: money(total, region),
      status: ok ? ('ok' as const) : ('unavailable' as const),
    };
  });
  return { id, region: region.code, items, subtotal: money(subtotal, region) };
}

// ---------------------------------------------------------------------------
// App
// ---------------------------------------------------------------------------

type Env = { Variables: { region: Region } };

/** Reads a JSON body; malformed JSON is 400 `invalid_json`, an empty body is `undefined`. */
async function jsonBody(c: Context<Env>): Promise<unknown> {
  const text = await c.req.text();
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new BaselineError(400, 'invalid_json', 'The request body is not valid JSON.');
  }
}

/** The Hono app over a pool and a Redis connection (exported for in-process use; most callers want {@link startBaseline}). */
export function baselineApp(pool: pg.Pool, redis: BaselineRedis): Hono<Env> {
  const app = new Hono<Env>();

  app.onError((err, c) => {
    if (err instanceof BaselineError) return c.json(errorBody(err.code, err.message, err.details), err.status);
    // Anything else is a failed dependency (or a bug): logged, and answered as
    // the store answers an outage, never with an HTML page.
    console.error(JSON.stringify({ level: 'error', path: c.req.path, error: err instanceof Error ? `${err.name}: ${err.message}` : String(err) }));
    c.header('Retry-After', String(RETRY_AFTER_SECONDS));
    return c.json(errorBody('unavailable', 'A dependency is unavailable. Try again shortly.'), 503);
  });
  app.notFound((c) => c.json(errorBody('not_found', `No route for ${c.req.method} ${c.req.path}.`), 404));

  app.get('/health', (c) => c.json({ ok: true }));

  // The bench's "PG q/req" for the baseline: every query here is a one-shot
  // `pool.query`, one client checkout each, so checkouts count queries.
  const counts = { queries: 0, connections: 0 };
  pool.on('acquire', () => counts.queries++);
  pool.on('connect', () => counts.connections++);
  app.get('/stats', (c) => c.json(counts));

  // Region: the `x-region` header (case-insensitive), default `sg`; an unknown code is 400, never a silent default.
  app.use('/api/*', async (c, next) => {
    const raw = c.req.header('x-region')?.trim().toLowerCase() || 'sg';
    if (!isRegionCode(raw)) {
      throw new BaselineError(400, 'invalid_region', `Unknown region "${raw.slice(0, 16)}".`, { allowed: Object.keys(REGIONS) });
    }
    c.set('region', REGIONS[raw as RegionCode]);
    await next();
    c.header('x-region', raw);
  });
  app.use(
    '/api/*',
    bodyLimit({
      maxSize: MAX_BODY_BYTES,
      onError: (c) => c.json(errorBody('payload_too_large', `Request bodies are limited to ${MAX_BODY_BYTES} bytes.`), 413),
    }),
  );

  app.get('/api/products/:slug', async (c) => {
    const slug = c.req.param('slug');
    const region = c.var.region;
    // A slug the schema's check could never hold needs no query.
    const product = slug.length <= 200 ? await loadProduct(pool, region, slug) : null;
    if (!product) throw notFound(`No product "${slug.slice(0, 200)}" is for sale in ${region.name}.`);
    return c.json(product);
  });

  app.post('/api/carts', async (c) => {
    const body = await jsonBody(c);
    // The create body is optional and has no fields: `{}` or nothing.
    if (body !== undefined && (typeof body !== 'object' || body === null || Array.isArray(body) || Object.keys(body).length > 0)) {
      throw new BaselineError(400, 'invalid_request', 'A new cart takes no fields; send `{}` or no body.');
    }
    const region = c.var.region;
    const id = randomBytes(16).toString('base64url');
    // The meta key marks the cart as existing (an empty hash does not exist in Redis).
    await redis.set(metaKey(id), region.code, 'EX', CART_TTL_SECONDS, 'NX');
    c.header('Cache-Control', 'no-store');
    return c.json(pricedCart(id, region, [], new Map()), 201);
  });

  app.get('/api/carts/:id', async (c) => {
    const id = c.req.param('id');
    if (!CART_ID.test(id)) throw cartNotFound();
    const cart = await readCart(redis, id);
    if (!cart) throw cartNotFound();
    const facts = await loadVariantFacts(pool, cart.region, cart.lines.map((l) => l.variantId));
    c.header('Cache-Control', 'no-store');
    return c.json(pricedCart(id, cart.region, cart.lines, facts));
  });

  app.post('/api/carts/:id/items', async (c) => {
    const id = c.req.param('id');
    const parsed = AddItemBody.safeParse(await jsonBody(c));
    if (!parsed.success) throw new BaselineError(400, 'invalid_request', 'The request body is invalid.', fieldIssues(parsed.error));
    const { variantId, quantity } = parsed.data;
    if (!CART_ID.test(id)) throw cartNotFound();

    const before = await readCart(redis, id);
    if (!before) throw cartNotFound();
    const region = before.region;
    // One query checks the new variant and prices the lines already there.
    const facts = await loadVariantFacts(pool, region, [...before.lines.map((l) => l.variantId), variantId]);
    if (!sellable(facts.get(variantId))) {
      throw new BaselineError(422, 'unknown_variant', `No variant "${variantId}" is for sale in ${region.name}.`, { variantId, region: region.code });
    }

    const reply = await redis.baselineAddLine(linesKey(id), metaKey(id), variantId, quantity, MAX_LINE_QUANTITY, MAX_LINES, CART_TTL_SECONDS);
    switch (reply[0]) {
      case 'not_found':
        throw cartNotFound();
      case 'quantity_limit':
        throw new BaselineError(422, 'quantity_limit', `A line may hold at most ${MAX_LINE_QUANTITY}; the cart already has ${reply[1]} of this item.`, {
          variantId,
          quantity: reply[1],
          requested: quantity,
          max: MAX_LINE_QUANTITY,
        });
      case 'cart_full':
        throw new BaselineError(422, 'cart_full', `A cart holds at most ${MAX_LINES} different items.`, { maxLines: MAX_LINES });
      case 'ok':
        break;
    }
    const lines = linesOf(reply[1]);
    // Only a concurrent add of another variant between the read and the script leaves a line unpriced.
    const missing = lines.map((l) => l.variantId).filter((v) => !facts.has(v));
    if (missing.length) for (const [k, f] of await loadVariantFacts(pool, region, missing)) facts.set(k, f);
    c.header('Cache-Control', 'no-store');
    return c.json(pricedCart(id, region, lines, facts));
  });

  return app;
}

/**
 * Starts the baseline: opens the pool (`poolSize` connections at most) and a
 * Redis connection, checks both answer (so a wrong URL fails here, not on the
 * first benchmark request), and listens on `host:port`.
 */
export async function startBaseline(opts: BaselineOptions): Promise<BaselineServer> {
  const host = opts.host ?? '127.0.0.1';
  const pool = new pg.Pool({ connectionString: opts.databaseUrl, max: opts.poolSize ?? 16, idleTimeoutMillis: 30_000 });
  // An idle client losing its connection emits on the pool; without a listener that would crash the process.
  pool.on('error', (err) => console.error(JSON.stringify({ level: 'warn', dependency: 'Postgres', error: err.message })));
  // Auto-pipelining batches commands issued in the same tick by concurrent
  // requests into one write: the usual setting for a busy ioredis client.
  const redis = new Redis(opts.redisUrl, { enableAutoPipelining: true, maxRetriesPerRequest: 2, lazyConnect: true }) as BaselineRedis;
  redis.defineCommand('baselineAddLine', { numberOfKeys: 2, lua: ADD_LINE_LUA });
  redis.on('error', (err: Error) => console.error(JSON.stringify({ level: 'warn', dependency: 'Redis', error: err.message })));

  let server: Server | undefined;
  try {
    await redis.connect();
    await Promise.all([pool.query('select 1'), redis.ping()]);
    const app = baselineApp(pool, redis);
    server = await new Promise<Server>((resolve, reject) => {
      const s = serve({ fetch: app.fetch, port: opts.port ?? 0, hostname: host }) as Server;
      s.once('listening', () => resolve(s));
      s.once('error', reject);
    });
  } catch (err) {
    await Promise.allSettled([pool.end(), redis.quit()]);
    throw err;
  }
  const listening = server;
  const { port } = listening.address() as AddressInfo;
  const urlHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;

  let closing: Promise<void> | undefined;
  return {
    url: `http://${urlHost}:${port}`,
    port,
    close: () =>
      (closing ??= (async () => {
        const stopped = new Promise<void>((resolve) => listening.close(() => resolve()));
        // Keep-alive connections from a load generator would hold close() open indefinitely.
        listening.closeAllConnections();
        await stopped;
        await Promise.allSettled([pool.end(), redis.quit()]);
      })()),
  };
}

runIfMain(import.meta.url, async () => {
  const databaseUrl = process.env.DATABASE_URL;
  if (!databaseUrl) throw new Error('DATABASE_URL is required (the Postgres the store uses).');
  const server = await startBaseline({
    databaseUrl,
    redisUrl: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    port: process.env.PORT ? Number(process.env.PORT) : 8790,
    host: process.env.HOST ?? '127.0.0.1',
    poolSize: process.env.POOL_SIZE ? Number(process.env.POOL_SIZE) : undefined,
  });
  console.log(`baseline (Node.js + pg + ioredis, no caches) listening on ${server.url}`);
  closeOnSignals(server.close);
});
