/**
 * Checkout API: `POST /api/checkout` hands the request to the `Checkout`
 * Durable Object of its id and answers 202 at once; the saga runs in the
 * object (durable-objects/checkout.ts) and `GET /api/checkout/:id` follows it.
 *
 * The checkout id is derived from the Idempotency-Key (an HMAC under
 * SIGNING_SECRET), so every retry of a request, concurrent or not, reaches
 * the same object, which compares the request body and answers with the same
 * checkout or a 409.
 */
import { createRoute, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import type { CheckoutRequest, CheckoutState } from '../../durable-objects/checkout';
import { ApiError, invalidRequest, notFound } from '../lib/errors';
import { sha256Hex } from '../lib/hash';
import { base32 } from '../lib/ids';
import { rememberWrite } from '../lib/read-your-writes';
import { createRouter, errorResponse } from '../lib/router';
import { clientIp, enforceRateLimit, rateLimitConfig } from '../middleware/rate-limit';
import { presentedTickets } from '../sales/routes';
import { deviceOf } from '../sales/tickets';
import type { AppEnv } from '../types';

const encoder = new TextEncoder();

/** Body of `POST /api/checkout`; the checkout page validates its form with it too. */
export const CheckoutBody = z
  .object({
    cartId: z.string().min(1).max(100),
    email: z.email().max(254),
    shippingAddress: z
      .object({
        name: z.string().trim().min(1).max(200),
        line1: z.string().trim().min(1).max(300),
        line2: z.string().trim().max(300).optional(),
        city: z.string().trim().min(1).max(100),
        postalCode: z.string().trim().min(1).max(20),
        country: z.string().regex(/^[A-Z]{2}$/, 'ISO 3166-1 alpha-2, e.g. SG'),
      })
      .strict(),
    payment: z
      .object({
        method: z.literal('card'),
        token: z.string().min(1).max(200).openapi({ description: 'Card token from the payment provider (simulator: tok_ok, tok_decline, tok_slow, tok_flaky)', example: 'tok_ok' }),
      })
      .strict(),
  })
  .strict()
  .openapi('CheckoutRequest');

const CheckoutStateSchema = z
  .object({
    checkoutId: z.string(),
    status: z.enum(['pending', 'reserved', 'paid', 'confirmed', 'failed']),
    orderId: z.string().optional(),
    orderToken: z.string().optional().openapi({ description: 'Lets the buyer read the order (`?token=` or `x-order-token`)' }),
    reason: z.string().optional().openapi({ description: 'Why it failed: out_of_stock, payment_declined, payment_failed, expired, empty_cart, cart_not_found, unavailable_items, order_rejected (the database refused the order itself; nothing charged); in a flash sale also not_admitted (no admitted queue ticket for the sale), admission_expired, sale_not_started, cap_exceeded (more than the sale allows one shopper)' }),
  })
  .openapi('CheckoutState');

/** JSON with object keys sorted, so equal bodies hash equal whatever their key order. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

/** The checkout id an idempotency key maps to: unguessable without the secret, the same every time. */
export async function checkoutIdFor(secret: string, idempotencyKey: string): Promise<string> {
  const key = await crypto.subtle.importKey('raw', encoder.encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const mac = new Uint8Array(await crypto.subtle.sign('HMAC', key, encoder.encode(`checkout:${idempotencyKey}`)));
  return `chk_${base32(mac.subarray(0, 16))}`;
}

const CHECKOUT_ID = /^chk_[0-9a-hjkmnp-tv-z]{26}$/;

/**
 * The checkout of Idempotency-Key `key`. During a SIGNING_SECRET rotation a
 * key whose checkout was started under the previous secret maps to that
 * checkout, so a client retrying across the rotation gets its checkout back
 * instead of a second reservation and a second charge.
 */
async function checkoutIdOf(c: Context<AppEnv>, key: string): Promise<string> {
  const current = await checkoutIdFor(c.env.SIGNING_SECRET, key);
  if (!c.env.SIGNING_SECRET_PREVIOUS) return current;
  const previous = await checkoutIdFor(c.env.SIGNING_SECRET_PREVIOUS, key);
  const started = await c.env.CHECKOUT.get(c.env.CHECKOUT.idFromName(previous)).status();
  return started ? previous : current;
}

/** A valid checkout request, as {@link CheckoutBody} parses it. */
export type CheckoutInput = z.infer<typeof CheckoutBody>;

/**
 * Starts (or finds again) the checkout of `key`: the buyer from the session,
 * the id from the key, the rate limit for new checkouts only, then the
 * Durable Object. Shared by `POST /api/checkout` and the checkout page.
 * Throws 409 `idempotency_conflict` for the same key with another body.
 */
export async function startCheckout(c: Context<AppEnv>, key: string, body: CheckoutInput): Promise<{ state: CheckoutState; created: boolean }> {
  const session = await c.var.shopper.session();
  // A forged ticket sent by the client, or one from another session, is refused here (403) before anything starts.
  const tickets = await presentedTickets(c, undefined, 'skip');
  const device = deviceOf(c);
  // The buyer comes from the session only: a client-sent userId is an unknown field (400).
  const purchase = { ...body, email: body.email.trim().toLowerCase(), ...(session ? { userId: session.userId } : {}) };
  const request: CheckoutRequest = {
    ...purchase,
    shopper: { ...(device ? { device } : {}), ip: clientIp(c) },
    ...(tickets.length ? { tickets: tickets.map((t) => ({ saleId: t.s, region: t.r, shard: t.q, ticketId: t.t })) } : {}),
  };
  const checkoutId = await checkoutIdOf(c, key);
  const stub = c.env.CHECKOUT.get(c.env.CHECKOUT.idFromName(checkoutId), { locationHint: c.var.region.locationHint });
  // Only new checkouts count against the limit: a retry of one already
  // started must get its checkout back (shared/API.md), never a 429.
  if (rateLimitConfig(c.env).enabled && !(await stub.status())) {
    await enforceRateLimit(c, 'checkout', session ? `user:${session.userId}` : `ip:${clientIp(c)}`);
  }
  // The same purchase from another address or with a fresh ticket is still the same checkout.
  const result = await stub.start(checkoutId, await sha256Hex(canonical(purchase)), request);
  if (!result.ok) {
    throw new ApiError(409, 'idempotency_conflict', 'This Idempotency-Key was used with a different request body.');
  }
  return { state: await shownState(c, result.state), created: result.created };
}

/**
 * Where checkout `checkoutId` is, or null for an id that names no checkout.
 * Once it is confirmed, the answer pins the shopper's reads to the order's
 * writes (read-your-writes), so the order shows at once wherever the
 * shopper looks next.
 */
export async function checkoutState(c: Context<AppEnv>, checkoutId: string): Promise<CheckoutState | null> {
  if (!CHECKOUT_ID.test(checkoutId)) return null;
  const state = await c.env.CHECKOUT.get(c.env.CHECKOUT.idFromName(checkoutId)).status();
  return state ? shownState(c, state) : null;
}

/** The state as shoppers see it; its internal WAL position becomes the read-your-writes cookie. */
async function shownState(c: Context<AppEnv>, state: CheckoutState): Promise<CheckoutState> {
  const { readAfter, ...shown } = state;
  if (readAfter) await rememberWrite(c, readAfter);
  return shown;
}

export const checkoutRoutes = createRouter()
  .openapi(
    createRoute({
      method: 'post',
      path: '/checkout',
      tags: ['Storefront'],
      summary: 'Starts a checkout of a cart; the outcome shows in its status',
      description:
        'Signed in, the order belongs to the account (it shows in `GET /api/me/orders`) and only the account\'s own or a guest cart can be bought; a cart of another account fails as `cart_not_found`. Rate limited per account, else per client IP (`checkout`).',
      request: {
        headers: z.object({ 'idempotency-key': z.string().optional().openapi({ description: 'Required, 1-255 characters' }) }),
        body: { required: true, content: { 'application/json': { schema: CheckoutBody } } },
      },
      responses: {
        202: { description: 'Accepted; follow `GET /api/checkout/{checkoutId}`', content: { 'application/json': { schema: CheckoutStateSchema } } },
        200: { description: 'The same request again: the same checkout', content: { 'application/json': { schema: CheckoutStateSchema } } },
        400: errorResponse('Invalid body or Idempotency-Key'),
        403: errorResponse('A queue ticket this store did not issue, expired, or issued to another session (`invalid_ticket`)'),
        409: errorResponse('Idempotency-Key reused with a different body (`idempotency_conflict`)'),
        429: errorResponse('Too many checkouts (`rate_limited`, with `Retry-After`)'),
      },
    }),
    async (c) => {
      const key = c.req.header('idempotency-key');
      if (!key || key.length > 255) {
        throw invalidRequest('The Idempotency-Key header is required (1-255 characters).', [
          { in: 'header', field: 'idempotency-key', message: key ? 'Longer than 255 characters.' : 'Required.' },
        ]);
      }
      const result = await startCheckout(c, key, c.req.valid('json'));
      return c.json(result.state, result.created ? 202 : 200);
    },
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/checkout/{checkoutId}',
      tags: ['Storefront'],
      summary: 'Where a checkout is: pending, reserved, paid, confirmed or failed',
      request: { params: z.object({ checkoutId: z.string().max(64) }) },
      responses: {
        200: { description: 'The checkout', content: { 'application/json': { schema: CheckoutStateSchema } } },
        404: errorResponse('Unknown checkout'),
      },
    }),
    async (c) => {
      const { checkoutId } = c.req.valid('param');
      const state = await checkoutState(c, checkoutId);
      if (!state) throw notFound('No such checkout.');
      c.header('cache-control', 'no-store');
      return c.json(state, 200);
    },
  );
