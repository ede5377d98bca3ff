/**
 * The soak's bookkeeping and report (bench/soak.ts): every request it made
 * (kind, phase, status, latency, error kind), folded into counts and
 * percentiles per kind and per phase, and the Markdown printed at the end.
 */
import { machineLine, type Machine } from './report';

/** What a request was part of (one shopper step, or the harness's own follow-ups). */
export type RequestKind =
  | 'product'
  | 'listing'
  | 'search'
  | 'categories'
  | 'cart-create'
  | 'cart-add'
  | 'cart-read'
  | 'checkout'
  | 'checkout-status'
  | 'checkout-replay'
  | 'order';

/**
 * How an answer counts: `ok`; `degraded` (a 503 with Retry-After, the shape
 * the store promises while a dependency is away); `http_<status>` for any
 * other non-2xx (a 500 is always a bug); `network` (refused, reset); and
 * `timeout` (no answer within the client's limit).
 */
export type ErrorKind = 'ok' | 'degraded' | 'network' | 'timeout' | `http_${number}`;

/** One request as recorded. */
export interface Sample {
  kind: RequestKind;
  /** Index into the schedule's phases. */
  phase: number;
  /** 0 when there was no answer. */
  status: number;
  ms: number;
  error: ErrorKind;
}

/** A window of the schedule: healthy, a fault in force, its recovery, or the drain. */
export interface PhaseRecord {
  name: string;
  kind: 'healthy' | 'down' | 'recovery' | 'drain';
  /** Seconds after traffic started: planned, and when its action had been applied. */
  plannedAtS: number;
  startedAtS: number | null;
  /** What the harness did at its start, e.g. "primary stop". */
  action: string;
  /** How long the action took (stopping Postgres is not instant), ms. */
  actionMs: number | null;
}

/** Latency percentiles, ms. */
export interface Latency {
  count: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

/** Requests of one kind or one phase: counts by error kind and latency. */
export interface Tally {
  requests: number;
  errors: Record<string, number>;
  latencyMs: Latency;
}

/** One invariant of the closing check. */
export interface Invariant {
  name: string;
  ok: boolean;
  detail: string;
}

/** An answer worth reading (anything but ok/degraded), kept with what was asked. */
export interface Notable {
  atS: number;
  phase: string;
  kind: RequestKind;
  request: string;
  error: ErrorKind;
  body: string;
}

/** Everything the soak writes to bench/results/soak-*.json. */
export interface SoakReport {
  machine: Machine;
  command: string;
  settings: { durationSeconds: number; concurrency: number; clientTimeoutMs: number; bindings: Record<string, string>; soakVariants: { sku: string; variantId: string; received: number }[] };
  phases: (PhaseRecord & Tally)[];
  totals: Tally & { seconds: number; rps: number };
  perKind: Record<string, Tally>;
  /** The same, only requests made in healthy and recovery-free windows. */
  perKindHealthy: Record<string, Tally>;
  checkouts: {
    started: number;
    confirmed: number;
    failed: number;
    unsettled: number;
    /** Failure reasons. */
    reasons: Record<string, number>;
    /** Checkout POSTs not accepted (202), by error kind. */
    notAccepted: Record<string, number>;
    /** POSTs with no clear answer, replayed with their Idempotency-Key after the heal, and how that went. */
    replayed: { attempts: number; found: number; refused: number };
    /** Started per phase, and their outcomes. */
    perPhase: Record<string, Record<string, number>>;
    /** From first POST answer to settled, seconds. */
    settleSeconds: Latency;
    drainSeconds: number;
  };
  cpu: { machine: number; groups: Record<string, number> } | null;
  workerLogs: { counts: Record<string, number>; samples: string[] };
  notable: Notable[];
  invariants: Invariant[];
}

/** p50/p95/p99/max of `values` (nearest rank), rounded for the report. */
export function latency(values: number[]): Latency {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]! : 0);
  const r = (n: number) => Math.round(n * 10) / 10;
  return { count: sorted.length, p50: r(at(50)), p95: r(at(95)), p99: r(at(99)), max: r(sorted.at(-1) ?? 0) };
}

/** Folds samples into one tally. */
export function tally(samples: Sample[]): Tally {
  const errors: Record<string, number> = {};
  for (const s of samples) errors[s.error] = (errors[s.error] ?? 0) + 1;
  return { requests: samples.length, errors, latencyMs: latency(samples.map((s) => s.ms)) };
}

/** Tallies per key of `keyOf`, keys in first-seen order. */
export function tallyBy(samples: Sample[], keyOf: (s: Sample) => string): Record<string, Tally> {
  const groups = new Map<string, Sample[]>();
  for (const s of samples) {
    const key = keyOf(s);
    const list = groups.get(key);
    if (list) list.push(s);
    else groups.set(key, [s]);
  }
  return Object.fromEntries([...groups].map(([k, list]) => [k, tally(list)]));
}

const ms = (n: number) => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));
const kinds = (errors: Record<string, number>) =>
  Object.entries(errors)
    .filter(([k]) => k !== 'ok')
    .sort((a, b) => b[1] - a[1])
    .map(([k, n]) => `${k} ${n}`)
    .join(', ') || '-';

/** Every error kind that occurs in `tallies`, ok first, then the rest by name. */
function errorColumns(tallies: Tally[]): string[] {
  const seen = new Set<string>();
  for (const t of tallies) for (const k of Object.keys(t.errors)) seen.add(k);
  return ['ok', 'degraded', ...[...seen].filter((k) => k !== 'ok' && k !== 'degraded').sort()];
}

