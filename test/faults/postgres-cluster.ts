/**
 * Private PostgreSQL clusters for fault tests: a primary and streaming hot
 * standbys, each in its own temp dir on its own port, so a test can stop,
 * kill, delay or pause them without touching the machine's Postgres.
 *
 * initdb and postgres refuse to run as root; as root every binary runs as the
 * `postgres` user through runuser, and the cluster dirs belong to it.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { appendFile, chown, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { parseLsn } from '../../db/replicas';
import { freePort, runAsPostgres } from '../../dev/processes';

const run = promisify(execFile);

/** Where the PostgreSQL binaries live: PG_BINDIR, else Debian's PostgreSQL 15. */
const PG_BINDIR = process.env.PG_BINDIR ?? '/usr/lib/postgresql/15/bin';

/** One private cluster, primary or standby. */
export interface PgCluster {
  port: number;
  /** The data directory (PGDATA); its parent holds the socket and the log. */
  dataDir: string;
  /** The server log, for a failing test to read. */
  logFile: string;
  role: 'primary' | 'replica';
  /** postgres://postgres@127.0.0.1:<port>/<db>, `db` defaulting to postgres. */
  url(db?: string): string;
  /** Shuts down (`fast` by default; `immediate` is a crash, recovered on start); a no-op when stopped. */
  stop(mode?: 'fast' | 'immediate'): Promise<void>;
  /** Starts again on the same port and data dir; resolves once it takes queries in its role. */
  start(): Promise<void>;
  /** Whether the postmaster is alive. */
  running(): boolean;
  /** Stops it (immediate) if running and removes its dir. */
  destroy(): Promise<void>;
}

/** Options for {@link startPrimary}. */
export interface PrimaryOptions {
  /** A free port by default. */
  port?: number;
  /** Parent for the cluster's temp dir (os.tmpdir() by default); as root, `postgres` must be able to enter it. */
  baseDir?: string;
}

/** Options for {@link startReplica}. */
export interface ReplicaOptions {
  /** recovery_min_apply_delay: how long commits wait before the standby applies them. */
  applyDelayMs?: number;
  /** A free port by default. */
  port?: number;
}

/** Clusters not yet destroyed, crashed on process exit so none outlives a failed run. */
const live = new Set<{ root: string; dataDir: string }>();
process.once('exit', () => {
  for (const c of live) {
    const pid = postmasterPid(c.dataDir);
    // SIGQUIT is Postgres's immediate shutdown; exit handlers cannot wait for pg_ctl.
    if (pid !== undefined) tryKill(pid, 'SIGQUIT');
    rmSync(c.root, { recursive: true, force: true });
  }
});

/** The environment without PG* variables, so a caller's PGHOST or PGPORT cannot redirect a tool. */
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PG')));
}

