/**
 * `flash-queue`, `flash-queue-sharded`: a flash sale through its queue, end to
 * end, on the store instance the checkout sale uses (`edge`, with the payment
 * simulator as its provider).
 *
 *   1. a fresh product with one variant priced in sg, U units received there
 *      (BENCH_QUEUE_UNITS, 200), and a sale of it through the admin API
 *      (`POST /admin/api/sales`: cap 2 per shopper, BENCH_QUEUE_RATE admitted
 *      per second, 1 queue object or BENCH_QUEUE_SHARDS, Turnstile off),
 *      starting 2 s later;
 *   2. at the start, N shoppers (BENCH_QUEUE_SHOPPERS, 2,000), each with its
 *      own cookie jar (device cookie, ticket cookie) and its own
 *      `cf-connecting-ip`, press "buy": `POST /api/sales/:id/tickets`; the
 *      page then follows its ticket over `GET /api/sales/:id/queue/ws` (a
 *      WebSocket), or, for every 10th shopper, by polling `GET …/queue` as
 *      `pollAfterMs` says. Tickets and WebSocket upgrades share
 *      BENCH_QUEUE_CONCURRENCY (64) requests in flight, as a burst of pages would;
 *   3. an admitted shopper makes a cart of 2 units (the cap) and checks out
 *      (`x-queue-ticket`, its own email), following the checkout until it
 *      settles; every 4th shopper whose checkout is confirmed tries a second
 *      one of 1 unit (must fail: `cap_exceeded`, or `out_of_stock` once gone);
 *   4. until every waiting shopper has been told "sold out" and every
 *      checkout has settled; then the sale's report (`GET /admin/api/sales/:id/report`),
 *      the admin inventory view, Postgres orders and the simulator's charges.
 *
 * Reported: tickets/s (answers ÷ time from the first POST to the last answer)
 * and latency, against `ceiling-do`; admissions per second (the queue's own
 * `admittedAt` stamps, per second of the sale) against the configured rate;
 * time from the sold-out mark (the report's `soldOutAt`) to each waiting
 * shopper hearing it; checkout latency from the report; units, orders,
 * charges and units per shopper, checked.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import pg from 'pg';
import WebSocket from 'ws';
import type { PaymentSim } from '../../dev/payment-sim';
import { seedFixtures } from '../../db/seed';
import type { RunningWorker } from '../lib/workers';
import { envInt } from '../lib/settings';
import { answerOf } from '../lib/http';

export interface QueueSettings {
  shoppers: number;
  units: number;
  rate: number;
  shards: number;
  concurrency: number;
  cap: number;
}

export function queueSettings(env: NodeJS.ProcessEnv): QueueSettings {
  const num = (name: string, fallback: number, min: number, max: number) => envInt(env, name, fallback, min, max);
  const s = {
    shoppers: num('BENCH_QUEUE_SHOPPERS', 2_000, 10, 50_000),
    units: num('BENCH_QUEUE_UNITS', 200, 1, 100_000),
    rate: num('BENCH_QUEUE_RATE', 10, 1, 100_000),
    shards: num('BENCH_QUEUE_SHARDS', 4, 2, 16),
    concurrency: num('BENCH_QUEUE_CONCURRENCY', 64, 1, 2_000),
    cap: 2,
  };
  if (s.shoppers * s.cap < s.units * 2) throw new Error(`BENCH_QUEUE_SHOPPERS (${s.shoppers}) is too few to sell out ${s.units} units at ${s.cap} each with room to spare`);
  return s;
}

/** What a queue scenario found (ScenarioResult.queue). */
export interface QueueOutcome {
  saleId: string;
  sku: string;
  units: number;
  shoppers: number;
  cap: number;
  queueShards: number;
  admissionRate: number;
  concurrency: number;
  pollers: number;
  /** `status`: every answer, retries included; `latencyMs`: per request; `pressToTicketMs`: from the first press to the ticket. */
  tickets: {
    status: Record<string, number>;
    errors: number;
    retries: number;
    seconds: number;
    perSecond: number;
    latencyMs: Pct;
    pressToTicketMs: Pct;
    ratioToCeilingDo: number | null;
    ratioToCeiling: number | null;
    pgQueriesPerTicket?: number | null;
  };
  wsOpens: { ok: number; failed: number; dropped: number; latencyMs: Pct };
  admission: {
    admitted: number;
    /** Full seconds of the sale before the sold-out mark, with people waiting. */
    fullSeconds: number;
    perSecondMean: number | null;
    perSecondMin: number | null;
    perSecondMax: number | null;
    /** admitted ÷ (last admittedAt − start). */
    overall: number | null;
    /** perSecondMean ÷ rate. */
    accuracy: number | null;
    /** Admitted at their ticket answer (an empty window's room). */
    atIssue: number;
  };
  soldOut: {
    soldOutAt: number | null;
    /** ms from the sale's start to the sold-out mark. */
    afterStartMs: number | null;
    waiting: number;
    told: number;
    notTold: number;
    /** ms from soldOutAt to each waiting shopper hearing it, by channel. */
    ws: Pct & { n: number };
    poll: Pct & { n: number };
    all: Pct & { n: number };
    /** Tickets answered after the mark (never waited). */
    lateTickets: number;
  };
  checkouts: {
    posted: number;
    postStatus: Record<string, number>;
    outcomes: Record<string, number>;
    second: Record<string, number>;
    unsettled: number;
    /** Cart calls tried again after a 503 or no answer, as the page would. */
    cartRetries: number;
    clientLatencyMs: Pct;
  };
  report: any;
  reportLatencyMs: { p50: number | null; p95: number | null; p99: number | null };
  admin: { received: number; available: number; held: number; sold: number };
  oversold: number;
  /** Postgres, the sale's variant; each shopper has its own email, device and address, so per email = per shopper. */
  orders: { orders: number; units: number; maxUnitsPerEmail: number };
  captured: number;
  wallSeconds: number;
  checks: { name: string; ok: boolean; detail: string }[];
}

