/**
 * `npm run bench:soak`: mixed shopper traffic against the store while the
 * harness takes each of its dependencies away in turn, then the books.
 *
 *   1. the fault stack (test/faults/stack.ts): Postgres primary and streaming
 *      standby, Redis, the payment simulator, each behind a fault proxy;
 *   2. the Worker bundled as a deploy would, in workerd, reading from the
 *      standby, with short payment timeouts so payment faults play out here;
 *   3. soak products with stock in sg through the admin API, before any fault;
 *   4. `--concurrency` shoppers (Node fetch loops: flows carry carts and
 *      checkouts from one request to the next) for `--duration` seconds:
 *      product pages, listings, searches, carts, checkouts (followed every
 *      500 ms in the background) and reads of confirmed orders, while the
 *      schedule runs: a healthy stretch, then each fault for a while and a
 *      recovery after it;
 *   5. the drain: everything healed, no new traffic, every checkout followed
 *      until confirmed or failed with nothing left authorised (≤ 5 minutes);
 *   6. the invariants: orders = confirmed checkouts, one captured charge per
 *      order and none without, stock received = available + held + sold with
 *      nothing held and sold = units ordered; exit code 1 if one fails;
 *   7. the report on stdout and in bench/results/soak-<date>[-<N>s].{json,md}.
 *
 * Arguments: --duration <s> (600), --concurrency <n> (12), --out <dir> (bench/results).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import pg from 'pg';
import { REGION_CODES } from '../db/regions';
import { buildSeed, seedFixtures } from '../db/seed';
import { waitForReplay } from '../test/faults/postgres-cluster';
import { startFaultStack, type FaultAction, type FaultStack, type FaultTarget } from '../test/faults/stack';
import { Cleanup } from './lib/cleanup';
import { machineInfo } from './lib/report';
import {
  latency,
  soakMarkdown,
  tally,
  tallyBy,
  type ErrorKind,
  type Invariant,
  type Notable,
  type PhaseRecord,
  type RequestKind,
  type Sample,
  type SoakReport,
} from './lib/soak-report';
import { coresUsed, cpuSnapshot, RedisCommandCounter } from './lib/stats';
import { buildWorker, onMiniflareCreated, packageVersion, ROOT, startPasar, workerdVersion, type PasarBindings, type RunningWorker } from './lib/workers';

const log = (message: string) => console.error(`[soak] ${message}`);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A shopper's request gives up after this long (counted as `timeout`). */
const CLIENT_TIMEOUT_MS = 15_000;
/** How often a started checkout is polled. */
const POLL_MS = 500;
/** The drain's limit: checkouts still open after this are reported unsettled. */
const DRAIN_MS = 5 * 60_000;
/** Soak variants, each with at least MIN_UNITS units in sg. */
const SOAK_VARIANTS = 4;
const MIN_UNITS = 400;

/**
 * Units per soak variant for a run: enough that stock never runs out, or
 * the late faults would only ever see `out_of_stock`. A short run here sold
 * ~0.14 units per variant per shopper-second (2 cores); half as much again
 * for headroom, rounded up to hundreds.
 */
function unitsPerVariant(s: Settings): number {
  return Math.max(MIN_UNITS, Math.ceil((s.durationSeconds * s.concurrency * 0.2) / 100) * 100);
}
/** Pause between a shopper's flows, ms (min, spread): people read pages, and the 2-core machine is shared. */
const THINK_MS = [50, 200] as const;

// ---------------------------------------------------------------- settings

interface Settings {
  durationSeconds: number;
  concurrency: number;
  outDir: string;
}

