/** Bindings that only the workerd test project defines (vitest.config.ts). */
interface __BaseEnv_Env {
  /** Upstash REST URL of a bridge whose Redis has been stopped. */
  TEST_DEAD_UPSTASH_URL?: string;
  /** The test control server (test/global-setup.ts; test/faults/global-setup.ts for the fault drills). */
  TEST_CONTROL_URL?: string;
  /** The payment simulator itself (PAYMENT_API_URL may run through a fault proxy). */
  TEST_PAYMENT_SIM_URL?: string;
}
