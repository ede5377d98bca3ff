import { describe, expect, it } from 'vitest';
import { REGIONS } from '../../db/regions';
import { formatMoney } from '../lib/money';
import { stockedVariant } from '../../test/workers/shop';
import { PAGE_CSP } from './page';
import { ORIGIN, pageClient } from './test-helpers';

const sgd = (amount: number) => formatMoney({ amount, currency: 'SGD' }, REGIONS.sg);
const { call, get, post } = pageClient('sg');

/** A browser cart in Singapore holding `quantity` of `variant`: the cookie to send back. */
async function browserCart(variant: string, quantity: number): Promise<string> {
  const res = await post('/cart/items', { variant, quantity: String(quantity) });
  expect(res.status).toBe(303);
  const set = res.headers.getSetCookie().find((c) => c.startsWith('__Host-pasar_cart='))!;
  return set.split(';')[0]!;
}

/** The checkout form's hidden Idempotency-Key. */
async function formKey(cookie: string): Promise<string> {
  const res = await get('/checkout', cookie);
  expect(res.status).toBe(200);
  const key = (await res.text()).match(/<input type="hidden" name="key" value="([^"]+)"\/>/)?.[1];
  expect(key).toBeDefined();
  return key!;
}

const address = { email: 'Siti@Example.com', name: 'Siti Rahman', line1: '1 Orchard Road', line2: '', city: 'Singapore', postalCode: '238823', country: 'SG' };

