/**
 * What every server-rendered page response shares: its headers (CSP, caching,
 * language, Server-Timing), an ETag computed from the data it shows so a
 * conditional GET is answered before anything is rendered, and the small
 * helpers pages use to build links and return addresses.
 */
import type { Context } from 'hono';
import { getCookie } from 'hono/cookie';
import type { HtmlEscapedString } from 'hono/utils/html';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { REGIONS, isRegionCode, regionForCountry, type Region, type RegionCode } from '../../db/regions';
import { etagOf, type Served } from '../catalog/tiers';
import type { AppEnv } from '../types';

/**
 * Part of every page ETag. Data ETags only change when data does, so a
 * deploy that changes markup or copy must bump this, or browsers holding a
 * page keep revalidating into 304s for the old markup.
 */
export const PAGE_TEMPLATE_VERSION = 'pages-3';

/**
 * Pages load nothing but their own CSS, images and (same-origin) media, and
 * carry no inline script or style: anything else a browser is asked to run is
 * an injection.
 */
export const PAGE_CSP =
  "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/**
 * Browsers and shared caches revalidate every time (a cheap 304), so a price
 * change is never held in a shopper's cache; the same policy as the API.
 */
export const PAGE_CACHE_CONTROL = 'public, max-age=0, must-revalidate';

/**
 * The shopper's own pages (cart, checkout, orders): never stored by a
 * browser or a shared cache, never answered with a 304.
 */
export const PRIVATE_CACHE_CONTROL = 'private, no-store';

/** Stock at or below which a variant says "Only N left" instead of "In stock". */
export const LOW_STOCK_THRESHOLD = 5;

/** What a page component needs to know about the request it renders for. */
export interface PageContext {
  region: Region;
  /** Path and query of this request: where the region switcher returns to. */
  here: string;
  /** The search box's current value. */
  q?: string;
  /** The region links carry as `?region=` (see {@link PageContext.href}), if any. */
  carryRegion?: RegionCode;
  /**
   * An internal link. When the shopper picked the region with `?region=`
   * (no cookie yet), links keep it: listing cursors are signed per region,
   * so a "Next page" link that lost the region would be a 400.
   */
  href(path: string, params?: Record<string, string | undefined>): string;
}

/**
 * The request's region without ever throwing: `c.var.region` when the
 * region middleware ran, else the first valid explicit choice, the edge
 * country, `DEFAULT_REGION`. Error and 404 pages use it, where the region
 * middleware either did not run or is what failed.
 */
export function softRegion(c: Context<AppEnv>): Region {
  const set = c.get('region') as Region | undefined;
  if (set) return set;
  for (const candidate of [c.req.header('x-region'), getCookie(c, 'region'), c.req.query('region')]) {
    const code = candidate?.trim().toLowerCase();
    if (code && isRegionCode(code)) return REGIONS[code];
  }
  const byCountry = regionForCountry((c.req.raw.cf as { country?: string } | undefined)?.country);
  if (byCountry) return REGIONS[byCountry];
  const fallback = c.env?.DEFAULT_REGION;
  return REGIONS[fallback && isRegionCode(fallback) ? fallback : 'sg'];
}

/** Builds the {@link PageContext} of a request. */
export function pageContext(c: Context<AppEnv>, q?: string): PageContext {
  const region = softRegion(c);
  const url = new URL(c.req.url);
  const queryRegion = c.req.query('region')?.trim().toLowerCase();
  const carry = queryRegion !== undefined && isRegionCode(queryRegion) ? region.code : undefined;
  return {
    region,
    here: url.pathname + url.search,
    q,
    carryRegion: carry,
    href(path, params = {}) {
      const qs = new URLSearchParams();
      for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') qs.set(k, v);
      if (carry) qs.set('region', carry);
      const s = qs.toString();
      return s ? `${path}?${s}` : path;
    },
  };
}

/** `Server-Timing` of the reads a page made, main document first, API syntax (`tier;dur=ms`). */
export function serverTiming(reads: readonly Served<unknown>[]): string {
  return reads.map((r) => `${r.tier};dur=${r.ms}`).join(', ');
}

