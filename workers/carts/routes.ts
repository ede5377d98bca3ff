/**
 * Storefront cart API (shared/API.md, Carts): create, read, add, change
 * quantity, remove. Carts live in Redis (./store.ts), every change is one
 * atomic script there; prices are recomputed from the origin for the cart's
 * region on every answer (./pricing.ts). Whoever holds a guest cart's id may
 * use the cart; a cart that belongs to an account answers only to that
 * account's session, and to everyone else exactly as a cart that does not
 * exist (404), so ids of other shoppers' carts are worth nothing.
 * Writes are rate limited per cart (`cart_write`).
 */
import { createRoute } from '@hono/zod-openapi';
import type { Context, MiddlewareHandler } from 'hono';
import { REGIONS } from '../../db/regions';
import { ApiError, notFound, unavailable } from '../lib/errors';
import { createRouter, errorResponse } from '../lib/router';
import { clientIp, rateLimit } from '../middleware/rate-limit';
import type { AppEnv } from '../types';
import { normalizeCode } from '../promotions/engine';
import { loadVariantFacts, priceLines, problemOf } from './pricing';
import { CART_PROMOTIONS_MEMO_MS, quoteCart, quoteFields, quoteOf, type Quote } from './quote';
import { AddItemBody, ApplyCodeBody, CartCodeParams, CartIdParam, CartItemParams, CartSchema, CreateCartBody, UpdateItemBody } from './schemas';
import {
  CartStoreUnavailableError,
  MAX_LINE_QUANTITY,
  MAX_LINES,
  addLine,
  createCart,
  isCartId,
  isLineId,
  readCart,
  setCode,
  setLineQuantity,
  type CartChange,
  type StoredCart,
} from './store';

/** Seconds a client should wait before retrying when Redis or Postgres is down. */
const RETRY_AFTER_SECONDS = 5;

/** The innermost message of an error chain (drizzle wraps driver errors as `cause`). */
function innermost(err: unknown): string {
  let e: unknown = err;
  while (e instanceof Error && e.cause !== undefined) e = e.cause;
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}

/**
 * Awaits a dependency call, turning its failure into 503 `unavailable`.
 * An {@link ApiError} passes through; anything else is logged (it may be a
 * bug rather than an outage) and answered as 503.
 */
async function dependency<T>(c: Context<AppEnv>, what: 'Redis' | 'Postgres', work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (err) {
    if (err instanceof ApiError) throw err;
    // An outage is worth a line in the logs; anything but a store error may also be a bug.
    const level = err instanceof CartStoreUnavailableError ? 'warn' : 'error';
    console[level](JSON.stringify({ level, requestId: c.get('requestId'), path: c.req.path, dependency: what, error: innermost(err) }));
    const message = what === 'Redis' ? 'Carts are temporarily unavailable. Try again shortly.' : 'Prices are temporarily unavailable. Try again shortly.';
    throw unavailable(message, RETRY_AFTER_SECONDS);
  }
}

/** The caller as the cart store sees it: the signed-in user's id, or '' for a guest. */
async function actorOf(c: Context<AppEnv>): Promise<string> {
  return (await c.var.shopper.session())?.userId ?? '';
}

/** Counts a write against the cart's `cart_write` limit. */
const limitCartWrites = rateLimit('cart_write', (c) => c.req.param('id') ?? '');

const cartNotFound = () => notFound('No such cart. It may have expired after 30 days without use.');

/** The JSON answer: the cart with its priced lines, promotions and totals. Never cached anywhere. */
function cartBody(c: Context<AppEnv>, cart: StoredCart, quote: Quote) {
  c.header('Cache-Control', 'no-store');
  const region = REGIONS[cart.region];
  const q = quoteFields(region, quote);
  return { id: cart.id, region: cart.region, createdAt: cart.createdAt, subtotal: quote.priced.subtotal, ...q };
}

/** Quotes a cart from the origin (a read handle: replica-eligible) for the cart's own region, with its code. */
async function price(c: Context<AppEnv>, cart: StoredCart, known?: Awaited<ReturnType<typeof loadVariantFacts>>, code = cart.code ?? null): Promise<Quote> {
  return dependency(c, 'Postgres', quoteCart(c.var.services.db.read, REGIONS[cart.region], cart.lines, code, { ...(known ? { known } : {}), memoMs: CART_PROMOTIONS_MEMO_MS }));
}

/** Counts a code attempt against the client address's `promotion_code` limit. */
const limitCodeAttempts = rateLimit('promotion_code', (c) => clientIp(c));

