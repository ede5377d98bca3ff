/**
 * Carts in Redis. The Worker never read-modify-writes a cart: every change
 * is one Lua script that checks the rules and writes in the same atomic
 * step, so two tabs adding at once both count and a limit cannot be raced
 * past.
 *
 * Layout: one hash per cart, `cart:<id>`, holding
 * - `region`, `createdAt` (ISO 8601): fixed at creation;
 * - `owner`: the user id of the account the cart belongs to, absent for a
 *   guest cart. A guest cart is usable by whoever holds its id; an owned one
 *   only with its owner's session, and every script checks that in the same
 *   atomic step as its write (anyone else gets the same `not_found` as for no
 *   cart at all);
 * - `seq`: a counter that orders lines by when they were first added;
 * - `code`: the promotion code the shopper applied (one per cart), if any;
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
/**
 * Lifetime of an account's pointer to its cart. Refreshed at every login and
 * cart creation; sessions last at most 30 days, so a shopper who keeps
 * coming back keeps the pointer.
 */
export const ACCOUNT_CART_POINTER_TTL_SECONDS = 60 * 24 * 3600;
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
  /** User id of the account it belongs to; absent for a guest cart. */
  owner?: string;
  /** The promotion code applied (upper case), if any. */
  code?: string;
}

/**
 * Who is asking: the signed-in shopper's user id, or `''` for a guest. An
 * owned cart answers only to its owner.
 */
export type CartActor = string;

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

/** The Redis key naming an account's cart (`user-cart:<userId>` holds a cart id). */
export function accountCartKey(userId: string): string {
  return `user-cart:${userId}`;
}

// Every script answers a status word first; `ok` is followed by the cart's
// hash as HGETALL lists it, so a write answers with the state it produced.

// ARGV: region, createdAt, ttl, owner ('' for a guest cart), cart id, pointer ttl.
// KEYS[2]: the owner's cart pointer. A new cart becomes the account's cart
// only when the account has none alive: a second device starting a cart
// must not orphan the lines of the first (the next login merges the two).
const CREATE = `
redis.call('HSET', KEYS[1], 'region', ARGV[1], 'createdAt', ARGV[2], 'seq', 0, 'lines', 0)
if ARGV[4] ~= '' then
  redis.call('HSET', KEYS[1], 'owner', ARGV[4])
  local current = redis.call('GET', KEYS[2])
  if (not current) or redis.call('EXISTS', 'cart:' .. current) == 0 then
    redis.call('SET', KEYS[2], ARGV[5], 'EX', ARGV[6])
  end
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
local out = redis.call('HGETALL', KEYS[1])
table.insert(out, 1, 'ok')
return out`;

// ARGV: ttl, actor (the caller's user id, '' for a guest)
const READ = `
if redis.call('EXISTS', KEYS[1]) == 0 then return {'not_found'} end
local owner = redis.call('HGET', KEYS[1], 'owner')
if owner and owner ~= ARGV[2] then return {'not_found'} end
redis.call('EXPIRE', KEYS[1], ARGV[1])
local out = redis.call('HGETALL', KEYS[1])
table.insert(out, 1, 'ok')
return out`;

// ARGV: variantId, quantity to add, unit amount now, max quantity, max lines, ttl, actor
const ADD = `
local key = KEYS[1]
if redis.call('EXISTS', key) == 0 then return {'not_found'} end
local owner = redis.call('HGET', key, 'owner')
if owner and owner ~= ARGV[7] then return {'not_found'} end
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

// ARGV: variantId, quantity (0 removes), ttl, actor
const SET = `
local key = KEYS[1]
if redis.call('EXISTS', key) == 0 then return {'not_found'} end
local owner = redis.call('HGET', key, 'owner')
if owner and owner ~= ARGV[4] then return {'not_found'} end
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

// ARGV: code ('' removes it), ttl, actor, expected current code ('*' for any).
const SET_CODE = `
local key = KEYS[1]
if redis.call('EXISTS', key) == 0 then return {'not_found'} end
local owner = redis.call('HGET', key, 'owner')
if owner and owner ~= ARGV[3] then return {'not_found'} end
redis.call('EXPIRE', key, ARGV[2])
local current = redis.call('HGET', key, 'code') or ''
if ARGV[4] ~= '*' and current ~= ARGV[4] then return {'no_item'} end
if ARGV[1] == '' then redis.call('HDEL', key, 'code') else redis.call('HSET', key, 'code', ARGV[1]) end
local out = redis.call('HGETALL', key)
table.insert(out, 1, 'ok')
return out`;

