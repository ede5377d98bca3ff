/**
 * Shopper and merchant steps for end-to-end tests in workerd: make a stocked
 * product, fill a cart, check out, follow the checkout, look at the payment
 * simulator and the origin.
 */
import { env, exports } from 'cloudflare:workers';
import { sql } from 'drizzle-orm';
import { expect, inject } from 'vitest';
import { createDatabase } from '../../db/client';
import { randomToken } from '../../workers/lib/ids';

const fx = inject('seedFixtures');
// The simulator's own address: the Worker's may run through a fault proxy.
const simUrl = env.TEST_PAYMENT_SIM_URL;
const simKey = env.PAYMENT_API_KEY;

/** Calls the Worker. */
export const call = (path: string, init?: RequestInit) => exports.default.fetch(new Request(`http://pasar.test${path}`, init));

/** A JSON request in Singapore. */
export const json = (method: string, body: unknown, headers: Record<string, string> = {}) => ({
  method,
  headers: { 'content-type': 'application/json', 'x-region': 'sg', ...headers },
  body: JSON.stringify(body),
});

/** Calls the admin API with the owner token. */
export const admin = (path: string, method: string, body?: unknown) =>
  call(path, {
    method,
    headers: { authorization: `Bearer ${env.ADMIN_BOOTSTRAP_TOKEN}`, 'content-type': 'application/json' },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });

/** A fresh product with one variant priced in sg, with `stock` units received there (split over `shards`). */
export async function stockedVariant(stock: number, amount = 2500, shards = 1): Promise<{ sku: string; variantId: string }> {
  const sku = `E2E-${randomToken(6).toUpperCase()}`;
  const res = await admin('/admin/api/products', 'POST', {
    title: `Checkout test sambal ${sku}`,
    category: fx.busiestCategorySlug,
    variants: [{ sku, title: '200 g jar', prices: { sg: { amount } } }],
  });
  expect(res.status).toBe(201);
  const variantId = (await res.json<any>()).variants[0].id as string;
  expect((await admin(`/admin/api/inventory/${sku}`, 'PUT', { region: 'sg', quantity: stock })).status).toBe(200);
  if (shards > 1) expect((await admin(`/admin/api/inventory/${sku}/sharding`, 'PUT', { region: 'sg', shards })).status).toBe(200);
  return { sku, variantId };
}

/** A new cart in Singapore holding `quantity` of `variantId`. */
export async function cartWith(variantId: string, quantity: number): Promise<string> {
  const cart = await (await call('/api/carts', json('POST', {}))).json<{ id: string }>();
  const add = await call(`/api/carts/${cart.id}/items`, json('POST', { variantId, quantity }));
  expect(add.status).toBe(200);
  return cart.id;
}

/** A valid checkout body for `cartId`, paying with the simulator's `token`. */
export function checkoutBody(cartId: string, token = 'tok_ok') {
  return {
    cartId,
    email: 'Siti@Example.com',
    shippingAddress: { name: 'Siti Rahman', line1: '1 Orchard Road', city: 'Singapore', postalCode: '238823', country: 'SG' },
    payment: { method: 'card', token },
  };
}

/** `POST /api/checkout` with an Idempotency-Key. */
export const startCheckout = (body: unknown, key: string) => call('/api/checkout', json('POST', body, { 'idempotency-key': key }));

/** Follows a checkout until it is confirmed or failed. */
export async function settle(checkoutId: string, ms = 25_000): Promise<any> {
  const deadline = Date.now() + ms;
  for (;;) {
    const state = await (await call(`/api/checkout/${checkoutId}`)).json<any>();
    if (state.status === 'confirmed' || state.status === 'failed') return state;
    if (Date.now() > deadline) throw new Error(`checkout still ${state.status} after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The simulator's authorizations for a checkout (its reference). */
export async function simAuthorizations(reference: string): Promise<any[]> {
  const res = await fetch(`${simUrl}/v1/authorizations?reference=${encodeURIComponent(reference)}`, { headers: { authorization: `Bearer ${simKey}` } });
  const body = await res.json<any>();
  return Array.isArray(body) ? body : (body.data ?? body.items ?? []);
}

/** Orders written for a checkout. */
export async function ordersFor(checkoutId: string): Promise<{ id: string; status: string }[]> {
  const db = createDatabase(env);
  try {
    const { rows } = await db.primary.execute<{ id: string; status: string }>(sql`select id, status from orders where checkout_id = ${checkoutId}`);
    return rows;
  } finally {
    await db.close();
  }
}