/** Maps a refused change to its error. */
function refused(change: Exclude<CartChange, { ok: true }>, variantId: string, requested?: number): never {
  switch (change.reason) {
    case 'not_found':
      throw cartNotFound();
    case 'no_item':
      throw notFound(`The cart has no item "${variantId.slice(0, 64)}".`);
    case 'quantity_limit':
      throw new ApiError(
        422,
        'quantity_limit',
        `A line may hold at most ${MAX_LINE_QUANTITY}; the cart already has ${change.currentQuantity} of this item.`,
        { variantId, quantity: change.currentQuantity, requested, max: MAX_LINE_QUANTITY },
      );
    case 'cart_full':
      throw new ApiError(422, 'cart_full', `A cart holds at most ${MAX_LINES} different items.`, { maxLines: MAX_LINES });
  }
}

/** An empty body (even with a JSON content type) counts as `{}` for the optional create body. */
const emptyBodyIsEmptyObject: MiddlewareHandler<AppEnv> = async (c, next) => {
  if (c.req.header('content-type') && (await c.req.text()).trim() === '') {
    // Hono caches the body as a promise per type; JSON parsing reads the cached text.
    (c.req.bodyCache as { text?: Promise<string> }).text = Promise.resolve('{}');
  }
  await next();
};

const common = {
  400: errorResponse('Invalid body (`invalid_request`), malformed JSON (`invalid_json`) or unknown region'),
  404: errorResponse('No such cart (never created, expired, or not a cart id)'),
  429: errorResponse('Too many writes to this cart (`rate_limited`, with `Retry-After`)'),
  503: errorResponse('Redis or Postgres is down (`unavailable`, with `Retry-After`)'),
} as const;
const cartResponse = (description: string) => ({ description, content: { 'application/json': { schema: CartSchema } } });

