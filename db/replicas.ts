/**
 * Read-replica routing: which server answers a request's reads.
 *
 * - Reads go to a replica: the one configured for the request's region when
 *   there is one, else the healthy replicas in turn (round robin).
 * - Read-your-writes: a request that carries the LSN of its shopper's last
 *   write (`pg_current_wal_insert_lsn()` after that commit) is served by a replica
 *   only once the replica has replayed past it (`pg_last_wal_replay_lsn()`),
 *   else by the primary.
 * - Circuit breaker: a replica that fails to answer, or lags beyond the
 *   bound, is skipped for a while and its reads go to the primary.
 *
 * The health of each replica is kept per isolate (module state): every
 * isolate learns for itself, which costs at most one failed connection per
 * replica per retry interval per isolate, and needs no coordination.
 */

/** A configured read replica. */
export interface ReplicaConfig {
  /** `replica-<n>` (1-based, in configuration order); what Server-Timing names. */
  name: string;
  url: string;
  /** Regions this replica is nearest to; empty: any region, in turn. */
  regions: string[];
}

/** Tuning of the routing, from the environment. */
export interface ReplicaPolicy {
  /** A replica further behind than this is skipped; also how long a write pins its shopper's reads. */
  maxLagMs: number;
  /** How long a replica that failed (or lagged) is skipped before it is tried again. */
  retryMs: number;
  /** A replica's replay position and lag are re-read at most this often per isolate. */
  probeIntervalMs: number;
}

/** Defaults of {@link ReplicaPolicy}. */
export const DEFAULT_REPLICA_POLICY: ReplicaPolicy = { maxLagMs: 10_000, retryMs: 15_000, probeIntervalMs: 1_000 };

const ENTRY = /(?:([a-z]{2}(?:[+,][a-z]{2})*)=)?(postgres(?:ql)?:\/\/[^\s,;]+)/g;

/**
 * Parses `DATABASE_REPLICA_URLS`: URLs separated by commas, semicolons or
 * whitespace, each optionally labelled with the regions it is nearest to:
 * `sg,my,id=postgres://…; tw,ph=postgres://…` (or `sg+my=…`).
 */
export function parseReplicas(value: string | undefined): ReplicaConfig[] {
  return [...(value ?? '').matchAll(ENTRY)].map((m, i) => ({
    name: `replica-${i + 1}`,
    url: m[2]!,
    regions: m[1] ? m[1].split(/[+,]/) : [],
  }));
}

/** Reads {@link ReplicaPolicy} from the environment's optional settings. */
export function replicaPolicy(env: { REPLICA_MAX_LAG_MS?: string; REPLICA_RETRY_MS?: string }): ReplicaPolicy {
  const ms = (v: string | undefined, fallback: number) => {
    const n = Number(v);
    return v && Number.isFinite(n) && n > 0 ? n : fallback;
  };
  return {
    ...DEFAULT_REPLICA_POLICY,
    maxLagMs: ms(env.REPLICA_MAX_LAG_MS, DEFAULT_REPLICA_POLICY.maxLagMs),
    retryMs: ms(env.REPLICA_RETRY_MS, DEFAULT_REPLICA_POLICY.retryMs),
  };
}

/** A WAL position (`16/B374D848`) as a number, for comparison. */
export function parseLsn(lsn: string): bigint {
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(lsn);
  if (!m) throw new Error(`not an LSN: ${lsn}`);
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
}

/** Whether `value` is a well-formed LSN. */
export function isLsn(value: string): boolean {
  return /^[0-9A-Fa-f]{1,8}\/[0-9A-Fa-f]{1,8}$/.test(value);
}

/** What one probe of a replica read. */
export interface ProbeReading {
  /** `pg_last_wal_replay_lsn()`; null when the server is not a standby. */
  replay: string | null;
  /** `pg_last_wal_receive_lsn()`; null when nothing was streamed since the standby started. */
  receive: string | null;
  /** Age of the last replayed commit (`now() - pg_last_xact_replay_timestamp()`), ms; null before the first. */
  replay_age_ms?: number | string | null;
}

/** The SQL of a probe, answering {@link ProbeReading} columns. */
export const PROBE_SQL =
  'select pg_last_wal_replay_lsn()::text as replay, pg_last_wal_receive_lsn()::text as receive, ' +
  '(extract(epoch from now() - pg_last_xact_replay_timestamp()) * 1000)::float8 as replay_age_ms';

