/**
 * The saga counts each checkout's outcome once, to Workers Analytics Engine
 * (workers/lib/metrics.ts). Analytics Engine is a write-only Cloudflare sink
 * with no local reader, so the object's `METRICS` binding is swapped for a
 * recorder here; the cart, Postgres, Redis and the payment simulator are real.
 */
import { env, exports } from 'cloudflare:workers';
import { runInDurableObject } from 'cloudflare:test';
import { describe, expect, inject, it } from 'vitest';
import { randomToken } from '../workers/lib/ids';
import type { Checkout, CheckoutRequest } from './checkout';

const call = (path: string, init?: RequestInit) => exports.default.fetch(new Request(`http://pasar.test${path}`, init));
const json = (method: string, body: unknown) => ({ method, headers: { 'content-type': 'application/json', 'x-region': 'sg' }, body: JSON.stringify(body) });

async function cartWithStock(quantity: number): Promise<string> {
  const sku = `MET-${randomToken(6).toUpperCase()}`;
  const made = await call('/admin/api/products', {
    method: 'POST',
    headers: { authorization: `Bearer ${env.ADMIN_BOOTSTRAP_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ title: `Metrics kopi ${sku}`, category: inject('seedFixtures').busiestCategorySlug, variants: [{ sku, title: '1 kg', prices: { sg: { amount: 1200 } } }] }),
  });
  const product = await made.json<any>();
  if (made.status !== 201) throw new Error(`product: ${made.status} ${JSON.stringify(product)}`);
  await call(`/admin/api/inventory/${sku}`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${env.ADMIN_BOOTSTRAP_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ region: 'sg', quantity: 10 }),
  });
  const cart = await (await call('/api/carts', json('POST', {}))).json<{ id: string }>();
  if (quantity > 0) expect((await call(`/api/carts/${cart.id}/items`, json('POST', { variantId: product.variants[0].id, quantity }))).status).toBe(200);
  return cart.id;
}

/** Runs a checkout to its end in its object with a recording METRICS binding; returns the final state and the points written. */
async function runCheckout(cartId: string, token = 'tok_ok') {
  const checkoutId = `chk_metrics_${randomToken(8)}`;
  const stub = env.CHECKOUT.get(env.CHECKOUT.idFromName(checkoutId));
  const points: AnalyticsEngineDataPoint[] = [];
  const request: CheckoutRequest = {
    cartId,
    email: 'metrics@example.com',
    shippingAddress: { name: 'Ah Kow', line1: '1 Orchard Road', city: 'Singapore', postalCode: '238823', country: 'SG' },
    payment: { method: 'card', token },
  };
  await runInDurableObject(stub, async (instance: Checkout) => {
    const own = instance as unknown as { env: Env };
    Object.defineProperty(instance, 'env', { value: { ...own.env, METRICS: { writeDataPoint: (p?: AnalyticsEngineDataPoint) => void points.push(p!) } }, configurable: true });
    await instance.start(checkoutId, 'metrics-test', request);
  });
  // The saga runs from the object's own alarm (never two at once), in the same instance.
  const deadline = Date.now() + 30_000;
  let state = await stub.status();
  while (Date.now() < deadline) {
    state = await stub.status();
    const done = (await stub.history()).at(-1)?.step === 'done';
    if (done) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return { state: state!, points: points.filter((p) => p.blobs?.[0] === 'checkout') };
}

describe('checkout outcome counter', () => {
  it('counts a confirmed checkout once, with its region', async () => {
    const { state, points } = await runCheckout(await cartWithStock(1));
    expect(state.status).toBe('confirmed');
    expect(points).toHaveLength(1);
    expect(points[0]!.blobs).toEqual(['checkout', 'sg', 'confirmed', '']);
    expect(points[0]!.indexes).toEqual(['checkout']);
    expect(points[0]!.doubles![0]).toBe(1);
  }, 60_000);

  it('counts a declined checkout once, with its reason', async () => {
    const { state, points } = await runCheckout(await cartWithStock(1), 'tok_decline');
    expect(state).toMatchObject({ status: 'failed', reason: 'payment_declined' });
    expect(points.map((p) => p.blobs)).toEqual([['checkout', 'sg', 'failed', 'payment_declined']]);
  }, 60_000);

  it('counts a checkout of an empty cart as failed empty_cart (no region: it never got as far as pricing)', async () => {
    const { state, points } = await runCheckout(await cartWithStock(0));
    expect(state).toMatchObject({ status: 'failed', reason: 'empty_cart' });
    expect(points.map((p) => p.blobs)).toEqual([['checkout', 'unknown', 'failed', 'empty_cart']]);
  }, 60_000);
});