type Pct = { p50: number; p95: number; p99: number; max: number };

const round = (n: number, digits = 3) => Math.round(n * 10 ** digits) / 10 ** digits;
const pctOf = (values: number[]): Pct => {
  const s = [...values].sort((a, b) => a - b);
  const at = (p: number) => (s.length ? s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]! : 0);
  return { p50: round(at(50), 1), p95: round(at(95), 1), p99: round(at(99), 1), max: round(s.at(-1) ?? 0, 1) };
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** At most `n` at once. */
class Limiter {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(private readonly n: number) {}
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.n) await new Promise<void>((r) => this.waiting.push(r));
    this.active++;
    try {
      return await fn();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}

const CHECKOUT_BODY = (cartId: string, email: string) => ({
  cartId,
  email,
  shippingAddress: { name: 'Siti Rahman', line1: '1 Orchard Road', city: 'Singapore', postalCode: '238823', country: 'SG' },
  payment: { method: 'card', token: 'tok_ok' },
});

/** One shopper: a cookie jar, an address, and what happened to it. */
class Shopper {
  readonly cookies = new Map<string, string>();
  readonly ip: string;
  readonly email: string;
  ticket?: string;
  position = 0;
  /** Server stamps. */
  admittedAt?: number;
  admittedAtIssue = false;
  /** Client clock (Date.now()) when it heard of the sold-out mark while waiting. */
  toldSoldOutAt?: number;
  ticketAnsweredAt?: number;
  /** Set once admitted (the checkout flow runs once). */
  checkout?: Promise<void>;
  done = false;
  ws?: WebSocket;

  constructor(
    readonly index: number,
    readonly poller: boolean,
  ) {
    const i = index + 1;
    this.ip = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
    this.email = `shopper-${index}@bench.example`;
  }

