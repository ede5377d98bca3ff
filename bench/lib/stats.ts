/**
 * Counters sampled before and after each measured run: Redis commands (from
 * `INFO commandstats`) and CPU time per process group (from /proc, Linux
 * only), so a scenario can say what each request cost and where the
 * machine's cores went.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { Redis } from 'ioredis';

/** Total calls of every Redis command except INFO (our own sampling). */
export class RedisCommandCounter {
  private readonly redis: Redis;
  constructor(url: string) {
    this.redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: true });
  }

  async total(): Promise<number | null> {
    try {
      const text = await this.redis.info('commandstats');
      let total = 0;
      for (const line of text.split('\n')) {
        const m = /^cmdstat_([^:]+):calls=(\d+)/.exec(line.trim());
        if (m && m[1] !== 'info') total += Number(m[2]);
      }
      return total;
    } catch {
      return null;
    }
  }

  async version(): Promise<string> {
    try {
      const text = await this.redis.info('server');
      return /redis_version:(\S+)/.exec(text)?.[1] ?? 'unknown';
    } catch {
      return 'unknown';
    }
  }

  async close(): Promise<void> {
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}

/** Process groups CPU time is reported for. */
export type CpuGroup = 'wrk' | 'workerd' | 'node' | 'baseline' | 'postgres' | 'redis' | 'other';

/** CPU seconds per group (user + system), plus the machine's busy seconds. */
export interface CpuSnapshot {
  at: number;
  groups: Record<CpuGroup, number>;
  /** From /proc/stat: non-idle CPU seconds over all cores. */
  busy: number;
}

const TICKS = 100; // USER_HZ on Linux

function groupOf(pid: number, comm: string, mine: boolean): CpuGroup {
  if (pid === process.pid) return 'node';
  // Only this run's wrk and workerd: other work on the machine (a test run's
  // workerd, say) is "other".
  if (mine && comm === 'wrk') return 'wrk';
  if (mine && comm.startsWith('workerd')) return 'workerd';
  // The Node baseline server runs as a child of this process (bench/baseline/).
  if (mine && comm === 'node') return 'baseline';
  if (comm === 'postgres' || comm.startsWith('postgres')) return 'postgres';
  if (comm.startsWith('redis-server')) return 'redis';
  return 'other';
}

/** Reads /proc; null where there is none (not Linux). */
export function cpuSnapshot(): CpuSnapshot | null {
  try {
    const procs: { pid: number; ppid: number; comm: string; fields: string[] }[] = [];
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      let stat: string;
      try {
        stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      } catch {
        continue; // exited meanwhile
      }
      const open = stat.indexOf('(');
      const close = stat.lastIndexOf(')');
      // After the command: state (field 3), ppid (4), ... utime, stime, cutime, cstime (14-17).
      const fields = stat.slice(close + 2).split(' ');
      procs.push({ pid: Number(entry), ppid: Number(fields[1]), comm: stat.slice(open + 1, close), fields });
    }
    const parent = new Map(procs.map((p) => [p.pid, p.ppid]));
    const isMine = (pid: number) => {
      for (let p = parent.get(pid), hops = 0; p !== undefined && p > 1 && hops < 32; p = parent.get(p), hops++) {
        if (p === process.pid) return true;
      }
      return false;
    };
    const groups: Record<CpuGroup, number> = { wrk: 0, workerd: 0, node: 0, baseline: 0, postgres: 0, redis: 0, other: 0 };
    for (const p of procs) {
      const group = groupOf(p.pid, p.comm, isMine(p.pid));
      let ticks = Number(p.fields[11]) + Number(p.fields[12]);
      // Postgres forks a backend per connection; the postmaster collects the
      // CPU time of those that exited (cutime/cstime), or short-lived
      // connections would go unseen.
      if (group === 'postgres') ticks += Number(p.fields[13]) + Number(p.fields[14]);
      groups[group] += ticks / TICKS;
    }
    const cpuLine = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
    const nums = cpuLine.trim().split(/\s+/).slice(1).map(Number);
    const idle = (nums[3] ?? 0) + (nums[4] ?? 0);
    const all = nums.slice(0, 8).reduce((a, b) => a + b, 0);
    return { at: Date.now(), groups, busy: (all - idle) / TICKS };
  } catch {
    return null;
  }
}

/**
 * Cores used per group between two snapshots (CPU seconds / wall seconds).
 * `other` is the machine's busy time less the named groups: every other
 * process, including short-lived ones that started and ended in between
 * (another session's compiler or test run), and kernel work.
 */
export function coresUsed(a: CpuSnapshot | null, b: CpuSnapshot | null): { machine: number; groups: Record<string, number> } | null {
  if (!a || !b) return null;
  const wall = (b.at - a.at) / 1000;
  if (wall <= 0) return null;
  const r2 = (n: number) => Math.round(n * 100) / 100;
  const machine = Math.max(0, (b.busy - a.busy) / wall);
  const groups: Record<string, number> = {};
  let named = 0;
  for (const k of Object.keys(b.groups) as CpuGroup[]) {
    if (k === 'other') continue;
    // A process that exited in between makes a group's delta negative; clamp.
    const cores = Math.max(0, (b.groups[k] - a.groups[k]) / wall);
    named += cores;
    groups[k] = r2(cores);
  }
  groups.other = r2(Math.max(0, machine - named));
  return { machine: r2(machine), groups };
}
