/**
 * Two test projects, one run:
 * - `workers`: code that runs in workerd (the Worker, Durable Objects, the
 *   db client) is tested in workerd through @cloudflare/vitest-plugin, with
 *   the real wrangler.toml bindings and real Postgres/Redis behind dev/'s
 *   bridges;
 * - `node`: Node-side tooling (dev/ bridges, migrations, seed) in Node;
 * - `e2e`, `faults` and `browser`: end-to-end runs and failure drills in a
 *   second vitest run (see below).
 * Files named `*.node.test.ts` (and everything under dev/) run in Node; every
 * other `*.test.ts` runs in workerd.
 */
import { cloudflareTest } from '@cloudflare/vitest-plugin';
import { defineConfig, type TestProjectInlineConfiguration } from 'vitest/config';

/** The services a workerd project's Worker is bound to (see test/provided-context.d.ts). */
type Stack = 'machine' | 'faults';

/** A project of tests that run inside workerd with the Worker's real bindings. */
function workersProject(
  name: string,
  include: string[],
  groupOrder: number,
  fileParallelism = true,
  extraBindings: Record<string, string> = {},
  stack: Stack = 'machine',
): TestProjectInlineConfiguration {
  return {
    extends: true,
    plugins: [
      cloudflareTest(({ inject }) => {
        const s = stack === 'faults' ? inject('faults') : inject('machine');
        if (!s) throw new Error(`the ${stack} stack was not started by test/global-setup.ts`);
        return {
          wrangler: { configPath: './wrangler.toml' },
          miniflare: {
            bindings: {
              DATABASE_URL: s.databaseUrl,
              DATABASE_REPLICA_URLS: s.replicaUrls,
              NEON_WS_PROXY: s.wsProxy,
              UPSTASH_REDIS_REST_URL: s.upstashUrl,
              UPSTASH_REDIS_REST_TOKEN: s.upstashToken,
              TEST_DEAD_UPSTASH_URL: s.deadUpstashUrl,
              TEST_CONTROL_URL: s.controlUrl,
              TEST_PAYMENT_SIM_URL: s.paymentSimUrl,
              SIGNING_SECRET: 'test-signing-secret-not-for-production',
              ADMIN_BOOTSTRAP_TOKEN: inject('adminToken'),
              PAYMENT_API_URL: s.paymentApiUrl,
              PAYMENT_API_KEY: s.paymentApiKey,
              PAYMENT_WEBHOOK_SECRET: s.paymentWebhookSecret,
              // Test files share one client address and run in parallel: the
              // rate-limit tests switch limits on for their own requests
              // (workers/middleware/rate-limit.test.ts, workers/auth/*.test.ts).
              RATE_LIMITS: 'off',
              // Outbound webhook retries 0, 0, 1, 3, 6... s apart instead of
              // 30 s doubling, so the real WEBHOOKS consumer drives a
              // fail-3-times receiver to its 4th attempt within a test.
              WEBHOOK_RETRY_BASE_SECONDS: '0.5',
              ...extraBindings,
            },
          },
        };
      }),
    ],
    test: {
      name,
      include,
      exclude: ['**/*.node.test.ts', 'node_modules/**', '.wrangler/**'],
      sequence: { groupOrder },
      fileParallelism,
    },
  };
}

export default defineConfig({
  test: {
    // One global setup for the run: it starts the services of the projects
    // selected (the machine's stack, the fault drills' stack, or both).
    globalSetup: ['./test/global-setup.ts'],
    // Real databases and bridges: give slow CI machines room.
    testTimeout: 30_000,
    hookTimeout: 60_000,
    projects: [
      {
        extends: true,
        test: {
          name: 'node',
          environment: 'node',
          include: ['**/*.node.test.ts', 'dev/**/*.test.ts', 'test/node/**/*.test.ts'],
          exclude: ['node_modules/**', '.wrangler/**'],
          sequence: { groupOrder: 0 },
        },
      },
      workersProject('workers', ['workers/**/*.test.ts', 'durable-objects/**/*.test.ts', 'db/**/*.worker.test.ts'], 0),
      // End-to-end and fault tests (a flash sale of 1,000 checkouts, Postgres
      // paused mid-checkout) run alone, one file at a time: they load the
      // machine and take shared dependencies down. `npm test` runs this
      // project in a second vitest run, after the other two.
      // Provider calls time out after 0.8 s here, while the simulator's
      // tok_slow answers after 1.5 s: a payment past its deadline.
      workersProject('e2e', ['test/workers/**/*.test.ts'], 1, false, { PAYMENT_TIMEOUT_MS: '800' }),
      // Failure drills: the Worker in workerd against private Postgres
      // (primary + streaming standby replaying 2 s late), Redis and the
      // payment simulator, each behind a fault proxy, which the drills stop,
      // start, slow and cut (test/faults/). Alone, one file at a time, after
      // e2e. Bounds are short so outages and recoveries fit in a test.
      workersProject(
        'faults',
        ['test/faults/drills/**/*.test.ts'],
        2,
        false,
        { PAYMENT_TIMEOUT_MS: '800', PAYMENT_DEADLINE_MS: '6000', REPLICA_MAX_LAG_MS: '5000', REPLICA_RETRY_MS: '2000' },
        'faults',
      ),
      // The storefront in Debian's Chromium (playwright-core) against `npm
      // run dev`: last, alone, in the same second run as e2e.
      {
        extends: true,
        test: {
          name: 'browser',
          environment: 'node',
          include: ['test/browser/**/*.test.ts'],
          sequence: { groupOrder: 3 },
          fileParallelism: false,
        },
      },
    ],
  },
});