function readSettings(argv: string[]): Settings {
  const settings: Settings = { durationSeconds: 600, concurrency: 12, outDir: resolve(ROOT, 'bench/results') };
  const int = (flag: string, raw: string | undefined, min: number, max: number) => {
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${flag} must be an integer from ${min} to ${max}, got "${raw ?? ''}"`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i]!.split('=', 2) as [string, string | undefined];
    const value = () => inline ?? argv[++i];
    if (flag === '--duration') settings.durationSeconds = int(flag, value(), 30, 24 * 3600);
    else if (flag === '--concurrency') settings.concurrency = int(flag, value(), 1, 256);
    else if (flag === '--out') settings.outDir = resolve(process.cwd(), value() ?? '');
    else throw new Error(`unknown argument ${argv[i]} (use --duration <s>, --concurrency <n>, --out <dir>)`);
  }
  return settings;
}

// ---------------------------------------------------------------- schedule

/** One fault of the schedule: what takes the dependency away and what gives it back. */
interface Fault {
  name: string;
  target: FaultTarget;
  down: FaultAction;
  up: FaultAction;
  ms?: number;
}

const FAULTS: Fault[] = [
  { name: 'replica stop', target: 'replica', down: 'stop', up: 'start' },
  { name: 'primary stop', target: 'primary', down: 'stop', up: 'start' },
  { name: 'redis stop', target: 'redis', down: 'stop', up: 'start' },
  { name: 'payments cut', target: 'payments', down: 'cut', up: 'pass' },
  { name: 'payments latency 3000 ms', target: 'payments', down: 'latency', up: 'pass', ms: 3_000 },
  { name: 'replica drop', target: 'replica', down: 'drop', up: 'pass' },
  { name: 'primary drop', target: 'primary', down: 'drop', up: 'pass' },
];

/** The nominal 10-minute plan, in seconds: scaled to the run's duration. */
const NOMINAL = { healthy: 60, down: 45, recovery: 30 };

/** A planned window: what to do at its start, and when. */
interface PlannedPhase extends PhaseRecord {
  run: (() => Promise<void>) | null;
}

/**
 * The schedule for `durationS`: the healthy stretch, then each fault (down,
 * then recovery) in FAULTS order, in the nominal proportions, so a short run
 * still goes through every fault, briefly.
 */
function schedule(stack: FaultStack, durationS: number): PlannedPhase[] {
  const nominalTotal = NOMINAL.healthy + FAULTS.length * (NOMINAL.down + NOMINAL.recovery);
  const scale = durationS / nominalTotal;
  const r1 = (n: number) => Math.round(n * 10) / 10;
  const phases: PlannedPhase[] = [{ name: 'healthy', kind: 'healthy', plannedAtS: 0, startedAtS: null, action: '-', actionMs: null, run: null }];
  let at = NOMINAL.healthy * scale;
  for (const f of FAULTS) {
    phases.push({ name: f.name, kind: 'down', plannedAtS: r1(at), startedAtS: null, action: `${f.target} ${f.down}${f.ms ? ` ${f.ms} ms` : ''}`, actionMs: null, run: () => stack.apply(f.target, f.down, f.ms) });
    at += NOMINAL.down * scale;
    phases.push({ name: `${f.name}: recovery`, kind: 'recovery', plannedAtS: r1(at), startedAtS: null, action: `${f.target} ${f.up}`, actionMs: null, run: () => stack.apply(f.target, f.up) });
    at += NOMINAL.recovery * scale;
  }
  phases.push({ name: 'drain', kind: 'drain', plannedAtS: durationS, startedAtS: null, action: 'heal all', actionMs: null, run: () => stack.heal() });
  return phases;
}

// ---------------------------------------------------------------- what shoppers ask for

/** Products (with a region each is sold in), categories and search words, from the deterministic seed. */
interface Catalog {
  products: { slug: string; region: string }[];
  categories: string[];
  searches: string[];
}

function seedCatalog(): Catalog {
  const data = buildSeed();
  const activeVariant = new Map(data.variants.filter((v) => v.status === 'active').map((v) => [v.id, v.productId]));
  const regionsOf = new Map<string, string[]>();
  for (const p of data.prices) {
    const productId = activeVariant.get(p.variantId);
    if (productId && !regionsOf.get(productId)?.includes(p.regionCode)) regionsOf.set(productId, [...(regionsOf.get(productId) ?? []), p.regionCode]);
  }
  const active = data.products.filter((p) => p.status === 'active' && regionsOf.has(p.id));
  // Every 8th active product: a few hundred pages, each visited more than once over a run (cache and KV get used as in life).
  const products = active.filter((_, i) => i % 8 === 0).map((p, i) => {
    const regions = regionsOf.get(p.id)!;
    return { slug: p.slug, region: regions[i % regions.length]! };
  });
  const freq = new Map<string, number>();
  for (const p of active) for (const w of p.title.toLowerCase().split(/\s+/)) if (/^[a-z]{4,}$/.test(w)) freq.set(w, (freq.get(w) ?? 0) + 1);
  const words = [...freq].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([w]) => w);
  const searches = [seedFixtures().searchTerm, ...words.slice(0, 30)];
  return { products, categories: data.categories.map((c) => c.slug), searches };
}

const pick = <T>(list: readonly T[]): T => list[Math.floor(Math.random() * list.length)]!;

// ---------------------------------------------------------------- the client

/** What an answer was, once recorded. */
interface Answer {
  status: number;
  error: ErrorKind;
  json: any;
}

/** Records every request: its sample, and the first few answers that were neither ok nor degraded. */
class Recorder {
  readonly samples: Sample[] = [];
  readonly notable: Notable[] = [];
  phase = 0;
  readonly t0 = Date.now();
  constructor(private readonly phaseName: (i: number) => string) {}

  get seconds(): number {
    return (Date.now() - this.t0) / 1000;
  }

  /** Sends one request to the Worker as a shopper in `region` would, and records it. */
  async call(base: string, kind: RequestKind, method: string, path: string, opts: { body?: unknown; headers?: Record<string, string>; region?: string } = {}): Promise<Answer> {
    const phase = this.phase;
    const started = performance.now();
    let status = 0;
    let error: ErrorKind;
    let text = '';
    let json: any = null;
    try {
      const res = await fetch(base + path, {
        method,
        headers: { 'x-region': opts.region ?? 'sg', ...(opts.body === undefined ? {} : { 'content-type': 'application/json' }), ...opts.headers },
        body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
        signal: AbortSignal.timeout(CLIENT_TIMEOUT_MS),
      });
      text = await res.text();
      status = res.status;
      error = res.ok ? 'ok' : res.status === 503 && res.headers.has('retry-after') ? 'degraded' : `http_${res.status}`;
      try {
        json = JSON.parse(text);
      } catch {
        /* not JSON (an HTML error page, say): kept as text for the report */
      }
    } catch (err) {
      const name = err instanceof Error ? err.name : '';
      error = name === 'TimeoutError' || name === 'AbortError' ? 'timeout' : 'network';
      text = err instanceof Error ? `${err.message}${err.cause instanceof Error ? `: ${err.cause.message}` : ''}` : String(err);
    }
    const ms = performance.now() - started;
    this.samples.push({ kind, phase, status, ms, error });
    if (error !== 'ok' && error !== 'degraded' && this.notable.length < 40) {
      this.notable.push({ atS: Math.round(this.seconds * 10) / 10, phase: this.phaseName(phase), kind, request: `${method} ${path}`, error, body: text.slice(0, 300) });
    }
    return { status, error, json };
  }
}

// ---------------------------------------------------------------- checkouts

interface TrackedCheckout {
  id: string;
  variantId: string;
  quantity: number;
  phase: string;
  acceptedAt: number;
  status: string;
  reason?: string;
  settledAt?: number;
  orderId?: string;
  orderToken?: string;
}

/** A checkout POST that got no clear answer: replayed with its Idempotency-Key once everything is healed. */
interface Unanswered {
  key: string;
  body: unknown;
  variantId: string;
  quantity: number;
  phase: string;
}

const SETTLED = new Set(['confirmed', 'failed']);

// ---------------------------------------------------------------- the run

async function main(): Promise<void> {
  const settings = readSettings(process.argv.slice(2));
  const cleanup = new Cleanup();
  cleanup.onSignals();
  try {
    await soak(settings, cleanup);
  } finally {
    await cleanup.run();
  }
}

async function soak(settings: Settings, cleanup: Cleanup): Promise<void> {
  const catalog = seedCatalog();
  log(`seed catalog: ${catalog.products.length} product pages, ${catalog.categories.length} categories, ${catalog.searches.length} search words`);

  log('building the Worker (wrangler deploy --dry-run --outdir bench/.build)');
  const scriptPath = await buildWorker();

  log('starting the fault stack (Postgres primary + standby, Redis, payment simulator, proxies)');
  const stack = await startFaultStack({ applyDelayMs: 500 });
  cleanup.add('fault stack', () => stack.close());
  if (cleanup.stopping) return;

  const adminToken = randomBytes(24).toString('hex');
  // Strings, as wrangler.toml [vars] would hold them. The payment deadline
  // is shorter than a full run's provider outage (45 s), so checkouts that
  // start early in it fail `payment_failed` and the compensation path (void,
  // release) is under load too, while later ones wait and confirm.
  const tuning = { REPLICA_MAX_LAG_MS: '5000', REPLICA_RETRY_MS: '3000', PAYMENT_TIMEOUT_MS: '2000', PAYMENT_DEADLINE_MS: '30000' };
  const bindings: PasarBindings = {
    DATABASE_URL: stack.databaseUrl,
    DATABASE_REPLICA_URLS: stack.replicaUrl,
    NEON_WS_PROXY: stack.wsProxy,
    UPSTASH_REDIS_REST_URL: stack.upstashUrl,
    UPSTASH_REDIS_REST_TOKEN: stack.upstashToken,
    SIGNING_SECRET: randomBytes(32).toString('hex'),
    PAYMENT_API_URL: stack.paymentApiUrl,
    PAYMENT_API_KEY: stack.paymentApiKey,
    PAYMENT_WEBHOOK_SECRET: stack.paymentWebhookSecret,
    ...tuning,
  };
  // Miniflare exits the process on SIGINT at once; take the signals back so teardown runs.
  onMiniflareCreated(() => cleanup.claimSignals());
  const worker = await startPasar({ name: 'soak', scriptPath, cacheAPI: true, bindings, adminToken });
  cleanup.add('workerd (soak)', () => worker.dispose());
  stack.sim.setWebhookUrl(`${worker.url}/api/webhooks/payments/sim`);
  log(`store on ${worker.url}`);

  const machine = await describeMachine(stack);
  const variants = await createSoakStock(worker, adminToken, unitsPerVariant(settings));
  // The standby replays 500 ms behind: let it hold the soak products before any shopper reads them from it.
  await waitForReplay(stack.direct.primary, stack.direct.replica, 30_000);
  await sleep(1_000);
  if (cleanup.stopping) return;

  const phases = schedule(stack, settings.durationSeconds);
  const rec = new Recorder((i) => phases[i]?.name ?? '?');
  const base = worker.url;
  const checkouts = new Map<string, TrackedCheckout>();
  const unanswered: Unanswered[] = [];
  const notAccepted: Record<string, number> = {};
  const confirmedOrders: { orderId: string; orderToken: string }[] = [];
  const pollers: Promise<void>[] = [];
  let stopTraffic = false;
  let stopPolling = false;

  /** Follows one checkout every POLL_MS until it settles (or the drain gives up). */
  const follow = (c: TrackedCheckout) =>
    pollers.push(
      (async () => {
        while (!stopPolling && !cleanup.stopping) {
          await sleep(POLL_MS);
          const res = await rec.call(base, 'checkout-status', 'GET', `/api/checkout/${c.id}`);
          const status = res.status === 200 ? (res.json?.status as string | undefined) : undefined;
          if (!status) continue;
          c.status = status;
          if (!SETTLED.has(status)) continue;
          c.reason = res.json.reason;
          c.settledAt = Date.now();
          if (status === 'confirmed' && res.json.orderId && res.json.orderToken) {
            c.orderId = res.json.orderId;
            c.orderToken = res.json.orderToken;
            confirmedOrders.push({ orderId: res.json.orderId, orderToken: res.json.orderToken });
          }
          return;
        }
      })(),
    );

  const track = (id: string, variantId: string, quantity: number, phase: string) => {
    if (checkouts.has(id)) return;
    const c: TrackedCheckout = { id, variantId, quantity, phase, acceptedAt: Date.now(), status: 'pending' };
    checkouts.set(id, c);
    follow(c);
  };

  /** A fresh cart holding `quantity` of `variantId`, or null when the store would not make one. */
  const cartWith = async (variantId: string, quantity: number): Promise<string | null> => {
    const cart = await rec.call(base, 'cart-create', 'POST', '/api/carts', { body: {} });
    const id = cart.json?.id as string | undefined;
    if (cart.error !== 'ok' || !id) return null;
    const add = await rec.call(base, 'cart-add', 'POST', `/api/carts/${id}/items`, { body: { variantId, quantity } });
    return add.error === 'ok' ? id : null;
  };

  const checkoutBody = (cartId: string) => ({
    cartId,
    email: 'soak@example.com',
    shippingAddress: { name: 'Siti Rahman', line1: '1 Orchard Road', city: 'Singapore', postalCode: '238823', country: 'SG' },
    payment: { method: 'card', token: 'tok_ok' },
  });

  /** The shopper's flows, with their weights (out of 100). */
  const flows: [number, () => Promise<void>][] = [
    [
      32,
      async () => {
        const p = pick(catalog.products);
        await rec.call(base, 'product', 'GET', `/api/products/${p.slug}`, { region: p.region });
      },
    ],
    [14, async () => void (await rec.call(base, 'listing', 'GET', `/api/products?category=${pick(catalog.categories)}&limit=${pick([12, 24, 48])}`, { region: pick(REGION_CODES) }))],
    [12, async () => void (await rec.call(base, 'search', 'GET', `/api/products?q=${encodeURIComponent(pick(catalog.searches))}&limit=24`, { region: pick(REGION_CODES) }))],
    [5, async () => void (await rec.call(base, 'categories', 'GET', '/api/categories', { region: pick(REGION_CODES) }))],
    [
      20,
      async () => {
        const id = await cartWith(pick(variants).variantId, 1 + Math.floor(Math.random() * 2));
        if (id) await rec.call(base, 'cart-read', 'GET', `/api/carts/${id}`);
      },
    ],
    [
      10,
      async () => {
        const variantId = pick(variants).variantId;
        const quantity = 1 + Math.floor(Math.random() * 2);
        const cartId = await cartWith(variantId, quantity);
        if (!cartId) return;
        const key = `soak-${randomUUID()}`;
        const body = checkoutBody(cartId);
        const phase = rec.phase;
        const res = await rec.call(base, 'checkout', 'POST', '/api/checkout', { body, headers: { 'idempotency-key': key } });
        const id = res.json?.checkoutId as string | undefined;
        if (res.status === 202 && id) return track(id, variantId, quantity, phases[phase]!.name);
        notAccepted[res.error] = (notAccepted[res.error] ?? 0) + 1;
        // No answer, or a 5xx that is not the promised 503: the checkout may exist anyway; ask again later with the same key.
        if (res.error === 'network' || res.error === 'timeout' || (res.status >= 500 && res.error !== 'degraded')) {
          unanswered.push({ key, body, variantId, quantity, phase: phases[phase]!.name });
        }
      },
    ],
    [
      7,
      async () => {
        const order = confirmedOrders.length ? pick(confirmedOrders) : null;
        if (order) await rec.call(base, 'order', 'GET', `/api/orders/${order.orderId}?token=${encodeURIComponent(order.orderToken)}`);
        else await rec.call(base, 'categories', 'GET', '/api/categories');
      },
    ],
  ];
  const totalWeight = flows.reduce((n, [w]) => n + w, 0);
  const nextFlow = () => {
    let x = Math.random() * totalWeight;
    for (const [w, flow] of flows) if ((x -= w) < 0) return flow;
    return flows[0]![1];
  };
  const shopper = async () => {
    while (!stopTraffic && !cleanup.stopping) {
      await nextFlow()();
      await sleep(THINK_MS[0] + Math.random() * THINK_MS[1]);
    }
  };

  const runPhase = async (i: number) => {
    const p = phases[i]!;
    rec.phase = i;
    const t = performance.now();
    try {
      await p.run?.();
    } catch (err) {
      log(`phase "${p.name}": ${p.action} failed: ${err instanceof Error ? err.message : String(err)}`);
    }
    p.startedAtS = Math.round(rec.seconds * 10) / 10;
    p.actionMs = p.run ? Math.round(performance.now() - t) : null;
    log(`t=${p.startedAtS.toFixed(1)}s phase "${p.name}"${p.run ? ` (${p.action}, ${p.actionMs} ms)` : ''}`);
  };

  const progress = setInterval(() => {
    const recent = rec.samples.slice(-2_000);
    const errs = tally(recent).errors;
    const settled = [...checkouts.values()].filter((c) => SETTLED.has(c.status)).length;
    log(
      `t=${rec.seconds.toFixed(0)}s "${phases[rec.phase]?.name}": ${rec.samples.length} requests; last ${recent.length}: ${Object.entries(errs)
        .map(([k, n]) => `${k} ${n}`)
        .join(', ')}; checkouts ${checkouts.size} started, ${settled} settled`,
    );
  }, 10_000);
  cleanup.add('progress timer', async () => clearInterval(progress));

  // Traffic, with the schedule running beside it.
  log(`traffic: ${settings.concurrency} shoppers for ${settings.durationSeconds} s; ${phases.length - 2} fault windows`);
  const cpuA = cpuSnapshot();
  worker.logs.take();
  await runPhase(0);
  const shoppers = Array.from({ length: settings.concurrency }, shopper);
  for (let i = 1; i < phases.length - 1 && !cleanup.stopping; i++) {
    await sleep(Math.max(0, phases[i]!.plannedAtS * 1000 - (Date.now() - rec.t0)));
    await runPhase(i);
  }
  await sleep(Math.max(0, settings.durationSeconds * 1000 - (Date.now() - rec.t0)));
  stopTraffic = true;
  await Promise.all(shoppers);
  const cpuB = cpuSnapshot();
  if (cleanup.stopping) return;

  // Drain: heal, replay the unanswered POSTs, follow everything to the end.
  const drainStarted = Date.now();
  await runPhase(phases.length - 1);
  let replayFound = 0;
  let replayRefused = 0;
  for (const u of unanswered) {
    // The store may need a moment after the heal: a few tries, as a shopper's retry button would.
    for (let attempt = 0; attempt < 10; attempt++) {
      const res = await rec.call(base, 'checkout-replay', 'POST', '/api/checkout', { body: u.body, headers: { 'idempotency-key': u.key } });
      const id = res.json?.checkoutId as string | undefined;
      if (res.status === 202 && id) {
        replayFound++;
        track(id, u.variantId, u.quantity, u.phase);
        break;
      }
      if (res.status > 0 && res.status < 500) {
        replayRefused++;
        break;
      }
      await sleep(1_000);
    }
  }
  const drainDeadline = drainStarted + DRAIN_MS;
  const openCheckouts = () => {
    // A failed checkout is done once the simulator holds nothing authorised for it (the void went through).
    const authorized = new Set(stack.sim.authorizations().filter((a) => a.status === 'authorized').map((a) => a.reference));
    return [...checkouts.values()].filter((c) => !SETTLED.has(c.status) || (c.status === 'failed' && authorized.has(c.id)));
  };
  let lastLog = 0;
  for (let open = openCheckouts(); open.length && Date.now() < drainDeadline && !cleanup.stopping; open = openCheckouts()) {
    if (Date.now() - lastLog > 10_000) {
      lastLog = Date.now();
      log(`drain: ${open.length} checkout(s) open (${Object.entries(countBy(open, (c) => c.status)).map(([k, n]) => `${k} ${n}`).join(', ')}), ${((Date.now() - drainStarted) / 1000).toFixed(0)} s`);
    }
    await sleep(POLL_MS);
  }
  stopPolling = true;
  await Promise.all(pollers);
  await Promise.race([stack.sim.webhooksIdle().catch(() => {}), sleep(10_000)]);
  const drainSeconds = Math.round((Date.now() - drainStarted) / 100) / 10;
  clearInterval(progress);
  if (cleanup.stopping) return;
  log(`drain done in ${drainSeconds} s; checking the books`);

  const invariants = await checkInvariants(stack, worker, adminToken, variants, [...checkouts.values()]);
  for (const inv of invariants) log(`${inv.ok ? 'pass' : 'FAIL'}: ${inv.name} (${inv.detail})`);

  // The report.
  const all = [...checkouts.values()];
  const seconds = Math.round(rec.seconds * 10) / 10;
  const perPhase = tallyBy(rec.samples, (s) => String(s.phase));
  const report: SoakReport = {
    machine,
    command: `npm run bench:soak -- --duration ${settings.durationSeconds} --concurrency ${settings.concurrency}`,
    settings: { durationSeconds: settings.durationSeconds, concurrency: settings.concurrency, clientTimeoutMs: CLIENT_TIMEOUT_MS, bindings: { ...tuning, cacheAPI: 'true', replicaApplyDelayMs: '500', thinkMs: `${THINK_MS[0]}-${THINK_MS[0] + THINK_MS[1]}` }, soakVariants: variants },
    phases: phases.map(({ run: _run, ...p }, i) => ({ ...p, ...(perPhase[String(i)] ?? tally([])) })),
    totals: { ...tally(rec.samples), seconds, rps: Math.round((rec.samples.length / seconds) * 10) / 10 },
    perKind: tallyBy(rec.samples, (s) => s.kind),
    perKindHealthy: tallyBy(
      rec.samples.filter((s) => phases[s.phase]?.kind === 'healthy'),
      (s) => s.kind,
    ),
    checkouts: {
      started: all.length,
      confirmed: all.filter((c) => c.status === 'confirmed').length,
      failed: all.filter((c) => c.status === 'failed').length,
      unsettled: all.filter((c) => !SETTLED.has(c.status)).length,
      reasons: countBy(
        all.filter((c) => c.status === 'failed'),
        (c) => c.reason ?? 'failed',
      ),
      notAccepted,
      replayed: { attempts: unanswered.length, found: replayFound, refused: replayRefused },
      perPhase: Object.fromEntries(
        phases
          .map((p) => [p.name, countBy(all.filter((c) => c.phase === p.name), (c) => (c.status === 'failed' ? `failed ${c.reason ?? ''}`.trim() : c.status))] as const)
          .filter(([, o]) => Object.keys(o).length),
      ),
      settleSeconds: latency(all.filter((c) => c.settledAt).map((c) => (c.settledAt! - c.acceptedAt) / 1000)),
      drainSeconds,
    },
    cpu: coresUsed(cpuA, cpuB),
    workerLogs: worker.logs.take(),
    notable: rec.notable,
    invariants,
  };
  const md = soakMarkdown(report);
  console.log('');
  console.log(md);
  const day = machine.dateUtc.slice(0, 10);
  // A shorter run than the standard 10 minutes says so in its name, so it never passes for (or overwrites) a full one.
  const name = `soak-${day}${settings.durationSeconds === 600 ? '' : `-${settings.durationSeconds}s`}`;
  mkdirSync(settings.outDir, { recursive: true });
  writeFileSync(resolve(settings.outDir, `${name}.json`), JSON.stringify(report, null, 2) + '\n');
  writeFileSync(resolve(settings.outDir, `${name}.md`), md);
  log(`wrote ${resolve(settings.outDir, name)}.{json,md}`);
  if (invariants.some((i) => !i.ok)) process.exitCode = 1;
}

function countBy<T>(items: T[], keyOf: (item: T) => string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const item of items) {
    const k = keyOf(item);
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}

/** Machine and versions, as the other bench reports give them, with the background load measured over 2 idle seconds. */
async function describeMachine(stack: FaultStack) {
  const idle = cpuSnapshot();
  await sleep(2_000);
  const background = coresUsed(idle, cpuSnapshot());
  const client = new pg.Client({ connectionString: stack.direct.primary });
  await client.connect();
  let postgres = 'unknown';
  let maxConnections = 0;
  try {
    postgres = (await client.query<{ server_version: string }>('show server_version')).rows[0]?.server_version ?? postgres;
    maxConnections = Number((await client.query<{ max_connections: string }>('show max_connections')).rows[0]?.max_connections ?? 0);
  } finally {
    await client.end();
  }
  const redis = new RedisCommandCounter(`redis://${stack.proxies.redis.address}`);
  const redisVersion = await redis.version();
  await redis.close();
  return machineInfo({
    backgroundCores: background?.machine ?? null,
    workerd: workerdVersion(),
    miniflare: packageVersion('miniflare'),
    wrangler: packageVersion('wrangler'),
    wrk: 'no wrk (Node fetch shoppers)',
    postgres,
    postgresMaxConnections: maxConnections,
    redis: redisVersion,
  });
}

/** Calls the admin API with the bootstrap token; throws unless it answers `expect`. */
async function admin(worker: RunningWorker, token: string, method: string, path: string, expect: number, body?: unknown): Promise<any> {
  const res = await fetch(worker.url + path, {
    method,
    headers: { authorization: `Bearer ${token}`, 'x-region': 'sg', ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  if (res.status !== expect) throw new Error(`admin ${method} ${path} answered ${res.status}: ${text.slice(0, 500)}`);
  return JSON.parse(text);
}

/** The soak's own product: SOAK_VARIANTS variants priced in sg, `units` units each received there. */
async function createSoakStock(worker: RunningWorker, token: string, units: number): Promise<{ sku: string; variantId: string; received: number }[]> {
  const tag = randomBytes(3).toString('hex').toUpperCase();
  const skus = Array.from({ length: SOAK_VARIANTS }, (_, i) => `SOAK-${tag}-${i + 1}`);
  const created = await admin(worker, token, 'POST', '/admin/api/products', 201, {
    title: `Soak kaya jam ${tag}`,
    category: seedFixtures().busiestCategorySlug,
    variants: skus.map((sku, i) => ({ sku, title: `${(i + 1) * 100} g jar`, prices: { sg: { amount: 990 + i * 100 } } })),
  });
  const out = [];
  for (const sku of skus) {
    const variantId = (created.variants as { id: string; sku: string }[]).find((v) => v.sku === sku)?.id;
    if (!variantId) throw new Error(`admin POST /products did not return variant ${sku}`);
    const level = (await admin(worker, token, 'PUT', `/admin/api/inventory/${sku}`, 200, { region: 'sg', quantity: units })).regions?.sg;
    if (level?.received !== units) throw new Error(`admin PUT /inventory/${sku}: sg shows ${JSON.stringify(level)}`);
    out.push({ sku, variantId, received: units });
  }
  log(`soak stock: ${skus.join(', ')}, ${units} units each in sg`);
  return out;
}

/**
 * The books after the drain: Postgres orders against the checkouts the
 * shoppers saw, the simulator's ledger against the orders, the inventory
 * objects' counts against both.
 */
async function checkInvariants(
  stack: FaultStack,
  worker: RunningWorker,
  adminToken: string,
  variants: { sku: string; variantId: string; received: number }[],
  checkouts: TrackedCheckout[],
): Promise<Invariant[]> {
  const client = new pg.Client({ connectionString: stack.direct.primary });
  await client.connect();
  let orderRows: { checkout_id: string; status: string }[];
  let lineRows: { variant_id: string; units: number }[];
  try {
    // The stack's database is fresh: every order in it is the soak's.
    orderRows = (await client.query<{ checkout_id: string; status: string }>('select checkout_id, status from orders')).rows;
    lineRows = (
      await client.query<{ variant_id: string; units: number }>(
        "select l.variant_id, sum(l.quantity)::int as units from order_lines l join orders o on o.id = l.order_id where o.status <> 'cancelled' group by l.variant_id",
      )
    ).rows;
  } finally {
    await client.end();
  }
  const ordersPerCheckout = countBy(orderRows, (r) => r.checkout_id);
  const unitsOrdered = new Map(lineRows.map((r) => [r.variant_id, r.units]));
  const cancelled = orderRows.filter((r) => r.status === 'cancelled').length;
  const live = new Set(orderRows.filter((r) => r.status !== 'cancelled').map((r) => r.checkout_id));
  const confirmed = new Set(checkouts.filter((c) => c.status === 'confirmed').map((c) => c.id));
  const known = new Set(checkouts.map((c) => c.id));
  const sample = (ids: Iterable<string>) => [...ids].slice(0, 5).join(', ');
  const invariants: Invariant[] = [];
  const add = (name: string, ok: boolean, detail: string) => invariants.push({ name, ok, detail });

  // (1) Orders.
  const confirmedWithout = [...confirmed].filter((id) => !live.has(id));
  const liveNotConfirmed = [...live].filter((id) => !confirmed.has(id));
  const doubled = Object.entries(ordersPerCheckout)
    .filter(([, n]) => n > 1)
    .map(([id]) => id);
  add(
    'orders = confirmed checkouts',
    confirmedWithout.length === 0 && liveNotConfirmed.length === 0,
    `${live.size} non-cancelled orders (${cancelled} cancelled), ${confirmed.size} confirmed checkouts; ` +
      `confirmed without an order ${confirmedWithout.length}${confirmedWithout.length ? ` (${sample(confirmedWithout)})` : ''}; ` +
      `orders not seen confirmed ${liveNotConfirmed.length}${liveNotConfirmed.length ? ` (${sample(liveNotConfirmed)}; ${liveNotConfirmed.filter((id) => !known.has(id)).length} of checkouts the shoppers never saw accepted)` : ''}`,
  );
  add('one order per checkout id', doubled.length === 0, `${doubled.length} checkout(s) with more than one order${doubled.length ? ` (${sample(doubled)})` : ''}`);

  // (2) Charges.
  const auths = stack.sim.authorizations();
  const capturedPer = countBy(
    auths.filter((a) => a.status === 'captured'),
    (a) => a.reference,
  );
  const wrongCapture = [...live].filter((id) => (capturedPer[id] ?? 0) !== 1);
  const standing = auths.filter((a) => (a.status === 'captured' || a.status === 'authorized') && !live.has(a.reference));
  add(
    'one captured charge per non-cancelled order',
    wrongCapture.length === 0,
    `${live.size} orders; ${wrongCapture.length} without exactly one capture${wrongCapture.length ? ` (${wrongCapture.slice(0, 5).map((id) => `${id}: ${capturedPer[id] ?? 0}`).join(', ')})` : ''}`,
  );
  add(
    'no captured or authorised charge without an order',
    standing.length === 0,
    `${auths.length} authorisations at the simulator (${Object.entries(countBy(auths, (a) => a.status)).map(([k, n]) => `${k} ${n}`).join(', ')}); ` +
      `${standing.length} standing without an order${standing.length ? ` (${standing.slice(0, 5).map((a) => `${a.reference} ${a.status}`).join(', ')})` : ''}`,
  );

  // (3) Stock.
  for (const v of variants) {
    const level = (await admin(worker, adminToken, 'GET', `/admin/api/inventory/${v.sku}`, 200)).regions?.sg as { received: number; available: number; held: number; sold: number } | undefined;
    const ordered = unitsOrdered.get(v.variantId) ?? 0;
    const ok = !!level && level.received === level.available + level.held + level.sold && level.held === 0 && level.sold === ordered && level.received === v.received;
    add(`stock ${v.sku}: received = available + held + sold, held 0, sold = units ordered`, ok, level ? `received ${level.received}, available ${level.available}, held ${level.held}, sold ${level.sold}; units in orders ${ordered}` : 'no sg level');
  }
  return invariants;
}

main().catch((err: unknown) => {
  console.error(`[soak] failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exitCode = 1;
});
