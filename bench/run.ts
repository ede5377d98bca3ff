/**
 * `npm run bench`: catalog throughput and latency on this machine.
 *
 *   1. wrk (installed with apt-get when missing);
 *   2. the Worker bundled by `wrangler deploy --dry-run` (bench/.build);
 *   3. a fresh seeded Postgres database, the Neon WebSocket bridge (which
 *      counts queries) and the Upstash REST bridge in front of Redis;
 *   4. three workerd instances through Miniflare's API: the ceiling Worker,
 *      the store with the Cache API on (`edge`) and off (`nocache`);
 *   5. each scenario: a warm-up run, then a measured run, with Postgres
 *      queries, Redis commands and CPU sampled around it;
 *   6. a Markdown table on stdout, and bench/results/<date>-catalog.{json,md}.
 *
 * Everything started is stopped, and the database dropped, at the end, on
 * an error, or on Ctrl-C.
 *
 * The flash-sale scenarios (bench/scenarios/flash.ts) run a fourth instance:
 * bench/flash-worker.js, which reserves through the real inventory code, with
 * the store beside it for the admin API.
 *
 * The checkout flash sale (`checkout-sale`, bench/scenarios/checkout.ts)
 * drives the real checkout on the `edge` store instance, with the payment
 * simulator (dev/payment-sim.ts) started here as its provider.
 *
 * Settings (env): BENCH_DURATION (s, 10), BENCH_WARMUP (s, 3),
 * BENCH_CONNECTIONS (32), BENCH_ORIGIN_CONNECTIONS (16, for the origin-miss
 * scenarios), BENCH_THREADS (2), BENCH_TIMEOUT (s, 10),
 * BENCH_DATABASE_URL, BENCH_POSTGRES_URL, REDIS_URL; BENCH_FLASH_SHARDS (8),
 * BENCH_FLASH_STOCK (1,000,000), BENCH_FLASH_SALE_UNITS (1,000);
 * BENCH_CHECKOUT_UNITS (200), BENCH_CHECKOUT_SHOPPERS (1,000),
 * BENCH_CHECKOUT_CONCURRENCY (64); BENCH_QUEUE_SHOPPERS (2,000),
 * BENCH_QUEUE_UNITS (200), BENCH_QUEUE_RATE (40), BENCH_QUEUE_SHARDS (4),
 * BENCH_QUEUE_CONCURRENCY (64).
 * Arguments: --only <scenario,...> (the ceiling always runs too, and
 * `ceiling-do` with any flash scenario, `checkout-sale` or `flash-queue*`), --list.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { startPaymentSim, type PaymentSim } from '../dev/payment-sim';
import { Cleanup } from './lib/cleanup';
import { startOrigin, type Origin } from './lib/origin';
import { machineInfo, markdownReport, tierMix, type ScenarioResult } from './lib/report';
import { coresUsed, cpuSnapshot, RedisCommandCounter, type CpuSnapshot } from './lib/stats';
import {
  BUILD_DIR,
  buildFlashWorker,
  buildWorker,
  onMiniflareCreated,
  packageVersion,
  ROOT,
  startCeiling,
  startFlash,
  startPasar,
  workerdVersion,
  type RunningWorker,
} from './lib/workers';
import { ensureWrk, killRunningWrk, runWrk, wrkVersion, type WrkResult } from './lib/wrk';
import { startBaselineProcess, type BaselineProcess } from './baseline/process';
import { authScenarios } from './scenarios/auth';
import { cartScenarios, prepareCartLines } from './scenarios/cart';
import { catalogScenarios, type RequestLine, type Scenario, type Target } from './scenarios/catalog';
import { checkoutSettings, runCheckoutSale } from './scenarios/checkout';
import { checkFlash, clearSoldOutFlag, flashScenarios, flashSettings, prepareFlash, restoreStockRow } from './scenarios/flash';
import { queueSettings, runQueueSale } from './scenarios/flash-queue';

const log = (message: string) => console.error(`[bench] ${message}`);

interface Settings {
  durationSeconds: number;
  warmupSeconds: number;
  connections: number;
  originConnections: number;
  threads: number;
  timeoutSeconds: number;
  only: string[] | undefined;
  list: boolean;
}

function readSettings(argv: string[], env: NodeJS.ProcessEnv): Settings {
  const num = (name: string, fallback: number, min: number, max: number) => {
    const raw = env[name];
    if (raw === undefined || raw === '') return fallback;
    const n = Number(raw);
    if (!Number.isFinite(n) || n < min || n > max) throw new Error(`${name} must be a number from ${min} to ${max}, got "${raw}"`);
    return n;
  };
  let only: string[] | undefined;
  let list = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--only') only = (argv[++i] ?? '').split(',').map((s) => s.trim()).filter(Boolean);
    else if (arg.startsWith('--only=')) only = arg.slice('--only='.length).split(',').map((s) => s.trim()).filter(Boolean);
    else if (arg === '--list') list = true;
    else throw new Error(`unknown argument ${arg} (use --only <scenario,...> or --list)`);
  }
  const threads = Math.round(num('BENCH_THREADS', 2, 1, 64));
  return {
    durationSeconds: Math.round(num('BENCH_DURATION', 10, 1, 3600)),
    warmupSeconds: Math.round(num('BENCH_WARMUP', 3, 0, 600)),
    connections: Math.max(threads, Math.round(num('BENCH_CONNECTIONS', 32, 1, 10_000))),
    originConnections: Math.max(threads, Math.round(num('BENCH_ORIGIN_CONNECTIONS', 16, 1, 10_000))),
    threads,
    timeoutSeconds: Math.round(num('BENCH_TIMEOUT', 10, 1, 600)),
    only,
    list,
  };
}

/** Writes a request list for pick.lua. */
function writeList(name: string, lines: RequestLine[]): string {
  const dir = resolve(BUILD_DIR, 'lists');
  mkdirSync(dir, { recursive: true });
  const file = resolve(dir, `${name}.txt`);
  // JSON.stringify escapes tabs and newlines, so a body never breaks the line format.
  const field = (l: RequestLine) => (l.body !== undefined ? `\t${l.method ?? 'POST'}\t${l.body}` : l.method && l.method !== 'GET' ? `\t${l.method}` : '');
  writeFileSync(file, lines.map((l) => `${l.path}\t${l.region}${field(l)}`).join('\n') + '\n');
  return file;
}

