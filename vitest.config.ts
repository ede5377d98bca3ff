/**
 * Two test projects, one run:
 * - `workers`: code that runs in workerd (the Worker, Durable Objects, the
 *   db client) is tested in workerd through @cloudflare/vitest-plugin, with
 *   the real wrangler.toml bindings and real Postgres/Redis behind dev/'s
 *   bridges;
 * - `node`: Node-side tooling (dev/ bridges, migrations, seed) in Node.
 * Files named `*.node.test.ts` (and everything under dev/) run in Node; every
 * other `*.test.ts` runs in workerd.
 */
import { cloudflareTest } from '@cloudflare/vitest-plugin';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
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
        },
      },
      {
        extends: true,
        plugins: [
          cloudflareTest(({ inject }) => ({
            wrangler: { configPath: './wrangler.toml' },
            miniflare: {
              bindings: {
                DATABASE_URL: inject('databaseUrl'),
                NEON_WS_PROXY: inject('wsProxy'),
                UPSTASH_REDIS_REST_URL: inject('upstashUrl'),
                UPSTASH_REDIS_REST_TOKEN: inject('upstashToken'),
                TEST_DEAD_UPSTASH_URL: inject('deadUpstashUrl'),
                SIGNING_SECRET: 'test-signing-secret-not-for-production',
                ADMIN_BOOTSTRAP_TOKEN: inject('adminToken'),
                DATABASE_REPLICA_URLS: '',
                PAYMENT_API_URL: inject('paymentApiUrl'),
                PAYMENT_API_KEY: inject('paymentApiKey'),
                PAYMENT_WEBHOOK_SECRET: inject('paymentWebhookSecret'),
              },
            },
          })),
        ],
        test: {
          name: 'workers',
          include: ['workers/**/*.test.ts', 'durable-objects/**/*.test.ts', 'db/**/*.worker.test.ts', 'test/workers/**/*.test.ts'],
          exclude: ['**/*.node.test.ts', 'node_modules/**', '.wrangler/**'],
        },
      },
    ],
  },
});
