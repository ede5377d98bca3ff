/**
 * `checkout-sale`: a flash sale through the real checkout, end to end, on the
 * store instance the catalog scenarios use (`edge`), with the payment
 * simulator (dev/payment-sim.ts) the bench starts as its provider.
 *
 *   1. a fresh product with one variant priced in sg, U units received there
 *      (BENCH_CHECKOUT_UNITS, 200), through the admin API;
 *   2. N shoppers (BENCH_CHECKOUT_SHOPPERS, 1,000) each get a cart holding one
 *      unit (`POST /api/carts`, `POST /api/carts/:id/items`), 32 at a time;
 *   3. all N checkouts are POSTed at once (`POST /api/checkout`, a fresh
 *      Idempotency-Key each, `tok_ok`), 64 in flight (BENCH_CHECKOUT_CONCURRENCY);
 *   4. every checkout is followed (`GET /api/checkout/:id`) until confirmed or
 *      failed;
 *   5. checks: every POST answered 202, exactly U confirmed, N − U failed
 *      out_of_stock, nothing oversold (admin view), U orders in Postgres, and
 *      one captured charge at the simulator per confirmed checkout, none for
 *      the others.
 *
 * The generator is Node's fetch: the Worker (one workerd thread) is the
 * bottleneck at these rates, not the client.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import pg from 'pg';
import type { PaymentSim } from '../../dev/payment-sim';
import { seedFixtures } from '../../db/seed';
import type { RunningWorker } from '../lib/workers';
import { envInt } from '../lib/settings';
import { answerOf } from '../lib/http';

export interface CheckoutSettings {
  units: number;
  shoppers: number;
  concurrency: number;
}

export function checkoutSettings(env: NodeJS.ProcessEnv): CheckoutSettings {
  const num = (name: string, fallback: number, min: number, max: number) => envInt(env, name, fallback, min, max);
  const units = num('BENCH_CHECKOUT_UNITS', 200, 1, 100_000);
  const shoppers = num('BENCH_CHECKOUT_SHOPPERS', 1_000, 1, 100_000);
  if (shoppers < units) throw new Error(`BENCH_CHECKOUT_SHOPPERS (${shoppers}) must be at least BENCH_CHECKOUT_UNITS (${units})`);
  return { units, shoppers, concurrency: num('BENCH_CHECKOUT_CONCURRENCY', 64, 1, 1_000) };
}

/** What `checkout-sale` found (ScenarioResult.checkout). */
export interface CheckoutOutcome {
  sku: string;
  variantId: string;
  units: number;
  shoppers: number;
  concurrency: number;
  /** Seconds to make the N carts (not part of the sale). */
  cartsSeconds: number;
  /** POST /api/checkout answers by status. */
  accepted: number;
  postStatus: Record<string, number>;
  /** Seconds from the first POST to the last answer; accepted ÷ that. */
  acceptSeconds: number;
  acceptedPerSecond: number;
  postLatencyMs: { p50: number; p95: number; p99: number; max: number };
  /** Seconds from the first POST until every checkout was seen confirmed or failed. */
  settleSeconds: number;
  /** Seconds from the first POST until the last confirmation was seen; confirmed ÷ that. */
  confirmSeconds: number;
  confirmedPerSecond: number;
  /** Settled outcomes: confirmed, or the failure reason. */
  outcomes: Record<string, number>;
  polls: number;
  /** Admin view of the variant in sg after the sale. */
  admin: { received: number; available: number; held: number; sold: number };
  oversold: number;
  /** Postgres orders (and units) for the variant. */
  orders: { orders: number; units: number };
  /** Simulator authorisations of this sale's checkouts, by status. */
  simAuthorizations: Record<string, number>;
  captured: number;
  /** accepted/s ÷ `ceiling` req/s; confirmed/s ÷ `ceiling-do` req/s. */
  acceptedRatioToCeiling: number | null;
  confirmedRatioToCeilingDo: number | null;
  checks: { name: string; ok: boolean; detail: string }[];
}

const round = (n: number, digits = 3) => Math.round(n * 10 ** digits) / 10 ** digits;

/** Runs `fn` over `items`, `limit` at a time. */
async function pool<T, R>(items: T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!, i);
      }
    }),
  );
  return out;
}

async function call(base: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: any; text: string }> {
  const res = await fetch(base + path, {
    method,
    headers: { 'x-region': 'sg', ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(60_000),
  });
  return answerOf(res);
}

const percentile = (sorted: number[], p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]! : 0);