function kindTable(perKind: Record<string, Tally>): string[] {
  const cols = errorColumns(Object.values(perKind));
  return [
    `| kind | requests | ${cols.join(' | ')} | p50 ms | p95 ms | p99 ms | max ms |`,
    `|---|--:|${cols.map(() => '--:').join('|')}|--:|--:|--:|--:|`,
    ...Object.entries(perKind).map(
      ([k, t]) =>
        `| \`${k}\` | ${t.requests} | ${cols.map((c) => t.errors[c] ?? 0).join(' | ')} | ${ms(t.latencyMs.p50)} | ${ms(t.latencyMs.p95)} | ${ms(t.latencyMs.p99)} | ${ms(t.latencyMs.max)} |`,
    ),
  ];
}

/** The whole Markdown report. */
export function soakMarkdown(r: SoakReport): string {
  const c = r.checkouts;
  const failedInvariants = r.invariants.filter((i) => !i.ok);
  const lines = [
    '# Soak: mixed traffic while each dependency goes away in turn',
    '',
    `Machine: ${machineLine(r.machine)}.`,
    '',
    `Command: \`${r.command}\`. ${r.settings.concurrency} shoppers (Node fetch loops, client timeout ${r.settings.clientTimeoutMs / 1000} s) for ${r.settings.durationSeconds} s; ` +
      `settings ${Object.entries(r.settings.bindings)
        .map(([k, v]) => `${k}=${v}`)
        .join(', ')}; soak stock ${r.settings.soakVariants.map((v) => `${v.sku} ${v.received}`).join(', ')} (sg).`,
    '',
    `**Invariants: ${failedInvariants.length ? `${failedInvariants.length} of ${r.invariants.length} FAILED` : `all ${r.invariants.length} passed`}.** ` +
      `${r.totals.requests} requests in ${r.totals.seconds} s (${r.totals.rps} req/s incl. the drain's polls); errors: ${kinds(r.totals.errors)}; ` +
      `p50 / p95 / p99 ${ms(r.totals.latencyMs.p50)} / ${ms(r.totals.latencyMs.p95)} / ${ms(r.totals.latencyMs.p99)} ms.`,
    '',
    '## Invariants after the drain',
    '',
    '| invariant | result | detail |',
    '|---|---|---|',
    ...r.invariants.map((i) => `| ${i.name} | ${i.ok ? 'pass' : '**FAIL**'} | ${i.detail.replaceAll('|', '\\|')} |`),
    '',
    '## Phases',
    '',
    'Each row: the window from its start to the next row\'s; requests are counted in the phase they started in.',
    '',
    '| phase | action | planned at s | started at s | action ms | requests | errors | p50 ms | p99 ms |',
    '|---|---|--:|--:|--:|--:|---|--:|--:|',
    ...r.phases.map(
      (p) =>
        `| ${p.name} | ${p.action} | ${p.plannedAtS} | ${p.startedAtS ?? '-'} | ${p.actionMs ?? '-'} | ${p.requests} | ${kinds(p.errors)} | ${ms(p.latencyMs.p50)} | ${ms(p.latencyMs.p99)} |`,
    ),
    '',
    '## Requests by kind (whole run)',
    '',
    ...kindTable(r.perKind),
    '',
    '## Requests by kind, healthy phase only',
    '',
    ...kindTable(r.perKindHealthy),
    '',
    '## Checkouts',
    '',
    `${c.started} started (202), ${c.confirmed} confirmed, ${c.failed} failed (${kinds(c.reasons)}), ${c.unsettled} unsettled after the drain (${c.drainSeconds} s). ` +
      `POSTs not accepted: ${kinds(c.notAccepted)}. Unanswered POSTs replayed after the heal: ${c.replayed.attempts} (${c.replayed.found} turned out accepted, ${c.replayed.refused} refused). ` +
      `Time from 202 to settled: p50 ${c.settleSeconds.p50} s, p99 ${c.settleSeconds.p99} s, max ${c.settleSeconds.max} s.`,
    '',
    '| phase started in | outcomes |',
    '|---|---|',
    ...Object.entries(c.perPhase).map(([p, o]) => `| ${p} | ${Object.entries(o).map(([k, n]) => `${k} ${n}`).join(', ')} |`),
    '',
  ];
  if (r.cpu) {
    lines.push(
      `Cores busy during the traffic: machine ${r.cpu.machine}; ${Object.entries(r.cpu.groups)
        .map(([g, n]) => `${g} ${n}`)
        .join(', ')}.`,
      '',
    );
  }
  const logged = r.workerLogs.counts;
  lines.push(`The Worker logged ${logged.warn ?? 0} warning(s) and ${logged.error ?? 0} error(s).${r.workerLogs.samples[0] ? ` First: \`${r.workerLogs.samples[0].slice(0, 300).replaceAll('`', "'")}\`` : ''}`, '');
  if (r.notable.length) {
    lines.push('## Answers that were neither ok nor degraded (first ones)', '', '| at s | phase | kind | request | error | body |', '|--:|---|---|---|---|---|');
    const cell = (s: string) => s.replaceAll('|', '\\|').replaceAll('\n', ' ');
    for (const n of r.notable) lines.push(`| ${n.atS} | ${n.phase} | \`${n.kind}\` | ${cell(n.request)} | ${n.error} | ${cell(n.body.slice(0, 200))} |`);
    lines.push('');
  }
  return lines.join('\n');
}
