/**
 * For the `faults` project (called by test/global-setup.ts): the fault stack (test/faults/stack.ts)
 * and a control server through which tests in workerd stop, start, slow and
 * cut its dependencies:
 *
 *   POST /faults/<primary|replica|redis|payments>/<stop|start|pass|cut|drop|latency>[?ms=]
 *   POST /faults/heal                   everything up and passing again
 *   POST /replica/replay/<pause|resume> hold the standby's replay (lag)
 *   POST /replica/caught-up             waits until the standby has replayed the primary's current position
 *
 * The Worker's bindings come from the provided `faults` value.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestProject } from 'vitest/node';
import { pauseReplay, resumeReplay, waitForReplay } from './postgres-cluster';
import { startFaultStack, type FaultAction, type FaultTarget } from './stack';

const TARGETS = new Set<string>(['primary', 'replica', 'redis', 'payments']);
const ACTIONS = new Set<string>(['stop', 'start', 'pass', 'cut', 'drop', 'latency']);

/** Replay of the standby is held back this long: lag is real and visible. */
export const APPLY_DELAY_MS = 2_000;

/** Starts the fault stack and its control server and provides them as `faults`; returns the teardown. */
export async function provideFaultStack(project: TestProject): Promise<() => Promise<void>> {
  const stack = await startFaultStack({ applyDelayMs: APPLY_DELAY_MS });
  const control = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://control');
    const parts = url.pathname.split('/').filter(Boolean);
    const run = async (): Promise<number> => {
      if (req.method !== 'POST') return 405;
      const [area, target, action] = parts;
      if (area === 'faults' && target === 'heal') await stack.heal();
      else if (area === 'faults' && TARGETS.has(target ?? '') && ACTIONS.has(action ?? '')) {
        await stack.apply(target as FaultTarget, action as FaultAction, Number(url.searchParams.get('ms')) || undefined);
      } else if (url.pathname === '/replica/replay/pause') await pauseReplay(stack.direct.replica);
      else if (url.pathname === '/replica/replay/resume') await resumeReplay(stack.direct.replica);
      else if (url.pathname === '/replica/caught-up') await waitForReplay(stack.direct.primary, stack.direct.replica, 30_000);
      else return 404;
      return 204;
    };
    run().then(
      (status) => res.writeHead(status).end(),
      (err: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(String(err)),
    );
  });
  await new Promise<void>((resolve) => control.listen(0, '127.0.0.1', resolve));

  project.provide('faults', {
    databaseUrl: stack.databaseUrl,
    replicaUrls: stack.replicaUrl,
    wsProxy: stack.wsProxy,
    upstashUrl: stack.upstashUrl,
    upstashToken: stack.upstashToken,
    // No separately stopped Redis here: the drills stop the real one.
    deadUpstashUrl: stack.upstashUrl,
    controlUrl: `http://127.0.0.1:${(control.address() as AddressInfo).port}`,
    paymentApiUrl: stack.paymentApiUrl,
    paymentSimUrl: stack.direct.paymentSim,
    paymentApiKey: stack.paymentApiKey,
    paymentWebhookSecret: stack.paymentWebhookSecret,
  });

  return async () => {
    await new Promise((r) => control.close(r));
    await stack.close();
  };
}
