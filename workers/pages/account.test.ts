import { env } from 'cloudflare:workers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REGIONS } from '../../db/regions';
import { callWith, expectHostCookie, newShopper, req, sessionCookieOf, type SignedIn } from '../auth/test-helpers';
import { admin, api, archiveCreatedProducts, call as callApi, createProduct, testRedis, type TestProduct } from '../carts/test-helpers';
import { randomToken } from '../lib/ids';
import { formatMoney } from '../lib/money';
import { PAGE_CSP } from './page';

const ORIGIN = 'http://pasar.test';
/** A page request as a browser sends it: no redirects followed, region sg. */
const page = (path: string, init: RequestInit = {}) =>
  callApi(path, { redirect: 'manual', ...init, headers: { 'x-region': 'sg', ...(init.headers as Record<string, string> | undefined) } });
/** A form POST from this origin, as the store's own pages send it. */
const form = (fields: Record<string, string>, cookie?: string, headers: Record<string, string> = {}): RequestInit => ({
  method: 'POST',
  redirect: 'manual',
  headers: {
    'content-type': 'application/x-www-form-urlencoded',
    origin: ORIGIN,
    'sec-fetch-site': 'same-origin',
    'x-region': 'sg',
    ...(cookie ? { cookie } : {}),
    ...headers,
  },
  body: new URLSearchParams(fields).toString(),
});
const post = (path: string, init: RequestInit) => callApi(path, init);

const setCookies = (res: Response) => res.headers.getSetCookie();
const cookieNamed = (res: Response, name: string) => setCookies(res).find((c) => c.startsWith(`${name}=`));
const CART = '__Host-pasar_cart';
const SESSION = '__Host-pasar_session';

/** What hono/jsx turns text into. */
const escapeHtml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');

/** Headers every account answer carries. */
function expectPrivate(res: Response) {
  expect(res.headers.get('cache-control')).toBe('private, no-store');
}
function expectPrivatePage(res: Response) {
  expectPrivate(res);
  expect(res.headers.get('content-type')).toBe('text/html; charset=UTF-8');
  expect(res.headers.get('content-security-policy')).toBe(PAGE_CSP);
  expect(res.headers.get('etag')).toBeNull();
}

/** Registers and signs in through the forms; returns the session cookie and the sign-in answer. */
async function signUpAndIn(s = newShopper(), extra: { cookie?: string; next?: string } = {}) {
  const reg = await post('/account/register', form(s));
  expect(reg.status).toBe(303);
  const res = await post('/account/login', form({ email: s.email, password: s.password, ...(extra.next ? { next: extra.next } : {}) }, extra.cookie));
  expect(res.status, await res.clone().text()).toBe(303);
  return { ...s, res, cookie: sessionCookieOf(res) };
}

/** Stocks a fresh sg product through the admin API. */
async function stocked(product: TestProduct, units: number) {
  const res = await admin(`/admin/api/inventory/${product.variants[0]!.sku}`, 'PUT', { region: 'sg', quantity: units });
  expect(res.status).toBe(200);
}