/**
 * What this isolate knows of one replica.
 *
 * The lag errs on the side of the primary. While the standby has received
 * WAL it has not applied, its lag is taken to be the age of the last commit
 * it applied: never less than the real lag (the primary moved past that
 * point no earlier than that commit), sometimes more (the first write after
 * a quiet spell looks as old as the spell until it is applied, so the
 * replica is skipped for a retry interval it did not need). Too high sends
 * reads to the primary for a while; too low would serve stale data, so too
 * high it is. With nothing waiting, the lag is 0. A standby that stopped
 * receiving (its primary down, or the link cut) keeps serving what it has:
 * the primary's outage is exactly when it must.
 */
export class ReplicaHealth {
  private skipUntil = 0;
  private reason: string | undefined;
  private probedAt = 0;
  private replayed = -1n;
  private standby = true;
  /** Age of the last applied commit at `probedAt` while WAL waits; undefined when nothing waits. */
  private behindMs: number | undefined;

  /** Whether the breaker is closed (the replica may be used) at `now`. */
  usable(now: number): boolean {
    return now >= this.skipUntil;
  }

  /** Why the replica is being skipped, if it is. */
  skipped(now: number): string | undefined {
    return this.usable(now) ? undefined : this.reason;
  }

  /** Opens the breaker for `ms`. */
  skip(now: number, ms: number, reason: string): void {
    this.skipUntil = now + ms;
    this.reason = reason;
    // A replica coming back is probed before its first read.
    this.probedAt = 0;
  }

  /** Whether a probe must run before serving a read that must see `minLsn`. */
  needsProbe(now: number, policy: ReplicaPolicy, minLsn: bigint | undefined): boolean {
    if (now - this.probedAt >= policy.probeIntervalMs) return true;
    return minLsn !== undefined && this.replayed < minLsn;
  }

  /** Records a probe's reading at `now`. */
  record(now: number, reading: ProbeReading): void {
    this.probedAt = now;
    this.standby = reading.replay !== null;
    this.behindMs = undefined;
    if (!reading.replay) return;
    const replay = parseLsn(reading.replay);
    if (replay > this.replayed) this.replayed = replay;
    const waiting = reading.receive !== null && parseLsn(reading.receive) > replay;
    if (!waiting) return;
    const age = reading.replay_age_ms === null || reading.replay_age_ms === undefined ? Number.NaN : Number(reading.replay_age_ms);
    // WAL waits and no commit was ever applied: as far behind as can be.
    this.behindMs = Number.isFinite(age) ? Math.max(0, age) : Number.POSITIVE_INFINITY;
  }

  /** Lag at `now`, in ms, as of the last probe plus the time since (0 when nothing waits). */
  lagMs(now: number): number {
    return this.behindMs === undefined ? 0 : this.behindMs + (now - this.probedAt);
  }

  /**
   * Whether this replica has replayed `minLsn`. A server that is not a
   * standby (a promoted replica, or the primary listed by mistake) cannot
   * say, so it never serves a read that must see a write.
   */
  hasReplayed(minLsn: bigint): boolean {
    return this.standby && this.replayed >= minLsn;
  }
}

const health = new Map<string, ReplicaHealth>();
let turn = 0;

/** This isolate's knowledge of the replica at `url`. */
export function healthOf(url: string): ReplicaHealth {
  let h = health.get(url);
  if (!h) health.set(url, (h = new ReplicaHealth()));
  return h;
}

/** Forgets every replica's health (tests: each starts from a clean isolate state). */
export function resetReplicaHealth(): void {
  health.clear();
  turn = 0;
}

/**
 * The usable replicas in the order a read should try them: those configured
 * for `region` first, then the rest starting from a rotating position, so
 * regions with no replica of their own spread their reads.
 */
export function replicaOrder(replicas: ReplicaConfig[], region: string | undefined, now: number): ReplicaConfig[] {
  const usable = replicas.filter((r) => healthOf(r.url).usable(now));
  const near = region ? usable.filter((r) => r.regions.includes(region)) : [];
  const rest = usable.filter((r) => !near.includes(r));
  const start = rest.length ? turn++ % rest.length : 0;
  return [...near, ...rest.slice(start), ...rest.slice(0, start)];
}

/**
 * Whether a query error means the server could not answer (try another),
 * rather than that the query itself is wrong (the primary would refuse it
 * too): no SQLSTATE at all (socket closed, timeout), connection exceptions
 * (08xxx), shutdown and startup (57P01-57P03), too many connections
 * (53300), a standby cancelling a query that conflicts with replay
 * (40001), and a replica that refuses the configured login or database
 * (28xxx, 3D000): misconfigured, it must not take the reads down with it.
 */
export function serverUnavailable(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) {
      return /^(08|28)/.test(code) || /^57P0[123]$/.test(code) || ['53300', '40001', '3D000'].includes(code);
    }
  }
  return true;
}
