/**
 * The Workers under test, in workerd through Miniflare's API: the store's
 * Worker as `wrangler deploy --dry-run` bundles it, and the ceiling Worker
 * (bench/ceiling-worker.js). Both get the same instance options (host,
 * compatibility date, no request logging, no `cf` download), so their numbers
 * compare like with like.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { convertV4MiniflareOptions, Log, LogLevel, Miniflare, type V4MiniflareOptions, type V4WorkerOptions } from 'miniflare';

const require = createRequire(import.meta.url);

/** The repository root. */
export const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
/** Where the dry-run bundle goes (gitignored). */
export const BUILD_DIR = resolve(ROOT, 'bench/.build');
export const CEILING_WORKER = resolve(ROOT, 'bench/ceiling-worker.js');

/** `compatibility_date` of the top-level environment in wrangler.toml. */
export function compatibilityDate(): string {
  const toml = readFileSync(resolve(ROOT, 'wrangler.toml'), 'utf8');
  const match = /^compatibility_date\s*=\s*"(\d{4}-\d{2}-\d{2})"/m.exec(toml);
  if (!match?.[1]) throw new Error('wrangler.toml has no compatibility_date');
  return match[1];
}

/** A package's version from its package.json, or "unknown". */
export function packageVersion(name: string, from = ROOT): string {
  try {
    const path = createRequire(resolve(from, 'package.json')).resolve(`${name}/package.json`);
    return (JSON.parse(readFileSync(path, 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** The workerd version Miniflare runs (its own dependency). */
export function workerdVersion(): string {
  const miniflareDir = dirname(require.resolve('miniflare/package.json'));
  return packageVersion('workerd', miniflareDir);
}

/** Runs wrangler (telemetry off) from the repository root; resolves with its exit code and output. */
async function wrangler(args: string[]): Promise<{ code: number; output: string }> {
  const wranglerBin = resolve(dirname(require.resolve('wrangler/package.json')), 'bin/wrangler.js');
  let output = '';
  const code = await new Promise<number>((resolvePromise) => {
    const child = spawn(process.execPath, [wranglerBin, ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, WRANGLER_SEND_METRICS: 'false', CI: 'true', NO_COLOR: '1' },
    });
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('exit', (c) => resolvePromise(c ?? 1));
    child.on('error', () => resolvePromise(127));
  });
  return { code, output };
}

/**
 * Bundles the Worker exactly as a deploy would (top-level environment), with
 * wrangler's telemetry off. Returns the entry module's path.
 */
export async function buildWorker(): Promise<string> {
  const { code, output } = await wrangler(['deploy', '--dry-run', '--outdir', BUILD_DIR, '--env', '']);
  const entry = resolve(BUILD_DIR, 'index.js');
  if (code !== 0 || !existsSync(entry)) throw new Error(`wrangler deploy --dry-run failed (exit ${code}):\n${output}`);
  return entry;
}

/** Where the flash-sale Worker's bundle goes. */
export const FLASH_BUILD_DIR = resolve(BUILD_DIR, 'flash');

/**
 * Bundles bench/flash-worker.js the same way (bench/flash.wrangler.toml, the
 * root wrangler.toml's compatibility date). It imports only the inventory
 * modules and the database client, so it builds whatever else the store has
 * in flight. Returns the entry module's path.
 */
export async function buildFlashWorker(): Promise<string> {
  const { code, output } = await wrangler([
    'deploy',
    '--dry-run',
    '--config',
    resolve(ROOT, 'bench/flash.wrangler.toml'),
    '--outdir',
    FLASH_BUILD_DIR,
    '--compatibility-date',
    compatibilityDate(),
  ]);
  const entry = resolve(FLASH_BUILD_DIR, 'flash-worker.js');
  if (code !== 0 || !existsSync(entry)) throw new Error(`wrangler deploy --dry-run (bench/flash.wrangler.toml) failed (exit ${code}):\n${output}`);
  return entry;
}

/** Warnings and errors a Worker logged, counted per level, with the first few of each level kept. */
export class WorkerLogs {
  counts: Record<string, number> = {};
  samples: string[] = [];
  handle = (log: { level: string; message: string }): void => {
    this.counts[log.level] = (this.counts[log.level] ?? 0) + 1;
    // Per level, so a flood of warnings never hides the first errors.
    const kept = this.samples.filter((s) => s.startsWith(`${log.level}:`)).length;
    if ((log.level === 'warn' || log.level === 'error') && kept < 5) this.samples.push(`${log.level}: ${log.message.slice(0, 600)}`);
  };
  /** Counts and samples since the last call (per scenario). */
  take(): { counts: Record<string, number>; samples: string[] } {
    const taken = { counts: this.counts, samples: this.samples };
    this.counts = {};
    this.samples = [];
    return taken;
  }
}

/** A Worker running in workerd. */
export interface RunningWorker {
  name: string;
  /** Base URL, e.g. http://127.0.0.1:40123 */
  url: string;
  logs: WorkerLogs;
  dispose(): Promise<void>;
}

/** Called right after each Miniflare instance is constructed (bench/run.ts takes the signals back). */
let afterCreate: () => void = () => {};
export function onMiniflareCreated(callback: () => void): void {
  afterCreate = callback;
}

async function start(name: string, options: V4MiniflareOptions, logs: WorkerLogs): Promise<RunningWorker> {
  const mf = new Miniflare(convertV4MiniflareOptions(options));
  afterCreate();
  let url: URL;
  try {
    url = await withTimeout(mf.ready, 60_000, `${name}: workerd did not start`);
  } catch (err) {
    await mf.dispose().catch(() => {});
    throw err;
  }
  return { name, url: url.origin, logs, dispose: () => mf.dispose() };
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${message} within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Options every instance shares: loopback, a free port, quiet, no network. */
function sharedOptions(logs: WorkerLogs) {
  return {
    host: '127.0.0.1',
    port: 0,
    // Miniflare would print a line per request (a cost the deployed Worker does not have).
    logRequests: false,
    // The default downloads Cloudflare's `request.cf` sample; the store reads the region from `x-region` here.
    cf: false,
    log: new Log(LogLevel.WARN, { prefix: 'workerd' }),
    handleStructuredLogs: logs.handle,
  } as const;
}

/** The store's configuration for one instance (bindings as `npm run dev` passes them). */
export interface PasarBindings {
  DATABASE_URL: string;
  NEON_WS_PROXY: string;
  UPSTASH_REDIS_REST_URL: string;
  UPSTASH_REDIS_REST_TOKEN: string;
  SIGNING_SECRET: string;
  /** The payment simulator the bench starts (checkout-sale). */
  PAYMENT_API_URL?: string;
  PAYMENT_API_KEY?: string;
  PAYMENT_WEBHOOK_SECRET?: string;
  /** Read replicas (comma-separated URLs); '' (the default) reads from the primary only. */
  DATABASE_REPLICA_URLS?: string;
  /** Replica lag and retry, payment timeout and deadline (ms, as strings): the store's defaults when unset. */
  REPLICA_MAX_LAG_MS?: string;
  REPLICA_RETRY_MS?: string;
  PAYMENT_TIMEOUT_MS?: string;
  PAYMENT_DEADLINE_MS?: string;
}

/** The store Worker's options in an instance (its INVENTORY binding may name another Worker's class). */
function pasarWorker(opts: {
  scriptPath: string;
  cacheAPI: boolean;
  bindings: PasarBindings;
  adminToken?: string;
  inventoryScript?: string;
}): V4WorkerOptions {
  return {
    name: 'pasar',
    modules: true,
    scriptPath: opts.scriptPath,
    compatibilityDate: compatibilityDate(),
    cacheAPI: opts.cacheAPI,
    durableObjects: {
      INVENTORY: { className: 'InventoryShard', useSQLite: true, ...(opts.inventoryScript ? { scriptName: opts.inventoryScript } : {}) },
      CHECKOUT: { className: 'Checkout', useSQLite: true },
      // wrangler.toml's SALE_QUEUE (migration v2): flash sales' waiting rooms, in the store's own script.
      SALE_QUEUE: { className: 'SaleQueue', useSQLite: true },
    },
    kvNamespaces: ['CATALOG'],
    r2Buckets: ['MEDIA'],
    queueProducers: { ORDER_EVENTS: { queueName: 'pasar-order-events-bench' }, WEBHOOKS: { queueName: 'pasar-webhooks-bench' } },
    bindings: {
      ...opts.bindings,
      ENVIRONMENT: 'development',
      DEFAULT_REGION: 'sg',
      // Load tests must not be throttled by the store's own limits.
      RATE_LIMITS: 'off',
      ADMIN_BOOTSTRAP_TOKEN: opts.adminToken ?? '',
      // The catalog bench measures the primary alone; the soak passes its standby.
      DATABASE_REPLICA_URLS: opts.bindings.DATABASE_REPLICA_URLS ?? '',
    },
  };
}

/**
 * Starts the store's bundled Worker. `cacheAPI: false` turns the Cache API
 * into a no-op (match() always misses, put() stores nothing), so every read
 * reaches the store tier (KV/Redis) or the origin.
 */
export async function startPasar(opts: { name: string; scriptPath: string; cacheAPI: boolean; bindings: PasarBindings; adminToken?: string }): Promise<RunningWorker> {
  const logs = new WorkerLogs();
  return start(opts.name, { ...sharedOptions(logs), ...pasarWorker(opts) }, logs);
}

/**
 * Starts the flash-sale instance: one workerd with two Workers,
 *   - `flash` (bench/flash-worker.js, served on the instance's port): owns the
 *     `InventoryShard` class (the real one, re-exported) and reserves with the
 *     real `reserveAcross`;
 *   - `pasar`, the store, whose INVENTORY binding names flash's class, so its
 *     admin API (reached through flash's service binding `STORE`, with a
 *     random bootstrap token) sets stock and sharding on the very objects the
 *     reservations hit.
 * The objects run in flash's isolate, as the ceiling's object runs in the
 * ceiling Worker's, so a reservation's object calls compare with `ceiling-do`.
 */
export async function startFlash(opts: {
  flashScriptPath: string;
  storeScriptPath: string;
  bindings: PasarBindings;
  adminToken: string;
}): Promise<RunningWorker> {
  const logs = new WorkerLogs();
  const flash: V4WorkerOptions = {
    name: 'flash',
    modules: true,
    scriptPath: opts.flashScriptPath,
    compatibilityDate: compatibilityDate(),
    durableObjects: { INVENTORY: { className: 'InventoryShard', useSQLite: true } },
    serviceBindings: { STORE: 'pasar' },
    bindings: {
      DATABASE_URL: opts.bindings.DATABASE_URL,
      NEON_WS_PROXY: opts.bindings.NEON_WS_PROXY,
      DATABASE_REPLICA_URLS: '',
      UPSTASH_REDIS_REST_URL: opts.bindings.UPSTASH_REDIS_REST_URL,
      UPSTASH_REDIS_REST_TOKEN: opts.bindings.UPSTASH_REDIS_REST_TOKEN,
    },
  };
  const store = pasarWorker({ scriptPath: opts.storeScriptPath, cacheAPI: false, bindings: opts.bindings, adminToken: opts.adminToken, inventoryScript: 'flash' });
  return start('flash', { ...sharedOptions(logs), workers: [flash, store] }, logs);
}

/**
 * Starts bench/ceiling-worker.js with a SQLite-backed Durable Object
 * `CEILING`, KV `KV`, the Cache API and, given the store's Upstash bridge,
 * the same Redis (for `/redis`).
 */
export async function startCeiling(redis?: { url: string; token: string }): Promise<RunningWorker> {
  const logs = new WorkerLogs();
  return start(
    'ceiling',
    {
      ...sharedOptions(logs),
      name: 'ceiling',
      modules: true,
      scriptPath: CEILING_WORKER,
      compatibilityDate: compatibilityDate(),
      durableObjects: { CEILING: { className: 'Ceiling', useSQLite: true } },
      kvNamespaces: ['KV'],
      cacheAPI: true,
      ...(redis ? { bindings: { UPSTASH_REDIS_REST_URL: redis.url, UPSTASH_REDIS_REST_TOKEN: redis.token } } : {}),
    },
    logs,
  );
}
