/**
 * Runs the Node baseline (./server.ts) in a child process of its own, as it
 * would be deployed: one Node process on its own event loop, not sharing the
 * bench's, which carries wrk's runner and the store's bridges. Its CPU shows
 * as `baseline` in the report (bench/lib/stats.ts).
 */
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { freePort, stopProcess, waitForPort } from '../../dev/processes';
import { ROOT, WorkerLogs, type RunningWorker } from '../lib/workers';

/** The running baseline: a RunningWorker for the bench, plus its query counters. */
export interface BaselineProcess {
  worker: RunningWorker;
  /** Postgres queries the server sent and connections it opened since start (its `GET /stats`). */
  stats(): Promise<{ queries: number; connections: number }>;
}

/** Starts `bench/baseline/server.ts` on a free port against `databaseUrl` and `redisUrl`. */
export async function startBaselineProcess(opts: { databaseUrl: string; redisUrl: string }): Promise<BaselineProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', resolve(ROOT, 'bench/baseline/server.ts')], {
    cwd: ROOT,
    env: { ...process.env, DATABASE_URL: opts.databaseUrl, REDIS_URL: opts.redisUrl, PORT: String(port), NODE_ENV: 'production' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`the Node baseline exited (${code}) before it listened`))));
  // Once listening, a later exit (the dispose below) is not an error.
  exited.catch(() => {});
  await Promise.race([waitForPort('127.0.0.1', port, 30_000), exited]);
  const url = `http://127.0.0.1:${port}`;
  return {
    worker: { name: 'baseline', url, logs: new WorkerLogs(), dispose: () => stopProcess(child) },
    stats: async () => (await (await fetch(`${url}/stats`)).json()) as { queries: number; connections: number },
  };
}
