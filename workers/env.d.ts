/**
 * Optional configuration `wrangler types` cannot mark optional: merged into
 * the generated `Env`. An empty string means unset.
 */
interface __BaseEnv_Env {
  /** Read replica URLs (Neon read replicas), optionally labelled with their regions: `sg,my=postgres://…; tw=postgres://…`. */
  DATABASE_REPLICA_URLS?: string;
  /** A replica further behind than this many ms is skipped; also how long a shopper's write pins their reads (default 10,000). */
  REPLICA_MAX_LAG_MS?: string;
  /** How long a replica that failed or lagged is skipped before it is tried again, in ms (default 15,000). */
  REPLICA_RETRY_MS?: string;
  /** Local only: host:port/path of dev/'s WebSocket-to-TCP bridge for the Neon driver. */
  NEON_WS_PROXY?: string;
  /** Accepted as an `owner` admin token when set (first deploy, local use). */
  ADMIN_BOOTSTRAP_TOKEN?: string;
  /** Milliseconds one payment provider call may take before it is retried (default 15,000). */
  PAYMENT_TIMEOUT_MS?: string;
  /** How long a checkout keeps retrying a slow or unreachable payment provider before it fails `payment_failed`, in ms (default 300,000). */
  PAYMENT_DEADLINE_MS?: string;
  /** Signing secret of Stripe webhooks, when Stripe sends events to this store. */
  STRIPE_WEBHOOK_SECRET?: string;
  /** Which payment provider the checkout saga uses: `stripe`, or unset for the `PAYMENT_API_URL` one (the simulator locally). */
  PAYMENT_PROVIDER?: string;
  /** Stripe secret API key; required when `PAYMENT_PROVIDER` is `stripe`. */
  STRIPE_SECRET_KEY?: string;
  /** Base URL of Stripe's API; https://api.stripe.com when unset (tests point it at a stand-in). */
  STRIPE_API_BASE?: string;
  /**
   * The signing secret before the last rotation (`wrangler secret put
   * SIGNING_SECRET_PREVIOUS`), for a window after one: tokens, cursors and
   * cookies it signed still verify, and a checkout started under it is still
   * found by its Idempotency-Key. Remove it once the window has passed
   * (docs/OPERATIONS.md, "SIGNING_SECRET").
   */
  SIGNING_SECRET_PREVIOUS?: string;
  /** Turnstile site key shown to shoppers' pages before a flash-sale ticket; with `TURNSTILE_SECRET_KEY`, switches the check on. Unset locally: no check. */
  TURNSTILE_SITE_KEY?: string;
  /** Turnstile secret key (`wrangler secret put TURNSTILE_SECRET_KEY`): tickets of sales with `turnstile` need a token that siteverify accepts. */
  TURNSTILE_SECRET_KEY?: string;
  /** Siteverify endpoint; Cloudflare's when unset (tests point it at dev/'s stand-in). */
  TURNSTILE_VERIFY_URL?: string;
  /** First retry delay of an outbound webhook delivery, in seconds, doubling per attempt (default 30; tests set 0). */
  WEBHOOK_RETRY_BASE_SECONDS?: string;
  /** Milliseconds a subscriber may take to answer one delivery (default 10,000). */
  WEBHOOK_TIMEOUT_MS?: string;
  /** `inventory.low` fires when an order takes a variant's available units in its region below this (default 5). */
  WEBHOOK_LOW_STOCK_THRESHOLD?: string;
}
