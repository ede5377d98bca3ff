/** Helpers over Hono's context shared by middleware and routes. */
import type { Context } from 'hono';

/**
 * Runs `promise` after the response when the runtime gives an execution
 * context (always, in workerd), else awaits it: `app.request()` in unit tests
 * has none, and dropping the work there would hide its failures.
 */
export async function afterResponse(c: Context, promise: Promise<unknown>): Promise<void> {
  let ctx: { waitUntil(promise: Promise<unknown>): void } | undefined;
  try {
    ctx = c.executionCtx;
  } catch {
    ctx = undefined;
  }
  if (ctx) ctx.waitUntil(promise);
  else await promise;
}
