/**
 * Carts in Redis. The Worker never read-modify-writes a cart: every change
 * is one Lua script that checks the rules and writes in the same atomic
 * step, so two tabs adding at once both count and a limit cannot be raced
 * past.
 *
 * Layout: one hash per cart, `cart:<id>`, holding
 * - `region`, `createdAt` (ISO 8601): fixed at creation;
 * - `seq`: a counter that orders lines by when they were first added;
 * - `lines`: the number of lines (kept by the scripts, checked against {@link MAX_LINES});
 * - per line, keyed by variant id: `q:<variantId>` quantity, `o:<variantId>`
 *   its `seq` (display order), `p:<variantId>` the unit price in minor units
 *   when it was last added (so a later read can say the price changed).
 *
 * One key means one TTL, one atomic snapshot per read, and no orphaned
 * halves. The TTL slides: every read and write sets it back to
 * {@link CART_TTL_SECONDS}.
 *
 * This module is also the read side the Checkout Durable Object uses:
 * {@link readCart}, {@link clearCart} and (re-exported from ./pricing)
 * {@link priceCart}.
 */
import type { Redis } from '@upstash/redis/cloudflare';
import { isRegionCode, type RegionCode } from '../../db/regions';
import { randomToken } from '../lib/ids';
import { withTimeout } from '../lib/timeout';

export { priceCart, type PricedCart, type PricedItem, type LineProblem } from './pricing';

/** Sliding lifetime of a cart: 30 days after its last read or write. */
export const CART_TTL_SECONDS = 30 * 24 * 3600;
/** Largest quantity of one line. */
export const MAX_LINE_QUANTITY = 99;
/** Most lines one cart may hold. */
export const MAX_LINES = 100;
/** How long one Redis call may take before the cart counts as unavailable. */
const REDIS_TIMEOUT_MS = 3_000;

/** Cart ids: `cart_` and 32 Crockford base32 characters (160 random bits). */
const CART_ID = /^cart_[0-9a-hjkmnp-tv-z]{32}$/;
/** Variant ids (and so line ids): what the catalog mints, with room to spare. */
const VARIANT_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** One line of a cart. */
export interface CartLine {
  variantId: string;
  quantity: number;
  /** Unit price (minor units of the cart's currency) when the line was last added; absent for lines written without one. */
  addedUnitAmount?: number;
}

/** A cart as stored: lines in the order they were first added. */
export interface StoredCart {
  id: string;
  region: RegionCode;
  lines: CartLine[];
  createdAt: string;
}