export async function runCheckoutSale(opts: {
  worker: RunningWorker;
  adminToken: string;
  sim: PaymentSim;
  databaseUrl: string;
  settings: CheckoutSettings;
  ceilingRps: number | undefined;
  ceilingDoRps: number | undefined;
  log: (message: string) => void;
  /** Called when the POSTs start and when everything has settled (CPU and origin sampling). */
  onWindow?: (phase: 'start' | 'end') => void;
}): Promise<CheckoutOutcome> {
  const { worker, adminToken, sim, settings, log } = opts;
  const base = worker.url;
  const auth = { authorization: `Bearer ${adminToken}` };
  const fx = seedFixtures();

  // 1. A fresh variant, U units in sg.
  const sku = `BENCH-CHK-${randomBytes(4).toString('hex').toUpperCase()}`;
  const created = await call(
    base,
    'POST',
    '/admin/api/products',
    { title: `Bench checkout sale ${sku}`, category: fx.busiestCategorySlug, variants: [{ sku, title: '200 g jar', prices: { sg: { amount: 1990 } } }] },
    auth,
  );
  if (created.status !== 201) throw new Error(`admin POST /products answered ${created.status}: ${created.text.slice(0, 500)}`);
  const variantId = created.json.variants[0].id as string;
  const stocked = await call(base, 'PUT', `/admin/api/inventory/${encodeURIComponent(sku)}`, { region: 'sg', quantity: settings.units }, auth);
  const lvl0 = stocked.json?.regions?.sg;
  if (stocked.status !== 200 || !lvl0 || lvl0.received !== settings.units || lvl0.available !== settings.units) {
    throw new Error(`admin PUT /inventory/${sku} answered ${stocked.status}: ${stocked.text.slice(0, 500)}`);
  }

  // 2. The carts.
  const cartsStarted = Date.now();
  const carts = await pool(Array.from({ length: settings.shoppers }), 32, async () => {
    const cart = await call(base, 'POST', '/api/carts', {});
    if (cart.status !== 201 && cart.status !== 200) throw new Error(`POST /api/carts answered ${cart.status}: ${cart.text.slice(0, 300)}`);
    const id = cart.json.id as string;
    const add = await call(base, 'POST', `/api/carts/${id}/items`, { variantId, quantity: 1 });
    if (add.status !== 200) throw new Error(`POST /api/carts/${id}/items answered ${add.status}: ${add.text.slice(0, 300)}`);
    return id;
  });
  const cartsSeconds = (Date.now() - cartsStarted) / 1000;
  log(`checkout-sale: ${carts.length} carts ready in ${cartsSeconds.toFixed(1)} s; ${settings.units} units of ${sku}; POSTing ${carts.length} checkouts, ${settings.concurrency} in flight`);

  // 3. All checkouts at once.
  opts.onWindow?.('start');
  const started = performance.now();
  const postStatus: Record<string, number> = {};
  const latencies: number[] = [];
  let firstBadPost: string | null = null;
  const ids = await pool(carts, settings.concurrency, async (cartId) => {
    const t0 = performance.now();
    const res = await call(
      base,
      'POST',
      '/api/checkout',
      {
        cartId,
        email: 'siti@example.com',
        shippingAddress: { name: 'Siti Rahman', line1: '1 Orchard Road', city: 'Singapore', postalCode: '238823', country: 'SG' },
        payment: { method: 'card', token: 'tok_ok' },
      },
      { 'idempotency-key': `bench-${randomUUID()}` },
    );
    latencies.push(performance.now() - t0);
    postStatus[res.status] = (postStatus[res.status] ?? 0) + 1;
    if (res.status !== 202 && !firstBadPost) firstBadPost = `${res.status} ${res.text.slice(0, 300)}`;
    return typeof res.json?.checkoutId === 'string' ? (res.json.checkoutId as string) : null;
  });
  const acceptSeconds = (performance.now() - started) / 1000;
  const accepted = postStatus['202'] ?? 0;
  log(`checkout-sale: ${accepted} of ${carts.length} accepted (202) in ${acceptSeconds.toFixed(2)} s; following them`);

  // 4. Follow every checkout until it settles.
  const pending = new Set(ids.filter((id): id is string => id !== null));
  const outcomeOf = new Map<string, { status: string; reason?: string }>();
  let lastConfirmedAt = started;
  let lastSettledAt = started;
  let polls = 0;
  const deadline = Date.now() + 300_000;
  while (pending.size && Date.now() < deadline) {
    await pool([...pending], settings.concurrency, async (id) => {
      const res = await call(base, 'GET', `/api/checkout/${id}`);
      polls++;
      const status = res.json?.status as string | undefined;
      if (res.status === 200 && (status === 'confirmed' || status === 'failed')) {
        const now = performance.now();
        outcomeOf.set(id, { status, reason: res.json.reason });
        pending.delete(id);
        lastSettledAt = now;
        if (status === 'confirmed') lastConfirmedAt = now;
      }
    });
    if (pending.size) {
      log(`checkout-sale: ${outcomeOf.size} settled, ${pending.size} pending, ${((performance.now() - started) / 1000).toFixed(1)} s after the first POST`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  opts.onWindow?.('end');
  const settleSeconds = (lastSettledAt - started) / 1000;
  const confirmSeconds = (lastConfirmedAt - started) / 1000;
  const outcomes: Record<string, number> = {};
  for (const o of outcomeOf.values()) {
    const key = o.status === 'failed' ? (o.reason ?? 'failed') : o.status;
    outcomes[key] = (outcomes[key] ?? 0) + 1;
  }
  if (pending.size) outcomes.unsettled = pending.size;
  const confirmed = outcomes.confirmed ?? 0;
  const confirmedIds = new Set([...outcomeOf].filter(([, o]) => o.status === 'confirmed').map(([id]) => id));

  // 5. What the store, the origin and the simulator say.
  await Promise.race([sim.webhooksIdle().catch(() => {}), new Promise((r) => setTimeout(r, 10_000))]);
  const view = await call(base, 'GET', `/admin/api/inventory/${encodeURIComponent(sku)}`, undefined, auth);
  const level = view.json?.regions?.sg ?? { received: 0, available: 0, held: 0, sold: 0 };
  const oversold = Math.max(0, level.held + level.sold - level.received);
  const client = new pg.Client({ connectionString: opts.databaseUrl });
  await client.connect();
  let orders = { orders: -1, units: -1 };
  try {
    const { rows } = await client.query<{ orders: number; units: number }>(
      'select count(distinct o.id)::int as orders, coalesce(sum(l.quantity), 0)::int as units from orders o join order_lines l on l.order_id = o.id where l.variant_id = $1',
      [variantId],
    );
    orders = rows[0] ?? orders;
  } finally {
    await client.end();
  }
  const ours = new Set(ids.filter((id): id is string => id !== null));
  const auths = sim.authorizations().filter((a) => ours.has(a.reference));
  const simAuthorizations: Record<string, number> = {};
  for (const a of auths) simAuthorizations[a.status] = (simAuthorizations[a.status] ?? 0) + 1;
  const capturedRefs = auths.filter((a) => a.status === 'captured').map((a) => a.reference);
  const captured = capturedRefs.length;
  const capturedPerCheckout = new Map<string, number>();
  for (const r of capturedRefs) capturedPerCheckout.set(r, (capturedPerCheckout.get(r) ?? 0) + 1);
  const wrongCharges = [...ours].filter((id) => (capturedPerCheckout.get(id) ?? 0) !== (confirmedIds.has(id) ? 1 : 0)).length;

  const checks: CheckoutOutcome['checks'] = [];
  const check = (name: string, ok: boolean, detail: string) => checks.push({ name, ok, detail });
  const N = settings.shoppers;
  const U = settings.units;
  check('every checkout accepted (202)', accepted === N, `${JSON.stringify(postStatus)}${firstBadPost ? `; first other: ${firstBadPost}` : ''}`);
  check('every checkout settled', pending.size === 0, `${pending.size} still pending after 300 s`);
  check(`exactly ${U} confirmed`, confirmed === U, `${confirmed}`);
  check(`${N - U} out_of_stock, nothing else`, (outcomes.out_of_stock ?? 0) === N - U && confirmed + (outcomes.out_of_stock ?? 0) === N, JSON.stringify(outcomes));
  check('oversold = 0', oversold === 0, `held ${level.held} + sold ${level.sold} vs received ${level.received}`);
  check(`all ${U} units sold, none held`, level.received === U && level.sold === U && level.held === 0 && level.available === 0, JSON.stringify(level));
  check(`${U} orders of ${U} units in Postgres`, orders.orders === U && orders.units === U, JSON.stringify(orders));
  check('captured charges at the simulator = confirmed', captured === confirmed, `${captured} captured; by status ${JSON.stringify(simAuthorizations)}`);
  check('one captured charge per confirmed checkout, none for the others', wrongCharges === 0, `${wrongCharges} checkout(s) charged wrongly`);

  const sorted = [...latencies].sort((a, b) => a - b);
  const acceptedPerSecond = acceptSeconds > 0 ? accepted / acceptSeconds : 0;
  const confirmedPerSecond = confirmSeconds > 0 ? confirmed / confirmSeconds : 0;
  return {
    sku,
    variantId,
    units: U,
    shoppers: N,
    concurrency: settings.concurrency,
    cartsSeconds: round(cartsSeconds, 2),
    accepted,
    postStatus,
    acceptSeconds: round(acceptSeconds, 3),
    acceptedPerSecond: round(acceptedPerSecond, 1),
    postLatencyMs: { p50: round(percentile(sorted, 50)), p95: round(percentile(sorted, 95)), p99: round(percentile(sorted, 99)), max: round(sorted.at(-1) ?? 0) },
    settleSeconds: round(settleSeconds, 3),
    confirmSeconds: round(confirmSeconds, 3),
    confirmedPerSecond: round(confirmedPerSecond, 1),
    outcomes,
    polls,
    admin: { received: level.received, available: level.available, held: level.held, sold: level.sold },
    oversold,
    orders,
    simAuthorizations,
    captured,
    acceptedRatioToCeiling: opts.ceilingRps ? round(acceptedPerSecond / opts.ceilingRps) : null,
    confirmedRatioToCeilingDo: opts.ceilingDoRps ? round(confirmedPerSecond / opts.ceilingDoRps) : null,
    checks,
  };
}