/** Requests `lines` once each (8 at a time); returns the tiers that answered and the failures. */
async function fetchAll(base: string, lines: RequestLine[]): Promise<{ tiers: Record<string, number>; failures: string[] }> {
  const tiers: Record<string, number> = {};
  const failures: string[] = [];
  let next = 0;
  const worker = async () => {
    while (next < lines.length) {
      const line = lines[next++]!;
      try {
        const res = await fetch(base + line.path, {
          method: line.method ?? 'GET',
          headers: { ...(line.region ? { 'x-region': line.region } : {}), ...(line.body !== undefined ? { 'content-type': 'application/json' } : {}) },
          ...(line.body !== undefined ? { body: line.body } : {}),
          signal: AbortSignal.timeout(15_000),
        });
        await res.arrayBuffer();
        const tier = res.headers.get('x-cache-tier') ?? 'none';
        tiers[tier] = (tiers[tier] ?? 0) + 1;
        if (!res.ok && failures.length < 5) failures.push(`${res.status} ${line.path} (${line.region})`);
      } catch (err) {
        if (failures.length < 5) failures.push(`${line.path}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  return { tiers, failures };
}

/** Fails early, with the Worker's own words, if an instance cannot serve. */
async function checkHealth(worker: RunningWorker, path: string): Promise<void> {
  const res = await fetch(worker.url + path, { signal: AbortSignal.timeout(15_000) });
  const text = await res.text();
  if (!res.ok) throw new Error(`${worker.name} ${path} answered ${res.status}: ${text.slice(0, 500)}`);
}

const round = (n: number, digits = 3) => Math.round(n * 10 ** digits) / 10 ** digits;

/** What the flash-sale scenarios need besides the Worker: the admin token and the origin. */
interface FlashContext {
  adminToken: string;
  ceilingDoRps: number | undefined;
  /** The payment simulator (checkout-sale). */
  sim?: PaymentSim;
  /** The Node baseline server, whose own query counter stands in for the bridge's. */
  baseline?: BaselineProcess;
}

async function runScenario(
  scenario: Scenario,
  worker: RunningWorker,
  settings: Settings,
  origin: Origin | undefined,
  redis: RedisCommandCounter | undefined,
  ceilingRps: number | undefined,
  flash?: FlashContext,
): Promise<ScenarioResult> {
  if (scenario.checkout) return runCheckout(scenario, worker, settings, origin, redis, ceilingRps, flash);
  if (scenario.queue) return runQueue(scenario, worker, origin, redis, ceilingRps, flash);
  if (scenario.carts) {
    // Cart ids exist only once the carts are made, on the very server measured.
    const lines = await prepareCartLines(worker.url, scenario.carts);
    return (await measureScenario({ ...scenario, measure: lines }, worker, settings, origin, redis, ceilingRps, flash?.baseline)).result;
  }
  if (!scenario.flash) return (await measureScenario(scenario, worker, settings, origin, redis, ceilingRps, flash?.baseline)).result;
  if (!flash || !origin) throw new Error(`${scenario.name}: the flash instance and the origin are not running`);
  const spec = scenario.flash;
  const saved = await prepareFlash(worker, spec, flash.adminToken, origin.databaseUrl);
  try {
    const r = await measureScenario(scenario, worker, settings, origin, redis, ceilingRps);
    const outcome = await checkFlash(worker, spec, flash.adminToken, r.wrk, flash.ceilingDoRps);
    r.result.flash = outcome;
    for (const c of outcome.checks) if (!c.ok) r.result.notes.push(`CHECK FAILED: ${c.name} (${c.detail}).`);
    if (outcome.worker.firstError) r.result.notes.push(`First failed reservation: ${outcome.worker.firstError.slice(0, 300)}`);
    return r.result;
  } finally {
    await restoreStockRow(saved).catch((err: unknown) => log(`could not restore the stock row of ${spec.sku}: ${String(err)}`));
    if (spec.sale) await clearSoldOutFlag(origin.redisUrl, spec.region, spec.variantId).catch(() => {});
  }
}

/** `checkout-sale`: no wrk; the sale of ./scenarios/checkout.ts, as one ScenarioResult. */
async function runCheckout(
  scenario: Scenario,
  worker: RunningWorker,
  settings: Settings,
  origin: Origin | undefined,
  redis: RedisCommandCounter | undefined,
  ceilingRps: number | undefined,
  flash?: FlashContext,
): Promise<ScenarioResult> {
  if (!flash?.sim || !origin) throw new Error(`${scenario.name}: the payment simulator or the origin is not running`);
  worker.logs.take();
  let cpuA: CpuSnapshot | null = null;
  let cpuB: CpuSnapshot | null = null;
  let pgBefore: ReturnType<Origin['pgBridge']['stats']> | undefined;
  let pgAfter: ReturnType<Origin['pgBridge']['stats']> | undefined;
  let pgPeak = 0;
  let sampler: NodeJS.Timeout | undefined;
  const redisBefore = redis ? await redis.total() : null;
  let outcome;
  try {
    outcome = await runCheckoutSale({
      worker,
      adminToken: flash.adminToken,
      sim: flash.sim,
      databaseUrl: origin.databaseUrl,
      settings: checkoutSettings(process.env),
      ceilingRps,
      ceilingDoRps: flash.ceilingDoRps,
      log,
      onWindow: (phase) => {
        if (phase === 'start') {
          cpuA = cpuSnapshot();
          pgBefore = origin.pgBridge.stats();
          sampler = setInterval(() => (pgPeak = Math.max(pgPeak, origin.pgBridge.openConnections())), 20);
        } else {
          cpuB = cpuSnapshot();
          pgAfter = origin.pgBridge.stats();
          clearInterval(sampler);
        }
      },
    });
  } finally {
    clearInterval(sampler);
  }
  const redisAfter = redis ? await redis.total() : null;
  const workerLogs = worker.logs.take();
  const notes: string[] = [];
  const n = outcome.shoppers;
  const per = (a: number | undefined | null, b: number | undefined | null) => (a === undefined || a === null || b === undefined || b === null ? null : round((b - a) / n));
  notes.push(
    `${n} carts made first in ${outcome.cartsSeconds} s; then ${n} checkouts POSTed, ${outcome.concurrency} in flight, answered in ${outcome.acceptSeconds} s; ` +
      `all settled ${outcome.settleSeconds} s after the first POST (${outcome.polls} polls); req/s here is accepted checkouts/s; PG, Redis and CPU figures are per checkout over the whole sale (POSTs to settled).`,
  );
  const logged = workerLogs.counts;
  if (logged.warn || logged.error) {
    notes.push(`The Worker logged ${logged.warn ?? 0} warning(s) and ${logged.error ?? 0} error(s); first: ${workerLogs.samples[0]?.slice(0, 300) ?? '?'}`);
  }
  for (const c of outcome.checks) if (!c.ok) notes.push(`CHECK FAILED: ${c.name} (${c.detail}).`);
  const nonAccepted = n - outcome.accepted;
  return {
    name: scenario.name,
    title: scenario.title,
    target: scenario.target,
    mode: 'checkout',
    expect: scenario.expect,
    threads: 0,
    connections: outcome.concurrency,
    durationSeconds: outcome.acceptSeconds,
    requests: n,
    rps: outcome.acceptedPerSecond,
    ratio: outcome.acceptedRatioToCeiling,
    latencyMs: { mean: 0, p50: outcome.postLatencyMs.p50, p90: 0, p95: outcome.postLatencyMs.p95, p99: outcome.postLatencyMs.p99, max: outcome.postLatencyMs.max },
    errors: { total: nonAccepted, non2xx3xx: nonAccepted, connect: 0, read: 0, write: 0, timeout: 0 },
    status: outcome.postStatus,
    tiers: {},
    tierMix: '-',
    pgQueriesPerRequest: per(pgBefore?.queries, pgAfter?.queries),
    pgConnectionsPerRequest: per(pgBefore?.connections, pgAfter?.connections),
    redisCommandsPerRequest: per(redisBefore, redisAfter),
    pgPeakConnections: pgPeak,
    cpu: coresUsed(cpuA, cpuB),
    wraps: 0,
    workerLogs: logged,
    workerLogSamples: workerLogs.samples,
    notes,
    wrkOutput: '',
    checkout: outcome,
  };
}

/** `flash-queue*`: no wrk; the queued sale of ./scenarios/flash-queue.ts, as one ScenarioResult (req/s = tickets/s). */
async function runQueue(
  scenario: Scenario,
  worker: RunningWorker,
  origin: Origin | undefined,
  redis: RedisCommandCounter | undefined,
  ceilingRps: number | undefined,
  flash?: FlashContext,
): Promise<ScenarioResult> {
  if (!flash?.sim || !origin || !scenario.queue) throw new Error(`${scenario.name}: the payment simulator or the origin is not running`);
  worker.logs.take();
  let cpuA: CpuSnapshot | null = null;
  let cpuB: CpuSnapshot | null = null;
  let pgPeak = 0;
  let sampler: NodeJS.Timeout | undefined;
  let pgAtStart: ReturnType<Origin['pgBridge']['stats']> | undefined;
  let pgAtTickets: ReturnType<Origin['pgBridge']['stats']> | undefined;
  const redisBefore = redis ? await redis.total() : null;
  let outcome;
  try {
    outcome = await runQueueSale({
      onTickets: () => (pgAtTickets = origin.pgBridge.stats()),
      worker,
      adminToken: flash.adminToken,
      sim: flash.sim,
      databaseUrl: origin.databaseUrl,
      settings: queueSettings(process.env),
      queueShards: scenario.queue.shards,
      ceilingRps,
      ceilingDoRps: flash.ceilingDoRps,
      log,
      name: scenario.name,
      onWindow: (phase) => {
        if (phase === 'start') {
          cpuA = cpuSnapshot();
          pgAtStart = origin.pgBridge.stats();
          sampler = setInterval(() => (pgPeak = Math.max(pgPeak, origin.pgBridge.openConnections())), 20);
        } else {
          cpuB = cpuSnapshot();
          clearInterval(sampler);
        }
      },
    });
  } finally {
    clearInterval(sampler);
  }
  const redisAfter = redis ? await redis.total() : null;
  const workerLogs = worker.logs.take();
  const notes: string[] = [];
  const q = outcome;
  // Postgres queries while the shoppers took their tickets (the sale's memo should make this ~0 per ticket).
  if (pgAtStart && pgAtTickets) q.tickets.pgQueriesPerTicket = round((pgAtTickets.queries - pgAtStart.queries) / Math.max(1, q.shoppers));
  notes.push(`While the tickets were taken (WebSocket upgrades and the first checkouts included): ${q.tickets.pgQueriesPerTicket ?? 'n/a'} Postgres queries per shopper; ticket answers ${JSON.stringify(q.tickets.status)} (${q.tickets.retries} presses again after a 5xx or no answer).`);
  notes.push(
    `${q.shoppers} shoppers (${q.pollers} polling, the rest on WebSockets), ${q.units} units, cap ${q.cap}, ${q.admissionRate} admitted/s over ${q.queueShards} queue object(s); ` +
      `req/s and latency here are ticket POSTs (${q.concurrency} requests in flight, shared with the WebSocket upgrades); CPU is over the whole sale (first ticket to last checkout settled); ${q.wallSeconds} s in all.`,
  );
  const logged = workerLogs.counts;
  if (logged.warn || logged.error) notes.push(`The Worker logged ${logged.warn ?? 0} warning(s) and ${logged.error ?? 0} error(s); first: ${workerLogs.samples[0]?.slice(0, 300) ?? '?'}`);
  for (const c of q.checks) if (!c.ok) notes.push(`CHECK FAILED: ${c.name} (${c.detail}).`);
  const requests = Object.values(q.tickets.status).reduce((a, b) => a + b, 0);
  return {
    name: scenario.name,
    title: scenario.title,
    target: scenario.target,
    mode: 'queue',
    expect: scenario.expect,
    threads: 0,
    connections: q.concurrency,
    durationSeconds: q.tickets.seconds,
    requests,
    rps: q.tickets.perSecond,
    ratio: q.tickets.ratioToCeiling,
    latencyMs: { mean: 0, p50: q.tickets.latencyMs.p50, p90: 0, p95: q.tickets.latencyMs.p95, p99: q.tickets.latencyMs.p99, max: q.tickets.latencyMs.max },
    errors: { total: q.tickets.errors, non2xx3xx: q.tickets.errors - (q.tickets.status['0'] ?? 0), connect: 0, read: q.tickets.status['0'] ?? 0, write: 0, timeout: 0 },
    status: q.tickets.status,
    tiers: {},
    tierMix: '-',
    pgQueriesPerRequest: null,
    pgConnectionsPerRequest: null,
    redisCommandsPerRequest: redisBefore !== null && redisAfter !== null ? round((redisAfter - redisBefore) / requests) : null,
    pgPeakConnections: pgPeak,
    cpu: coresUsed(cpuA, cpuB),
    wraps: 0,
    workerLogs: logged,
    workerLogSamples: workerLogs.samples,
    notes,
    wrkOutput: '',
    queue: q,
  };
}

async function measureScenario(
  scenario: Scenario,
  worker: RunningWorker,
  settings: Settings,
  origin: Origin | undefined,
  redis: RedisCommandCounter | undefined,
  ceilingRps: number | undefined,
  baseline?: BaselineProcess,
): Promise<{ result: ScenarioResult; wrk: WrkResult }> {
  const notes: string[] = [];
  // The baseline talks to Postgres over TCP, not through the bridge: it counts its own queries.
  const pgStats = async () => (scenario.target === 'baseline' ? baseline?.stats() : origin?.pgBridge.stats());
  const connections = scenario.connections ?? (scenario.origin ? Math.min(settings.connections, settings.originConnections) : settings.connections);
  const wrkBase = { url: worker.url, threads: settings.threads, connections, timeoutSeconds: settings.timeoutSeconds };

  if (scenario.prefill) {
    const filled = await fetchAll(worker.url, scenario.prefill);
    // KV puts run in waitUntil after each response; give the last ones time to land.
    await new Promise((r) => setTimeout(r, 1_000));
    const check = await fetchAll(worker.url, scenario.prefill);
    notes.push(`Prefill of ${scenario.prefill.length} URLs answered by ${tierMix(filled.tiers)}; a second pass by ${tierMix(check.tiers)}.`);
    const failures = [...filled.failures, ...check.failures];
    if (failures.length) notes.push(`Prefill failures: ${failures.join('; ')}.`);
  }

  if (settings.warmupSeconds > 0 && !scenario.noWarmup) {
    const warmFile = writeList(`${scenario.name}.warmup`, scenario.warmup ?? scenario.measure);
    await runWrk({ ...wrkBase, listFile: warmFile, mode: scenario.mode, durationSeconds: settings.warmupSeconds });
  }
  worker.logs.take();

  const listFile = writeList(scenario.name, scenario.measure);
  const pgBefore = await pgStats();
  const redisBefore = redis ? await redis.total() : null;
  // CPU is sampled inside the run (wrk's own process only exists during it).
  let cpuA: CpuSnapshot | null = null;
  let cpuB: CpuSnapshot | null = null;
  const durationSeconds = Math.max(settings.durationSeconds, scenario.minDurationSeconds ?? 0);
  const windowEnd = Math.max(1, durationSeconds - 0.5) * 1000;
  const timers = [
    setTimeout(() => (cpuA = cpuSnapshot()), Math.min(1000, windowEnd / 4)),
    setTimeout(() => (cpuB = cpuSnapshot()), windowEnd),
  ];
  // Postgres connections open at once, as the bridge sees them (one per Neon Pool client).
  let pgPeak = 0;
  const sampler = origin && scenario.target !== 'baseline' ? setInterval(() => (pgPeak = Math.max(pgPeak, origin.pgBridge.openConnections())), 20) : undefined;
  let result: WrkResult;
  try {
    result = await runWrk({ ...wrkBase, listFile, mode: scenario.mode, durationSeconds });
  } finally {
    timers.forEach(clearTimeout);
    clearInterval(sampler);
  }
  const pgAfter = await pgStats();
  const redisAfter = redis ? await redis.total() : null;
  const workerLogs = worker.logs.take();

  const requests = result.requests;
  const seconds = result.duration_us / 1e6;
  const rps = seconds > 0 ? requests / seconds : 0;
  const per = (a: number | undefined | null, b: number | undefined | null) =>
    a === undefined || a === null || b === undefined || b === null || requests === 0 ? null : round((b - a) / requests);
  const e = result.errors;
  const socketErrors = e.connect + e.read + e.write + e.timeout;
  // A flash sale's 409 is "sold out", an answer: not an error.
  const statusErrors = scenario.flash ? e.status - (result.status['409'] ?? 0) : scenario.expectStatus === 401 ? e.status - (result.status['401'] ?? 0) : e.status;
  if (durationSeconds !== settings.durationSeconds) notes.push(`Measured for ${durationSeconds} s, the scenario's minimum.`);
  if (result.wraps > 0) notes.push(`The walk ran out of fresh URLs ${result.wraps} time(s): some requests repeated.`);
  const logged = workerLogs.counts;
  if (logged.warn || logged.error) {
    notes.push(`The Worker logged ${logged.warn ?? 0} warning(s) and ${logged.error ?? 0} error(s); first: ${workerLogs.samples[0]?.slice(0, 300) ?? '?'}`);
  }
  const isStore = scenario.target !== 'ceiling';
  const tiers = result.tiers as unknown as Record<string, number>;
  const cpu = coresUsed(cpuA, cpuB);
  if (scenario.cpuPerRequest && cpu && rps > 0) {
    notes.push(`workerd CPU per request: ${round(((cpu.groups.workerd ?? 0) * 1000) / rps, 1)} ms (${cpu.groups.workerd ?? 0} cores of workerd over ${round(rps, 1)} req/s).`);
  }

  const scenarioResult: ScenarioResult = {
    name: scenario.name,
    title: scenario.title,
    target: scenario.target,
    mode: scenario.mode,
    expect: scenario.expect,
    threads: settings.threads,
    connections,
    durationSeconds: round(seconds, 2),
    requests,
    rps: round(rps, 1),
    ratio: ceilingRps ? round(rps / ceilingRps, 3) : null,
    latencyMs: {
      mean: round(result.latency_us.mean / 1000),
      p50: round(result.latency_us.p50 / 1000),
      p90: round(result.latency_us.p90 / 1000),
      p95: round(result.latency_us.p95 / 1000),
      p99: round(result.latency_us.p99 / 1000),
      max: round(result.latency_us.max / 1000),
    },
    errors: { total: statusErrors + socketErrors, non2xx3xx: statusErrors, connect: e.connect, read: e.read, write: e.write, timeout: e.timeout },
    status: result.status,
    tiers,
    tierMix: tierMix(tiers),
    pgQueriesPerRequest: isStore ? per(pgBefore?.queries, pgAfter?.queries) : null,
    pgConnectionsPerRequest: isStore ? per(pgBefore?.connections, pgAfter?.connections) : null,
    redisCommandsPerRequest: isStore ? per(redisBefore, redisAfter) : null,
    pgPeakConnections: isStore && origin && scenario.target !== 'baseline' ? pgPeak : null,
    cpu,
    wraps: result.wraps,
    workerLogs: logged,
    workerLogSamples: workerLogs.samples,
    notes,
    wrkOutput: result.raw,
  };
  return { result: scenarioResult, wrk: result };
}

async function main(): Promise<void> {
  const settings = readSettings(process.argv.slice(2), process.env);
  const catalog = catalogScenarios();
  // The flash-sale scenarios run after the catalog's, before the closing ceiling.
  const end = catalog.findIndex((s) => s.name === 'ceiling-end');
  const sale = checkoutSettings(process.env);
  const checkoutScenario: Scenario = {
    name: 'checkout-sale',
    title: `Checkout flash sale on the store: ${sale.shoppers.toLocaleString('en')} shoppers' checkouts POSTed at once (${sale.concurrency} in flight) for ${sale.units.toLocaleString('en')} units, followed until confirmed or failed`,
    target: 'edge',
    mode: 'random',
    measure: [],
    expect: '-',
    checkout: true,
  };
  const qs = queueSettings(process.env);
  const queueTitle = (shards: number) =>
    `A flash sale through its queue on the store: ${qs.shoppers.toLocaleString('en')} shoppers (own device cookie and IP) take tickets at the start, follow the queue (WebSocket; every 10th polls), ` +
    `and check out ${qs.cap} units when admitted (${qs.rate}/s), ${qs.units.toLocaleString('en')} units, ${shards} queue object${shards === 1 ? '' : 's'}`;
  const queueScenarios: Scenario[] = [
    { name: 'flash-queue', title: queueTitle(1), target: 'edge', mode: 'random', measure: [], expect: '-', queue: { shards: 1 } },
    { name: 'flash-queue-sharded', title: queueTitle(qs.shards), target: 'edge', mode: 'random', measure: [], expect: '-', queue: { shards: qs.shards } },
  ];
  let scenarios = [
    ...catalog.slice(0, end),
    ...cartScenarios(),
    ...authScenarios(),
    ...flashScenarios(flashSettings(process.env)),
    checkoutScenario,
    ...queueScenarios,
    ...catalog.slice(end),
  ];
  if (settings.list) {
    for (const s of scenarios) console.log(`${s.name.padEnd(22)} ${s.title}`);
    return;
  }
  if (settings.only) {
    const known = new Set(scenarios.map((s) => s.name));
    const unknown = settings.only.filter((n) => !known.has(n));
    if (unknown.length) throw new Error(`unknown scenario(s): ${unknown.join(', ')}; known: ${[...known].join(', ')}`);
    // The ceiling always runs: every ratio is against this run's ceiling; a
    // flash scenario's reservations are also read against an empty object call.
    const wanted = new Set(['ceiling', ...settings.only]);
    if (scenarios.some((s) => (s.flash || s.checkout || s.queue) && wanted.has(s.name))) wanted.add('ceiling-do');
    scenarios = scenarios.filter((s) => wanted.has(s.name));
  }
  const targets = new Set<Target>(scenarios.map((s) => s.target));

  const cleanup = new Cleanup();
  cleanup.onSignals();
  cleanup.add('wrk', async () => killRunningWrk());
  const started = Date.now();
  try {
    await ensureWrk(log);
    const wrk = await wrkVersion();
    log(`load generator: ${wrk}`);

    log('building the Worker (wrangler deploy --dry-run --outdir bench/.build)');
    const scriptPath = await buildWorker();
    let flashScriptPath: string | undefined;
    if (targets.has('flash')) {
      log('building the flash-sale Worker (wrangler deploy --dry-run --config bench/flash.wrangler.toml --outdir bench/.build/flash)');
      flashScriptPath = await buildFlashWorker();
    }
    // The flash instance's admin token (the store accepts it as an owner token there only).
    const adminToken = randomBytes(24).toString('hex');

    let origin: Origin | undefined;
    let redis: RedisCommandCounter | undefined;
    if (targets.has('edge') || targets.has('nocache') || targets.has('flash') || targets.has('baseline') || scenarios.some((s) => s.name === 'ceiling-redis')) {
      origin = await startOrigin(cleanup, log);
      redis = new RedisCommandCounter(origin.redisUrl);
      const r = redis;
      cleanup.add('Redis stats client', () => r.close());
    }

    // The payment simulator (checkout-sale); its webhooks go to the `edge` store once it is up.
    let sim: PaymentSim | undefined;
    const paymentApiKey = `sk_bench_${randomBytes(12).toString('hex')}`;
    const paymentWebhookSecret = `whsec_${randomBytes(16).toString('hex')}`;
    if (scenarios.some((s) => s.checkout || s.queue)) {
      const s = await startPaymentSim({ apiKey: paymentApiKey, webhookSecret: paymentWebhookSecret, log: () => {} });
      sim = s;
      cleanup.add('payment simulator', () => s.close());
      log(`payment simulator on ${s.url}`);
    }

    const workers = new Map<Target, RunningWorker>();
    let baseline: BaselineProcess | undefined;
    const startWorker = async (target: Target) => {
      let w: RunningWorker;
      const o = origin!;
      const bindings = () => ({
        DATABASE_URL: o.workerDatabaseUrl,
        NEON_WS_PROXY: o.pgBridge.wsProxy,
        UPSTASH_REDIS_REST_URL: o.upstash.url,
        UPSTASH_REDIS_REST_TOKEN: o.upstashToken,
        SIGNING_SECRET: randomBytes(32).toString('hex'),
        ...(sim ? { PAYMENT_API_URL: sim.url, PAYMENT_API_KEY: paymentApiKey, PAYMENT_WEBHOOK_SECRET: paymentWebhookSecret } : {}),
      });
      if (target === 'ceiling') {
        w = await startCeiling(origin && { url: origin.upstash.url, token: origin.upstashToken });
      } else if (target === 'baseline') {
        const b = await startBaselineProcess({ databaseUrl: o.databaseUrl, redisUrl: o.redisUrl });
        baseline = b;
        w = b.worker;
      } else if (target === 'flash') {
        w = await startFlash({ flashScriptPath: flashScriptPath!, storeScriptPath: scriptPath, bindings: bindings(), adminToken });
      } else {
        w = await startPasar({ name: target, scriptPath, cacheAPI: target === 'edge', bindings: bindings(), adminToken });
      }
      cleanup.add(`workerd (${target})`, () => w.dispose());
      workers.set(target, w);
      await checkHealth(w, target === 'ceiling' ? '/ceiling' : target === 'flash' || target === 'baseline' ? '/health' : '/api/health');
      log(`${target}: workerd on ${w.url}`);
      if (target === 'edge' && sim) sim.setWebhookUrl(`${w.url}/api/webhooks/payments/sim`);
    };
    // Miniflare exits the process on SIGINT at once; take the signals back so teardown runs.
    onMiniflareCreated(() => cleanup.claimSignals());
    for (const target of ['ceiling', 'edge', 'nocache', 'flash', 'baseline'] as const) if (targets.has(target)) await startWorker(target);

    // What the machine does without us: everything is up and idle now.
    const idleA = cpuSnapshot();
    await new Promise((r) => setTimeout(r, 2_000));
    const background = coresUsed(idleA, cpuSnapshot());
    if (background && background.machine > 0.25) {
      log(`warning: the machine is already busy (${background.machine} cores in use before any load); numbers will be lower and noisier`);
    }

    const machine = machineInfo({
      backgroundCores: background?.machine ?? null,
      workerd: workerdVersion(),
      miniflare: packageVersion('miniflare'),
      wrangler: packageVersion('wrangler'),
      wrk,
      postgres: origin?.postgresVersion ?? 'not used',
      pooler: origin?.pooler ?? 'not used',
      postgresMaxConnections: origin?.maxConnections ?? 0,
      redis: redis ? await redis.version() : 'not used',
    });

    const results: ScenarioResult[] = [];
    let ceilingRps: number | undefined;
    let ceilingDoRps: number | undefined;
    for (const scenario of scenarios) {
      if (cleanup.stopping) break;
      const worker = workers.get(scenario.target)!;
      if (scenario.checkout || scenario.queue) log(`${scenario.name}: ${scenario.title}`);
      else log(
        `${scenario.name}: ${scenario.noWarmup ? 'no' : `${settings.warmupSeconds} s`} warm-up + ${Math.max(settings.durationSeconds, scenario.minDurationSeconds ?? 0)} s (${scenario.title})`,
      );
      const r = await runScenario(scenario, worker, settings, origin, redis, ceilingRps, { adminToken, ceilingDoRps, sim, baseline });
      if (scenario.name === 'ceiling') {
        ceilingRps = r.rps;
        r.ratio = 1;
      }
      if (scenario.name === 'ceiling-do') ceilingDoRps = r.rps;
      if (scenario.name === 'ceiling-end' && ceilingRps) {
        const drift = r.rps / ceilingRps - 1;
        r.notes.push(`${drift >= 0 ? '+' : ''}${(drift * 100).toFixed(0)}% against the first ceiling${Math.abs(drift) > 0.15 ? ': the machine changed during the run, compare ratios with care' : ''}.`);
      }
      results.push(r);
      log(
        `${scenario.name}: ${r.connections} conns, ${r.rps.toFixed(0)} req/s, p50 ${r.latencyMs.p50} ms, p99 ${r.latencyMs.p99} ms, errors ${r.errors.total}, tiers ${r.tierMix}` +
          (r.pgQueriesPerRequest !== null ? `, PG q/req ${r.pgQueriesPerRequest}` : ''),
      );
      if (r.flash) {
        const f = r.flash;
        log(
          `${scenario.name}: ${f.reservationsPerSecond} reservations/s (${f.ratioToCeilingDo ?? 'n/a'} of ceiling-do), ${f.soldOutPerSecond} sold-out answers/s; ` +
            `object calls per reservation ${f.worker.objectCallsPerReservation ?? '-'}, per sold-out ${f.worker.objectCallsPerSoldOut ?? '-'}; ` +
            `region sg: received ${f.admin.received}, available ${f.admin.available}, held ${f.admin.held}, sold ${f.admin.sold}, oversold ${f.oversold}` +
            (f.sellout ? `; sold out after ${f.sellout.soldOutAfterMs ?? '?'} ms, ${f.sellout.unitsSold} units, then ${f.sellout.soldOutAnswers} sold-out answers` : ''),
        );
        const failed = f.checks.filter((c) => !c.ok);
        log(`  checks: ${failed.length ? `${failed.length} FAILED` : `all ${f.checks.length} passed`}`);
      }
      if (r.checkout) {
        const c = r.checkout;
        log(
          `${scenario.name}: ${c.accepted}/${c.shoppers} accepted at ${c.acceptedPerSecond}/s (${c.acceptedRatioToCeiling ?? 'n/a'} of ceiling), all settled in ${c.settleSeconds} s, ` +
            `${c.outcomes.confirmed ?? 0} confirmed at ${c.confirmedPerSecond}/s (${c.confirmedRatioToCeilingDo ?? 'n/a'} of ceiling-do), outcomes ${JSON.stringify(c.outcomes)}; ` +
            `sold ${c.admin.sold}, held ${c.admin.held}, available ${c.admin.available}, oversold ${c.oversold}; PG orders ${c.orders.orders}; captured at sim ${c.captured}`,
        );
        const failed = c.checks.filter((x) => !x.ok);
        log(`  checks: ${failed.length ? `${failed.length} FAILED` : `all ${c.checks.length} passed`}`);
      }
      if (r.queue) {
        const q = r.queue;
        log(
          `${scenario.name}: ${q.tickets.perSecond} tickets/s (${q.tickets.ratioToCeilingDo ?? 'n/a'} of ceiling-do), ticket p50 ${q.tickets.latencyMs.p50} ms p99 ${q.tickets.latencyMs.p99} ms; ` +
            `admitted ${q.admission.admitted} at ${q.admission.perSecondMean ?? '-'}/s (rate ${q.admissionRate}); sold out ${q.soldOut.afterStartMs ?? '?'} ms after the start, ` +
            `${q.soldOut.told}/${q.soldOut.waiting} waiting told, p99 ${q.soldOut.all.p99} ms max ${q.soldOut.all.max} ms; checkout p50/p99 ${q.reportLatencyMs.p50}/${q.reportLatencyMs.p99} ms (report); ` +
            `outcomes ${JSON.stringify(q.checkouts.outcomes)} (cart calls tried again after a 503: ${q.checkouts.cartRetries}), second ${JSON.stringify(q.checkouts.second)}; sold ${q.admin.sold}/${q.units}, oversold ${q.oversold}, orders ${q.orders.orders}, captured ${q.captured}`,
        );
        const failed = q.checks.filter((x) => !x.ok);
        log(`  checks: ${failed.length ? `${failed.length} FAILED` : `all ${q.checks.length} passed`}`);
      }
      for (const n of r.notes) log(`  ${n}`);
    }

    if (cleanup.stopping) return;

    const command = `npm run bench${settings.only ? ` -- --only ${settings.only.join(',')}` : ''}`;
    const settingsLine =
      `wrk -t${settings.threads} -c${settings.connections} (origin scenarios -c${Math.min(settings.connections, settings.originConnections)}) ` +
      `-d${settings.durationSeconds}s --timeout ${settings.timeoutSeconds}s --latency ` +
      `after a ${settings.warmupSeconds} s warm-up per scenario; ratio = req/s / ceiling req/s of this run; ` +
      `errors = non-2xx/3xx responses + socket errors (connect, read, write, timeout); in the flash scenarios a 409 (sold out) is an answer, not an error.`;
    const md = markdownReport({ machine, command, settings: settingsLine, results });

    console.log('');
    console.log(md);

    const day = machine.dateUtc.slice(0, 10);
    const onlyFlash = results.some((r) => r.flash) && results.every((r) => r.flash || r.target === 'ceiling');
    const onlyCheckout = results.some((r) => r.checkout) && results.every((r) => r.checkout || r.target === 'ceiling');
    const onlyQueue = results.some((r) => r.queue) && results.every((r) => r.queue || r.target === 'ceiling');
    const base = `${day}-${onlyQueue ? 'flash-queue' : onlyCheckout ? 'checkout' : onlyFlash ? 'flash' : 'catalog'}${settings.only ? '-partial' : ''}`;
    const dir = resolve(ROOT, 'bench/results');
    mkdirSync(dir, { recursive: true });
    writeFileSync(resolve(dir, `${base}.json`), JSON.stringify({ machine, command, settings: { ...settings, list: undefined }, results }, null, 2) + '\n');
    writeFileSync(resolve(dir, `${base}.md`), md);
    log(`wrote bench/results/${base}.json and .md (${Math.round((Date.now() - started) / 1000)} s in all)`);
    const failedChecks = results.flatMap((r) => [...(r.flash?.checks ?? []), ...(r.checkout?.checks ?? []), ...(r.queue?.checks ?? [])].filter((c) => !c.ok).map((c) => `${r.name}: ${c.name} (${c.detail})`));
    if (failedChecks.length) {
      log(`flash-sale / checkout-sale / flash-queue checks FAILED:\n  ${failedChecks.join('\n  ')}`);
      process.exitCode = 1;
    }
  } finally {
    await cleanup.run();
  }
}

main().catch((err: unknown) => {
  console.error(`[bench] failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exitCode = 1;
});
