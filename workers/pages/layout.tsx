/** The document shell every page renders into: head, header (search, region), main, footer. */
import type { Child } from 'hono/jsx';
import { raw } from 'hono/html';
import { REGIONS, REGION_CODES } from '../../db/regions';
import type { PageContext } from './page';

/** Props of {@link Layout}. */
export interface LayoutProps {
  ctx: PageContext;
  /** Page title, before the store name. */
  title: string;
  description?: string;
  children?: Child;
}

/** Store name, in the header, titles and footer. */
export const STORE_NAME = 'Pasar';

/** Search form in the header; GET so results are linkable and work without JS. */
function SearchForm({ ctx }: { ctx: PageContext }) {
  return (
    <form class="search" role="search" action="/search" method="get">
      <label class="visually-hidden" for="search-q">
        Search products
      </label>
      <input id="search-q" type="search" name="q" value={ctx.q ?? ''} placeholder="Search products" maxlength={200} autocomplete="off" />
      {ctx.carryRegion ? <input type="hidden" name="region" value={ctx.carryRegion} /> : null}
      <button type="submit">
        <svg class="search__icon" viewBox="0 0 24 24" width="20" height="20" aria-hidden="true" focusable="false">
          <circle cx="11" cy="11" r="7" fill="none" stroke="currentColor" stroke-width="2.25" />
          <path d="m20 20-4-4" fill="none" stroke="currentColor" stroke-width="2.25" stroke-linecap="round" />
        </svg>
        <span class="search__label">Search</span>
      </button>
    </form>
  );
}

/**
 * Region and currency switcher. It submits to `/region`, which sets the
 * `region` cookie and comes back here: a bare `?region=` on this page would
 * lose to a cookie set earlier (header > cookie > query), so the choice has
 * to go through the cookie to stick.
 */
function RegionSwitcher({ ctx }: { ctx: PageContext }) {
  return (
    <form class="region" action="/region" method="get">
      <label for="region-select">Ship to</label>
      <select id="region-select" name="region">
        {REGION_CODES.map((code) => (
          <option value={code} selected={code === ctx.region.code}>
            {REGIONS[code].name} ({REGIONS[code].currency})
          </option>
        ))}
      </select>
      <input type="hidden" name="next" value={ctx.here} />
      <button type="submit" class="button-secondary">
        Change
      </button>
    </form>
  );
}

/** The full HTML document around a page's main content. */
export function Layout({ ctx, title, description, children }: LayoutProps) {
  const { region } = ctx;
  return (
    <>
      {raw('<!DOCTYPE html>')}
      <html lang={region.locale}>
        <head>
          <meta charset="utf-8" />
          <meta name="viewport" content="width=device-width, initial-scale=1" />
          <title>{`${title} · ${STORE_NAME}`}</title>
          {description ? <meta name="description" content={description} /> : null}
          <meta name="color-scheme" content="light dark" />
          <link rel="icon" href="/favicon.svg" type="image/svg+xml" />
          <link rel="stylesheet" href="/assets/app.css" />
        </head>
        <body>
          <a class="skip-link" href="#main">
            Skip to content
          </a>
          <div class="topbar">
            <div class="container topbar__inner">
              <RegionSwitcher ctx={ctx} />
            </div>
          </div>
          <header class="site-header">
            <div class="container site-header__inner">
              <a class="logo" href={ctx.href('/')} aria-label={`${STORE_NAME} home`}>
                <img src="/favicon.svg" alt="" width={28} height={28} />
                <span>{STORE_NAME}</span>
              </a>
              <SearchForm ctx={ctx} />
              <a class="site-header__link" href="/cart">
                <svg viewBox="0 0 24 24" width="20" height="20" aria-hidden="true" focusable="false"><path d="M3 4h2l2.4 11.2a1 1 0 0 0 1 .8h9.2a1 1 0 0 0 1-.8L20 8H6.2" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round" /><circle cx="9" cy="20" r="1.5" fill="currentColor" /><circle cx="17" cy="20" r="1.5" fill="currentColor" /></svg>
                <span class="site-header__link-label">Cart</span>
              </a>
              <a class="site-header__link" href="/account">
                <svg viewBox="0 0 24 24" width="20" height="20" aria-hidden="true" focusable="false"><circle cx="12" cy="8" r="4" fill="none" stroke="currentColor" stroke-width="2" /><path d="M4 21a8 8 0 0 1 16 0" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" /></svg>
                <span class="site-header__link-label">Account</span>
              </a>
            </div>
          </header>
          <main id="main" class="container" tabindex={-1}>
            {children}
          </main>
          <footer class="site-footer">
            <div class="container">
              <p>
                Shopping in {region.name}. Prices in {region.currency}
                {region.taxInclusive ? ', tax included' : ''}.
              </p>
              <p>© {STORE_NAME}</p>
            </div>
          </footer>
        </body>
      </html>
    </>
  );
}
