import { afterAll, describe, expect, it } from 'vitest';
import { expectHostCookie } from '../auth/test-helpers';
import { REGIONS } from '../../db/regions';
import { TW_PRICE, admin, archiveCreatedProducts, createProduct } from '../carts/test-helpers';
import { formatMoney } from '../lib/money';
import { PAGE_CSP } from './page';
import { ORIGIN, pageClient } from './test-helpers';

afterAll(archiveCreatedProducts);

const tw = (amount: number) => formatMoney({ amount, currency: 'TWD' }, REGIONS.tw);
const { get, post, call } = pageClient('tw');

/** The `name=value` of the cart cookie a response sets. */
function cartCookieOf(res: Response): string {
  const set = res.headers.getSetCookie().find((c) => c.startsWith('__Host-pasar_cart='));
  expect(set).toBeDefined();
  return set!.split(';')[0]!;
}

/** Adds `quantity` of `variant` with no cart yet; returns the cookie to send back. */
async function startCart(variant: string, quantity = 1): Promise<string> {
  const res = await post('/cart/items', { variant, quantity: String(quantity) });
  expect(res.status).toBe(303);
  expect(res.headers.get('location')).toBe('/cart');
  return cartCookieOf(res);
}

/** The quantity input of a cart line. */
const quantityOf = (html: string, variantId: string) => html.match(new RegExp(`id="qty-${variantId}"[^>]*value="(\\d+)"`))?.[1];

describe('product page', () => {
  it('has a real add-to-cart form: the variant, a quantity 1-99, no "coming soon"', async () => {
    const product = await createProduct({ count: 2 });
    await admin(`/admin/api/inventory/${product.variants[0]!.sku}`, 'PUT', { region: 'tw', quantity: 5 });
    const html = await (await get(`/p/${product.slug}`)).text();
    expect(html).toContain('<form class="buy" method="post" action="/cart/items">');
    expect(html).toMatch(/<input type="radio" name="variant" id="variant-[^"]+" value="[^"]+"/);
    expect(html).toMatch(/<input id="buy-quantity" type="number" name="quantity" value="1" min="1" max="99"/);
    expect(html).toContain('<button type="submit" class="button">Add to cart</button>');
    expect(html).not.toContain('coming soon');
  });
});

