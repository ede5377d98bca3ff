/** Bindings that only the workerd test project defines (vitest.config.ts). */
interface __BaseEnv_Env {
  /** Upstash REST URL of a bridge whose Redis has been stopped. */
  TEST_DEAD_UPSTASH_URL?: string;
  /** The test control server (test/global-setup.ts). */
  TEST_CONTROL_URL?: string;
}
