/**
 * Counters written to Workers Analytics Engine (binding `METRICS`, one
 * dataset per environment: `pasar_metrics_dev|staging|production`, see
 * wrangler.toml). Queried with the Analytics Engine SQL API; one query per
 * counter is in docs/OPERATIONS.md ("Counters").
 *
 * Every function is a no-op without the binding and never throws: a counter
 * must not fail or slow a request, a checkout or a queue message.
 * `writeDataPoint` is fire-and-forget (no await, nothing to wait for).
 * Locally (`wrangler dev`, the tests) miniflare gives a binding that drops
 * every write, unless the dataset is marked `remote = true`.
 *
 * Layout: every data point has one index, the counter's name (Analytics
 * Engine samples per index, so each counter keeps its own sampling rate),
 * `blob1` repeats that name, and `double1` is 1 (one event); queries count
 * with `SUM(_sample_interval)` and sum amounts with
 * `SUM(_sample_interval * doubleN)`.
 *
 * | counter | index1 / blob1 | blob2 | blob3 | blob4 | blob5 | double1 | double2 | double3 | double4 |
 * |---|---|---|---|---|---|---|---|---|---|
 * | {@link countOrder} | `order` | region | currency | order status when processed | | 1 | total, minor units | units | lines |
 * | {@link countCheckoutOutcome} | `checkout` | region | outcome (`confirmed`, `failed`) | reason (`''` when none) | | 1 | latency ms (0: not given) | | |
 * | {@link countCacheRead} | `cache_read` | tier (`cache`, `kv`, `redis`, `origin`) | document (`product`, `listing`, `search`, `categories`) | region | | 1 | ms | | |
 * | {@link countOutOfStock} | `out_of_stock` | region | kind (`refused`, `sold_out`) | variant id | source | 1 | units | | |
 */

/** The part of the environment the counters need: the dataset binding, when there is one. */
export interface MetricsEnv {
  METRICS?: AnalyticsEngineDataset;
}

/** Counter names (index1 and blob1 of every data point). */
export type MetricName = 'order' | 'checkout' | 'cache_read' | 'out_of_stock';

/** Analytics Engine allows 250 data points per invocation; one call never writes more than this many. */
export const MAX_POINTS_PER_CALL = 25;

/** Longest blob kept: blobs share a 16 KB budget per data point, and none of ours needs more. */
const MAX_BLOB_CHARS = 200;

const blob = (value: string | null | undefined): string => (value ?? '').slice(0, MAX_BLOB_CHARS);
const double = (value: number | null | undefined): number => (typeof value === 'number' && Number.isFinite(value) ? value : 0);

/** Writes one data point; never throws. */
function write(env: MetricsEnv | undefined, name: MetricName, blobs: (string | null | undefined)[], doubles: (number | null | undefined)[]): void {
  try {
    const dataset = env?.METRICS;
    if (!dataset || typeof dataset.writeDataPoint !== 'function') return;
    dataset.writeDataPoint({ indexes: [name], blobs: [name, ...blobs.map(blob)], doubles: [1, ...doubles.map(double)] });
  } catch (err) {
    // A counter is never worth a failed request; say so once per failure.
    try {
      console.warn(JSON.stringify({ level: 'warn', msg: 'metric not written', metric: name, error: String(err).slice(0, 200) }));
    } catch {
      // nothing more to do
    }
  }
}

/** An order, counted once when the ORDER_EVENTS consumer first processes its `order.created`. */
export interface OrderMetric {
  region: string;
  currency: string;
  /** Order total in minor units of `currency`. */
  totalAmount: number;
  units: number;
  lines: number;
  /** The order's status when the event was processed (`confirmed`, `cancelled`, …). */
  status: string;
}

/** Counts an order (blob2 region, blob3 currency, blob4 status; double2 total, double3 units, double4 lines). */
export function countOrder(env: MetricsEnv | undefined, order: OrderMetric): void {
  write(env, 'order', [order.region, order.currency, order.status], [order.totalAmount, order.units, order.lines]);
}

/** How a checkout ended. */
export type CheckoutOutcome = 'confirmed' | 'failed';

/** A finished checkout. */
export interface CheckoutOutcomeMetric {
  region: string;
  outcome: CheckoutOutcome;
  /** Why it failed (`out_of_stock`, `payment_declined`, `not_admitted`, …); omit for a confirmed one. */
  reason?: string | null;
  /** From `POST /api/checkout` to the outcome, when known. */
  latencyMs?: number;
}

/**
 * Counts a checkout's outcome (blob2 region, blob3 outcome, blob4 reason;
 * double2 latency ms). Meant to be called once per checkout, when the saga
 * stores its final state.
 */
export function countCheckoutOutcome(env: MetricsEnv | undefined, checkout: CheckoutOutcomeMetric): void {
  write(env, 'checkout', [checkout.region, checkout.outcome, checkout.reason ?? ''], [checkout.latencyMs]);
}

/** Which catalog tier answered (the same names as `x-cache-tier`). */
export type CacheTier = 'cache' | 'kv' | 'redis' | 'origin';

/** Which catalog document was read. */
export type CatalogDocument = 'product' | 'listing' | 'search' | 'categories';

/** One tiered catalog read. */
export interface CacheReadMetric {
  tier: CacheTier;
  document: CatalogDocument;
  region: string;
  /** Time the read took. */
  ms?: number;
}

/** Counts one catalog read by the tier that answered (blob2 tier, blob3 document, blob4 region; double2 ms). */
export function countCacheRead(env: MetricsEnv | undefined, read: CacheReadMetric): void {
  write(env, 'cache_read', [read.tier, read.document, read.region], [read.ms]);
}

/**
 * What out of stock means here:
 * - `refused`: a reservation could not hold a line (the shopper was told out
 *   of stock): demand the shelf could not meet;
 * - `sold_out`: an order took the last available unit of a variant in a
 *   region.
 */
export type OutOfStockKind = 'refused' | 'sold_out';

/** Variants that were out of stock in a region. */
export interface OutOfStockMetric {
  region: string;
  kind: OutOfStockKind;
  variants: { variantId: string; units?: number }[];
  /** Who noticed: `reserve` (workers/inventory/shards.ts), `order_events` (the queue consumer). */
  source: string;
}

/**
 * Counts out-of-stock variants, one data point each (blob2 region, blob3
 * kind, blob4 variant id, blob5 source; double2 units requested, 0 when not
 * known). At most {@link MAX_POINTS_PER_CALL} per call.
 */
export function countOutOfStock(env: MetricsEnv | undefined, event: OutOfStockMetric): void {
  try {
    for (const v of event.variants.slice(0, MAX_POINTS_PER_CALL)) write(env, 'out_of_stock', [event.region, event.kind, v.variantId, event.source], [v.units]);
  } catch {
    // `variants` not iterable: a caller's bug, still not worth a failure.
  }
}
