/**
 * Small process and port helpers shared by the local stack and the test setup.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createServer, connect } from 'node:net';
import { resolve as resolvePath } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';

/** A free TCP port on 127.0.0.1 (the OS picks; we release it straight away). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** Whether something accepts TCP connections at host:port. */
export async function isListening(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** Polls until host:port accepts connections, or throws after `timeoutMs`. */
export async function waitForPort(host: string, port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await isListening(host, port)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`nothing is listening on ${host}:${port} after ${timeoutMs} ms`);
}

/**
 * The uid and gid of the `postgres` user when this process is root, else
 * undefined: PostgreSQL's tools (and PgBouncer) refuse to run as root, so
 * tests and benches that start their own run them as `postgres`.
 */
let postgresUser: Promise<{ uid: number; gid: number } | undefined> | undefined;
export function runAsPostgres(): Promise<{ uid: number; gid: number } | undefined> {
  postgresUser ??= (async () => {
    if (process.getuid?.() !== 0) return undefined;
    const id = async (flag: string) => Number((await promisify(execFile)('id', [flag, 'postgres'])).stdout.trim());
    return { uid: await id('-u'), gid: await id('-g') };
  })();
  return postgresUser;
}

/** Whether an executable is on PATH. */
export async function onPath(command: string): Promise<boolean> {
  return new Promise((resolve) => {
    const child = spawn('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' });
    child.on('exit', (code) => resolve(code === 0));
    child.on('error', () => resolve(false));
  });
}

/** A redis-server this process started. */
export interface SpawnedRedis {
  url: string;
  port: number;
  process: ChildProcess;
  stop(): Promise<void>;
}

/** Where a spawned redis-server keeps its data, if anywhere. */
export interface SpawnRedisOptions {
  /** Working directory for the append-only file; required for `appendonly`. */
  dir?: string;
  /**
   * Log every write to an fsynced append-only file in `dir`, so a redis-server
   * started again on the same `dir` comes back with the data (fault tests
   * that stop and restart Redis).
   */
  appendonly?: boolean;
}

/**
 * Starts `redis-server` from PATH on `port` (a free one by default). By
 * default it keeps nothing on disk; with `opts.appendonly` its data survives
 * a stop and a new spawn on the same `opts.dir`. Throws with install advice
 * when redis-server is missing.
 */
export async function spawnRedis(port?: number, opts: SpawnRedisOptions = {}): Promise<SpawnedRedis> {
  if (!(await onPath('redis-server'))) {
    throw new Error('redis-server is not installed. Install Redis (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis) or set REDIS_URL.');
  }
  const p = port ?? (await freePort());
  const child = spawn('redis-server', ['--port', String(p), '--bind', '127.0.0.1', '--save', '', ...redisPersistenceArgs(opts)], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  await waitForPort('127.0.0.1', p);
  return {
    url: `redis://127.0.0.1:${p}`,
    port: p,
    process: child,
    stop: () => stopProcess(child),
  };
}

/** redis-server flags for `opts`: no RDB snapshots either way, AOF only when asked. */
function redisPersistenceArgs(opts: SpawnRedisOptions): string[] {
  const dirArgs = opts.dir === undefined ? [] : ['--dir', opts.dir];
  if (!opts.appendonly) return ['--appendonly', 'no', ...dirArgs];
  if (opts.dir === undefined) throw new Error('spawnRedis: appendonly needs opts.dir, or the data lands in the current directory');
  // fsync on every write: a test that stops Redis right after a write must find it again.
  return ['--appendonly', 'yes', '--appendfsync', 'always', ...dirArgs];
}

/** Sends SIGTERM, then SIGKILL after a grace period; resolves when it exited. */
export async function stopProcess(child: ChildProcess, graceMs = 5_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/**
 * Runs `main` when the module whose `import.meta.url` is given is the script
 * Node was started with (`tsx dev/x.ts`), not when it is imported; a failure
 * is printed and exits 1.
 */
export function runIfMain(importMetaUrl: string, main: () => Promise<void>): void {
  if (!process.argv[1] || importMetaUrl !== pathToFileURL(resolvePath(process.argv[1])).href) return;
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}

/** Closes a service on Ctrl-C or SIGTERM, then exits (1 if closing failed). */
export function closeOnSignals(close: () => Promise<void>): void {
  const stop = () => {
    close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