// ARGV: ttl, the code the checkout used ('' for none: the cart's code is
// dropped only if it is still that one), then optionally variantId, quantity
// pairs: take away only those quantities (what a checkout bought), leaving
// anything added since.
const CLEAR = `
local key = KEYS[1]
if redis.call('EXISTS', key) == 0 then return {'not_found'} end
if ARGV[2] ~= '' and redis.call('HGET', key, 'code') == ARGV[2] then redis.call('HDEL', key, 'code') end
local function drop(vid)
  if redis.call('HDEL', key, 'q:' .. vid, 'o:' .. vid, 'p:' .. vid) > 0 then
    redis.call('HINCRBY', key, 'lines', -1)
  end
end
if #ARGV == 2 then
  local all = redis.call('HGETALL', key)
  for i = 1, #all, 2 do
    if string.sub(all[i], 1, 2) == 'q:' then drop(string.sub(all[i], 3)) end
  end
  redis.call('HSET', key, 'lines', 0)
else
  for i = 3, #ARGV, 2 do
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
async function run(redis: Redis, script: string, id: string, args: (string | number)[], extraKeys: string[] = []): Promise<ScriptReply> {
  try {
    const reply = await withTimeout(
      redis.createScript<ScriptReply>(script).exec([cartKey(id), ...extraKeys], args.map(String)),
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
  const owner = fields.get('owner');
  const code = fields.get('code');
  return {
    id,
    region,
    createdAt: fields.get('createdAt') ?? '',
    lines: lines.map(({ order: _, ...line }) => line),
    ...(owner ? { owner } : {}),
    ...(code ? { code } : {}),
  };
}

/**
 * Creates an empty cart in a region. With an `owner`, the cart belongs to
 * that account and becomes the account's cart (what `GET /api/me` names and
 * a later login merges into).
 */
export async function createCart(redis: Redis, region: RegionCode, owner: CartActor = ''): Promise<StoredCart> {
  const id = newCartId();
  const [, ...flat] = await run(
    redis,
    CREATE,
    id,
    [region, new Date().toISOString(), CART_TTL_SECONDS, owner, id, ACCOUNT_CART_POINTER_TTL_SECONDS],
    [accountCartKey(owner || '-')],
  );
  return parseCart(id, flat);
}

/**
 * The cart, or null when there is none (never created, expired, not a
 * cart id, or another account's). Reading slides the TTL. Throws {@link CartStoreUnavailableError}
 * when Redis fails.
 */
export async function readCart(redis: Redis, id: string, actor: CartActor): Promise<StoredCart | null> {
  if (!isCartId(id)) return null;
  const [status, ...flat] = await run(redis, READ, id, [CART_TTL_SECONDS, actor]);
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
export async function addLine(redis: Redis, id: string, actor: CartActor, variantId: string, quantity: number, unitAmount: number): Promise<CartChange> {
  if (!isCartId(id)) return { ok: false, reason: 'not_found' };
  return change(id, await run(redis, ADD, id, [variantId, quantity, unitAmount, MAX_LINE_QUANTITY, MAX_LINES, CART_TTL_SECONDS, actor]));
}

/** Sets a line's quantity (0 removes it), atomically. `no_item` when the cart has no such line. */
export async function setLineQuantity(redis: Redis, id: string, actor: CartActor, variantId: string, quantity: number): Promise<CartChange> {
  if (!isCartId(id)) return { ok: false, reason: 'not_found' };
  if (!Number.isInteger(quantity) || quantity < 0 || quantity > MAX_LINE_QUANTITY) throw new RangeError(`quantity ${quantity} out of 0-${MAX_LINE_QUANTITY}`);
  return change(id, await run(redis, SET, id, [variantId, quantity, CART_TTL_SECONDS, actor]));
}

/** Removes a line, atomically. */
export function removeLine(redis: Redis, id: string, actor: CartActor, variantId: string): Promise<CartChange> {
  return setLineQuantity(redis, id, actor, variantId, 0);
}

/**
 * Empties a cart's lines and keeps the cart (its id, region and TTL), as a
 * confirmed checkout does, and drops `usedCode` if it is still the cart's
 * code (a used code is spent; another code applied meanwhile stays). With `purchased` (the lines the checkout
 * snapshotted), takes away only those quantities, so an item the shopper
 * added in another tab while paying stays in the cart. A missing cart is
 * not an error.
 */
export async function clearCart(redis: Redis, id: string, purchased?: readonly CartLine[], usedCode = ''): Promise<void> {
  if (!isCartId(id)) return;
  const pairs = (purchased ?? []).flatMap((l) => [l.variantId, l.quantity]);
  if (purchased && pairs.length === 0) return;
  await run(redis, CLEAR, id, [CART_TTL_SECONDS, usedCode, ...pairs]);
}

/**
 * Sets the cart's promotion code (replacing any other), or with `code`
 * `''` removes it; `expected` (`'*'`: anything) must be the current code,
 * else `no_item` and nothing changes. The caller has checked the code.
 */
export async function setCode(redis: Redis, id: string, actor: CartActor, code: string, expected = '*'): Promise<CartChange> {
  if (!isCartId(id)) return { ok: false, reason: 'not_found' };
  return change(id, await run(redis, SET_CODE, id, [code, CART_TTL_SECONDS, actor, expected]));
}

// KEYS: the guest cart (or a placeholder), the account's cart pointer.
// ARGV: user id, guest cart id ('' for none), cart ttl, pointer ttl, max quantity, max lines.
// The guest cart is the one the shopper is using now, so it survives and
// takes the account cart's lines: quantities of a variant in both add up
// (capped per line), lines only in one are kept once, and the account cart
// is deleted in the same step, so a retried login finds nothing left to
// merge and cannot double anything. Nothing moves (the account keeps its
// cart, the guest cart stays a guest cart, no line is lost) when the union
// would pass the line limit, or when the carts are of different regions:
// prices, currency and what is for sale differ there.
const CLAIM = `
local guest = KEYS[1]
local pointer = KEYS[2]
local user = ARGV[1]
local guestId = ARGV[2]
local ttl = tonumber(ARGV[3])
local accountId = redis.call('GET', pointer)
local account = nil
if accountId then
  account = 'cart:' .. accountId
  if redis.call('EXISTS', account) == 0 or redis.call('HGET', account, 'owner') ~= user then account = nil; accountId = nil end
