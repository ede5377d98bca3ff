/**
 * `npm run dev`: the whole store on one machine, in one process.
 *
 *   1. Postgres: DATABASE_URL if set (the database is created if missing),
 *      else PGlite embedded here with its data in .data/pglite;
 *   2. the WebSocket-to-TCP bridge the Neon driver in workerd connects through;
 *   3. Redis: REDIS_URL if set, else a redis-server spawned from PATH, behind
 *      the Upstash REST bridge that @upstash/redis speaks to;
 *   4. migrations, and the seed catalog when the database is empty;
 *   5. `wrangler dev` (workerd) with those addresses.
 *
 * Ctrl-C stops everything this process started.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import pg from 'pg';
import { runMigrations } from '../db/migrate';
import { seedDatabase } from '../db/seed';
import { startPgWsBridge, type PgWsBridge } from './pg-ws-bridge';
import { startPglite, useServer, type LocalPostgres } from './postgres';
import { isListening, runIfMain, spawnRedis, stopProcess, waitForPort, type SpawnedRedis } from './processes';
import { startPaymentSim } from './payment-sim';
import { startUpstashBridge, type UpstashBridge } from './upstash-bridge';

/** Settings read from the environment, with their defaults. */
export interface StackConfig {
  port: number;
  host: string;
  databaseUrl?: string;
  redisUrl?: string;
  dataDir: string;
  pgBridgePort: number;
  upstashBridgePort: number;
  pglitePort: number;
  paymentSimPort: number;
  adminBootstrapToken?: string;
  seed: boolean;
}

/** Reads {@link StackConfig} from `env`. */
export function readConfig(env: NodeJS.ProcessEnv): StackConfig {
  const int = (name: string, fallback: number) => {
    const raw = env[name];
    if (raw === undefined || raw === '') return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`${name} must be a port number, got "${raw}"`);
    return n;
  };
  return {
    port: int('PORT', 8787),
    host: env.HOST || '127.0.0.1',
    databaseUrl: env.DATABASE_URL || undefined,
    redisUrl: env.REDIS_URL || undefined,
    dataDir: resolve(env.PASAR_DATA_DIR || '.data'),
    pgBridgePort: int('PG_BRIDGE_PORT', 0),
    upstashBridgePort: int('UPSTASH_BRIDGE_PORT', 0),
    pglitePort: int('PGLITE_PORT', 0),
    paymentSimPort: int('PAYMENT_SIM_PORT', 0),
    adminBootstrapToken: env.ADMIN_BOOTSTRAP_TOKEN || undefined,
    seed: env.SEED !== 'off',
  };
}

/** Creates the database named in `url` when the server says it does not exist. */
async function ensureDatabase(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  try {
    await client.connect();
    await client.end();
  } catch (err) {
    if ((err as { code?: string }).code !== '3D000') throw err;
    const name = decodeURIComponent(new URL(url).pathname.slice(1));
    const admin = new URL(url);
    admin.pathname = '/postgres';
    const c = new pg.Client({ connectionString: admin.toString() });
    await c.connect();
    await c.query(`create database "${name.replace(/"/g, '""')}"`);
    await c.end();
    log(`created database ${name}`);
  }
}

function log(message: string): void {
  console.log(`[pasar] ${message}`);
}

/** Starts wrangler dev from this package's own wrangler, on this Node. */
/** wrangler.toml `[vars]` that `npm run dev` passes through from its own environment when set. */
const OVERRIDABLE_VARS = ['RATE_LIMITS', 'CORS_ORIGINS', 'DEFAULT_REGION'] as const;

function startWrangler(config: StackConfig, envFile: string): ChildProcess {
  const wranglerBin = resolve(dirname(createRequire(import.meta.url).resolve('wrangler/package.json')), 'bin/wrangler.js');
  const args = [
    wranglerBin,
    'dev',
    '--port', String(config.port),
    '--ip', config.host,
    '--env-file', envFile,
    '--persist-to', resolve(config.dataDir, 'wrangler'),
    '--show-interactive-dev-session=false',
    // Plain vars of wrangler.toml the developer (or an acceptance run) may
    // override from the environment, e.g. RATE_LIMITS=off npm run dev.
    ...OVERRIDABLE_VARS.flatMap((name) => (process.env[name] !== undefined ? ['--var', `${name}:${process.env[name]}`] : [])),
  ];
  return spawn(process.execPath, args, {
    stdio: 'inherit',
    env: { ...process.env, WRANGLER_SEND_METRICS: 'false' },
  });
}

