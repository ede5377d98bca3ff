/**
 * The load generator: `wrk` (Debian package), installed with apt-get when it
 * is missing, driven with bench/scenarios/pick.lua, whose done() prints one
 * parseable `BENCH_RESULT {json}` line.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { onPath } from '../../dev/processes';

/** The wrk script every scenario runs. */
export const PICK_SCRIPT = fileURLToPath(new URL('../scenarios/pick.lua', import.meta.url));

/** Runs `command args` with inherited output; resolves with its exit code. */
function run(command: string, args: string[], env?: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve) => {
    // stdout goes to our stderr: stdout is kept for the results table.
    const child = spawn(command, args, { stdio: ['ignore', process.stderr, process.stderr], env: env ?? process.env });
    child.on('exit', (code) => resolve(code ?? 1));
    child.on('error', () => resolve(127));
  });
}

/**
 * Makes sure `binary` is on PATH: installs Debian's `pkg` with apt-get when
 * it is not (updating the package lists once if the first try fails).
 * Nothing is downloaded from anywhere else; a failure is an error that says
 * how to install it (`why`: what the bench needs it for).
 */
export async function ensureDebianPackage(binary: string, pkg: string, why: string, log: (m: string) => void): Promise<void> {
  if (await onPath(binary)) return;
  const advice = `Install it and re-run: Debian/Ubuntu \`apt-get install ${pkg}\`, macOS \`brew install ${pkg}\`.`;
  if (!(await onPath('apt-get'))) throw new Error(`${binary} is not on PATH and apt-get is not available. ${advice}`);
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!isRoot) throw new Error(`${binary} is not on PATH, and installing it with apt-get needs root. ${advice}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  log(`${binary} is not installed: apt-get install -y ${pkg}`);
  let code = await run('apt-get', ['install', '-y', '--no-install-recommends', pkg], env);
  if (code !== 0) {
    log('apt-get install failed; apt-get update, then trying again');
    await run('apt-get', ['update'], env);
    code = await run('apt-get', ['install', '-y', '--no-install-recommends', pkg], env);
  }
  if (code !== 0 || !(await onPath(binary))) {
    throw new Error(`could not install ${pkg} with apt-get (exit ${code}); the benchmarks need ${binary} (${why}). ${advice}`);
  }
}

/** Makes sure `wrk` is on PATH (Debian's package; there is no other load generator to fall back to). */
export async function ensureWrk(log: (m: string) => void): Promise<void> {
  await ensureDebianPackage('wrk', 'wrk', 'its Lua scripting counts cache tiers per response', log);
}

/** `wrk -v`'s first line, e.g. "wrk 4.1.0 [epoll] Copyright (C) 2012 Will Glozer". */
export async function wrkVersion(): Promise<string> {
  return new Promise((resolve) => {
    const child = spawn('wrk', ['-v'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    // wrk -v prints its banner and usage, then exits non-zero: only the banner matters.
    child.on('close', () => {
      const banner = out.split('\n')[0]?.trim() ?? '';
      resolve(/^wrk \S+( \[\w+\])?/.exec(banner)?.[0] ?? (banner || 'wrk (unknown version)'));
    });
    child.on('error', () => resolve('wrk (unknown version)'));
  });
}

/** What pick.lua's done() reports. */
export interface WrkResult {
  requests: number;
  duration_us: number;
  bytes: number;
  errors: { connect: number; read: number; write: number; status: number; timeout: number };
  latency_us: { min: number; mean: number; max: number; p50: number; p90: number; p95: number; p99: number };
  tiers: { cache: number; kv: number; redis: number; origin: number; other: number; none: number };
  /** Status classes; `409` (the flash-sale scenarios' "sold out") and `401` (a refused login) are also counted on their own, within 4xx. */
  status: { '2xx': number; '3xx': number; '4xx': number; '5xx': number; '409': number; '401': number };
  wraps: number;
  /** wrk's own text output, for the record. */
  raw: string;
}

/** Options of {@link runWrk}. */
export interface WrkRun {
  /** Base URL, e.g. http://127.0.0.1:1234 (paths come from the list). */
  url: string;
  /** Request list file (see pick.lua). */
  listFile: string;
  mode: 'random' | 'walk';
  threads: number;
  connections: number;
  durationSeconds: number;
  /** Per-request timeout; a request slower than this counts as a timeout error. */
  timeoutSeconds: number;
}

const running = new Set<ChildProcess>();
let stopped = false;

/** Kills any wrk still running and refuses to start more (teardown). */
export function killRunningWrk(): void {
  stopped = true;
  for (const child of running) child.kill('SIGKILL');
}

/** Runs wrk once; resolves with the parsed result or rejects with wrk's output. */
export async function runWrk(opts: WrkRun): Promise<WrkResult> {
  if (stopped) throw new Error('stopping: no more wrk runs');
  const args = [
    `-t${opts.threads}`,
    `-c${opts.connections}`,
    `-d${opts.durationSeconds}s`,
    `--timeout`,
    `${opts.timeoutSeconds}s`,
    '--latency',
    '-s',
    PICK_SCRIPT,
    opts.url,
    '--',
    opts.listFile,
    opts.mode,
    String(opts.threads),
  ];
  const child = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const hardLimitMs = (opts.durationSeconds + opts.timeoutSeconds + 30) * 1000;
  const killer = setTimeout(() => child.kill('SIGKILL'), hardLimitMs);
  const code = await new Promise<number | null>((resolve) => {
    child.on('close', (c) => resolve(c));
    child.on('error', () => resolve(127));
  });
  clearTimeout(killer);
  running.delete(child);
  const line = out.split('\n').find((l) => l.startsWith('BENCH_RESULT '));
  if (code !== 0 || !line) {
    throw new Error(`wrk exited ${code ?? 'by signal'} without a result:\n${out}\n${err}`.trim());
  }
  const parsed = JSON.parse(line.slice('BENCH_RESULT '.length)) as Omit<WrkResult, 'raw'>;
  return { ...parsed, raw: out.replace(/^BENCH_RESULT .*\n?/m, '').trimEnd() };
}
