/**
 * Starts and stops `npm run dev` (dev/stack.ts) as a developer would, on
 * free ports and a data folder of its own: the stack test and the browser
 * tests drive the store through it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../dev/processes';

/** A running stack. */
export interface Running {
  child: ChildProcess;
  output: () => string;
  port: number;
  ports: number[];
  dataDir: string;
}

/** Every stack started, for the caller's cleanup. */
export const running: Running[] = [];

/** Starts `npm run dev` with `env` on top of this process's environment; resolves once it prints its URL. */
export async function startStack(env: Record<string, string>): Promise<Running> {
  const [port, pgBridge, upstash, pglite] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
  const dataDir = mkdtempSync(join(tmpdir(), 'pasar-stack-'));
  let out = '';
  const child = spawn(process.execPath, ['node_modules/tsx/dist/cli.mjs', 'dev/stack.ts'], {
    env: {
      ...process.env,
      PORT: String(port),
      PG_BRIDGE_PORT: String(pgBridge),
      UPSTASH_BRIDGE_PORT: String(upstash),
      PGLITE_PORT: String(pglite),
      PASAR_DATA_DIR: dataDir,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const r: Running = { child, output: () => out, port, ports: [pgBridge, upstash], dataDir };
  running.push(r);
  const deadline = Date.now() + 150_000;
  while (!out.includes('[pasar] storefront:')) {
    if (child.exitCode !== null) throw new Error(`stack exited early:\n${out}`);
    if (Date.now() > deadline) throw new Error(`stack did not come up:\n${out}`);
    await new Promise((res) => setTimeout(res, 250));
  }
  return r;
}

/** Ctrl-C, as a developer would; resolves with the exit code. */
export async function stopStack(r: Running): Promise<number | null> {
  if (r.child.exitCode === null) {
    const exited = new Promise<number | null>((res) => r.child.once('exit', (code) => res(code)));
    r.child.kill('SIGINT');
    return exited;
  }
  return r.child.exitCode;
}