/** Runs a PostgreSQL binary (as `postgres` when root) in `cwd`; throws with its output on failure. */
async function pgBin(binary: string, args: string[], cwd: string): Promise<void> {
  const path = existsSync(join(PG_BINDIR, binary)) ? join(PG_BINDIR, binary) : binary;
  const [file, argv] = (await runAsPostgres()) ? ['runuser', ['-u', 'postgres', '--', path, ...args]] : [path, args];
  try {
    await run(file, argv, { cwd, env: cleanEnv(), timeout: 60_000 });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${binary} ${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`);
  }
}

/** A new temp dir under `base`, owned by whoever will run Postgres. */
async function clusterRoot(base: string, prefix: string): Promise<string> {
  const root = await mkdtemp(join(base, prefix));
  const owner = await runAsPostgres();
  if (owner) await chown(root, owner.uid, owner.gid);
  return root;
}

/** postgresql.conf lines as `key = 'value'`, quoting every value as Postgres accepts. */
function confLines(settings: Record<string, string | number>): string {
  return `${Object.entries(settings)
    .map(([k, v]) => `${k} = '${String(v).replaceAll("'", "''")}'`)
    .join('\n')}\n`;
}

/** Settings both roles need on their own: where to listen. */
function listenSettings(root: string, port: number): Record<string, string | number> {
  return { listen_addresses: '127.0.0.1', port, unix_socket_directories: root };
}

/** Trust for local and 127.0.0.1, replication included: these clusters hold test data only. */
const PG_HBA = `local all all trust
local replication all trust
host all all 127.0.0.1/32 trust
host replication all 127.0.0.1/32 trust
`;

/** The pid in postmaster.pid, if there is one. */
function postmasterPid(dataDir: string): number | undefined {
  try {
    const pid = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Sends `signal`; false when the process is gone. */
function tryKill(pid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch (err) {
    // EPERM: alive but not ours to signal (non-root, another user): still running.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Runs `fn` on a fresh connection to `url`, always closing it. */
async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
  client.on('error', () => {});
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

/** The single value of a one-row, one-column query. */
async function scalar<T>(url: string, sql: string): Promise<T> {
  return withClient(url, async (c) => Object.values((await c.query(sql)).rows[0] as Record<string, T>)[0] as T);
}

/** Polls until `url` answers and is (replica) or is not (primary) in recovery. */
async function waitForRole(url: string, role: PgCluster['role'], timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      if ((await scalar<boolean>(url, 'select pg_is_in_recovery()')) === (role === 'replica')) return;
      last = `pg_is_in_recovery() is not ${role === 'replica'}`;
    } catch (err) {
      last = err;
    }
    await sleep(100);
  }
  throw new Error(`${url} is not a ready ${role} after ${timeoutMs} ms: ${String(last)}`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** The end of the server log, for errors that only the log explains. */
async function logTail(logFile: string, lines = 20): Promise<string> {
  const text = await readFile(logFile, 'utf8').catch(() => '');
  return text.split('\n').slice(-lines).join('\n');
}

/** The PgCluster handle over a data dir that is configured and ready to start. */
function cluster(root: string, port: number, role: PgCluster['role']): PgCluster {
  const dataDir = join(root, 'data');
  const logFile = join(root, 'postgres.log');
  const entry = { root, dataDir };
  live.add(entry);
  const url = (db = 'postgres') => `postgres://postgres@127.0.0.1:${port}/${db}`;
  const running = () => {
    const pid = postmasterPid(dataDir);
    return pid !== undefined && tryKill(pid, 0);
  };
  // Both are no-ops in the state they lead to, so cleanup code can call them blindly.
  const stop = async (mode: 'fast' | 'immediate' = 'fast') => {
    if (running()) await pgBin('pg_ctl', ['-D', dataDir, '-w', '-t', '30', 'stop', '-m', mode], root);
  };
  const start = async () => {
    try {
      if (!running()) await pgBin('pg_ctl', ['-D', dataDir, '-w', '-t', '30', '-l', logFile, 'start'], root);
      await waitForRole(url(), role);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n--- ${logFile} ---\n${await logTail(logFile)}`);
    }
  };
  const destroy = async () => {
    await stop('immediate').catch(() => {});
    await rm(root, { recursive: true, force: true });
    live.delete(entry);
  };
  return { port, dataDir, logFile, role, url, stop, start, running, destroy };
}

/** Builds, starts and returns a cluster; removes its dir when it cannot start. */
async function launch(root: string, port: number, role: PgCluster['role'], prepare: (dataDir: string) => Promise<void>): Promise<PgCluster> {
  const c = cluster(root, port, role);
  try {
    await prepare(c.dataDir);
    await c.start();
    return c;
  } catch (err) {
    await c.destroy();
    throw err;
  }
}

/**
 * initdb's a new cluster in a temp dir (under `opts.baseDir`, else
 * os.tmpdir()) and starts it as a primary on 127.0.0.1:`opts.port` (a free
 * port by default), ready to stream to standbys. Trust auth, no fsync: for
 * tests only.
 */
export async function startPrimary(opts: PrimaryOptions = {}): Promise<PgCluster> {
  const root = await clusterRoot(opts.baseDir ?? tmpdir(), 'pg-primary-');
  const port = opts.port ?? (await freePort());
  return launch(root, port, 'primary', async (dataDir) => {
    await pgBin('initdb', ['-D', dataDir, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--locale=C', '--no-sync'], root);
    await writeFile(join(dataDir, 'pg_hba.conf'), PG_HBA);
    const settings = {
      ...listenSettings(root, port),
      wal_level: 'replica',
      max_wal_senders: 10,
      hot_standby: 'on',
      max_connections: 200,
      // A standby that was away while the primary restarted must still find the WAL it missed.
      wal_keep_size: '256MB',
      // Speed over durability: the cluster lives for one test run; commits stay synchronous.
      fsync: 'off',
      full_page_writes: 'off',
    };
    await appendFile(join(dataDir, 'postgresql.conf'), `\n# fault-test cluster\n${confLines(settings)}`);
  });
}

/**
 * Base-backs-up `primary` into a new temp dir next to it and starts it as a
 * streaming hot standby on `opts.port` (a free one by default), applying
 * commits `opts.applyDelayMs` late. Resolves once it takes queries and is in
 * recovery. It reconnects by itself when the primary restarts.
 */
export async function startReplica(primary: PgCluster, opts: ReplicaOptions = {}): Promise<PgCluster> {
  const root = await clusterRoot(dirname(dirname(primary.dataDir)), 'pg-replica-');
  const port = opts.port ?? (await freePort());
  return launch(root, port, 'replica', async (dataDir) => {
    const source = ['-h', '127.0.0.1', '-p', String(primary.port), '-U', 'postgres'];
    await pgBin('pg_basebackup', ['-R', '-X', 'stream', '-c', 'fast', '--no-sync', '-D', dataDir, ...source], root);
    // postgresql.auto.conf is read last: these override the primary's copied settings.
    const settings = {
      ...listenSettings(root, port),
      hot_standby: 'on',
      hot_standby_feedback: 'on',
      recovery_min_apply_delay: `${opts.applyDelayMs ?? 0}ms`,
      // The default 5 s between reconnection attempts would dominate a restart test.
      wal_retrieve_retry_interval: '200ms',
    };
    await appendFile(join(dataDir, 'postgresql.auto.conf'), confLines(settings));
  });
}

/** The standby's last replayed LSN (pg_last_wal_replay_lsn()), or null when it replayed nothing yet. */
export async function replayLsn(replicaUrl: string): Promise<string | null> {
  return scalar<string | null>(replicaUrl, 'select pg_last_wal_replay_lsn()::text');
}

/** The primary's current WAL write LSN (pg_current_wal_lsn()). */
export async function currentLsn(primaryUrl: string): Promise<string> {
  return scalar<string>(primaryUrl, 'select pg_current_wal_lsn()::text');
}

/** Pauses WAL replay on the standby at `url`: its data freezes while WAL still arrives. */
export async function pauseReplay(url: string): Promise<void> {
  await scalar(url, 'select pg_wal_replay_pause()');
}

/** Resumes WAL replay on the standby at `url`. */
export async function resumeReplay(url: string): Promise<void> {
  await scalar(url, 'select pg_wal_replay_resume()');
}

/**
 * Waits until the standby has replayed everything the primary had written
 * when this was called (replay LSN ≥ the primary's current LSN then). Keeps
 * polling through standby restarts; throws after `timeoutMs`.
 */
export async function waitForReplay(primaryUrl: string, replicaUrl: string, timeoutMs = 30_000): Promise<void> {
  const target = await currentLsn(primaryUrl);
  const deadline = Date.now() + timeoutMs;
  let last: unknown = null;
  while (Date.now() < deadline) {
    try {
      last = await replayLsn(replicaUrl);
      if (last !== null && parseLsn(last as string) >= parseLsn(target)) return;
    } catch (err) {
      last = err;
    }
    await sleep(50);
  }
  throw new Error(`standby ${replicaUrl} did not replay up to ${target} within ${timeoutMs} ms (last: ${String(last)})`);
}