async function main(): Promise<void> {
  const config = readConfig(process.env);
  mkdirSync(config.dataDir, { recursive: true });
  const cleanups: (() => Promise<void>)[] = [];
  let wrangler: ChildProcess | undefined;
  let stopping = false;

  const stop = async (code: number) => {
    if (stopping) return;
    stopping = true;
    log('stopping…');
    if (wrangler) await stopProcess(wrangler);
    for (const cleanup of cleanups.reverse()) await cleanup().catch((err) => console.error(err));
    process.exit(code);
  };
  process.on('SIGINT', () => void stop(0));
  process.on('SIGTERM', () => void stop(0));

  try {
    if (await isListening(config.host, config.port)) {
      throw new Error(`port ${config.port} is taken; set PORT to another one`);
    }

    // 1. Postgres
    let postgres: LocalPostgres;
    if (config.databaseUrl) {
      await ensureDatabase(config.databaseUrl);
      postgres = await useServer(config.databaseUrl);
      log(`Postgres: ${postgres.target} (DATABASE_URL)`);
    } else {
      postgres = await startPglite(resolve(config.dataDir, 'pglite'), config.pglitePort, 64);
      log(`Postgres: PGlite at ${postgres.target}, data in ${resolve(config.dataDir, 'pglite')}`);
    }
    cleanups.push(postgres.stop);

    // 2. WebSocket bridge for the Neon driver
    const pgBridge: PgWsBridge = await startPgWsBridge({ allowedTargets: [postgres.target], port: config.pgBridgePort });
    cleanups.push(pgBridge.close);

    // 3. Redis and its REST bridge
    let redisUrl = config.redisUrl;
    if (!redisUrl) {
      const redis: SpawnedRedis = await spawnRedis();
      cleanups.push(redis.stop);
      redisUrl = redis.url;
      log(`Redis: spawned redis-server on ${redis.port}`);
    } else {
      log(`Redis: ${new URL(redisUrl).host} (REDIS_URL)`);
    }
    const upstashToken = randomBytes(24).toString('hex');
    const upstash: UpstashBridge = await startUpstashBridge({ redisUrl, token: upstashToken, port: config.upstashBridgePort });
    cleanups.push(upstash.close);

    // The payment provider simulator, sending its webhooks to the store.
    const paymentApiKey = `sk_local_${randomBytes(12).toString('hex')}`;
    const paymentWebhookSecret = `whsec_${randomBytes(16).toString('hex')}`;
    const displayHost = config.host === '0.0.0.0' ? '127.0.0.1' : config.host;
    const paymentSim = await startPaymentSim({
      apiKey: paymentApiKey,
      webhookSecret: paymentWebhookSecret,
      webhookUrl: `http://${displayHost}:${config.port}/api/webhooks/payments/sim`,
      port: config.paymentSimPort,
      log: () => {},
    });
    cleanups.push(paymentSim.close);
    log(`payment simulator: ${paymentSim.url} (card tokens tok_ok, tok_decline, tok_slow, tok_flaky)`);

    // 4. Schema and seed
    await runMigrations(postgres.url);
    log('migrations applied');
    if (config.seed) {
      const started = Date.now();
      const seeded = await seedDatabase(postgres.url, { ifEmpty: true });
      log(seeded.inserted ? `seeded the catalog in ${Date.now() - started} ms: ${JSON.stringify(seeded.counts)}` : 'catalog already present, seed skipped');
    }

    // 5. The Worker. Secrets go through an env file (mode 0600) rather than
    // the command line, where any user could read them with `ps`.
    const envFile = resolve(config.dataDir, 'wrangler.env');
    // Signs pagination cursors; kept with the data so cursors survive a restart.
    const secretFile = resolve(config.dataDir, 'signing-secret');
    if (!existsSync(secretFile)) writeFileSync(secretFile, randomBytes(32).toString('hex'), { mode: 0o600 });
    const signingSecret = process.env.SIGNING_SECRET || readFileSync(secretFile, 'utf8').trim();
    const vars: Record<string, string> = {
      DATABASE_URL: postgres.url,
      NEON_WS_PROXY: pgBridge.wsProxy,
      UPSTASH_REDIS_REST_URL: upstash.url,
      UPSTASH_REDIS_REST_TOKEN: upstashToken,
      SIGNING_SECRET: signingSecret,
      PAYMENT_API_URL: paymentSim.url,
      PAYMENT_API_KEY: paymentApiKey,
      PAYMENT_WEBHOOK_SECRET: paymentWebhookSecret,
      DATABASE_REPLICA_URLS: process.env.DATABASE_REPLICA_URLS ?? '',
      ADMIN_BOOTSTRAP_TOKEN: config.adminBootstrapToken ?? '',
    };
    writeFileSync(envFile, Object.entries(vars).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join('\n') + '\n', { mode: 0o600 });
    wrangler = startWrangler(config, envFile);
    wrangler.on('exit', (code) => {
      if (!stopping) {
        log(`wrangler dev exited (${code ?? 'signal'})`);
        void stop(code ?? 1);
      }
    });
    await waitForPort(config.host, config.port, 60_000);
    const base = `http://${config.host === '0.0.0.0' ? '127.0.0.1' : config.host}:${config.port}`;
    const health = await fetch(`${base}/api/health`).then((r) => r.json() as Promise<{ ok: boolean; checks: unknown }>);
    log(`health: ${JSON.stringify(health.checks)}`);
    if (!config.adminBootstrapToken) {
      // No bootstrap owner: say how to mint the first owner token. PGlite's
      // URL (no password, this run's port) is spelled out; a DATABASE_URL the
      // user gave is not echoed, since it may hold a password.
      const target = postgres.kind === 'pglite' ? ` --database-url ${postgres.url}` : '   (with the DATABASE_URL of this stack)';
      log(`admin API: no ADMIN_BOOTSTRAP_TOKEN set; create an owner token with: npm run admin:token -- --name <name>${target}`);
    }
    log(`storefront: ${base}/   API docs: ${base}/api/docs   (Ctrl-C stops everything)`);
  } catch (err) {
    console.error(`[pasar] ${err instanceof Error ? err.message : String(err)}`);
    await stop(1);
  }
}

runIfMain(import.meta.url, main);
