/**
 * Server-rendered storefront pages (hono/jsx), mounted at the root after the
 * API. Data comes only through the catalog service (../catalog/service.ts),
 * the same tiered reads as the JSON API, so a page says in `Server-Timing`
 * which tier served each document and answers a conditional GET with 304
 * before rendering anything.
 *
 * Pages work without JavaScript: every control is a link or a GET form.
 */
import { Hono, type Context } from 'hono';
import { setCookie } from 'hono/cookie';
import { isRegionCode } from '../../db/regions';
import { getCategories, getProduct, listProducts, SLUG } from '../catalog/service';
import type { Served } from '../catalog/tiers';
import { ApiError } from '../lib/errors';
import { sameOriginWrites } from '../middleware/origin';
import { region } from '../middleware/region';
import { shopper } from '../middleware/session';
import { toApiError } from '../middleware/errors';
import { services } from '../services';
import type { AppEnv } from '../types';
import { accountPages } from './account';
import { cartPages } from './cart';
import { checkoutPages } from './checkout';
import { salePages } from './sale';
import { pageContext, safeNext, sendPage } from './page';
import { renderNotFoundPage, renderStatusPage } from './status';
import { CategoryPage, HomePage, ProductPage, SearchPage } from './views';

/** Products on the home page. */
export const FEATURED_LIMIT = 12;
/** Products per listing or search page. */
export const PAGE_LIMIT = 24;
/** How long the region cookie lasts: a year, renewed on every switch. */
export const REGION_COOKIE_MAX_AGE = 31_536_000;
/** Longest search query passed on (the API's limit). */
const MAX_QUERY_LENGTH = 200;

/** Pages, mounted at the root. */
export const pageRoutes = new Hono<AppEnv>();

// Region and services run here, for exactly the page paths, rather than in
// app.ts: a sub-app's own error handler then also covers them, so an unknown
// `?region=` on a page is an HTML page, not the API's JSON envelope.
// The shopper's own pages (cart, checkout, orders, account) also know who
// is signed in, and their forms are same-origin only (CSRF), like the API's
// writes. Catalog pages stay the same for everyone: cacheable, nothing
// personal on them.
const CATALOG_PAGES = ['/', '/c/*', '/p/*', '/search'];
const SHOPPER_PAGES = ['/cart', '/cart/*', '/checkout', '/checkout/*', '/orders/*', '/account', '/account/*', '/sale/*'];
for (const path of CATALOG_PAGES) pageRoutes.use(path, region(), services());
for (const path of SHOPPER_PAGES) pageRoutes.use(path, sameOriginWrites(), region(), services(), shopper());
pageRoutes.route('/', cartPages);
pageRoutes.route('/', checkoutPages);
pageRoutes.route('/', accountPages);
pageRoutes.route('/', salePages);

pageRoutes.onError((err, c) => {
  const requestId = c.get('requestId');
  const apiError = toApiError(err, requestId);
  if (apiError.status >= 500 && !(err instanceof ApiError)) {
    console.error(JSON.stringify({ level: 'error', requestId, path: c.req.path, error: String(err), stack: (err as Error)?.stack }));
  }
  for (const [name, value] of Object.entries(apiError.headers)) c.header(name, value);
  if (apiError.status === 400) {
    // The only 400s a page can hit: an unknown region, or a cursor that was
    // edited or belongs to another listing (cursors are signed per query).
    const cursor = apiError.code === 'invalid_request';
    return renderStatusPage(
      c,
      400,
      cursor ? 'That page link is not valid' : 'That address is not quite right',
      cursor ? 'The link to this page was changed or belongs to another listing. Start again from the first page.' : apiError.message,
    );
  }
  if (apiError.status === 404) return renderNotFoundPage(c);
  if (apiError.status === 503) {
    return renderStatusPage(c, 503, 'We are having trouble right now', 'Part of the store is not answering. Please try again in a few seconds.');
  }
  return renderStatusPage(c, apiError.status, 'Something went wrong', apiError.message);
});

/** Reads that could be absent (a page shows categories only when it needs them). */
function present(...reads: (Served<unknown> | undefined)[]): Served<unknown>[] {
  return reads.filter((r): r is Served<unknown> => r !== undefined);
}