end
local usable = guestId ~= '' and redis.call('EXISTS', guest) == 1
if usable then
  local owner = redis.call('HGET', guest, 'owner')
  if owner and owner ~= user then usable = false end
end
if (not usable) or guestId == accountId then
  if accountId then
    redis.call('EXPIRE', account, ttl)
    redis.call('EXPIRE', pointer, ARGV[4])
    return {'kept', accountId}
  end
  return {'none'}
end
if accountId and redis.call('HGET', account, 'region') ~= redis.call('HGET', guest, 'region') then
  redis.call('EXPIRE', pointer, ARGV[4])
  return {'kept', accountId, 'region_mismatch'}
end
if accountId then
  local incoming = {}
  local added = 0
  local all = redis.call('HGETALL', account)
  for i = 1, #all, 2 do
    if string.sub(all[i], 1, 2) == 'q:' then
      local vid = string.sub(all[i], 3)
      table.insert(incoming, vid)
      if redis.call('HEXISTS', guest, 'q:' .. vid) == 0 then added = added + 1 end
    end
  end
  if tonumber(redis.call('HGET', guest, 'lines') or '0') + added > tonumber(ARGV[6]) then
    redis.call('EXPIRE', pointer, ARGV[4])
    return {'kept', accountId, 'cart_full'}
  end
  for _, vid in ipairs(incoming) do
    local theirs = tonumber(redis.call('HGET', account, 'q:' .. vid))
    local mine = tonumber(redis.call('HGET', guest, 'q:' .. vid) or '0')
    if mine == 0 then
      redis.call('HSET', guest, 'o:' .. vid, redis.call('HINCRBY', guest, 'seq', 1))
      redis.call('HINCRBY', guest, 'lines', 1)
      local price = redis.call('HGET', account, 'p:' .. vid)
      if price then redis.call('HSET', guest, 'p:' .. vid, price) end
    end
    redis.call('HSET', guest, 'q:' .. vid, tostring(math.min(mine + theirs, tonumber(ARGV[5]))))
  end
  redis.call('DEL', account)
end
redis.call('HSET', guest, 'owner', user)
redis.call('EXPIRE', guest, ttl)
redis.call('SET', pointer, guestId, 'EX', ARGV[4])
if accountId then return {'merged', guestId} end
return {'adopted', guestId}`;

/** What a login did with the carts. */
export interface CartClaim {
  /** The account's cart after the login, if it has one. */
  cartId: string | null;
  /** `adopted`: the guest cart became the account's; `merged`: the account cart's lines moved into it; `kept`: the account cart stays (no usable guest cart, or the union would pass the line limit); `none`: no cart at all. */
  outcome: 'adopted' | 'merged' | 'kept' | 'none';
  /** Set when a merge was refused: together the carts hold more lines than a cart may, or they are of different regions. */
  refused?: 'cart_full' | 'region_mismatch';
}

/**
 * At login: gives the guest cart `guestCartId` (if any, and not someone
 * else's) to the account, merging the account's existing cart into it, in
 * one atomic script. Safe to repeat.
 */
export async function claimCartOnLogin(redis: Redis, userId: string, guestCartId?: string): Promise<CartClaim> {
  const guest = guestCartId && isCartId(guestCartId) ? guestCartId : '';
  const [outcome, cartId, refused] = await run(
    redis,
    CLAIM,
    guest || 'none',
    [userId, guest, CART_TTL_SECONDS, ACCOUNT_CART_POINTER_TTL_SECONDS, MAX_LINE_QUANTITY, MAX_LINES],
    [accountCartKey(userId)],
  );
  if (outcome !== 'adopted' && outcome !== 'merged' && outcome !== 'kept' && outcome !== 'none') {
    throw new CartStoreUnavailableError(new Error(`unexpected claim reply ${outcome}`));
  }
  return { cartId: cartId ?? null, outcome, ...(refused === 'cart_full' || refused === 'region_mismatch' ? { refused } : {}) };
}

/** The id of the account's cart, if it has one that still exists. */
export async function accountCartId(redis: Redis, userId: string): Promise<string | null> {
  const [outcome, cartId] = await run(
    redis,
    CLAIM,
    'none',
    [userId, '', CART_TTL_SECONDS, ACCOUNT_CART_POINTER_TTL_SECONDS, MAX_LINE_QUANTITY, MAX_LINES],
    [accountCartKey(userId)],
  );
  return outcome === 'kept' ? (cartId ?? null) : null;
}
