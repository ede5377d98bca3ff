/** Values test/global-setup.ts provides to every test (Node and workerd) through `inject()`. */
import type { SeedFixtures } from '../db/seed-fixtures';

declare module 'vitest' {
  export interface ProvidedContext {
    databaseUrl: string;
    wsProxy: string;
    upstashUrl: string;
    upstashToken: string;
    /** Upstash REST URL of a bridge whose Redis has been stopped. */
    deadUpstashUrl: string;
    redisUrl: string;
    /** Test control server: POST /pg/pause and /pg/resume take Postgres away from the Worker and back. */
    controlUrl: string;
    /** ADMIN_BOOTSTRAP_TOKEN of the workerd tests: an owner token. */
    adminToken: string;
    /** Named products of the seed catalog, for tests in workerd, which cannot import db/seed.ts. */
    seedFixtures: SeedFixtures;
    /** The payment provider simulator (dev/payment-sim.ts): base URL, API key, webhook signing secret. */
    paymentApiUrl: string;
    paymentApiKey: string;
    paymentWebhookSecret: string;
  }
}