/** Headers every page response carries, whatever its status. */
function setPageHeaders(c: Context<AppEnv>, region: Region, reads: readonly Served<unknown>[]): void {
  if (reads.length) c.header('Server-Timing', serverTiming(reads));
  c.header('Content-Security-Policy', PAGE_CSP);
  c.header('Vary', 'x-region, cookie');
  c.header('Content-Language', region.locale);
}

/**
 * The ETag of a page: the template version, the region, the URL (the page
 * echoes its query and links back to itself) and the ETags of every document
 * it shows. Equal inputs render equal HTML, so a match needs no rendering.
 */
export function pageEtag(region: Region, here: string, reads: readonly Served<unknown>[]): Promise<string> {
  return etagOf([PAGE_TEMPLATE_VERSION, region.code, here, reads.map((r) => r.etag)]);
}

/** Whether `If-None-Match` names `etag` (weak comparison, as for GET). */
function matches(ifNoneMatch: string | undefined, etag: string): boolean {
  if (!ifNoneMatch) return false;
  const bare = (t: string) => t.trim().replace(/^W\//, '');
  return ifNoneMatch.split(',').some((t) => t.trim() === '*' || bare(t) === bare(etag));
}

type Html = HtmlEscapedString | Promise<HtmlEscapedString>;

/**
 * Answers a page built from `reads`: 304 when the client holds the current
 * version (checked before `render` runs), else the rendered HTML.
 */
export async function sendPage(c: Context<AppEnv>, reads: readonly Served<unknown>[], render: () => Html): Promise<Response> {
  const region = softRegion(c);
  setPageHeaders(c, region, reads);
  const url = new URL(c.req.url);
  const etag = await pageEtag(region, url.pathname + url.search, reads);
  c.header('ETag', etag);
  c.header('Cache-Control', PAGE_CACHE_CONTROL);
  if (matches(c.req.header('if-none-match'), etag)) return c.body(null, 304);
  return c.html(render(), 200);
}

/**
 * Answers a personal page (a cart, a checkout, an order): the page headers,
 * `private, no-store`, no ETag.
 */
export function sendPrivatePage(c: Context<AppEnv>, status: ContentfulStatusCode, render: () => Html): Response | Promise<Response> {
  setPageHeaders(c, softRegion(c), []);
  c.header('Cache-Control', PRIVATE_CACHE_CONTROL);
  return c.html(render(), status);
}

/**
 * Answers an error page (404 for a missing product or category, 4xx/5xx
 * from the error handler). No ETag: these are never revalidated into a 304.
 */
export function sendErrorPage(c: Context<AppEnv>, status: ContentfulStatusCode, reads: readonly Served<unknown>[], render: () => Html): Response | Promise<Response> {
  setPageHeaders(c, softRegion(c), reads);
  // A missing page may exist a moment later (a product being published), and
  // a failure must not be kept at all.
  c.header('Cache-Control', status === 404 ? PAGE_CACHE_CONTROL : 'no-store');
  return c.html(render(), status);
}

/**
 * The same-origin path to return to after switching region, or `/`.
 * Only an absolute path is accepted: not `//host` or `/\host` (both mean
 * another host to browsers), nothing with control characters or
 * whitespace (browsers drop tabs and newlines, turning `/\t/host` into
 * `//host`). `region` and `cursor` are dropped from the query: the cookie
 * now decides the region, and cursors are signed per region.
 */
export function safeNext(next: string | undefined): string {
  if (!next || next.length > 2048 || !next.startsWith('/') || next.startsWith('//')) return '/';
  if (/[\\\u0000-\u0020\u007f]/.test(next)) return '/';
  let url: URL;
  try {
    url = new URL(next, 'http://pasar.invalid');
  } catch {
    return '/';
  }
  if (url.origin !== 'http://pasar.invalid') return '/';
  url.searchParams.delete('region');
  url.searchParams.delete('cursor');
  const path = url.pathname + url.search + url.hash;
  return path.startsWith('/') && !path.startsWith('//') ? path : '/';
}