/** Follows the status page like a browser does (it reloads itself) until it redirects or fails. */
async function follow(location: string, cookie: string, ms = 25_000): Promise<{ res: Response; html: string; sawRefresh: boolean }> {
  const deadline = Date.now() + ms;
  let sawRefresh = false;
  for (;;) {
    const res = await get(location, cookie);
    expect(res.headers.get('cache-control')).toBe('private, no-store');
    if (res.status === 303) return { res, html: '', sawRefresh };
    expect(res.status).toBe(200);
    const html = await res.text();
    if (res.headers.get('refresh') === null) return { res, html, sawRefresh };
    expect(res.headers.get('refresh')).toBe('1');
    expect(html).toContain('This page updates by itself.');
    sawRefresh = true;
    if (Date.now() > deadline) throw new Error(`checkout still running after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('GET /checkout', () => {
  it('shows the lines, the form with the region country preselected, the simulator tokens and a fresh key per render', async () => {
    const { variantId } = await stockedVariant(5, 1250);
    const cookie = await browserCart(variantId, 2);
    const res = await get('/checkout', cookie);
    expect(res.headers.get('cache-control')).toBe('private, no-store');
    expect(res.headers.get('content-security-policy')).toBe(PAGE_CSP);
    const html = await res.text();
    expect(html).toContain('<form class="checkout-form" method="post" action="/checkout"');
    for (const name of ['email', 'name', 'line1', 'city', 'postalCode']) expect(html).toContain(`name="${name}"`);
    expect(html).toContain('<option value="SG" selected="">Singapore</option>');
    for (const token of ['tok_ok', 'tok_decline', 'tok_slow', 'tok_flaky']) expect(html).toContain(`<option value="${token}"`);
    expect(html).toContain(sgd(2500));
    expect(await formKey(cookie)).not.toBe(await formKey(cookie));
  });

  it('says there is nothing to check out without a cart', async () => {
    const html = await (await get('/checkout')).text();
    expect(html).toContain('Your cart is empty: there is nothing to check out.');
    expect(html).not.toContain('name="key"');
  });
});

describe('POST /checkout', () => {
  it('with tok_ok: 303 to the status page, which follows the saga to the order confirmation; a double submit is the same checkout', async () => {
    const { variantId } = await stockedVariant(5, 1250);
    const cookie = await browserCart(variantId, 2);
    const key = await formKey(cookie);
    const first = await post('/checkout', { ...address, token: 'tok_ok', key }, cookie);
    expect(first.status).toBe(303);
    expect(first.headers.get('cache-control')).toBe('private, no-store');
    const location = first.headers.get('location')!;
    expect(location).toMatch(/^\/checkout\/chk_[0-9a-z]{26}$/);
    const second = await post('/checkout', { ...address, token: 'tok_ok', key }, cookie);
    expect(second.status).toBe(303);
    expect(second.headers.get('location')).toBe(location);

    const { res } = await follow(location, cookie);
    expect(res.status).toBe(303);
    const orderUrl = res.headers.get('location')!;
    expect(orderUrl).toMatch(/^\/orders\/ord_[0-9a-z]{26}\?token=.+$/);

    const order = await get(orderUrl);
    expect(order.status).toBe(200);
    expect(order.headers.get('cache-control')).toBe('private, no-store');
    const html = await order.text();
    const orderId = orderUrl.match(/ord_[0-9a-z]{26}/)![0];
    const token = new URL(orderUrl, ORIGIN).searchParams.get('token')!;
    const api = await (await call(`/api/orders/${orderId}?token=${encodeURIComponent(token)}`)).json<any>();
    expect(html).toContain(`Thank you! Order ${api.number}`);
    expect(html).toContain('siti@example.com');
    expect(html).toContain(api.lines[0].title);
    expect(html).toContain(`<td>2</td><td>${sgd(1250)}</td><td>${sgd(2500)}</td>`);
    expect(html).toContain(sgd(api.tax.amount));
    expect(html).toContain('1 Orchard Road');
    expect(html).toContain('238823 Singapore');

    // The order is only for the token holder (or its account).
    expect((await get(`/orders/${orderId}`)).status).toBe(404);
    expect((await get(`/orders/${orderId}?token=nope`)).status).toBe(404);
    // A confirmed checkout empties the cart.
    expect(await (await get('/cart', cookie)).text()).toContain('Your cart is empty.');
  });

  it('with tok_decline: the status page says the card was declined, links back, and the cart keeps its lines', async () => {
    const { variantId } = await stockedVariant(5, 1250);
    const cookie = await browserCart(variantId, 3);
    const res = await post('/checkout', { ...address, token: 'tok_decline', key: await formKey(cookie) }, cookie);
    expect(res.status).toBe(303);
    const { res: last, html } = await follow(res.headers.get('location')!, cookie);
    expect(last.status).toBe(200);
    expect(html).toContain('Your order did not go through');
    expect(html).toContain('Your card was declined. Nothing was charged.');
    expect(html).toContain('href="/cart"');
    const cart = await (await get('/cart', cookie)).text();
    expect(cart).toMatch(new RegExp(`id="qty-${variantId}"[^>]*value="3"`));
  });

  it('while the checkout runs (tok_slow), the status page reloads itself with a Refresh header, no script', async () => {
    const { variantId } = await stockedVariant(5);
    const cookie = await browserCart(variantId, 1);
    const res = await post('/checkout', { ...address, token: 'tok_slow', key: await formKey(cookie) }, cookie);
    expect(res.status).toBe(303);
    const status = await get(res.headers.get('location')!, cookie);
    expect(status.status).toBe(200);
    expect(status.headers.get('refresh')).toBe('1');
    expect(status.headers.get('content-security-policy')).toBe(PAGE_CSP);
    const html = await status.text();
    expect(html).toContain('Placing your order');
    expect(html).not.toContain('<script');
    const { res: done } = await follow(res.headers.get('location')!, cookie);
    expect(done.status).toBe(303);
  });

  it('re-renders the form with messages and the typed values for invalid fields, and starts nothing', async () => {
    const { variantId } = await stockedVariant(5);
    const cookie = await browserCart(variantId, 1);
    const key = await formKey(cookie);
    const res = await post('/checkout', { ...address, email: 'not-an-email', postalCode: '', token: 'tok_ok', key }, cookie);
    expect(res.status).toBe(400);
    expect(res.headers.get('cache-control')).toBe('private, no-store');
    const html = await res.text();
    expect(html).toContain('Enter an email address, like name@example.com.');
    expect(html).toContain('Enter the postal code (up to 20 characters).');
    expect(html).toContain('value="not-an-email"');
    expect(html).toContain('value="Siti Rahman"');
    expect(html).toContain(`name="key" value="${key}"`);
  });

  it('refuses a cross-origin post with 403', async () => {
    const { variantId } = await stockedVariant(5);
    const cookie = await browserCart(variantId, 1);
    const res = await post('/checkout', { ...address, token: 'tok_ok', key: await formKey(cookie) }, cookie, 'https://evil.example');
    expect(res.status).toBe(403);
    expect(res.headers.get('location')).toBeNull();
  });

  it('answers an unknown checkout with a private 404 page', async () => {
    const res = await get('/checkout/chk_00000000000000000000000000');
    expect(res.status).toBe(404);
    expect(res.headers.get('cache-control')).toBe('private, no-store');
    expect(res.headers.get('content-type')).toBe('text/html; charset=UTF-8');
  });
});
