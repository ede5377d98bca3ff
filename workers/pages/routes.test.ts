import { env, exports } from 'cloudflare:workers';
import { describe, expect, inject, it } from 'vitest';
import { REGIONS, type RegionCode } from '../../db/regions';
import { productKey } from '../catalog/service';
import { cacheRequest } from '../catalog/tiers';
import { readVersion } from '../catalog/versions';
import { formatMoney, type Money } from '../lib/money';
import { PAGE_CSP } from './page';

const fx = inject('seedFixtures');
const call = (path: string, init?: RequestInit) => exports.default.fetch(new Request(`http://pasar.test${path}`, { redirect: 'manual', ...init }));
const inRegion = (region: RegionCode) => ({ headers: { 'x-region': region } });

/** What hono/jsx turns text into. */
const escapeHtml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
const unescapeHtml = (s: string) => s.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');

const TIER = '(?:cache|kv|redis|origin);dur=[\\d.]+';
const SERVER_TIMING = new RegExp(`^${TIER}(?:, ${TIER})*$`);

/** Product links of the cards on a page, in order. */
const cardSlugs = (html: string) => [...html.matchAll(/<h3 class="card__title"><a href="\/p\/([a-z0-9-]+)/g)].map((m) => m[1]!);
/** Every amount shown as a current price. */
const shownPrices = (html: string) => [...html.matchAll(/<span class="price__now">([^<]*)<\/span>/g)].map((m) => m[1]!);
/** The locale's decimal separator. */
const decimalOf = (locale: string) => new Intl.NumberFormat(locale).formatToParts(1.5).find((p) => p.type === 'decimal')!.value;

/** Headers every 200 page carries. */
function expectPageHeaders(res: Response, region: RegionCode) {
  expect(res.headers.get('content-type')).toBe('text/html; charset=UTF-8');
  expect(res.headers.get('cache-control')).toBe('public, max-age=0, must-revalidate');
  expect(res.headers.get('etag')).toMatch(/^W\/"[0-9a-f]+"$/);
  expect(res.headers.get('vary')).toBe('x-region, cookie');
  expect(res.headers.get('content-language')).toBe(REGIONS[region].locale);
  expect(res.headers.get('content-security-policy')).toBe(PAGE_CSP);
  expect(res.headers.get('server-timing')).toMatch(SERVER_TIMING);
}

async function apiProduct(slug: string, region: RegionCode) {
  const res = await call(`/api/products/${slug}`, inRegion(region));
  expect(res.status).toBe(200);
  return res.json<{ title: string; brand: string | null; variants: { title: string; price: Money; compareAtPrice: Money | null; available: number }[] }>();
}

describe('GET / (home)', () => {
  it('renders the categories with their children and a grid of product cards', async () => {
    const res = await call('/');
    expect(res.status).toBe(200);
    expectPageHeaders(res, 'sg');
    const html = await res.text();
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(html).toContain('<html lang="en-SG">');
    expect(html).toContain('<link rel="stylesheet" href="/assets/app.css"/>');
    expect(html).toContain('href="#main"');
    expect(html).toContain('Pasar');

    const { items } = await (await call('/api/categories')).json<{ items: { slug: string; name: string; parent: string | null; productCount: number }[] }>();
    const top = items.filter((c) => c.parent === null && c.productCount > 0);
    const child = items.find((c) => c.parent !== null && c.productCount > 0)!;
    expect(top.length).toBeGreaterThan(0);
    for (const c of [...top, child]) expect(html).toContain(`href="/c/${c.slug}">${escapeHtml(c.name)}</a>`);

    const featured = await (await call('/api/products?limit=12')).json<{ items: { slug: string; price: Money }[] }>();
    expect(cardSlugs(html)).toEqual(featured.items.map((i) => i.slug));
    for (const item of featured.items) expect(html).toContain(formatMoney(item.price, REGIONS.sg));
  });

  it('names the tier of each read in Server-Timing, the main document first', async () => {
    const home = await call('/');
    expect(home.headers.get('server-timing')!.split(', ')).toHaveLength(2);

    // Categories fresh in this location's cache, the product document not:
    // the two entries then name different tiers, in a checkable order.
    const slug = fx.productSlugs[3]!;
    await call('/api/categories', inRegion('ph'));
    await caches.default.delete(cacheRequest(productKey(await readVersion(env.CATALOG, 'products'), 'ph', slug)));
    const res = await call(`/p/${slug}`, inRegion('ph'));
    const [main, categories, ...rest] = res.headers.get('server-timing')!.split(', ');
    expect(main).toMatch(/^(kv|origin);dur=[\d.]+$/);
    expect(categories).toMatch(/^cache;dur=[\d.]+$/);
    expect(rest).toEqual([]);
  });

  it('lazy-loads card images inside fixed-ratio frames', async () => {
    // The Philippines: a region the other test files add no imageless products to.
    const html = await (await call('/', inRegion('ph'))).text();
    const cards = [...html.matchAll(/<div class="media media--square"><img [^>]*>/g)].map((m) => m[0]);
    expect(cards.length).toBe(12);
    for (const img of cards) expect(img).toMatch(/ width="\d+" height="\d+" loading="lazy"/);
  });

  it('has no inline script or style, and labels its form fields', async () => {
    const html = await (await call('/')).text();
    expect(html).not.toMatch(/<script|<style|\sstyle=|\son[a-z]+=/i);
    for (const id of ['search-q', 'region-select']) {
      expect(html).toMatch(new RegExp(`<label[^>]*for="${id}"`));
      expect(html).toContain(`id="${id}"`);
    }
  });
});

describe('GET /p/:slug (product)', () => {
  it('shows title, brand and prices with two decimals in Singapore', async () => {
    const slug = fx.productSlugs[0]!;
    const api = await apiProduct(slug, 'sg');
    const res = await call(`/p/${slug}`, inRegion('sg'));
    expect(res.status).toBe(200);
    expectPageHeaders(res, 'sg');
    const html = await res.text();
    expect(html).toContain(`<h1 class="product__title">${escapeHtml(api.title)}</h1>`);
    if (api.brand) expect(html).toContain(escapeHtml(api.brand));
    // Which dollar: S$, never a bare $ (formatMoney overrides CLDR's en-SG "$").
    const sgd = /^S\$\d{1,3}(,\d{3})*\.\d{2}$/;
    for (const v of api.variants) {
      const shown = formatMoney(v.price, REGIONS.sg);
      expect(shown).toMatch(sgd);
      expect(shown).toBe(formatMoney({ amount: v.price.amount, currency: 'SGD' }, REGIONS.sg));
      expect(html).toContain(`<span class="price__now">${shown}</span>`);
      // Cents, not whole dollars: 1990 minor units is 19.90.
      expect(shown.endsWith(`.${String(v.price.amount % 100).padStart(2, '0')}`)).toBe(true);
    }
    const prices = shownPrices(html);
    expect(prices.length).toBeGreaterThan(0);
    for (const p of prices) expect(p).toMatch(sgd);
  });

  for (const region of ['id', 'vn'] as const) {
    it(`shows whole-unit prices in ${REGIONS[region].currency} (${region})`, async () => {
      const slug = fx.productSlugs[1]!;
      const api = await apiProduct(slug, region);
      const res = await call(`/p/${slug}`, inRegion(region));
      expect(res.status).toBe(200);
      expectPageHeaders(res, region);
      const html = await res.text();
      expect(html).toContain(`<html lang="${REGIONS[region].locale}">`);
      const decimal = decimalOf(REGIONS[region].locale);
      for (const v of api.variants) {
        expect(v.price.currency).toBe(REGIONS[region].currency);
        const shown = formatMoney(v.price, REGIONS[region]);
        expect(html).toContain(`<span class="price__now">${shown}</span>`);
        expect(shown).not.toContain(`${decimal}00`);
        // Whole units: the digits shown are the amount itself, nothing divided by 100.
        expect(shown.replace(/\D/g, '')).toBe(String(v.price.amount));
      }
      const prices = shownPrices(html);
      expect(prices.length).toBeGreaterThan(0);
      for (const p of prices) {
        expect(p).not.toContain(`${decimal}00`);
        // No fraction at all: the decimal separator never appears in a whole-unit price.
        expect(p).not.toContain(decimal);
      }
    });
  }

  it('strikes through a compare-at price', async () => {
    const { items } = await (await call('/api/products?limit=100', inRegion('id'))).json<{ items: { slug: string; price: Money; compareAtPrice: Money | null }[] }>();
    const sale = items.find((i) => i.compareAtPrice && i.compareAtPrice.amount > i.price.amount)!;
    expect(sale).toBeDefined();
    const html = await (await call(`/p/${sale.slug}`, inRegion('id'))).text();
    const was = formatMoney(sale.compareAtPrice!, REGIONS.id);
    expect(html).toMatch(new RegExp(`<s class="price__was"><span class="visually-hidden">, was </span>${was.replace(/[.$]/g, '\\$&')}</s>`));
  });

  it('lists the variants as labelled radio inputs with availability', async () => {
    const slug = fx.productSlugs[0]!;
    const api = await apiProduct(slug, 'sg');
    const html = await (await call(`/p/${slug}`, inRegion('sg'))).text();
    const radios = [...html.matchAll(/<input type="radio" name="variant" id="([^"]+)"/g)].map((m) => m[1]!);
    expect(radios).toHaveLength(api.variants.length);
    for (const id of radios) expect(html).toContain(`<label for="${id}">`);
    expect(html).toMatch(/In stock|Only \d+ left/);
    // The options and the button are the add-to-cart form (workers/pages/cart.test.ts covers it).
    expect(html).toContain('<form class="buy" method="post" action="/cart/items">');
    expect(html).toMatch(/<button type="submit" class="button">Add to cart<\/button>/);
  });

  it('keeps ?region= on its links so pages after it stay in that region', async () => {
    const res = await call(`/p/${fx.productSlugs[0]}?region=vn`);
    expect(res.headers.get('content-language')).toBe('vi-VN');
    const html = await res.text();
    expect(html).toMatch(/href="\/c\/[a-z0-9-]+\?region=vn"/);
  });

  it('gives each image its size and lazy-loads all but the first', async () => {
    const html = await (await call(`/p/${fx.productSlugs[0]}`)).text();
    const imgs = [...html.matchAll(/<img src="\/media\/[^"]+"[^>]*>/g)].map((m) => m[0]);
    expect(imgs.length).toBeGreaterThan(0);
    for (const img of imgs) expect(img).toMatch(/ alt="[^"]+" width="\d+" height="\d+"/);
    expect(imgs[0]).toContain('loading="eager"');
    for (const img of imgs.slice(1)) expect(img).toContain('loading="lazy"');
  });

  it('answers an unknown, archived, draft or not-sold-here product with an HTML 404', async () => {
    const cases: [string, RequestInit | undefined][] = [
      ['/p/no-such-product-anywhere', undefined],
      [`/p/${fx.archivedSlug}`, undefined],
      [`/p/${fx.draftSlug}`, undefined],
      [`/p/${fx.regionLimitedSlug}`, inRegion(fx.regionLimitedNotSoldIn[0]!)],
      ['/p/NOT%20a%20slug', undefined],
    ];
    for (const [path, init] of cases) {
      const res = await call(path, init);
      expect(res.status, path).toBe(404);
      expect(res.headers.get('content-type')).toBe('text/html; charset=UTF-8');
      expect(res.headers.get('content-security-policy')).toBe(PAGE_CSP);
      const html = await res.text();
      expect(html).toContain('<h1 id="status-title">Page not found</h1>');
      expect(html).not.toContain('"error"');
    }
    const sold = await call(`/p/${fx.regionLimitedSlug}`, inRegion(fx.regionLimitedSoldIn[0]!));
    expect(sold.status).toBe(200);
  });
});

describe('GET /c/:slug (category)', () => {
  it('pages with a "Next page" link to different products', async () => {
    const first = await call(`/c/${fx.busiestCategorySlug}`);
    expect(first.status).toBe(200);
    expectPageHeaders(first, 'sg');
    const html1 = await first.text();
    const page1 = cardSlugs(html1);
    expect(page1).toHaveLength(24);
    const next = /<a class="button" href="([^"]+)" rel="next">Next page<\/a>/.exec(html1)?.[1];
    expect(next).toBeDefined();

    const second = await call(unescapeHtml(next!));
    expect(second.status).toBe(200);
    const html2 = await second.text();
    const page2 = cardSlugs(html2);
    expect(page2.length).toBeGreaterThan(0);
    expect(page2.filter((s) => page1.includes(s))).toEqual([]);
    expect(html2).toContain(`href="/c/${fx.busiestCategorySlug}">First page</a>`);
    expect(second.headers.get('etag')).not.toBe(first.headers.get('etag'));
  });

  it('answers an unknown category with an HTML 404, and an edited cursor with an HTML 400', async () => {
    const missing = await call('/c/no-such-category');
    expect(missing.status).toBe(404);
    expect(missing.headers.get('content-type')).toContain('text/html');
    const bad = await call(`/c/${fx.busiestCategorySlug}?cursor=eyJpZCI6InByb2RfeCJ9.AAAAAAAAAAAAAAAAAAAAAA`);
    expect(bad.status).toBe(400);
    expect(bad.headers.get('content-type')).toContain('text/html');
    expect(await bad.text()).toContain('That page link is not valid');
  });
});

describe('GET /search', () => {
  it('finds the seed search term', async () => {
    const res = await call(`/search?q=${encodeURIComponent(fx.searchTerm)}`);
    expect(res.status).toBe(200);
    expectPageHeaders(res, 'sg');
    const html = await res.text();
    expect(cardSlugs(html).length).toBe(24);
    expect(html).toContain(`value="${escapeHtml(fx.searchTerm)}"`);
    expect(html).toContain('rel="next"');
  });

  it('finds batik when asked for "battik"', async () => {
    const html = await (await call('/search?q=battik')).text();
    const titles = [...html.matchAll(/<h3 class="card__title"><a [^>]*>([^<]*)<\/a>/g)].map((m) => m[1]!);
    expect(titles.some((t) => /batik/i.test(t))).toBe(true);
  });

  it('has an empty state and a prompt', async () => {
    const none = await call('/search?q=zqxjkvw');
    expect(none.status).toBe(200);
    const html = await none.text();
    expect(html).toContain('Nothing in Singapore matches');
    expect(cardSlugs(html)).toEqual([]);
    const prompt = await call('/search');
    expect(prompt.status).toBe(200);
    expect(await prompt.text()).toContain('<h1>Search</h1>');
  });

  it('escapes the query it echoes', async () => {
    const res = await call(`/search?q=${encodeURIComponent('<script>alert(1)</script>')}`);
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).not.toContain('<script>alert(1)');
    expect(html).not.toMatch(/<script/i);
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    const attr = await (await call(`/search?q=${encodeURIComponent('"><img src=x onerror=alert(1)>')}`)).text();
    expect(attr).not.toContain('<img src=x');
    expect(attr).toContain('value="&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"');
  });
});