/** Redis failed or did not answer: the caller should say 503 (or retry later). */
export class CartStoreUnavailableError extends Error {
  override name = 'CartStoreUnavailableError';
  constructor(cause: unknown) {
    super(`Cart store unavailable: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

/** A new unguessable cart id. */
export function newCartId(): string {
  return `cart_${randomToken(20)}`;
}

/** Whether `id` has the shape of a cart id (checked before Redis is asked). */
export function isCartId(id: string): boolean {
  return CART_ID.test(id);
}

/** Whether `id` could be a variant (line) id. */
export function isLineId(id: string): boolean {
  return VARIANT_ID.test(id);
}

/** The Redis key of a cart. */
export function cartKey(id: string): string {
  return `cart:${id}`;
}

// Every script answers a status word first; `ok` is followed by the cart's
// hash as HGETALL lists it, so a write answers with the state it produced.

const CREATE = `
redis.call('HSET', KEYS[1], 'region', ARGV[1], 'createdAt', ARGV[2], 'seq', 0, 'lines', 0)
redis.call('EXPIRE', KEYS[1], ARGV[3])
local out = redis.call('HGETALL', KEYS[1])
table.insert(out, 1, 'ok')
return out`;

const READ = `
if redis.call('EXISTS', KEYS[1]) == 0 then return {'not_found'} end
redis.call('EXPIRE', KEYS[1], ARGV[1])
local out = redis.call('HGETALL', KEYS[1])
table.insert(out, 1, 'ok')
return out`;

// ARGV: variantId, quantity to add, unit amount now, max quantity, max lines, ttl
const ADD = `
local key = KEYS[1]
if redis.call('EXISTS', key) == 0 then return {'not_found'} end
local vid = ARGV[1]
local current = tonumber(redis.call('HGET', key, 'q:' .. vid) or '0')
if current == 0 and tonumber(redis.call('HGET', key, 'lines') or '0') >= tonumber(ARGV[5]) then
  return {'cart_full', tostring(current)}
end
local quantity = current + tonumber(ARGV[2])
if quantity > tonumber(ARGV[4]) then return {'quantity_limit', tostring(current)} end
if current == 0 then
  redis.call('HSET', key, 'o:' .. vid, redis.call('HINCRBY', key, 'seq', 1))
  redis.call('HINCRBY', key, 'lines', 1)
end
redis.call('HSET', key, 'q:' .. vid, tostring(quantity), 'p:' .. vid, ARGV[3])
redis.call('EXPIRE', key, ARGV[6])
local out = redis.call('HGETALL', key)
table.insert(out, 1, 'ok')
return out`;

// ARGV: variantId, quantity (0 removes), ttl
const SET = `
local key = KEYS[1]
if redis.call('EXISTS', key) == 0 then return {'not_found'} end
redis.call('EXPIRE', key, ARGV[3])
local vid = ARGV[1]
if redis.call('HEXISTS', key, 'q:' .. vid) == 0 then return {'no_item'} end
if tonumber(ARGV[2]) == 0 then
  redis.call('HDEL', key, 'q:' .. vid, 'o:' .. vid, 'p:' .. vid)
  redis.call('HINCRBY', key, 'lines', -1)
else
  redis.call('HSET', key, 'q:' .. vid, ARGV[2])
end
local out = redis.call('HGETALL', key)
table.insert(out, 1, 'ok')
return out`;

// ARGV: ttl, then optionally variantId, quantity pairs: take away only those
// quantities (what a checkout bought), leaving anything added since.
const CLEAR = `
local key = KEYS[1]
if redis.call('EXISTS', key) == 0 then return {'not_found'} end
local function drop(vid)
  if redis.call('HDEL', key, 'q:' .. vid, 'o:' .. vid, 'p:' .. vid) > 0 then
    redis.call('HINCRBY', key, 'lines', -1)
  end
end
if #ARGV == 1 then
  local all = redis.call('HGETALL', key)
  for i = 1, #all, 2 do
    if string.sub(all[i], 1, 2) == 'q:' then drop(string.sub(all[i], 3)) end
  end
  redis.call('HSET', key, 'lines', 0)
else
  for i = 2, #ARGV, 2 do
    local vid = ARGV[i]
    local current = tonumber(redis.call('HGET', key, 'q:' .. vid) or '0')
    if current > 0 then
      local left = current - tonumber(ARGV[i + 1])
      if left <= 0 then drop(vid) else redis.call('HSET', key, 'q:' .. vid, tostring(left)) end
    end
  end
end
redis.call('EXPIRE', key, ARGV[1])
return {'ok'}`;

type ScriptReply = [string, ...string[]];

/** Runs a script (EVALSHA, falling back to EVAL once per Redis), mapping any failure to {@link CartStoreUnavailableError}. */
async function run(redis: Redis, script: string, id: string, args: (string | number)[]): Promise<ScriptReply> {
  try {
    const reply = await withTimeout(
      redis.createScript<ScriptReply>(script).exec([cartKey(id)], args.map(String)),
      REDIS_TIMEOUT_MS,
      'Redis',
    );
    if (!Array.isArray(reply) || typeof reply[0] !== 'string') throw new Error(`unexpected script reply ${JSON.stringify(reply)}`);
    return reply.map(String) as ScriptReply;
  } catch (err) {
    throw new CartStoreUnavailableError(err);
  }
}

/** Builds a {@link StoredCart} from HGETALL's flat field/value list. */
function parseCart(id: string, flat: string[]): StoredCart {
  const fields = new Map<string, string>();
  for (let i = 0; i + 1 < flat.length; i += 2) fields.set(flat[i]!, flat[i + 1]!);
  const region = fields.get('region') ?? '';
  if (!isRegionCode(region)) throw new CartStoreUnavailableError(new Error(`cart ${id} has no valid region`));
  const lines: (CartLine & { order: number })[] = [];
  for (const [field, value] of fields) {
    if (!field.startsWith('q:')) continue;
    const variantId = field.slice(2);
    const added = fields.get(`p:${variantId}`);
    lines.push({
      variantId,
      quantity: Number(value),
      ...(added !== undefined && added !== '' ? { addedUnitAmount: Number(added) } : {}),
      order: Number(fields.get(`o:${variantId}`) ?? 0),
    });
  }
  lines.sort((a, b) => a.order - b.order || (a.variantId < b.variantId ? -1 : 1));
  return { id, region, createdAt: fields.get('createdAt') ?? '', lines: lines.map(({ order: _, ...line }) => line) };
}

/** Creates an empty cart in a region. */
export async function createCart(redis: Redis, region: RegionCode): Promise<StoredCart> {
  const id = newCartId();
  const [, ...flat] = await run(redis, CREATE, id, [region, new Date().toISOString(), CART_TTL_SECONDS]);
  return parseCart(id, flat);
}

/**
 * The cart, or null when there is none (never created, expired, or not a
 * cart id). Reading slides the TTL. Throws {@link CartStoreUnavailableError}
 * when Redis fails.
 */
export async function readCart(redis: Redis, id: string): Promise<StoredCart | null> {
  if (!isCartId(id)) return null;
  const [status, ...flat] = await run(redis, READ, id, [CART_TTL_SECONDS]);
  return status === 'ok' ? parseCart(id, flat) : null;
}

/** Outcome of a cart change. */
export type CartChange =
  | { ok: true; cart: StoredCart }
  | { ok: false; reason: 'not_found' | 'no_item' }
  | { ok: false; reason: 'quantity_limit' | 'cart_full'; currentQuantity: number };

function change(id: string, [status, ...rest]: ScriptReply): CartChange {
  switch (status) {
    case 'ok':
      return { ok: true, cart: parseCart(id, rest) };
    case 'not_found':
    case 'no_item':
      return { ok: false, reason: status };
    case 'quantity_limit':
    case 'cart_full':
      return { ok: false, reason: status, currentQuantity: Number(rest[0] ?? 0) };
    default:
      throw new CartStoreUnavailableError(new Error(`unexpected script status ${status}`));
  }
}

/**
 * Adds `quantity` of a variant, to its existing line if there is one, in one
 * atomic step: refused (and nothing written) when the line would pass
 * {@link MAX_LINE_QUANTITY} or a new line would pass {@link MAX_LINES}.
 * `unitAmount` is the price the shopper is adding at (recorded on the line).
 * The caller checks that the variant is for sale in the cart's region.
 */
export async function addLine(redis: Redis, id: string, variantId: string, quantity: number, unitAmount: number): Promise<CartChange> {
  if (!isCartId(id)) return { ok: false, reason: 'not_found' };
  return change(id, await run(redis, ADD, id, [variantId, quantity, unitAmount, MAX_LINE_QUANTITY, MAX_LINES, CART_TTL_SECONDS]));
}

/** Sets a line's quantity (0 removes it), atomically. `no_item` when the cart has no such line. */
export async function setLineQuantity(redis: Redis, id: string, variantId: string, quantity: number): Promise<CartChange> {
  if (!isCartId(id)) return { ok: false, reason: 'not_found' };
  if (!Number.isInteger(quantity) || quantity < 0 || quantity > MAX_LINE_QUANTITY) throw new RangeError(`quantity ${quantity} out of 0-${MAX_LINE_QUANTITY}`);
  return change(id, await run(redis, SET, id, [variantId, quantity, CART_TTL_SECONDS]));
}

/** Removes a line, atomically. */
export function removeLine(redis: Redis, id: string, variantId: string): Promise<CartChange> {
  return setLineQuantity(redis, id, variantId, 0);
}

/**
 * Empties a cart's lines and keeps the cart (its id, region and TTL), as a
 * confirmed checkout does. With `purchased` (the lines the checkout
 * snapshotted), takes away only those quantities, so an item the shopper
 * added in another tab while paying stays in the cart. A missing cart is
 * not an error.
 */
export async function clearCart(redis: Redis, id: string, purchased?: readonly CartLine[]): Promise<void> {
  if (!isCartId(id)) return;
  const pairs = (purchased ?? []).flatMap((l) => [l.variantId, l.quantity]);
  if (purchased && pairs.length === 0) return;
  await run(redis, CLEAR, id, [CART_TTL_SECONDS, ...pairs]);
}
