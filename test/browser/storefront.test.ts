/**
 * The storefront in a real browser: Debian's Chromium, driven by
 * playwright-core (no browser download), against `npm run dev` on a real
 * Postgres and Redis, as a shopper would use it. Each step leaves a
 * screenshot in `test-results/screenshots/` (CI output, not committed).
 *
 * A shopper browses, searches with a typo, adds two variants, changes a
 * quantity, registers, checks out with `tok_ok`, sees the confirmation and
 * finds the order in their history; `tok_decline` fails clearly and keeps
 * the cart; the region switcher changes currency and prices; and the
 * product page keeps to its weight budget.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedFixtures } from '../../db/seed';
import { dropDatabaseOn } from '../../dev/postgres';
import { running, startStack, stopStack, type Running } from '../stack';

const adminUrl = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
/** Debian's Chromium (`apt-get install chromium`; .ci/run installs it). */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SHOTS = resolve('test-results/screenshots');
/** The owner token the stack accepts, for scheduling a sale. */
const ADMIN_TOKEN = `browser-owner-${randomBytes(12).toString('hex')}`;

let stack: Running;
let browser: Browser;
let base: string;
const dbName = `pasar_browser_${randomBytes(5).toString('hex')}`;

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  const url = new URL(adminUrl);
  url.pathname = `/${dbName}`;
  stack = await startStack({ DATABASE_URL: url.toString(), REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', RATE_LIMITS: 'off', ADMIN_BOOTSTRAP_TOKEN: ADMIN_TOKEN });
  base = `http://127.0.0.1:${stack.port}`;
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
}, 240_000);

afterAll(async () => {
  await browser?.close();
  for (const r of running.splice(0)) {
    await stopStack(r);
    rmSync(r.dataDir, { recursive: true, force: true });
  }
  await dropDatabaseOn(adminUrl, dbName);
}, 60_000);

/** A fresh browser context (its own cookies), phone- or laptop-sized. */
async function shopper(viewport: 'phone' | 'laptop' = 'laptop'): Promise<Page> {
  const context = await browser.newContext(
    viewport === 'phone' ? { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true } : { viewport: { width: 1280, height: 800 } },
  );
  return context.newPage();
}

const shot = (page: Page, name: string) => page.screenshot({ path: resolve(SHOTS, `${name}.png`), fullPage: true });

