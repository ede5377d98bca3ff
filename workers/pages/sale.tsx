/**
 * The flash-sale page: `GET /sale/:id` shows the countdown before the
 * start, "Join the queue" once it is live, then this device's place in the
 * queue until it is admitted (with a link to buy), sold out or over;
 * `POST /sale/:id/join` takes the ticket (the API's `joinQueue`) and comes
 * back with a 303.
 *
 * Without JavaScript the page reloads itself (`Refresh`) as often as the
 * queue suggests. With it, /assets/sale.js counts down against the server's
 * clock and follows the queue over the WebSocket the queue object keeps
 * open while it hibernates, reloading when the state changes.
 */
import { Hono, type Context } from 'hono';
import type { QueueStatus } from '../../durable-objects/sale-queue';
import { ApiError } from '../lib/errors';
import { joinQueue, pollAfter, queueStatus, shopperSale } from '../sales/routes';
import { effectiveEnd, type Sale } from '../sales/store';
import { turnstileEnabled } from '../sales/turnstile';
import type { AppEnv } from '../types';
import { Layout } from './layout';
import { PAGE_CSP, pageContext, sendPrivatePage, type PageContext } from './page';

/** Turnstile's script and frames come from Cloudflare: allowed on this page only, and only when configured. */
const TURNSTILE_ORIGIN = 'https://challenges.cloudflare.com';

/** The sale page's routes (mounted with the shopper pages). */
export const salePages = new Hono<AppEnv>();

function when(ctx: PageContext, iso: string): string {
  return new Intl.DateTimeFormat(ctx.region.locale, { dateStyle: 'medium', timeStyle: 'short', timeZone: ctx.region.timeZone }).format(new Date(iso));
}

interface SaleViewProps {
  ctx: PageContext;
  sale: Sale;
  status: QueueStatus | null;
  turnstileSiteKey: string | null;
  notice?: string;
}

/** The page's main content for each state of the sale and the ticket. */
function SaleView({ ctx, sale, status, turnstileSiteKey, notice }: SaleViewProps) {
  const products = [...new Map(sale.variants.map((v) => [v.productSlug, v])).values()];
  const buyLinks = (
    <ul class="sale__products">
      {products.map((v) => (
        <li>
          <a class="button" href={ctx.href(`/p/${v.productSlug}`)}>
            Buy {v.sku}
          </a>
        </li>
      ))}
    </ul>
  );
  const join = (
    <form class="sale__join" method="post" action={`/sale/${sale.id}/join`}>
      {turnstileSiteKey ? <div class="cf-turnstile" data-sitekey={turnstileSiteKey}></div> : null}
      <button type="submit" class="button">
        Join the queue
      </button>
    </form>
  );
  let body;
  if (sale.state === 'scheduled') {
    body = (
      <p class="sale__countdown">
        Starts <time datetime={sale.startsAt} data-countdown={sale.startsAt} data-server-time={new Date().toISOString()}>{when(ctx, sale.startsAt)}</time>.
        Keep this page open: it opens the queue at the start.
      </p>
    );
  } else if (sale.state === 'ended' || status?.state === 'ended') {
    body = <p>This sale has ended.</p>;
  } else if (!status || status.state === 'expired') {
    body = (
      <>
        {status?.state === 'expired' ? <p>Your turn to check out ran out. Join again to get a new place.</p> : <p>The sale is on. Limit {sale.perShopperCap} per shopper.</p>}
        {join}
      </>
    );
  } else if (status.state === 'admitted') {
    body = (
      <>
        <p class="sale__admitted">
          It is your turn. Check out before <time datetime={new Date(status.admissionExpiresAt!).toISOString()}>{when(ctx, new Date(status.admissionExpiresAt!).toISOString())}</time>, at most{' '}
          {sale.perShopperCap} per shopper{status.soldOut ? ' (everything is reserved right now; units from unfinished checkouts may come back)' : ''}.
        </p>
        {buyLinks}
      </>
    );
  } else if (status.state === 'sold_out') {
    body = (
      <p class="sale__soldout" data-queue={sale.id} data-position={status.position}>
        Sold out. Every unit is sold or reserved; if a reserved unit comes back, the queue moves again and this page will tell you.
      </p>
    );
  } else {
    body = (
      <p class="sale__waiting" data-queue={sale.id} data-position={status.position} aria-live="polite">
        You are number <strong data-field="position">{status.position}</strong> in the queue; <span data-field="ahead">{status.ahead}</span> ahead of you. About{' '}
        <span data-field="wait">{status.estimatedWaitSeconds}</span> seconds to go. Keep this page open.
      </p>
    );
  }
  return (
    <Layout ctx={ctx} title={sale.name}>
      <section class="sale">
        <h1>{sale.name}</h1>
        {notice ? <p class="notice notice--error" role="alert">{notice}</p> : null}
        {body}
      </section>
      <script src="/assets/sale.js" defer></script>
      {turnstileSiteKey ? <script src={`${TURNSTILE_ORIGIN}/turnstile/v0/api.js`} async defer></script> : null}
    </Layout>
  );
}

/** Renders the page for the sale and this device's ticket, with the right reload cadence. */
async function render(c: Context<AppEnv>, sale: Sale, status: QueueStatus | null, httpStatus: 200 | 403 | 422 | 429 | 503 = 200, notice?: string) {
  const siteKey = sale.turnstile && turnstileEnabled(c.env) ? (c.env.TURNSTILE_SITE_KEY ?? null) : null;
  let refresh: number | null = null;
  if (sale.state === 'scheduled') refresh = Math.max(1, Math.min(60, Math.ceil((Date.parse(sale.startsAt) - Date.now()) / 1000)));
  else if (status && (status.state === 'waiting' || status.state === 'sold_out')) refresh = Math.ceil(pollAfter(status) / 1000);
  const end = effectiveEnd(sale);
  if (refresh !== null && end !== null) refresh = Math.max(1, Math.min(refresh, Math.ceil((end - Date.now()) / 1000)));
  if (refresh !== null) c.header('Refresh', String(refresh));
  const response = await sendPrivatePage(c, httpStatus, () => <SaleView ctx={pageContext(c)} sale={sale} status={status} turnstileSiteKey={siteKey} notice={notice} />);
  if (siteKey) response.headers.set('Content-Security-Policy', PAGE_CSP.replace("script-src 'self'", `script-src 'self' ${TURNSTILE_ORIGIN}`) + `; frame-src ${TURNSTILE_ORIGIN}`);
  return response;
}

salePages.get('/sale/:id', async (c) => {
  const sale = await shopperSale(c, c.req.param('id'));
  let status: QueueStatus | null = null;
  try {
    status = await queueStatus(c, sale);
  } catch (err) {
    // A ticket from another browser is no place in the queue here.
    if (!(err instanceof ApiError && err.code === 'invalid_ticket')) throw err;
  }
  return render(c, sale, status);
});

salePages.post('/sale/:id/join', async (c) => {
  const sale = await shopperSale(c, c.req.param('id'));
  const form = await c.req.parseBody();
  const token = typeof form['cf-turnstile-response'] === 'string' ? form['cf-turnstile-response'] : undefined;
  try {
    await joinQueue(c, sale, token);
  } catch (err) {
    if (!(err instanceof ApiError) || ![403, 422, 429].includes(err.status)) throw err;
    return render(c, sale, null, err.status as 403 | 422 | 429, err.message);
  }
  return c.redirect(`/sale/${sale.id}`, 303);
});