describe('conditional GET', () => {
  it('answers 304 to the page ETag without a body, per region', async () => {
    const path = `/p/${fx.productSlugs[2]}`;
    const res = await call(path, inRegion('th'));
    const etag = res.headers.get('etag')!;
    const again = await call(path, { headers: { 'x-region': 'th', 'if-none-match': etag } });
    expect(again.status).toBe(304);
    expect(again.headers.get('etag')).toBe(etag);
    expect(again.headers.get('server-timing')).toMatch(SERVER_TIMING);
    expect(await again.text()).toBe('');
    const otherRegion = await call(path, { headers: { 'x-region': 'my', 'if-none-match': etag } });
    expect(otherRegion.status).toBe(200);
    expect(otherRegion.headers.get('etag')).not.toBe(etag);

    const home = await call('/');
    const home304 = await call('/', { headers: { 'if-none-match': home.headers.get('etag')! } });
    expect(home304.status).toBe(304);
  });
});

describe('region switch', () => {
  it('sets the region cookie and goes back to a same-origin path', async () => {
    const res = await call(`/region/id?next=${encodeURIComponent('/c/batik?cursor=abc&x=1')}`);
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/c/batik?x=1');
    const cookie = res.headers.get('set-cookie')!;
    expect(cookie).toMatch(/^region=id;/);
    expect(cookie).toContain('Path=/');
    expect(cookie).toContain('SameSite=Lax');
    expect(cookie).toContain('Max-Age=31536000');

    // The cookie then decides the region of the pages.
    const page = await call(`/p/${fx.productSlugs[0]}`, { headers: { cookie: 'region=id' } });
    expect(page.headers.get('content-language')).toBe('id-ID');
    expect(await page.text()).toContain('<option value="id" selected="">');
  });

  it('takes the switcher form (GET /region?region=&next=)', async () => {
    const res = await call('/region?region=vn&next=%2Fsearch%3Fq%3Dbatik');
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/search?q=batik');
    expect(res.headers.get('set-cookie')).toMatch(/^region=vn;/);
  });

  it('never redirects off-site', async () => {
    for (const next of ['//evil.example', '//evil.example/p/x', '/\\evil.example', 'https://evil.example/', '/\t/evil.example', 'evil.example', '']) {
      const res = await call(`/region/sg?next=${encodeURIComponent(next)}`);
      expect(res.status, next).toBe(303);
      expect(res.headers.get('location'), next).toBe('/');
    }
  });

  it('refuses an unknown region without setting a cookie', async () => {
    const res = await call('/region/xx?next=/');
    expect(res.status).toBe(400);
    expect(res.headers.get('set-cookie')).toBeNull();
    expect(res.headers.get('content-type')).toContain('text/html');
  });

  it('answers a page in an unknown region with an HTML 400', async () => {
    const res = await call('/?region=zz');
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toContain('text/html');
    expect(await res.text()).toContain('Unknown region');
  });
});

describe('not found', () => {
  it('is an HTML page outside the API, JSON inside it', async () => {
    const page = await call('/no/such/page');
    expect(page.status).toBe(404);
    expect(page.headers.get('content-type')).toBe('text/html; charset=UTF-8');
    expect(page.headers.get('content-security-policy')).toBe(PAGE_CSP);
    expect(await page.text()).toContain('Page not found');
    for (const path of ['/api/no-such-thing', '/admin/api/no-such-thing', '/media/seed/none.jpg']) {
      const res = await call(path);
      expect(res.status, path).toBe(404);
      expect(res.headers.get('content-type'), path).toContain('application/json');
    }
  });
});
