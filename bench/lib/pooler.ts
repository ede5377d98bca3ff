/**
 * PgBouncer in transaction mode in front of the bench's Postgres, as Neon's
 * pooled endpoint (`-pooler` hosts) is in front of a deployed store's.
 *
 * The Worker opens a Neon `Pool` per request (Workers may not share sockets
 * between requests). Without a pooler each request costs Postgres a fresh
 * backend: a fork, authentication, catalog cache warm-up, a few ms of server
 * CPU, which is not what the store pays on Neon. With PgBouncer the backend
 * stays and only the client-side connection is new, so the origin figures
 * (and the comparison with the Node baseline's persistent pool) measure the
 * store's own work. `BENCH_POOLER=none` measures without it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chown, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, runAsPostgres, stopProcess, waitForPort } from '../../dev/processes';
import { ensureDebianPackage } from './wrk';

/** A running PgBouncer. */
export interface Pooler {
  /** `host:port` clients connect to instead of Postgres. */
  address: string;
  /** e.g. "PgBouncer 1.18.0 (transaction mode, 20 server connections)". */
  label: string;
  stop(): Promise<void>;
}

/** Server connections PgBouncer keeps per database and user: well under the server's max_connections. */
const POOL_SIZE = 20;

/** Starts PgBouncer (installing Debian's package when missing) for every database on `target`. */
export async function startPooler(target: { host: string; port: number }, log: (m: string) => void): Promise<Pooler> {
  await ensureDebianPackage('pgbouncer', 'pgbouncer', "Neon's pooled endpoint, played locally", log);
  const owner = await runAsPostgres();
  const dir = await mkdtemp(join(tmpdir(), 'pasar-pgbouncer-'));
  const port = await freePort();
  await writeFile(join(dir, 'users.txt'), '"postgres" ""\n');
  await writeFile(
    join(dir, 'pgbouncer.ini'),
    [
      '[databases]',
      `* = host=${target.host} port=${target.port}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      `unix_socket_dir = ${dir}`,
      'auth_type = trust',
      `auth_file = ${join(dir, 'users.txt')}`,
      // As Neon's pooler: a server connection is lent for one transaction.
      'pool_mode = transaction',
      `default_pool_size = ${POOL_SIZE}`,
      'max_client_conn = 2000',
      // Drivers send these at startup; PgBouncer would refuse the connection otherwise.
      'ignore_startup_parameters = extra_float_digits,options,application_name',
      `logfile = ${join(dir, 'pgbouncer.log')}`,
      'log_connections = 0',
      'log_disconnections = 0',
      '',
    ].join('\n'),
  );
  if (owner) await chown(dir, owner.uid, owner.gid);
  for (const f of ['users.txt', 'pgbouncer.ini']) if (owner) await chown(join(dir, f), owner.uid, owner.gid);
  // It refuses to run as root: as `postgres` then, still our child (its CPU counts as ours).
  const child: ChildProcess = spawn('pgbouncer', [join(dir, 'pgbouncer.ini')], {
    stdio: ['ignore', 'ignore', 'inherit'],
    ...(owner ? { uid: owner.uid, gid: owner.gid } : {}),
  });
  const stop = async () => {
    await stopProcess(child);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitForPort('127.0.0.1', port, 10_000);
  } catch (err) {
    await stop();
    throw err;
  }
  const version = await new Promise<string>((resolve) => {
    const v = spawn('pgbouncer', ['--version'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    v.stdout.on('data', (d: Buffer) => (out += d.toString()));
    v.on('close', () => resolve(/PgBouncer \S+/.exec(out)?.[0] ?? 'PgBouncer'));
    v.on('error', () => resolve('PgBouncer'));
  });
  return { address: `127.0.0.1:${port}`, label: `${version} (transaction mode, ${POOL_SIZE} server connections)`, stop };
}