  headers(extra: Record<string, string> = {}): Record<string, string> {
    return {
      'x-region': 'sg',
      'cf-connecting-ip': this.ip,
      ...(this.cookies.size ? { cookie: [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ') } : {}),
      ...extra,
    };
  }

  keep(res: Response): void {
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const i = pair!.indexOf('=');
      if (i > 0) this.cookies.set(pair!.slice(0, i), pair!.slice(i + 1));
    }
  }
}

async function call(base: string, s: Shopper | null, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: any; text: string }> {
  const res = await fetch(base + path, {
    method,
    headers: { ...(s ? s.headers(headers) : { 'x-region': 'sg', ...headers }), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  s?.keep(res);
  return answerOf(res);
}

export async function runQueueSale(opts: {
  worker: RunningWorker;
  adminToken: string;
  sim: PaymentSim;
  databaseUrl: string;
  settings: QueueSettings;
  queueShards: number;
  ceilingRps: number | undefined;
  ceilingDoRps: number | undefined;
  log: (message: string) => void;
  name: string;
  onWindow?: (phase: 'start' | 'end') => void;
  /** Called once every shopper has its ticket (or gave up). */
  onTickets?: () => void;
}): Promise<QueueOutcome> {
  const { worker, adminToken, sim, settings, log, name } = opts;
  const base = worker.url;
  const auth = { authorization: `Bearer ${adminToken}` };
  const fx = seedFixtures();
  const wall = performance.now();

  // 1. The product, its stock, the sale.
  const sku = `BENCH-Q-${randomBytes(4).toString('hex').toUpperCase()}`;
  const created = await call(
    base,
    null,
    'POST',
    '/admin/api/products',
    { title: `Bench queue sale ${sku}`, category: fx.busiestCategorySlug, variants: [{ sku, title: '200 g jar', prices: { sg: { amount: 1990 } } }] },
    auth,
  );
  if (created.status !== 201) throw new Error(`admin POST /products answered ${created.status}: ${created.text.slice(0, 500)}`);
  const variantId = created.json.variants[0].id as string;
  const stocked = await call(base, null, 'PUT', `/admin/api/inventory/${encodeURIComponent(sku)}`, { region: 'sg', quantity: settings.units }, auth);
  if (stocked.status !== 200 || stocked.json?.regions?.sg?.available !== settings.units) throw new Error(`admin PUT /inventory/${sku} answered ${stocked.status}: ${stocked.text.slice(0, 500)}`);
  const startsAt = Date.now() + 2_000;
  const sale = await call(
    base,
    null,
    'POST',
    '/admin/api/sales',
    {
      name: `Bench drop ${sku}`,
      skus: [sku],
      regions: ['sg'],
      startsAt: new Date(startsAt).toISOString(),
      perShopperCap: settings.cap,
      admissionRate: settings.rate,
      queueShards: opts.queueShards,
      admissionTtlSeconds: 600,
      turnstile: false,
    },
    auth,
  );
  if (sale.status !== 201) throw new Error(`admin POST /sales answered ${sale.status}: ${sale.text.slice(0, 500)}`);
  const saleId = sale.json.id as string;
  const shoppers = Array.from({ length: settings.shoppers }, (_, i) => new Shopper(i, i % 10 === 9));
  log(`${name}: sale ${saleId}, ${settings.units} units of ${sku}, cap ${settings.cap}, ${settings.rate}/s over ${opts.queueShards} queue object(s); ${shoppers.length} shoppers at the start`);

  // State shared by the shoppers.
  const limiter = new Limiter(settings.concurrency);
  const ticketStatus: Record<string, number> = {};
  const ticketLatency: number[] = [];
  const wsLatency: number[] = [];
  let wsFailed = 0;
  let wsDropped = 0;
  let firstBadTicket: string | null = null;
  let retries = 0;
  let cartRetries = 0;
  const pressToTicket: number[] = [];
  const postStatus: Record<string, number> = {};
  const outcomes: Record<string, number> = {};
  const second: Record<string, number> = {};
  const checkoutLatency: number[] = [];
  const checkoutIds: string[] = [];
  const confirmedIds = new Set<string>();
  let unsettled = 0;
  let firstBadCheckout: string | null = null;
  let saleSoldOutSeenAt: number | null = null;

  /**
   * A cart call as the shopper's page makes it: a 503 (a dependency busy,
   * with Retry-After) or no answer is tried again after a pause, up to 5
   * times; the tries are counted and reported.
   */
  const asAPageWould = async (send: () => ReturnType<typeof call>): ReturnType<typeof call> => {
    for (let attempt = 1; ; attempt++) {
      const res = await send().catch(() => ({ status: 0, json: null, text: 'no answer' }));
      if ((res.status !== 503 && res.status !== 0) || attempt === 5) return res;
      cartRetries++;
      await sleep(250 * attempt);
    }
  };

  /** One checkout of `quantity`; resolves with its outcome. */
  const checkoutOnce = async (s: Shopper, quantity: number): Promise<string> => {
    const cart = await asAPageWould(() => call(base, s, 'POST', '/api/carts', {}));
    if (cart.status !== 201 && cart.status !== 200) return `cart_${cart.status}`;
    const add = await asAPageWould(() => call(base, s, 'POST', `/api/carts/${cart.json.id}/items`, { variantId, quantity }));
    if (add.status !== 200) return `cart_add_${add.status}`;
    const t0 = performance.now();
    const post = await call(base, s, 'POST', '/api/checkout', CHECKOUT_BODY(cart.json.id, s.email), { 'idempotency-key': `bench-${randomUUID()}`, 'x-queue-ticket': s.ticket! });
    postStatus[post.status] = (postStatus[post.status] ?? 0) + 1;
    if (post.status !== 202) {
      firstBadCheckout ??= `${post.status} ${post.text.slice(0, 300)}`;
      return `post_${post.status}`;
    }
    const id = post.json.checkoutId as string;
    checkoutIds.push(id);
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      // As the checkout status page does (it reloads every second).
      await sleep(1_000);
      const st = await call(base, s, 'GET', `/api/checkout/${id}`);
      const status = st.json?.status as string | undefined;
      if (st.status === 200 && (status === 'confirmed' || status === 'failed')) {
        checkoutLatency.push(performance.now() - t0);
        if (status === 'confirmed') confirmedIds.add(id);
        return status === 'confirmed' ? 'confirmed' : (st.json.reason ?? 'failed');
      }
    }
    unsettled++;
    return 'unsettled';
  };

  const admitted = (s: Shopper, admittedAt: number) => {
    if (s.checkout) return;
    s.admittedAt = admittedAt;
    s.ws?.close();
    s.checkout = (async () => {
      const outcome = await checkoutOnce(s, settings.cap);
      outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
      if (outcome === 'confirmed' && s.index % 4 === 0) {
        const again = await checkoutOnce(s, 1);
        second[again] = (second[again] ?? 0) + 1;
      }
    })().catch((err: unknown) => {
      outcomes.error = (outcomes.error ?? 0) + 1;
      firstBadCheckout ??= String(err);
    });
  };

  /** Takes a status (ticket answer, poll, or WebSocket `status`) for `s`. */
  const onStatus = (s: Shopper, st: any) => {
    if (st.state === 'admitted' || st.state === 'expired') admitted(s, st.admittedAt);
    else if ((st.state === 'sold_out' || st.soldOut) && !s.checkout) {
      s.toldSoldOutAt ??= Date.now();
      saleSoldOutSeenAt ??= Date.now();
      s.done = true;
      s.ws?.close();
    }
  };

  const poll = async (s: Shopper): Promise<void> => {
      let after = 500;
      while (!s.checkout && !s.done) {
        await sleep(after);
        const st = await call(base, s, 'GET', `/api/sales/${saleId}/queue`).catch(() => ({ status: 0, json: null, text: '' }));
        if (st.status !== 200) {
          after = 1_000;
          continue;
        }
        onStatus(s, st.json);
        after = st.json.pollAfterMs ?? 1_000;
      }
  };

  const follow = async (s: Shopper): Promise<void> => {
    if (s.poller) return poll(s);
    await limiter.run(
      () =>
        new Promise<void>((resolveOpen) => {
          const t0 = performance.now();
          const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/api/sales/${saleId}/queue/ws`, { headers: s.headers(), handshakeTimeout: 10_000 });
          s.ws = ws;
          let opened = false;
          let asked = false;
          ws.on('open', () => {
            opened = true;
            wsLatency.push(performance.now() - t0);
            resolveOpen();
          });
          ws.on('message', (data) => {
            let m: any;
            try {
              m = JSON.parse(String(data));
            } catch {
              return;
            }
            if (m.type === 'status') onStatus(s, m);
            else if (m.type === 'progress') {
              if (!s.checkout && s.position > 0 && m.admittedThrough >= s.position && !m.soldOut) {
                // Our turn came in a progress message before our own status: ask for it.
                if (!asked) ws.send('status');
                asked = true;
              } else if (m.soldOut) onStatus(s, { state: 'sold_out', soldOut: true });
            }
          });
          let gaveUp = false;
          const failed = () => {
            if (!opened && !gaveUp) {
              gaveUp = true;
              wsFailed++;
              resolveOpen();
            }
          };
          ws.on('error', failed);
          ws.on('unexpected-response', (_req, res) => {
            res.resume();
            failed();
            ws.terminate();
          });
          ws.on('close', () => {
            failed();
            // A page whose socket drops (or never opens) while it waits falls back to polling.
            if (!s.checkout && !s.done) {
              if (opened) wsDropped++;
              void poll(s);
            }
          });
        }),
    );
  };

  // 2. Everyone presses "buy" at the start.
  await sleep(Math.max(0, startsAt - Date.now()) + 20);
  opts.onWindow?.('start');
  const t0 = performance.now();
  let lastTicketAt = t0;
  const joins = shoppers.map(async (s) => {
    // A page that gets a 5xx (or no answer) presses again after a moment, up to 8 times.
    const pressed = performance.now();
    let r: Awaited<ReturnType<typeof call>> = { status: 0, json: null, text: '' };
    for (let attempt = 0; attempt < 5; attempt++) {
      if (attempt > 0) {
        retries++;
        await sleep(300 + Math.random() * 400);
      }
      r = await limiter.run(async () => {
        const t = performance.now();
        const res = await call(base, s, 'POST', `/api/sales/${saleId}/tickets`, {}).catch((err: unknown) => ({ status: 0, json: null, text: String(err) }));
        const now = performance.now();
        ticketLatency.push(now - t);
        if (res.status === 200 || res.status === 201) lastTicketAt = Math.max(lastTicketAt, now);
        return res;
      });
      ticketStatus[r.status] = (ticketStatus[r.status] ?? 0) + 1;
      if (r.status < 500 && r.status !== 0) break;
      firstBadTicket ??= `${r.status} ${r.text.slice(0, 300)}`;
    }
    if (r.status === 201 || r.status === 200) pressToTicket.push(performance.now() - pressed);
    if (r.status !== 201 && r.status !== 200) {
      firstBadTicket ??= `${r.status} ${r.text.slice(0, 300)}`;
      s.done = true;
      return;
    }
    s.ticketAnsweredAt = Date.now();
    s.ticket = r.json.ticket;
    s.position = r.json.position;
    if (r.json.state === 'admitted') s.admittedAtIssue = true;
    onStatus(s, r.json);
    if (!s.checkout && !s.done) await follow(s);
  });
  await Promise.all(joins);
  const ticketSeconds = (lastTicketAt - t0) / 1000;
  const issued = shoppers.filter((s) => s.ticket).length;
  const ticketErrors = Object.entries(ticketStatus).filter(([k]) => k === '0' || Number(k) >= 500).reduce((n, [, v]) => n + v, 0);
  log(`${name}: ${issued} tickets in ${ticketSeconds.toFixed(2)} s (${(issued / ticketSeconds).toFixed(0)}/s), ticket answers ${JSON.stringify(ticketStatus)}; ${wsLatency.length} WebSockets open, ${wsFailed} failed`);
  opts.onTickets?.();

  // 3/4. Until everyone waiting has heard "sold out" and every checkout has settled.
  const deadline = Date.now() + 60_000;
  let lastLog = Date.now();
  for (;;) {
    const waiting = shoppers.filter((s) => !s.checkout && !s.done);
    const pending = shoppers.filter((s) => s.checkout);
    if (waiting.length === 0) break;
    if (Date.now() > deadline) break;
    if (Date.now() - lastLog > 5_000) {
      lastLog = Date.now();
      log(`${name}: ${waiting.length} waiting, ${pending.length} admitted, outcomes ${JSON.stringify(outcomes)}`);
    }
    await sleep(100);
  }
  await Promise.all(shoppers.map((s) => s.checkout));
  opts.onWindow?.('end');
  for (const s of shoppers) {
    s.done = true;
    s.ws?.terminate();
  }

  // What the store, the origin and the simulator say.
  await Promise.race([sim.webhooksIdle().catch(() => {}), sleep(10_000)]);
  // Checkouts report to their queue after they settle; give the last ones a moment.
  await sleep(1_000);
  const report = (await call(base, null, 'GET', `/admin/api/sales/${saleId}/report`, undefined, auth)).json;
  const view = await call(base, null, 'GET', `/admin/api/inventory/${encodeURIComponent(sku)}`, undefined, auth);
  const level = view.json?.regions?.sg ?? { received: 0, available: 0, held: 0, sold: 0 };
  const oversold = Math.max(0, level.held + level.sold - level.received);
  const client = new pg.Client({ connectionString: opts.databaseUrl });
  await client.connect();
  let orders = { orders: -1, units: -1, maxUnitsPerEmail: -1 };
  try {
    const { rows } = await client.query<{ orders: number; units: number; max_email: number }>(
      `select count(distinct o.id)::int as orders, coalesce(sum(l.quantity), 0)::int as units,
              coalesce((select max(u) from (select sum(l2.quantity)::int as u from orders o2 join order_lines l2 on l2.order_id = o2.id
                 where l2.variant_id = $1 and o2.status <> 'cancelled' group by lower(o2.email)) x), 0)::int as max_email
         from orders o join order_lines l on l.order_id = o.id where l.variant_id = $1 and o.status <> 'cancelled'`,
      [variantId],
    );
    const r = rows[0];
    if (r) orders = { orders: r.orders, units: r.units, maxUnitsPerEmail: r.max_email };
  } finally {
    await client.end();
  }
  const ours = new Set(checkoutIds);
  const auths = sim.authorizations().filter((a) => ours.has(a.reference));
  const captured = auths.filter((a) => a.status === 'captured').length;
  const confirmed = outcomes.confirmed ?? 0;

  // Admission per second of the sale, from the queue's own stamps.
  const soldOutAt = report?.regions?.sg?.soldOutAt ? Date.parse(report.regions.sg.soldOutAt) : null;
  const admittedStamps = shoppers.filter((s) => s.admittedAt !== undefined).map((s) => s.admittedAt!);
  const endOfAdmission = soldOutAt ?? Math.max(...admittedStamps, startsAt);
  const fullSeconds = Math.max(0, Math.floor((endOfAdmission - startsAt) / 1000));
  const perSecond = Array.from({ length: fullSeconds }, (_, k) => admittedStamps.filter((t) => t >= startsAt + k * 1000 && t < startsAt + (k + 1) * 1000).length);
  const mean = perSecond.length ? perSecond.reduce((a, b) => a + b, 0) / perSecond.length : null;
  const lastAdmitted = admittedStamps.length ? Math.max(...admittedStamps) : null;

  // Told "sold out": every shopper still waiting at the mark.
  const waitingAtMark = shoppers.filter((s) => !s.checkout && s.ticket && (soldOutAt === null || (s.ticketAnsweredAt ?? 0) <= soldOutAt));
  const lateTickets = shoppers.filter((s) => !s.checkout && s.ticket && soldOutAt !== null && (s.ticketAnsweredAt ?? 0) > soldOutAt).length;
  const told = waitingAtMark.filter((s) => s.toldSoldOutAt !== undefined);
  const delays = (list: Shopper[]) => list.map((s) => Math.max(0, s.toldSoldOutAt! - (soldOutAt ?? s.toldSoldOutAt!)));
  const wsDelays = delays(told.filter((s) => !s.poller));
  const pollDelays = delays(told.filter((s) => s.poller));

  const checks: QueueOutcome['checks'] = [];
  const check = (n: string, ok: boolean, detail: string) => checks.push({ name: n, ok, detail });
  const U = settings.units;
  check('no ticket POST answered 5xx (or not at all)', ticketErrors === 0, `${ticketErrors} of ${Object.values(ticketStatus).reduce((a, b) => a + b, 0)} answers, ${retries} presses again${firstBadTicket ? `; first: ${firstBadTicket}` : ''}`);
  check(`every shopper got a ticket (${settings.shoppers})`, issued === settings.shoppers && (report?.totals?.ticketsIssued ?? -1) === settings.shoppers, `answers ${JSON.stringify(ticketStatus)}; report issued ${report?.totals?.ticketsIssued}${firstBadTicket ? `; first other: ${firstBadTicket}` : ''}`);
  check('every WebSocket opened', wsFailed === 0, `${wsLatency.length} opened, ${wsFailed} failed`);
  check('oversold = 0', oversold === 0, `held ${level.held} + sold ${level.sold} vs received ${level.received}`);
  check(`all ${U} units sold, none held`, level.received === U && level.sold === U && level.held === 0 && level.available === 0, JSON.stringify(level));
  check('report units = Postgres units = stock', report?.totals?.unitsSold === U && orders.units === U, `report ${report?.totals?.unitsSold}, Postgres ${orders.units}`);
  check('orders = captured charges = confirmed checkouts (report, Postgres, simulator)', orders.orders === captured && captured === confirmedIds.size && report?.totals?.orders === orders.orders, `Postgres ${orders.orders}, report ${report?.totals?.orders}, captured ${captured}, confirmed ${confirmedIds.size}`);
  check(`units per shopper ≤ cap ${settings.cap}`, orders.maxUnitsPerEmail <= settings.cap && (second.confirmed ?? 0) === 0, `max per email ${orders.maxUnitsPerEmail}; second checkouts ${JSON.stringify(second)}`);
  const expected = new Set(['confirmed', 'out_of_stock']);
  check('first checkouts: confirmed or out_of_stock only', Object.keys(outcomes).every((k) => expected.has(k)) && unsettled === 0, `${JSON.stringify(outcomes)}${firstBadCheckout ? `; first other: ${firstBadCheckout}` : ''}`);
  check('every waiting shopper told sold out', soldOutAt !== null && told.length === waitingAtMark.length, `${told.length} of ${waitingAtMark.length} told; soldOutAt ${soldOutAt === null ? 'not set' : new Date(soldOutAt).toISOString()}`);
  check('admitted = tickets that checked out', (report?.totals?.admitted ?? -1) === admittedStamps.length, `report ${report?.totals?.admitted}, shoppers admitted ${admittedStamps.length}`);

  const ticketsPerSecond = ticketSeconds > 0 ? issued / ticketSeconds : 0;
  return {
    saleId,
    sku,
    units: U,
    shoppers: settings.shoppers,
    cap: settings.cap,
    queueShards: opts.queueShards,
    admissionRate: settings.rate,
    concurrency: settings.concurrency,
    pollers: shoppers.filter((s) => s.poller).length,
    tickets: {
      status: ticketStatus,
      errors: ticketErrors,
      retries,
      pressToTicketMs: pctOf(pressToTicket),
      seconds: round(ticketSeconds),
      perSecond: round(ticketsPerSecond, 1),
      latencyMs: pctOf(ticketLatency),
      ratioToCeilingDo: opts.ceilingDoRps ? round(ticketsPerSecond / opts.ceilingDoRps) : null,
      ratioToCeiling: opts.ceilingRps ? round(ticketsPerSecond / opts.ceilingRps) : null,
    },
    wsOpens: { ok: wsLatency.length, failed: wsFailed, dropped: wsDropped, latencyMs: pctOf(wsLatency) },
    admission: {
      admitted: admittedStamps.length,
      fullSeconds,
      perSecondMean: mean === null ? null : round(mean, 1),
      perSecondMin: perSecond.length ? Math.min(...perSecond) : null,
      perSecondMax: perSecond.length ? Math.max(...perSecond) : null,
      overall: lastAdmitted !== null && lastAdmitted > startsAt ? round(admittedStamps.length / ((lastAdmitted - startsAt) / 1000), 1) : null,
      accuracy: mean === null ? null : round(mean / settings.rate),
      atIssue: shoppers.filter((s) => s.admittedAtIssue).length,
    },
    soldOut: {
      soldOutAt,
      afterStartMs: soldOutAt === null ? null : soldOutAt - startsAt,
      waiting: waitingAtMark.length,
      told: told.length,
      notTold: waitingAtMark.length - told.length,
      ws: { n: wsDelays.length, ...pctOf(wsDelays) },
      poll: { n: pollDelays.length, ...pctOf(pollDelays) },
      all: { n: wsDelays.length + pollDelays.length, ...pctOf([...wsDelays, ...pollDelays]) },
      lateTickets,
    },
    checkouts: { posted: checkoutIds.length, postStatus, outcomes, second, unsettled, cartRetries, clientLatencyMs: pctOf(checkoutLatency) },
    report,
    reportLatencyMs: report?.checkoutLatencyMs ?? { p50: null, p95: null, p99: null },
    admin: { received: level.received, available: level.available, held: level.held, sold: level.sold },
    oversold,
    orders,
    captured,
    wallSeconds: round((performance.now() - wall) / 1000, 1),
    checks,
  };
}