describe('a shopper in the browser', () => {
  it('browses from the home page to a category and a product, priced in Singapore dollars', async () => {
    const page = await shopper();
    await page.goto(`${base}/`);
    await shot(page, '01-home');
    await expect(page.title()).resolves.toMatch(/Singapore/);
    await page.locator('main a[href^="/c/"]').first().click();
    await page.waitForURL(/\/c\//);
    await shot(page, '02-category');
    const product = page.locator('main a[href^="/p/"]').first();
    const title = (await product.textContent())!.trim();
    await product.click();
    await page.waitForURL(/\/p\//);
    await shot(page, '03-product');
    await expect(page.locator('h1').textContent()).resolves.toContain(title);
    await expect(page.locator('.price__now').first().textContent()).resolves.toMatch(/^S\$\d/);
    await page.context().close();
  }, 60_000);

  it('finds batik when the search box is given "battik"', async () => {
    const page = await shopper();
    await page.goto(`${base}/`);
    await page.fill('#search-q', 'battik');
    await page.press('#search-q', 'Enter');
    await page.waitForURL(/\/search\?q=battik/);
    await shot(page, '04-search-typo');
    const titles = await page.locator('main a[href^="/p/"]').allTextContents();
    expect(titles.length).toBeGreaterThan(0);
    expect(titles.some((t) => /batik/i.test(t))).toBe(true);
    await page.context().close();
  }, 60_000);

  it('switching the region changes currency and prices, and the choice sticks', async () => {
    const page = await shopper('phone');
    await page.goto(`${base}/`);
    await page.locator('main a[href^="/c/"]').first().click();
    await page.locator('main a[href^="/p/"]').first().click();
    await page.waitForURL(/\/p\//);
    const productUrl = page.url();
    await expect(page.locator('.price__now').first().textContent()).resolves.toMatch(/^S\$/);
    await page.selectOption('#region-select', 'my');
    await page.locator('form.region button[type="submit"]').click();
    await page.waitForURL(productUrl);
    await shot(page, '05-region-my-phone');
    const ringgit = (await page.locator('.price__now').first().textContent())!;
    expect(ringgit).toMatch(/^RM\s?\d/);
    // Another page, no query: the cookie keeps Malaysia.
    await page.goto(`${base}/`);
    await expect(page.locator('#region-select').inputValue()).resolves.toBe('my');
    await page.context().close();
  }, 60_000);
});

const fx = seedFixtures();

/** Adds the first purchasable variant of product `slug` (`skip` more past it) to the cart from its product page. */
async function addToCart(page: Page, slug: string, skip = 0): Promise<string> {
  await page.goto(`${base}/p/${slug}`);
  const radio = page.locator('form.buy input[name="variant"]:not([disabled])').nth(skip);
  await radio.check();
  const variantId = (await radio.getAttribute('value'))!;
  await page.locator('form.buy button[type="submit"]').click();
  await page.waitForURL(/\/cart$/);
  return variantId;
}

/** Fills the checkout form and places the order; resolves on the page the checkout ends on. */
async function checkOut(page: Page, email: string, token: string): Promise<void> {
  await page.goto(`${base}/checkout`);
  await page.fill('#checkout-email', email);
  await page.fill('#checkout-name', 'Siti Rahman');
  await page.fill('#checkout-line1', '1 Orchard Road');
  await page.fill('#checkout-city', 'Singapore');
  await page.fill('#checkout-postalCode', '238823');
  await page.selectOption('#checkout-token', token);
  await page.locator('form.checkout-form button[type="submit"]').click();
  // The status page reloads itself until the saga ends: no clicking.
  await page.waitForURL(/\/checkout\/chk_/);
}

describe('a purchase in the browser', () => {
  it('adds two variants, changes a quantity, registers, checks out with tok_ok, and finds the order in the history', async () => {
    const page = await shopper();
    // Typo search first, as a shopper would, then two products from the results' world.
    await page.goto(`${base}/search?q=${encodeURIComponent(fx.searchTerm.slice(0, -1) + fx.searchTerm.slice(-1).repeat(2))}`);
    await shot(page, '10-search');
    const first = await addToCart(page, fx.productSlugs[0]!);
    const second = await addToCart(page, fx.productSlugs[1]!);
    expect(first).not.toBe(second);
    expect(await page.locator('.cart-line').count()).toBe(2);
    await shot(page, '11-cart-two-lines');

    const line = page.locator('.cart-line').filter({ has: page.locator(`form[action="/cart/items/${first}"]`) }).first();
    await line.locator('form.cart-line__quantity input[name="quantity"]').fill('2');
    await line.locator('form.cart-line__quantity button[type="submit"]').click();
    await page.waitForURL(/\/cart$/);
    await expect(page.locator(`form.cart-line__quantity[action="/cart/items/${first}"] input[name="quantity"]`).inputValue()).resolves.toBe('2');
    await shot(page, '12-cart-quantity-2');

    const email = `browser.${randomBytes(4).toString('hex')}@example.com`;
    await page.goto(`${base}/account/register`);
    await page.fill('#register-name', 'Siti Rahman');
    await page.fill('#register-email', email);
    await page.fill('#register-password', 'kopi-kaya-toast-2026');
    await page.locator('form.auth__form button[type="submit"]').click();
    await page.waitForURL(/\/account\/login/);
    await page.fill('#login-email', email);
    await page.fill('#login-password', 'kopi-kaya-toast-2026');
    await page.locator('form.auth__form button[type="submit"]').click();
    await page.waitForURL(/\/account$/);
    await shot(page, '13-signed-in');
    // The guest cart came along.
    await page.goto(`${base}/cart`);
    expect(await page.locator('.cart-line').count()).toBe(2);

    await checkOut(page, email, 'tok_ok');
    await page.waitForURL(/\/orders\/ord_/, { timeout: 30_000 });
    const heading = (await page.locator('h1').textContent())!;
    expect(heading).toMatch(/Thank you! Order SG-\d{8}/);
    const number = heading.match(/SG-\d{8}/)![0];
    await shot(page, '14-confirmation');
    expect(await page.locator('.order__lines tbody tr').count()).toBe(2);

    await page.goto(`${base}/account`);
    await expect(page.locator('table.orders').textContent()).resolves.toContain(number);
    await shot(page, '15-order-history');
    // A confirmed checkout empties the cart.
    await page.goto(`${base}/cart`);
    expect(await page.locator('.cart-line').count()).toBe(0);
    await page.context().close();
  }, 120_000);

  it('a declined card says so clearly and keeps the cart as it was', async () => {
    const page = await shopper('phone');
    await addToCart(page, fx.productSlugs[2]!);
    await checkOut(page, 'declined@example.com', 'tok_decline');
    await page.getByRole('heading', { name: 'Your order did not go through' }).waitFor({ timeout: 30_000 });
    await shot(page, '16-declined-phone');
    await expect(page.locator('main').textContent()).resolves.toMatch(/declin/i);
    await page.goto(`${base}/cart`);
    expect(await page.locator('.cart-line').count()).toBe(1);
    await page.context().close();
  }, 120_000);
});

describe('a promotion code in the browser', () => {
  it('applies a code on the cart page, shows the discount and the total, and the order records the discount', async () => {
    const page = await shopper();
    const code = `BROWSER${randomBytes(3).toString('hex').toUpperCase()}`;
    const made = await fetch(`${base}/admin/api/promotions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ title: 'Browser ten percent', code, kind: 'percentage', percentBps: 1000, usageLimit: 1 }),
    });
    expect(made.status).toBe(201);
    await addToCart(page, fx.productSlugs[3]!);
    await page.fill('#promo-code', 'no-such-code');
    await page.locator('form.promo-code button[type="submit"]').click();
    await expect(page.locator('main').textContent()).resolves.toContain('There is no promotion code "NO-SUCH-CODE".');
    await page.fill('#promo-code', code.toLowerCase());
    await page.locator('form.promo-code button[type="submit"]').click();
    await page.waitForURL(/\/cart$/);
    const discountLine = page.locator('.totals__discount');
    await expect(discountLine.textContent()).resolves.toContain(`Browser ten percent (${code})`);
    await shot(page, '17-cart-promotion');
    const total = (await page.locator('.totals__total dd').textContent())!.trim();
    await checkOut(page, 'promo@example.com', 'tok_ok');
    await page.waitForURL(/\/orders\/ord_/, { timeout: 30_000 });
    const order = (await page.locator('main').textContent())!;
    expect(order).toContain(`Browser ten percent (${code})`);
    expect(order).toContain(total);
    await shot(page, '18-order-with-discount');
    await page.context().close();
  }, 120_000);
});

/** Presses Tab until the element matching `selector` has the focus (at most 80 times): it must be reachable by keyboard. */
async function tabTo(page: Page, selector: string): Promise<void> {
  for (let i = 0; i < 80; i++) {
    await page.keyboard.press('Tab');
    if (await page.evaluate<boolean>(`document.activeElement?.matches(${JSON.stringify(selector)}) ?? false`)) return;
  }
  throw new Error(`${selector} never took the focus by Tab`);
}

describe('a keyboard-only shopper', () => {
  it('adds to the cart and checks out with Tab, typing and Enter alone', async () => {
    const page = await shopper();
    await page.goto(`${base}/p/${fx.productSlugs[3]}`);
    await tabTo(page, 'form.buy button[type="submit"]');
    await page.keyboard.press('Enter');
    await page.waitForURL(/\/cart$/);
    expect(await page.locator('.cart-line').count()).toBe(1);
    await tabTo(page, 'a[href="/checkout"]');
    await page.keyboard.press('Enter');
    await page.waitForURL(/\/checkout$/);
    const fields: [string, string][] = [
      ['#checkout-email', 'keys@example.com'],
      ['#checkout-name', 'Wei Ling Tan'],
      ['#checkout-line1', '10 Bayfront Avenue'],
      ['#checkout-city', 'Singapore'],
      ['#checkout-postalCode', '018956'],
    ];
    for (const [selector, text] of fields) {
      await tabTo(page, selector);
      await page.keyboard.type(text);
    }
    expect(await page.locator('#checkout-token').inputValue()).toBe('tok_ok');
    await tabTo(page, 'form.checkout-form button[type="submit"]');
    await shot(page, '17-keyboard-checkout');
    await page.keyboard.press('Enter');
    await page.waitForURL(/\/orders\/ord_/, { timeout: 30_000 });
    expect(await page.locator('h1').textContent()).toMatch(/Thank you! Order SG-\d{8}/);
    await page.context().close();
  }, 120_000);
});

describe('a flash sale in the browser', () => {
  it('counts down, opens the queue at the start, shows the place live, and lets the shopper in without a reload by hand', async () => {
    // A seeded product, 10 units in Singapore, a sale starting in 6 s that lets one shopper in every 2 s.
    const admin = (path: string, method: string, body: unknown) =>
      fetch(`${base}${path}`, { method, headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const product = (await (await fetch(`${base}/api/products/${fx.productSlugs[4]}`, { headers: { 'x-region': 'sg' } })).json()) as any;
    const sku = product.variants[0].sku as string;
    expect((await admin(`/admin/api/inventory/${sku}`, 'PUT', { region: 'sg', quantity: 10 })).status).toBe(200);
    const startsAt = Date.now() + 6_000;
    const created = await admin('/admin/api/sales', 'POST', { name: 'Browser drop', skus: [sku], regions: ['sg'], startsAt: new Date(startsAt).toISOString(), perShopperCap: 1, admissionRate: 1 });
    expect(created.status).toBe(201);
    const sale = (await created.json()) as any;

    // Before the start: the product page and the sale page count down.
    const first = await shopper();
    await first.goto(`${base}/p/${fx.productSlugs[4]}`);
    await expect(first.locator('.sale-banner time').textContent()).resolves.toMatch(/\(in \d\d:\d\d\)/);
    await first.locator('.sale-banner a').click();
    await first.waitForURL(new RegExp(`/sale/${sale.id}$`));
    await expect(first.locator('.sale__countdown time').textContent()).resolves.toMatch(/\(in \d\d:\d\d\)/);
    await shot(first, '40-sale-countdown');
    // The page opens the queue by itself at the start.
    await first.locator('form.sale__join button').waitFor({ timeout: 20_000 });
    await first.locator('form.sale__join button').click();
    await first.waitForURL(new RegExp(`/sale/${sale.id}$`));

    // Four shoppers from elsewhere join next (one a second gets in), then a
    // second browser: it waits a few seconds with its place on the page and
    // is let in by the page itself (WebSocket, or its own reload), no reload by hand.
    for (let i = 0; i < 4; i++) {
      const res = await fetch(`${base}/api/sales/${sale.id}/tickets`, { method: 'POST', headers: { 'x-region': 'sg', 'content-type': 'application/json' }, body: '{}' });
      expect(res.status).toBe(201);
    }
    const second = await shopper('phone');
    await second.goto(`${base}/sale/${sale.id}`);
    await second.locator('form.sale__join button').click();
    await second.waitForURL(new RegExp(`/sale/${sale.id}$`));
    await expect(second.locator('.sale__waiting').textContent()).resolves.toMatch(/You are number \d+ in the queue/);
    await shot(second, '41-sale-waiting');
    await second.locator('.sale__admitted').waitFor({ timeout: 20_000 });
    await shot(second, '42-sale-admitted');
    await expect(second.locator('.sale__admitted').textContent()).resolves.toContain('It is your turn');
    await first.locator('.sale__admitted').waitFor({ timeout: 20_000 });
    await first.context().close();
    await second.context().close();
  }, 90_000);
});

describe('the page budget', () => {
  it('keeps the product page under 50 KB of HTML and 30 KB of compressed JS, with nothing render-blocking from elsewhere', async () => {
    const page = await shopper();
    const scripts: { url: string; bytes: Buffer }[] = [];
    const foreign: string[] = [];
    page.on('response', async (res) => {
      const url = new URL(res.url());
      if (url.origin !== base) foreign.push(res.url());
      if (res.request().resourceType() === 'script') scripts.push({ url: res.url(), bytes: await res.body() });
    });
    await page.goto(`${base}/`);
    await page.locator('main a[href^="/c/"]').first().click();
    const href = (await page.locator('main a[href^="/p/"]').first().getAttribute('href'))!;
    const html = await (await fetch(new URL(href, base))).text();
    expect(Buffer.byteLength(html)).toBeLessThan(50 * 1024);
    await page.goto(new URL(href, base).toString(), { waitUntil: 'networkidle' });
    const jsCompressed = scripts.reduce((n, s) => n + gzipSync(s.bytes).length, 0);
    expect(jsCompressed).toBeLessThan(30 * 1024);
    expect(foreign).toEqual([]);
    // Render-blocking: a stylesheet or a synchronous script in <head> from another origin.
    // Evaluated in the page (a string: this file is typed for Node, not the DOM).
    const blocking = await page.evaluate<string[]>(`
      [...document.head.querySelectorAll('link[rel="stylesheet"], script[src]:not([async]):not([defer]):not([type="module"])')]
        .map((el) => el.href || el.src)
        .filter((u) => new URL(u).origin !== location.origin)`);
    expect(blocking).toEqual([]);
    await page.context().close();
  }, 60_000);
});