/** A cursor from the query, or undefined for none (an empty `cursor=` is none). */
function cursorParam(value: string | undefined): string | undefined {
  return value ? value : undefined;
}

pageRoutes.get('/', async (c) => {
  const [featured, categories] = await Promise.all([listProducts(c, { limit: FEATURED_LIMIT }), getCategories(c)]);
  return sendPage(c, [featured, categories], () => (
    <HomePage ctx={pageContext(c)} featured={featured.body?.items ?? []} categories={categories.body?.items ?? []} />
  ));
});

pageRoutes.get('/c/:slug', async (c) => {
  const slug = c.req.param('slug');
  // Not a slug: no category can have it, so the origin is not asked.
  if (slug.length > 100 || !SLUG.test(slug)) return renderNotFoundPage(c, 'There is no such category.');
  const cursor = cursorParam(c.req.query('cursor'));
  const [listing, categories] = await Promise.all([listProducts(c, { category: slug, cursor, limit: PAGE_LIMIT }), getCategories(c)]);
  if (!listing.body) return renderNotFoundPage(c, 'There is no such category.', [listing, categories]);
  const page = listing.body;
  return sendPage(c, [listing, categories], () => (
    <CategoryPage
      ctx={pageContext(c)}
      slug={slug}
      categories={categories.body?.items ?? []}
      items={page.items}
      nextCursor={page.nextCursor}
      isFirstPage={!cursor}
    />
  ));
});

pageRoutes.get('/search', async (c) => {
  const q = (c.req.query('q') ?? '').trim().slice(0, MAX_QUERY_LENGTH).trim();
  const cursor = cursorParam(c.req.query('cursor'));
  const results = q ? await listProducts(c, { q, cursor, limit: PAGE_LIMIT }) : undefined;
  const items = results?.body?.items ?? null;
  // Categories are only shown when there is nothing else to offer.
  const categories = !items || items.length === 0 ? await getCategories(c) : undefined;
  return sendPage(c, present(results, categories), () => (
    <SearchPage
      ctx={pageContext(c, q)}
      q={q}
      items={items}
      nextCursor={results?.body?.nextCursor ?? null}
      isFirstPage={!cursor}
      categories={categories?.body?.items ?? []}
    />
  ));
});

pageRoutes.get('/p/:slug', async (c) => {
  const slug = c.req.param('slug');
  if (slug.length > 200 || !SLUG.test(slug)) return renderNotFoundPage(c, 'There is no such product.');
  const [product, categories] = await Promise.all([getProduct(c, slug), getCategories(c)]);
  const body = product.body;
  if (!body || body.variants.length === 0) {
    return renderNotFoundPage(c, `This product does not exist, is no longer sold, or is not sold in ${pageContext(c).region.name}.`, [product, categories]);
  }
  return sendPage(c, [product, categories], () => <ProductPage ctx={pageContext(c)} product={body} categories={categories.body?.items ?? []} />);
});

/**
 * Region switch: sets the `region` cookie and sends the shopper back to the
 * page they were on. `next` must be a same-origin path (see `safeNext`),
 * or this would be an open redirect.
 */
function switchRegion(c: Context<AppEnv>, code: string | undefined) {
  const normalised = code?.trim().toLowerCase() ?? '';
  c.header('Cache-Control', 'no-store');
  if (!isRegionCode(normalised)) {
    return renderStatusPage(c, 400, 'Unknown region', 'We do not sell in that region. Pick one from the list at the top of the page.');
  }
  setCookie(c, 'region', normalised, {
    path: '/',
    sameSite: 'Lax',
    maxAge: REGION_COOKIE_MAX_AGE,
    secure: new URL(c.req.url).protocol === 'https:',
  });
  return c.redirect(safeNext(c.req.query('next')), 303);
}

pageRoutes.get('/region/:code', (c) => switchRegion(c, c.req.param('code')));
// The switcher form: `GET /region?region=<code>&next=<path>`.
pageRoutes.get('/region', (c) => switchRegion(c, c.req.query('region')));
