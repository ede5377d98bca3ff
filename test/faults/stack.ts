/**
 * The fault stack: every dependency of the Worker as a real server this
 * process owns, each behind a fault proxy, so tests and the soak bench can
 * stop, start, slow down and cut any one of them:
 *
 *   Worker ─ws─▶ pg-ws-bridge ─▶ proxy ─▶ private Postgres primary
 *                             └▶ proxy ─▶ its streaming hot standby (replay delayed)
 *   Worker ─http─▶ upstash-bridge ─▶ proxy ─▶ private redis-server (append-only file)
 *   Worker ─http─▶ proxy ─▶ payment simulator
 *
 * Nothing here touches the machine's own Postgres or Redis.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runMigrations } from '../../db/migrate';
import { seedDatabase } from '../../db/seed';
import { startFaultProxy, type FaultProxy, type ProxyMode } from '../../dev/fault-proxy';
import { startPaymentSim, type PaymentSim } from '../../dev/payment-sim';
import { startPgWsBridge, type PgWsBridge } from '../../dev/pg-ws-bridge';
import { createDatabaseOn } from '../../dev/postgres';
import { freePort, spawnRedis, type SpawnedRedis } from '../../dev/processes';
import { startUpstashBridge, type UpstashBridge } from '../../dev/upstash-bridge';
import { startPrimary, startReplica, waitForReplay, type PgCluster } from './postgres-cluster';

/** A dependency the harness can take away. */
export type FaultTarget = 'primary' | 'replica' | 'redis' | 'payments';

/** What can be done to it: stop/start the server itself, or set its proxy's mode. */
export type FaultAction = 'stop' | 'start' | ProxyMode['kind'];

/** Options for {@link startFaultStack}. */
export interface FaultStackOptions {
  /** recovery_min_apply_delay of the standby, in ms. */
  applyDelayMs: number;
  /** Payment simulator's `tok_slow` delay. */
  slowMs?: number;
}

/** A running fault stack. */
export interface FaultStack {
  /** The primary as the Worker reaches it (through its proxy): `DATABASE_URL`. */
  databaseUrl: string;
  /** The standby as the Worker reaches it: `DATABASE_REPLICA_URLS`. */
  replicaUrl: string;
  /** Straight to the servers, for the harness's own checks (never through a proxy). */
  direct: { primary: string; replica: string; paymentSim: string };
  /** `NEON_WS_PROXY` for the Worker. */
  wsProxy: string;
  upstashUrl: string;
  upstashToken: string;
  /** `PAYMENT_API_URL` for the Worker (through its proxy). */
  paymentApiUrl: string;
  paymentApiKey: string;
  paymentWebhookSecret: string;
  primary: PgCluster;
  replica: PgCluster;
  sim: PaymentSim;
  proxies: Record<FaultTarget, FaultProxy>;
  bridge: PgWsBridge;
  /** Applies `action` to `target`; `latency` takes `ms`. */
  apply(target: FaultTarget, action: FaultAction, ms?: number): Promise<void>;
  /** Every target healthy and passing traffic again (servers started, proxies on pass). */
  heal(): Promise<void>;
  close(): Promise<void>;
}

/** Starts the fault stack: two Postgres clusters migrated and seeded, Redis, the simulator, bridges and proxies. */
export async function startFaultStack(opts: FaultStackOptions): Promise<FaultStack> {
  const root = await mkdtemp(join(tmpdir(), 'pasar-faults-'));
  const cleanups: (() => Promise<unknown>)[] = [() => rm(root, { recursive: true, force: true })];
  const closeAll = async () => {
    for (const fn of cleanups.reverse()) await fn().catch(() => {});
  };
  try {
    const primary = await startPrimary();
    cleanups.push(() => primary.destroy());
    const dbUrl = await createDatabaseOn(primary.url(), 'pasar');
    await runMigrations(dbUrl);
    await seedDatabase(dbUrl);
    // The standby copies the seeded cluster, then streams what follows.
    const replica = await startReplica(primary, { applyDelayMs: opts.applyDelayMs });
    cleanups.push(() => replica.destroy());
    await waitForReplay(dbUrl, replica.url('pasar'), 60_000);

    const redisPort = await freePort();
    const redisDir = join(root, 'redis');
    await mkdir(redisDir, { recursive: true });
    let redis: SpawnedRedis | undefined = await spawnRedis(redisPort, { dir: redisDir, appendonly: true });
    cleanups.push(() => redis?.stop() ?? Promise.resolve());

    const paymentApiKey = `sk_test_${randomBytes(12).toString('hex')}`;
    const paymentWebhookSecret = `whsec_${randomBytes(16).toString('hex')}`;
    const sim = await startPaymentSim({ apiKey: paymentApiKey, webhookSecret: paymentWebhookSecret, slowMs: opts.slowMs ?? 1_500 });
    cleanups.push(() => sim.close());

    const local = (port: number) => ({ host: '127.0.0.1', port });
    const proxies: Record<FaultTarget, FaultProxy> = {
      primary: await startFaultProxy({ target: local(primary.port) }),
      replica: await startFaultProxy({ target: local(replica.port) }),
      redis: await startFaultProxy({ target: local(redisPort) }),
      payments: await startFaultProxy({ target: local(sim.port) }),
    };
    for (const p of Object.values(proxies)) cleanups.push(() => p.close());

    const bridge = await startPgWsBridge({ allowedTargets: [proxies.primary.address, proxies.replica.address], maxConnections: 100 });
    cleanups.push(() => bridge.close());
    const upstashToken = randomBytes(16).toString('hex');
    const upstash: UpstashBridge = await startUpstashBridge({ redisUrl: `redis://${proxies.redis.address}`, token: upstashToken, log: () => {} });
    cleanups.push(() => upstash.close());

    const servers: Record<'primary' | 'replica', PgCluster> = { primary, replica };
    const apply = async (target: FaultTarget, action: FaultAction, ms?: number) => {
      if (action === 'stop' || action === 'start') {
        if (target === 'primary' || target === 'replica') {
          await (action === 'stop' ? servers[target].stop('fast') : servers[target].start());
        } else if (target === 'redis') {
          if (action === 'stop') {
            await redis?.stop();
            redis = undefined;
          } else {
            redis ??= await spawnRedis(redisPort, { dir: redisDir, appendonly: true });
          }
        } else {
          // The simulator keeps its ledger in memory: "down" is its address
          // refusing connections, the ledger intact for the invariant checks.
          proxies.payments.set({ kind: action === 'stop' ? 'cut' : 'pass' });
        }
        return;
      }
      if (action === 'latency') proxies[target].set({ kind: 'latency', ms: ms ?? 1_000 });
      else proxies[target].set({ kind: action });
    };

    const stack: FaultStack = {
      databaseUrl: `postgres://postgres@${proxies.primary.address}/pasar`,
      replicaUrl: `postgres://postgres@${proxies.replica.address}/pasar`,
      direct: { primary: dbUrl, replica: replica.url('pasar'), paymentSim: sim.url },
      wsProxy: bridge.wsProxy,
      upstashUrl: upstash.url,
      upstashToken,
      paymentApiUrl: `http://${proxies.payments.address}`,
      paymentApiKey,
      paymentWebhookSecret,
      primary,
      replica,
      sim,
      proxies,
      bridge,
      apply,
      heal: async () => {
        for (const target of ['primary', 'replica', 'redis', 'payments'] as const) {
          await apply(target, 'start');
          proxies[target].set({ kind: 'pass' });
        }
      },
      close: closeAll,
    };
    return stack;
  } catch (err) {
    await closeAll();
    throw err;
  }
}
