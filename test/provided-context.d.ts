/** Values test/global-setup.ts (and test/faults/global-setup.ts) provide to every test (Node and workerd) through `inject()`. */
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
    /** What the Worker of the machine-backed workerd projects (workers, e2e) is bound to. */
    machine?: WorkerStack;
    /** What the Worker of the failure drills is bound to (test/faults/), when that project runs. */
    faults?: WorkerStack;
  }
}

/** The services one workerd project's Worker talks to. */
export interface WorkerStack {
  databaseUrl: string;
  /** `DATABASE_REPLICA_URLS`: empty on the machine stack, the streaming standby on the fault stack. */
  replicaUrls: string;
  wsProxy: string;
  upstashUrl: string;
  upstashToken: string;
  deadUpstashUrl: string;
  controlUrl: string;
  /** `PAYMENT_API_URL` (through a fault proxy on the fault stack). */
  paymentApiUrl: string;
  /** The simulator itself, where tests read its ledger. */
  paymentSimUrl: string;
  paymentApiKey: string;
  paymentWebhookSecret: string;
}
