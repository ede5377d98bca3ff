/**
 * HTML error pages: 404 for pages that do not exist (an unknown path, an
 * unknown, archived or not-sold-here product, an unknown category) and the
 * 4xx/5xx a page request can end in. The API keeps its JSON envelope; only
 * shoppers' page paths get these.
 */
import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { Served } from '../catalog/tiers';
import type { AppEnv } from '../types';
import { Layout } from './layout';
import { pageContext, sendErrorPage } from './page';

/** Props of {@link StatusPage}. */
export interface StatusPageProps {
  status: number;
  title: string;
  message: string;
}

/** Body of an error page, with ways on: home, search, and for region trouble a reset. */
export function StatusPage({ title, message, status, c }: StatusPageProps & { c: Context<AppEnv> }) {
  const ctx = pageContext(c);
  return (
    <Layout ctx={ctx} title={title}>
      <section class="status" aria-labelledby="status-title">
        <p class="status__code">{status}</p>
        <h1 id="status-title">{title}</h1>
        <p>{message}</p>
        <p class="status__actions">
          <a class="button" href="/">
            Go to the home page
          </a>
          {status === 400 ? (
            <a class="button-secondary" href="/region/sg?next=/">
              Reset region to Singapore
            </a>
          ) : (
            <a class="button-secondary" href="/search">
              Search the store
            </a>
          )}
        </p>
      </section>
    </Layout>
  );
}

/** Sends an HTML error page with the page headers (CSP, Vary, Content-Language, Server-Timing of `reads`). */
export function renderStatusPage(
  c: Context<AppEnv>,
  status: ContentfulStatusCode,
  title: string,
  message: string,
  reads: readonly Served<unknown>[] = [],
): Response | Promise<Response> {
  return sendErrorPage(c, status, reads, () => <StatusPage c={c} status={status} title={title} message={message} />);
}

/** The HTML 404 page. */
export function renderNotFoundPage(c: Context<AppEnv>, message = 'We could not find that page.', reads: readonly Served<unknown>[] = []) {
  return renderStatusPage(c, 404, 'Page not found', message, reads);
}
