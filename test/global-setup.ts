/**
 * Vitest global setup (runs once, in Node, before any test): the real
 * services every test talks to.
 *
 * - a fresh Postgres database on the machine's server (TEST_POSTGRES_URL,
 *   default postgres://postgres@127.0.0.1:5432/postgres), migrated and loaded
 *   with the seed catalog,
 *   dropped afterwards;
 * - dev/'s WebSocket bridge so the Neon driver inside workerd reaches it;
 * - dev/'s Upstash REST bridge in front of the machine's Redis (REDIS_URL,
 *   default redis://127.0.0.1:6379);
 * - a second Upstash bridge whose redis-server was started and then stopped,
 *   so tests can see how the Worker behaves when Redis is down.
 *
 * - with the `faults` project selected, the failure drills' own stack too
 *   (test/faults/global-setup.ts).
 *
 * Values reach the workerd tests through `provide`/`inject` (see
 * vitest.config.ts) and Node tests through `inject`. Vitest runs this once
 * per run, in Node, for every project.
 */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestProject } from 'vitest/node';
import { runMigrations } from '../db/migrate';
import { seedDatabase, seedFixtures } from '../db/seed';
import { startPgWsBridge } from '../dev/pg-ws-bridge';
import { createDatabaseOn, dropDatabaseOn } from '../dev/postgres';
import { spawnRedis } from '../dev/processes';
import { startPaymentSim } from '../dev/payment-sim';
import { startUpstashBridge } from '../dev/upstash-bridge';
import { provideFaultStack } from './faults/global-setup';

/** The projects of this run that test the Worker against the machine's Postgres and Redis. */
const MACHINE_PROJECTS = new Set(['node', 'workers', 'e2e']);

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const selected = new Set(project.vitest.projects.map((p) => p.name));
  const teardowns: (() => Promise<void>)[] = [];
  project.provide('seedFixtures', seedFixtures());
  project.provide('adminToken', `test-owner-${randomBytes(16).toString('hex')}`);
  if ([...selected].some((name) => MACHINE_PROJECTS.has(name))) teardowns.push(await startMachineStack(project));
  // The failure drills' own servers (test/faults/): only when they run.
  if (selected.has('faults')) teardowns.push(await provideFaultStack(project));
  return async () => {
    for (const teardown of teardowns.reverse()) await teardown();
  };
}

/** The machine's Postgres and Redis behind dev/'s bridges, a stopped Redis, the simulator and the pause control. */
async function startMachineStack(project: TestProject): Promise<() => Promise<void>> {
  const adminUrl = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const dbName = `pasar_test_${randomBytes(6).toString('hex')}`;
  const databaseUrl = await createDatabaseOn(adminUrl, dbName);
  await runMigrations(databaseUrl);
  // The deterministic seed catalog: tests name products through seedFixtures().
  await seedDatabase(databaseUrl);

  const pgTarget = new URL(databaseUrl);
  const wsBridge = await startPgWsBridge({ allowedTargets: [`${pgTarget.hostname}:${pgTarget.port || '5432'}`] });
  const upstashToken = randomBytes(16).toString('hex');
  const upstash = await startUpstashBridge({ redisUrl, token: upstashToken });

  // A Redis that existed and went away: the bridge answers, Redis does not.
  const doomed = await spawnRedis();
  const deadUpstash = await startUpstashBridge({ redisUrl: doomed.url, token: upstashToken });
  await doomed.stop();

  // The payment provider simulator. Its webhooks cannot reach workerd tests
  // (no listening port); tests post signed events themselves.
  const paymentApiKey = `sk_test_${randomBytes(12).toString('hex')}`;
  const paymentWebhookSecret = `whsec_${randomBytes(16).toString('hex')}`;
  const paymentSim = await startPaymentSim({ apiKey: paymentApiKey, webhookSecret: paymentWebhookSecret, slowMs: 1_500 });

  // Lets fault tests in workerd take Postgres away and bring it back.
  const control = createServer((req, res) => {
    if (req.method === 'POST' && req.url === '/pg/pause') wsBridge.pause();
    else if (req.method === 'POST' && req.url === '/pg/resume') wsBridge.resume();
    else return void res.writeHead(404).end();
    res.writeHead(204).end();
  });
  await new Promise<void>((resolve) => control.listen(0, '127.0.0.1', resolve));

  project.provide('controlUrl', `http://127.0.0.1:${(control.address() as AddressInfo).port}`);
  project.provide('databaseUrl', databaseUrl);
  project.provide('paymentApiUrl', paymentSim.url);
  project.provide('paymentApiKey', paymentApiKey);
  project.provide('paymentWebhookSecret', paymentWebhookSecret);
  project.provide('wsProxy', wsBridge.wsProxy);
  project.provide('upstashUrl', upstash.url);
  project.provide('upstashToken', upstashToken);
  project.provide('deadUpstashUrl', deadUpstash.url);
  project.provide('redisUrl', redisUrl);
  project.provide('machine', {
    databaseUrl,
    replicaUrls: '',
    wsProxy: wsBridge.wsProxy,
    upstashUrl: upstash.url,
    upstashToken,
    deadUpstashUrl: deadUpstash.url,
    controlUrl: `http://127.0.0.1:${(control.address() as AddressInfo).port}`,
    paymentApiUrl: paymentSim.url,
    paymentSimUrl: paymentSim.url,
    paymentApiKey,
    paymentWebhookSecret,
  });

  return async () => {
    await Promise.allSettled([wsBridge.close(), upstash.close(), deadUpstash.close(), paymentSim.close(), new Promise((r) => control.close(r))]);
    await dropDatabaseOn(adminUrl, dbName);
  };
}