export const cartRoutes = createRouter()
  .openapi(
    createRoute({
      method: 'post',
      path: '/carts',
      tags: ['Storefront'],
      summary: "Creates an empty cart in the request's region",
      description: "Signed in, the cart belongs to the account (only its session can use it) and becomes the account's cart.",
      middleware: [emptyBodyIsEmptyObject] as const,
      request: { body: { required: false, content: { 'application/json': { schema: CreateCartBody } } } },
      responses: {
        201: cartResponse('The new, empty cart'),
        400: common[400],
        503: common[503],
      },
    }),
    async (c) => {
      c.req.valid('json');
      const region = c.var.region;
      const cart = await dependency(c, 'Redis', createCart(c.var.services.redis, region.code, await actorOf(c)));
      const empty = quoteOf(region, priceLines(region, [], new Map()), new Map(), { promotions: [], shipping: null }, null);
      return c.json(cartBody(c, cart, empty), 201);
    },
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/carts/{id}',
      tags: ['Storefront'],
      summary: "A cart, priced from the origin for the cart's region",
      request: { params: CartIdParam },
      responses: {
        200: cartResponse('The cart'),
        404: common[404],
        503: common[503],
      },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      if (!isCartId(id)) throw cartNotFound();
      const cart = await dependency(c, 'Redis', readCart(c.var.services.redis, id, await actorOf(c)));
      if (!cart) throw cartNotFound();
      return c.json(cartBody(c, cart, await price(c, cart)), 200);
    },
  )
  .openapi(
    createRoute({
      method: 'post',
      path: '/carts/{id}/items',
      tags: ['Storefront'],
      summary: 'Adds a variant (to its existing line, if any)',
      middleware: [limitCartWrites] as const,
      description: `Quantity 1-${MAX_LINE_QUANTITY}. The variant must be active and priced in the cart's region. A line that would pass ${MAX_LINE_QUANTITY} is 422 \`quantity_limit\`; a ${MAX_LINES + 1}st line is 422 \`cart_full\`; either way nothing changes.`,
      request: { params: CartIdParam, body: { required: true, content: { 'application/json': { schema: AddItemBody } } } },
      responses: {
        200: cartResponse('The cart after the add'),
        ...common,
        422: errorResponse('`unknown_variant` (unknown, archived, or not sold in the cart region), `quantity_limit` or `cart_full`'),
      },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      const { variantId, quantity } = c.req.valid('json');
      if (!isCartId(id)) throw cartNotFound();
      const { redis, db } = c.var.services;
      const actor = await actorOf(c);
      const before = await dependency(c, 'Redis', readCart(redis, id, actor));
      if (!before) throw cartNotFound();
      const region = REGIONS[before.region];
      // One origin query checks the new variant and prices the lines already there.
      const facts = isLineId(variantId)
        ? await dependency(c, 'Postgres', loadVariantFacts(db.read, region, [...before.lines.map((l) => l.variantId), variantId]))
        : new Map();
      const problem = problemOf(facts.get(variantId));
      if (problem) {
        throw new ApiError(422, 'unknown_variant', `No variant "${variantId.slice(0, 64)}" is for sale in ${region.name}.`, {
          variantId: variantId.slice(0, 64),
          reason: problem,
          region: region.code,
        });
      }
      const result = await dependency(c, 'Redis', addLine(redis, id, actor, variantId, quantity, facts.get(variantId)!.amount!));
      if (!result.ok) refused(result, variantId, quantity);
      return c.json(cartBody(c, result.cart, await price(c, result.cart, facts)), 200);
    },
  )
  .openapi(
    createRoute({
      method: 'patch',
      path: '/carts/{id}/items/{itemId}',
      tags: ['Storefront'],
      summary: 'Sets the quantity of a line (0 removes it)',
      middleware: [limitCartWrites] as const,
      request: { params: CartItemParams, body: { required: true, content: { 'application/json': { schema: UpdateItemBody } } } },
      responses: {
        200: cartResponse('The cart after the change'),
        ...common,
        404: errorResponse('No such cart, or no such item in it'),
      },
    }),
    async (c) => {
      const { id, itemId } = c.req.valid('param');
      const { quantity } = c.req.valid('json');
      if (!isCartId(id)) throw cartNotFound();
      if (!isLineId(itemId)) refused({ ok: false, reason: 'no_item' }, itemId);
      const result = await dependency(c, 'Redis', setLineQuantity(c.var.services.redis, id, await actorOf(c), itemId, quantity));
      if (!result.ok) refused(result, itemId);
      return c.json(cartBody(c, result.cart, await price(c, result.cart)), 200);
    },
  )
  .openapi(
    createRoute({
      method: 'delete',
      path: '/carts/{id}/items/{itemId}',
      tags: ['Storefront'],
      summary: 'Removes a line',
      middleware: [limitCartWrites] as const,
      request: { params: CartItemParams },
      responses: {
        200: cartResponse('The cart after the removal'),
        404: errorResponse('No such cart, or no such item in it'),
        429: common[429],
        503: common[503],
      },
    }),
    async (c) => {
      const { id, itemId } = c.req.valid('param');
      if (!isCartId(id)) throw cartNotFound();
      if (!isLineId(itemId)) refused({ ok: false, reason: 'no_item' }, itemId);
      const result = await dependency(c, 'Redis', setLineQuantity(c.var.services.redis, id, await actorOf(c), itemId, 0));
      if (!result.ok) refused(result, itemId);
      return c.json(cartBody(c, result.cart, await price(c, result.cart)), 200);
    },
  )
  .openapi(
    createRoute({
      method: 'post',
      path: '/carts/{id}/promotions',
      tags: ['Storefront'],
      summary: 'Applies a promotion code (replacing any other)',
      middleware: [limitCodeAttempts, limitCartWrites] as const,
      description:
        'Codes are matched without regard to case. A code that does not apply to this cart now is 422 with the reason as `code` (`promotion_not_found`, `promotion_expired`, `promotion_not_started`, `promotion_disabled`, `promotion_not_in_region`, `promotion_exhausted`, `promotion_min_subtotal`, `promotion_not_applicable`, `promotion_not_best`) and nothing changes. Rate limited per client address (`promotion_code`) so codes cannot be guessed. Per-customer limits are checked at checkout, where the buyer is known.',
      request: { params: CartIdParam, body: { required: true, content: { 'application/json': { schema: ApplyCodeBody } } } },
      responses: {
        200: cartResponse('The cart with the code applied'),
        ...common,
        422: errorResponse('The code does not apply (the reason is the error code; `details.code` names it)'),
      },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      const code = normalizeCode(c.req.valid('json').code);
      if (!isCartId(id)) throw cartNotFound();
      const { redis } = c.var.services;
      const actor = await actorOf(c);
      const before = await dependency(c, 'Redis', readCart(redis, id, actor));
      if (!before) throw cartNotFound();
      const quote = await price(c, before, undefined, code);
      const status = quote.evaluation.code!;
      if (!status.applied) throw new ApiError(422, status.reason, status.message, { code });
      const result = await dependency(c, 'Redis', setCode(redis, id, actor, code));
      if (!result.ok) refused(result, code);
      return c.json(cartBody(c, result.cart, quote), 200);
    },
  )
  .openapi(
    createRoute({
      method: 'delete',
      path: '/carts/{id}/promotions/{code}',
      tags: ['Storefront'],
      summary: "Removes the cart's promotion code",
      middleware: [limitCartWrites] as const,
      request: { params: CartCodeParams },
      responses: {
        200: cartResponse('The cart without the code'),
        404: errorResponse('No such cart, or the cart does not carry that code'),
        429: common[429],
        503: common[503],
      },
    }),
    async (c) => {
      const { id, code } = c.req.valid('param');
      if (!isCartId(id)) throw cartNotFound();
      const normalized = normalizeCode(code).slice(0, 40);
      const result = await dependency(c, 'Redis', setCode(c.var.services.redis, id, await actorOf(c), '', normalized));
      if (!result.ok) {
        if (result.reason === 'no_item') throw notFound(`The cart has no code "${normalized}".`);
        refused(result, normalized);
      }
      return c.json(cartBody(c, result.cart, await price(c, result.cart)), 200);
    },
  );