describe('POST /cart/items and GET /cart', () => {
  it('makes a cart, sets an HttpOnly Secure SameSite=Lax __Host- cookie, and shows the line priced on the server', async () => {
    const product = await createProduct();
    const variant = product.variants[0]!.id;
    const res = await post('/cart/items', { variant, quantity: '2' });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/cart');
    expect(res.headers.get('cache-control')).toBe('private, no-store');
    expectHostCookie(res.headers.getSetCookie().find((c) => c.startsWith('__Host-pasar_cart=')), 'pasar_cart', /^cart_[0-9a-z]{32}$/);

    const page = await get('/cart', cartCookieOf(res));
    expect(page.status).toBe(200);
    expect(page.headers.get('cache-control')).toBe('private, no-store');
    expect(page.headers.get('content-security-policy')).toBe(PAGE_CSP);
    expect(page.headers.get('etag')).toBeNull();
    const html = await page.text();
    expect(html).toContain(`Cart Test Kopi`);
    expect(quantityOf(html, variant)).toBe('2');
    expect(html).toContain(`${tw(TW_PRICE)} each`);
    expect(html).toContain(tw(TW_PRICE * 2));
    expect(html).toContain(`<dt>Subtotal</dt><dd>${tw(TW_PRICE * 2)}</dd>`);
    expect(html).toContain(`<dt>Shipping</dt><dd>Free</dd>`);
    expect(html).toContain(`<dt>Total</dt><dd><strong>${tw(TW_PRICE * 2)}</strong></dd>`);
    expect(html).toContain('href="/checkout"');
    expect(html).not.toContain('<script');
  });

  it('adds to the same line of the same cart, and the cookie keeps the cart', async () => {
    const product = await createProduct();
    const variant = product.variants[0]!.id;
    const cookie = await startCart(variant, 1);
    const again = await post('/cart/items', { variant, quantity: '3' }, cookie);
    expect(again.status).toBe(303);
    expect(again.headers.getSetCookie().some((c) => c.startsWith('__Host-pasar_cart='))).toBe(false);
    expect(quantityOf(await (await get('/cart', cookie)).text(), variant)).toBe('4');
  });

  it('changes a quantity and removes a line', async () => {
    const product = await createProduct({ count: 2 });
    const [a, b] = product.variants.map((v) => v.id) as [string, string];
    const cookie = await startCart(a, 1);
    expect((await post('/cart/items', { variant: b, quantity: '1' }, cookie)).status).toBe(303);

    const change = await post(`/cart/items/${a}`, { quantity: '7' }, cookie);
    expect(change.status).toBe(303);
    expect(change.headers.get('location')).toBe('/cart');
    let html = await (await get('/cart', cookie)).text();
    expect(quantityOf(html, a)).toBe('7');
    expect(html).toContain(tw(TW_PRICE * 8));

    // The remove button posts quantity 0.
    expect(html).toContain(`<form method="post" action="/cart/items/${a}"><input type="hidden" name="quantity" value="0"/>`);
    expect((await post(`/cart/items/${a}`, { quantity: '0' }, cookie)).status).toBe(303);
    html = await (await get('/cart', cookie)).text();
    expect(quantityOf(html, a)).toBeUndefined();
    expect(quantityOf(html, b)).toBe('1');

    expect((await post(`/cart/items/${b}`, { quantity: '0' }, cookie)).status).toBe(303);
    expect(await (await get('/cart', cookie)).text()).toContain('Your cart is empty.');
  });

  it('says so when a line would pass 99 (quantity_limit), as a page, not JSON', async () => {
    const product = await createProduct();
    const variant = product.variants[0]!.id;
    const cookie = await startCart(variant, 98);
    const res = await post('/cart/items', { variant, quantity: '2' }, cookie);
    expect(res.status).toBe(422);
    expect(res.headers.get('content-type')).toBe('text/html; charset=UTF-8');
    expect(res.headers.get('cache-control')).toBe('private, no-store');
    const html = await res.text();
    expect(html).toContain('role="alert"');
    expect(html).toContain('You already have 98 of this item in your cart, and one item can be bought at most 99 at a time. Nothing was added.');
    expect(quantityOf(html, variant)).toBe('98');
  });

  it('refuses a bad quantity and an unknown or unsold variant with a message, and makes no cart for them', async () => {
    const product = await createProduct();
    for (const quantity of ['0', '100', '1.5', 'x']) {
      const res = await post('/cart/items', { variant: product.variants[0]!.id, quantity });
      expect(res.status).toBe(400);
      expect(await res.text()).toContain('The quantity must be a whole number from 1 to 99.');
    }
    const unknown = await post('/cart/items', { variant: 'var_doesnotexist', quantity: '1' });
    expect(unknown.status).toBe(422);
    expect(unknown.headers.getSetCookie()).toEqual([]);
    expect(await unknown.text()).toContain('This item no longer exists. Nothing was added.');

    const sgOnly = await createProduct({ prices: { sg: { amount: 1000 } } });
    const unsold = await post('/cart/items', { variant: sgOnly.variants[0]!.id, quantity: '1' });
    expect(unsold.status).toBe(422);
    expect(await unsold.text()).toContain('This item is not sold in Taiwan. Nothing was added.');
  });

  it('shows a price change since the line was added, and an item no longer sold', async () => {
    const repriced = await createProduct();
    const gone = await createProduct();
    const cookie = await startCart(repriced.variants[0]!.id, 1);
    expect((await post('/cart/items', { variant: gone.variants[0]!.id, quantity: '1' }, cookie)).status).toBe(303);
    expect((await admin(`/admin/api/products/${repriced.id}`, 'PATCH', { variants: [{ sku: repriced.variants[0]!.sku, prices: { tw: { amount: 650 } } }] })).status).toBe(200);
    expect((await admin(`/admin/api/products/${gone.id}`, 'DELETE')).status).toBeLessThan(300);
    const html = await (await get('/cart', cookie)).text();
    expect(html).toContain(`The price went up since you added this: it was ${tw(TW_PRICE)}, it is now ${tw(650)}.`);
    expect(html).toContain('This item is no longer sold. Remove it to check out the rest.');
    expect(html).toContain(`<dt>Subtotal</dt><dd>${tw(650)}</dd>`);
    expect(html).not.toContain('href="/checkout"');
  });

  it('shows an empty cart without a cookie, privately', async () => {
    const res = await get('/cart');
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('private, no-store');
    expect(await res.text()).toContain('Your cart is empty.');
  });

  it('refuses a cross-origin form post with 403 and changes nothing', async () => {
    const product = await createProduct();
    const variant = product.variants[0]!.id;
    const cookie = await startCart(variant, 1);
    const res = await post('/cart/items', { variant, quantity: '5' }, cookie, 'https://evil.example');
    expect(res.status).toBe(403);
    expect(res.headers.get('content-type')).toBe('text/html; charset=UTF-8');
    const removal = await post(`/cart/items/${variant}`, { quantity: '0' }, cookie, 'https://evil.example');
    expect(removal.status).toBe(403);
    expect(quantityOf(await (await get('/cart', cookie)).text(), variant)).toBe('1');
  });
});

describe('POST /cart/code', () => {
  it('applies a code: the cart page shows the promotion, shipping and the total; a bad code says why; an empty code removes it', async () => {
    const product = await createProduct();
    const cookie = await startCart(product.variants[0]!.id, 2);
    const code = `PAGE${Math.random().toString(36).slice(2, 8).toUpperCase()}`;
    const made = await admin('/admin/api/promotions', 'POST', { title: 'Ten percent off', code, kind: 'percentage', percentBps: 1000, startsAt: new Date(Date.now() - 60_000).toISOString() });
    expect(made.status).toBe(201);

    const applied = await post('/cart/code', { code: code.toLowerCase() }, cookie);
    expect(applied.status).toBe(303);
    const html = await (await get('/cart', cookie)).text();
    const discount = Math.floor((2 * TW_PRICE * 1000 + 5000) / 10000);
    expect(html).toContain(`Ten percent off (${code})`);
    expect(html).toContain(`−${tw(discount)}`);
    expect(html).toContain(tw(2 * TW_PRICE - discount));
    expect(html).toMatch(new RegExp(`name="code"[^>]*value="${code}"`));

    const bad = await post('/cart/code', { code: 'NO-SUCH-CODE' }, cookie);
    expect(bad.status).toBe(422);
    expect(await bad.text()).toContain('There is no promotion code &quot;NO-SUCH-CODE&quot;.');

    // "Remove code" is a second submit button named `code` with an empty value: the form sends both fields, the button's last.
    const remove = await call('/cart/code', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-region': 'tw', origin: ORIGIN, cookie },
      body: new URLSearchParams([['code', code], ['code', '']]).toString(),
    });
    expect(remove.status).toBe(303);
    expect(await (await get('/cart', cookie)).text()).not.toContain('Ten percent off');
  });
});