/** Buys one unit through the JSON API with the session cookie, and waits for the order. */
async function buy(shopper: Pick<SignedIn, 'cookie' | 'email'>, variantId: string): Promise<string> {
  const cart = await (await callApi('/api/carts', req('POST', {}, shopper.cookie))).json<any>();
  expect((await callApi(`/api/carts/${cart.id}/items`, req('POST', { variantId, quantity: 1 }, shopper.cookie))).status).toBe(200);
  const body = {
    cartId: cart.id,
    email: shopper.email,
    shippingAddress: { name: 'Siti Rahman', line1: '1 Orchard Road', city: 'Singapore', postalCode: '238823', country: 'SG' },
    payment: { method: 'card', token: 'tok_ok' },
  };
  const started = await callApi('/api/checkout', req('POST', body, shopper.cookie, { 'idempotency-key': randomToken(10) }));
  expect(started.status).toBe(202);
  const { checkoutId } = await started.json<any>();
  for (const deadline = Date.now() + 25_000; ; ) {
    const state = await (await callApi(`/api/checkout/${checkoutId}`)).json<any>();
    if (state.status === 'confirmed') return state.orderId;
    if (state.status === 'failed' || Date.now() > deadline) throw new Error(`checkout ${JSON.stringify(state)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

let product: TestProduct;
beforeAll(async () => {
  product = await createProduct({ count: 2, prices: { sg: { amount: 1500 } } });
  await stocked(product, 20);
});
afterAll(archiveCreatedProducts);

describe('sign-up page', () => {
  it('shows the form with the password rules, labelled, with nothing inline, private', async () => {
    const res = await page('/account/register');
    expect(res.status).toBe(200);
    expectPrivatePage(res);
    const html = await res.text();
    expect(html).toContain('<form class="auth__form" action="/account/register" method="post"');
    expect(html).toContain('At least 8 characters');
    for (const id of ['register-name', 'register-email', 'register-password']) expect(html).toMatch(new RegExp(`<label for="${id}"`));
    expect(html).toMatch(/autocomplete="new-password"/);
    expect(html).not.toMatch(/<script|<style|\sstyle=|\son[a-z]+=/i);
  });

  it('shows errors next to the fields (HTML, not the JSON envelope), keeps what was typed but never the password', async () => {
    const s = newShopper();
    const res = await post('/account/register', form({ name: s.name, email: 'not-an-email', password: 'short' }));
    expect(res.status).toBe(400);
    expectPrivatePage(res);
    const html = await res.text();
    expect(html).toMatch(/<p class="field__error" id="register-email-error">[^<]+<\/p>/);
    expect(html).toContain('<p class="field__error" id="register-password-error">At least 8 characters.</p>');
    expect(html).toContain(`value="${escapeHtml(s.name)}"`);
    expect(html).not.toContain('value="short"');
    expect(html).not.toContain('"error":');
  });

  it('answers a taken email exactly as a new one', async () => {
    const s = newShopper();
    const first = await post('/account/register', form(s));
    const again = await post('/account/register', form({ ...s, name: 'Someone Else', password: 'another-password-123' }));
    for (const res of [first, again]) {
      expect(res.status).toBe(303);
      expect(res.headers.get('location')).toBe('/account/login?registered=1');
      expectPrivate(res);
      expect(setCookies(res)).toEqual([]);
    }
    const notice = await (await page('/account/login?registered=1')).text();
    expect(notice).toContain('If this email was not registered yet, the account is ready: sign in to continue.');
  });
});

describe('sign-in page', () => {
  it('signs in through the form: a new __Host- session cookie (HttpOnly, Secure, SameSite=Lax), then the account page', async () => {
    const s = await signUpAndIn();
    expect(s.res.headers.get('location')).toBe('/account');
    expectPrivate(s.res);
    expectHostCookie(cookieNamed(s.res, SESSION), 'pasar_session', /^ses_[0-9a-z]{52}$/);
    // The same session the API knows.
    expect((await callApi('/api/me', req('GET', undefined, s.cookie))).status).toBe(200);
  });

  it('goes back to a safe `next`, never to another site', async () => {
    const s = newShopper();
    await post('/account/register', form(s));
    for (const [next, to] of [
      ['/orders/ord_123?x=1', '/orders/ord_123?x=1'],
      ['//evil.example/steal', '/'],
      ['https://evil.example/', '/'],
    ] as const) {
      const res = await post('/account/login', form({ email: s.email, password: s.password, next }));
      expect(res.status).toBe(303);
      expect(res.headers.get('location'), next).toBe(to);
    }
    const login = await (await page('/account/login?next=%2Faccount')).text();
    expect(login).toContain('<input type="hidden" name="next" value="/account"/>');
  });

  it('a wrong password or an unknown email: the generic message, 401, no cookie', async () => {
    const s = newShopper();
    await post('/account/register', form(s));
    for (const email of [s.email, `nobody.${randomToken(6)}@example.com`]) {
      const res = await post('/account/login', form({ email, password: 'not-the-password' }, undefined));
      expect(res.status).toBe(401);
      expectPrivatePage(res);
      expect(setCookies(res)).toEqual([]);
      const html = await res.text();
      expect(html).toContain('The email or password is not right.');
      expect(html).toContain(`value="${escapeHtml(email)}"`);
      expect(html).not.toContain('not-the-password');
    }
  });

  it('says how long to wait when rate limited (429 with Retry-After)', async () => {
    const s = newShopper();
    await post('/account/register', form(s));
    const ip = `10.${[1, 2, 3].map(() => Math.floor(Math.random() * 250) + 1).join('.')}`;
    const limits = { RATE_LIMITS: 'on; login_account=2/1h' };
    const attempt = () => callWith(limits, '/account/login', form({ email: s.email, password: 'wrong-password' }, undefined, { 'cf-connecting-ip': ip }));
    expect((await attempt()).status).toBe(401);
    expect((await attempt()).status).toBe(401);
    const res = await attempt();
    expect(res.status).toBe(429);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(await res.text()).toMatch(/Too many attempts\. Try again in \d+ seconds?\./);
    expect(setCookies(res)).toEqual([]);
  });

  it('a friendly 503 page when Redis is down', async () => {
    const s = newShopper();
    await post('/account/register', form(s));
    const res = await callWith({ UPSTASH_REDIS_REST_URL: env.TEST_DEAD_UPSTASH_URL }, '/account/login', form({ email: s.email, password: s.password }));
    expect(res.status).toBe(503);
    expect(res.headers.get('content-type')).toBe('text/html; charset=UTF-8');
    expect(await res.text()).toContain('We are having trouble right now');
    expect(cookieNamed(res, SESSION)).toBeUndefined();
  });

  it('refuses a form posted from another site (403), before anything is checked', async () => {
    const s = newShopper();
    for (const path of ['/account/login', '/account/register', '/account/logout']) {
      const res = await post(path, form({ email: s.email, password: s.password, name: s.name }, undefined, { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' }));
      expect(res.status, path).toBe(403);
      expect(res.headers.get('content-type')).toBe('text/html; charset=UTF-8');
      expect(setCookies(res)).toEqual([]);
    }
  });
});

describe('the guest cart at sign-in', () => {
  async function guestCart(variantId: string, quantity: number): Promise<string> {
    const cart = await (await api('/api/carts', 'POST', {}, 'sg')).json<any>();
    expect((await api(`/api/carts/${cart.id}/items`, 'POST', { variantId, quantity }, 'sg')).status).toBe(200);
    return cart.id;
  }
  const lines = (cart: any) => Object.fromEntries(cart.items.map((i: any) => [i.variantId, i.quantity]));

  it('the cart cookie becomes the account cart: adopted, or merged with the cart the account had', async () => {
    const [a, b] = [product.variants[0]!.id, product.variants[1]!.id];
    // First sign-in: the guest cart is adopted.
    const first = await guestCart(a, 2);
    const s = await signUpAndIn(newShopper(), { cookie: `${CART}=${first}` });
    expect(cookieNamed(s.res, CART)).toMatch(new RegExp(`^${CART}=${first}; Max-Age=\\d+; Path=/; HttpOnly; Secure; SameSite=Lax$`));
    expect((await (await callApi('/api/me', req('GET', undefined, s.cookie))).json<any>()).cartId).toBe(first);

    // Signed out, a new guest cart; signing in again merges the account cart into it.
    await post('/account/logout', form({}, s.cookie));
    const second = await guestCart(b, 1);
    const again = await post('/account/login', form({ email: s.email, password: s.password }, `${CART}=${second}`));
    expect(again.status).toBe(303);
    expect(cookieNamed(again, CART)!.startsWith(`${CART}=${second};`)).toBe(true);
    const merged = await (await callApi(`/api/carts/${second}`, req('GET', undefined, sessionCookieOf(again)))).json<any>();
    expect(lines(merged)).toEqual({ [a]: 2, [b]: 1 });
    expect(await testRedis().exists(`cart:${first}`)).toBe(0);
  });
});

describe('account page', () => {
  it('without a session: to the sign-in page, coming back here after', async () => {
    for (const cookie of [undefined, `${SESSION}=ses_${'0'.repeat(52)}`]) {
      const res = await page('/account', cookie ? { headers: { cookie } } : {});
      expect(res.status).toBe(303);
      expect(res.headers.get('location')).toBe('/account/login?next=%2Faccount');
      expectPrivate(res);
    }
  });

  it('shows the shopper and their orders (number, date, status, total in its currency, linked)', async () => {
    const s = await signUpAndIn();
    const empty = await page('/account', { headers: { cookie: s.cookie } });
    expect(empty.status).toBe(200);
    expect(await empty.text()).toContain('No orders yet.');

    const orderId = await buy(s, product.variants[0]!.id);
    const res = await page('/account', { headers: { cookie: s.cookie } });
    expect(res.status).toBe(200);
    expectPrivatePage(res);
    expect(res.headers.get('vary')).toContain('cookie');
    const html = await res.text();
    expect(html).toContain(`<dd>${escapeHtml(s.name)}</dd>`);
    expect(html).toContain(`<dd>${escapeHtml(s.email)}</dd>`);
    const list = await (await callApi('/api/me/orders', req('GET', undefined, s.cookie))).json<any>();
    const order = list.items[0];
    expect(order.id).toBe(orderId);
    expect(html).toContain(`<a href="/orders/${orderId}">${order.number}</a>`);
    expect(html).toContain(formatMoney({ amount: 1500, currency: 'SGD' }, REGIONS.sg));
    expect(html).toContain('Confirmed');
    expect(html).toContain(`<time datetime="${order.createdAt}">`);
    expect(html).not.toMatch(/<script|<style|\sstyle=|\son[a-z]+=/i);
  });
});

describe('sign-out', () => {
  it('ends the session on the server and clears the session and cart cookies', async () => {
    const s = await signUpAndIn();
    const res = await post('/account/logout', form({}, s.cookie));
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/');
    expectPrivate(res);
    expect(cookieNamed(res, SESSION)).toMatch(/Max-Age=0/);
    expect(cookieNamed(res, CART)).toMatch(/Max-Age=0/);
    // The old cookie is worthless now.
    expect((await callApi('/api/me', req('GET', undefined, s.cookie))).status).toBe(401);
    expect((await page('/account', { headers: { cookie: s.cookie } })).status).toBe(303);
  });
});

describe('header', () => {
  it('links to the account from every page, the same for everyone', async () => {
    const s = await signUpAndIn();
    const guest = await (await page('/')).text();
    const signedIn = await (await page('/', { headers: { cookie: s.cookie } })).text();
    expect(guest).toContain('<a class="site-header__link" href="/account">');
    expect(signedIn).toBe(guest);
  });
});
