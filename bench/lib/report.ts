/**
 * Results: one record per scenario, the machine they ran on, and the
 * Markdown tables printed to stdout and written next to the JSON.
 */
import { cpus, release, totalmem } from 'node:os';
import type { CheckoutOutcome } from '../scenarios/checkout';
import type { FlashOutcome } from '../scenarios/flash';
import type { QueueOutcome } from '../scenarios/flash-queue';

export interface Machine {
  dateUtc: string;
  /** Cores busy with everything started but idle, before the first scenario (other work on the machine). */
  backgroundCores: number | null;
  cores: number;
  cpuModel: string;
  memoryGiB: number;
  kernel: string;
  node: string;
  workerd: string;
  miniflare: string;
  wrangler: string;
  wrk: string;
  postgres: string;
  postgresMaxConnections: number;
  /** What stands between the Worker and Postgres (PgBouncer, as Neon's pooler, or none). */
  pooler?: string;
  redis: string;
}

export function machineInfo(extra: Omit<Machine, 'dateUtc' | 'cores' | 'cpuModel' | 'memoryGiB' | 'kernel' | 'node'>): Machine {
  const cpu = cpus();
  return {
    dateUtc: new Date().toISOString(),
    cores: cpu.length,
    cpuModel: cpu[0]?.model.trim() ?? 'unknown',
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    kernel: release(),
    node: process.version,
    ...extra,
  };
}

export interface ScenarioResult {
  name: string;
  title: string;
  target: string;
  mode: string;
  expect: string;
  threads: number;
  connections: number;
  durationSeconds: number;
  requests: number;
  rps: number;
  /** rps / ceiling rps of the same run (null when the ceiling did not run). */
  ratio: number | null;
  latencyMs: { mean: number; p50: number; p90: number; p95: number; p99: number; max: number };
  errors: { total: number; non2xx3xx: number; connect: number; read: number; write: number; timeout: number };
  status: Record<string, number>;
  tiers: Record<string, number>;
  /** "cache 99.2%, kv 0.8%" (share of responses per x-cache-tier; "-" when none carried one). */
  tierMix: string;
  pgQueriesPerRequest: number | null;
  pgConnectionsPerRequest: number | null;
  redisCommandsPerRequest: number | null;
  /** Most Postgres connections open at once through the bridge during the run. */
  pgPeakConnections: number | null;
  /** Cores busy during the measured window: the whole machine and per process group. */
  cpu: { machine: number; groups: Record<string, number> } | null;
  /** How often a walk ran out of fresh lines and started over (0 = every request new). */
  wraps: number;
  workerLogs: Record<string, number>;
  workerLogSamples: string[];
  notes: string[];
  wrkOutput: string;
  /** Flash-sale scenarios: reservations, sold-out answers, the counts read back and the checks. */
  flash?: FlashOutcome;
  /** `checkout-sale`: the checkout flash sale, its rates and its checks. */
  checkout?: CheckoutOutcome;
  /** `flash-queue*`: a sale through its queue: tickets, admission, sold-out notice, checkouts and the checks. */
  queue?: QueueOutcome;
}

const pct = (n: number, total: number) => (total ? `${((100 * n) / total).toFixed(n === total ? 0 : 1)}%` : '-');

export function tierMix(tiers: Record<string, number>): string {
  const total = Object.values(tiers).reduce((a, b) => a + b, 0);
  const parts = Object.entries(tiers)
    .filter(([, n]) => n > 0)
    .sort((a, b) => b[1] - a[1])
    .map(([t, n]) => (t === 'none' ? `none ${pct(n, total)}` : `${t} ${pct(n, total)}`));
  if (parts.length === 1 && parts[0]?.startsWith('none')) return '-';
  return parts.join(', ') || '-';
}

const fmt = (n: number | null, digits = 2) => (n === null || Number.isNaN(n) ? 'n/a' : n.toFixed(digits));
const ms = (n: number) => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));

/** The main table: one row per scenario. */
export function resultsTable(results: ScenarioResult[]): string {
  const head = '| scenario | conns | req/s | ratio | p50 ms | p95 ms | p99 ms | errors | tier mix | PG q/req | PG conn/req | PG peak conns | Redis cmd/req |';
  const sep = '|---|--:|--:|--:|--:|--:|--:|--:|---|--:|--:|--:|--:|';
  const rows = results.map((r) =>
    [
      `\`${r.name}\``,
      String(r.connections),
      r.rps.toFixed(0),
      r.ratio === null ? 'n/a' : r.ratio.toFixed(2),
      ms(r.latencyMs.p50),
      ms(r.latencyMs.p95),
      ms(r.latencyMs.p99),
      String(r.errors.total),
      r.tierMix,
      fmt(r.pgQueriesPerRequest),
      fmt(r.pgConnectionsPerRequest),
      r.pgPeakConnections === null ? 'n/a' : String(r.pgPeakConnections),
      fmt(r.redisCommandsPerRequest),
    ].join(' | '),
  );
  return [head, sep, ...rows.map((r) => `| ${r} |`)].join('\n');
}

/** Where the cores went during each measured window. */
export function cpuTable(results: ScenarioResult[]): string {
  const groups = ['workerd', 'baseline', 'node', 'postgres', 'redis', 'wrk', 'other'];
  const names = ['workerd (this run)', 'Node baseline', 'node (bench + bridges)', 'postgres (server)', 'redis', 'wrk', 'rest of machine'];
  const head = `| scenario | machine | ${names.join(' | ')} | server CPU ms/req | postgres CPU ms/req |`;
  const sep = `|---|--:|${groups.map(() => '--:').join('|')}|--:|--:|`;
  const perRequest = (cores: number | undefined, rps: number) => (cores === undefined || rps <= 0 ? 'n/a' : ((cores * 1000) / rps).toFixed(2));
  const rows = results
    .filter((r) => r.cpu)
    .map(
      (r) =>
        `| \`${r.name}\` | ${r.cpu!.machine.toFixed(2)} | ${groups.map((g) => (r.cpu!.groups[g] ?? 0).toFixed(2)).join(' | ')} | ` +
        `${perRequest(r.target === 'baseline' ? r.cpu!.groups.baseline : r.cpu!.groups.workerd, r.rps)} | ${r.target === 'ceiling' ? 'n/a' : perRequest(r.cpu!.groups.postgres, r.rps)} |`,
    );
  return [head, sep, ...rows].join('\n');
}

export function machineLine(m: Machine): string {
  return [
    `${m.dateUtc.replace('T', ' ').slice(0, 19)} UTC`,
    `${m.cores} cores (${m.cpuModel}), ${m.memoryGiB} GiB`,
    `Linux ${m.kernel}`,
    `Node ${m.node}`,
    `workerd ${m.workerd} (miniflare ${m.miniflare}, wrangler ${m.wrangler})`,
    m.wrk,
    `PostgreSQL ${m.postgres} (max_connections ${m.postgresMaxConnections})${m.pooler ? ` behind ${m.pooler}` : ''}`,
    `Redis ${m.redis}`,
    `background load before the run ${m.backgroundCores === null ? 'n/a' : `${m.backgroundCores.toFixed(2)} cores`}`,
  ].join('; ');
}

/** The flash-sale scenarios: reservations against an empty object call, and the counts read back. */
export function flashTable(results: ScenarioResult[]): string {
  const doRow = results.find((r) => r.name === 'ceiling-do');
  const head =
    '| scenario | shards | units | reservations/s | ratio to `ceiling-do` | sold-out answers/s | p50 ms | p99 ms | errors | object calls / reservation | object calls / sold-out | PG q/req | Redis cmd/req | workerd CPU ms/req |';
  const sep = '|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|';
  const rows = results
    .filter((r) => r.flash)
    .map((r) => {
      const f = r.flash!;
      const cpu = r.cpu?.groups.workerd;
      return (
        `| \`${r.name}\` | ${f.shards} | ${f.stock.toLocaleString('en')} | ${f.reservationsPerSecond.toFixed(0)} | ${f.ratioToCeilingDo === null ? 'n/a' : f.ratioToCeilingDo.toFixed(2)} | ` +
        `${f.soldOutPerSecond.toFixed(0)} | ${ms(r.latencyMs.p50)} | ${ms(r.latencyMs.p99)} | ${r.errors.total} | ${fmt(f.worker.objectCallsPerReservation)} | ${fmt(f.worker.objectCallsPerSoldOut)} | ` +
        `${fmt(r.pgQueriesPerRequest)} | ${fmt(r.redisCommandsPerRequest)} | ${cpu === undefined || r.rps <= 0 ? 'n/a' : ((cpu * 1000) / r.rps).toFixed(2)} |`
      );
    });
  const lines = [
    `Reservations per second (200s in the measured window; for a sale, its units ÷ the time they took to sell, and sold-out answers per second after that) and their ratio to \`ceiling-do\` (${doRow ? `${doRow.rps.toFixed(0)} req/s` : 'not run'}), an empty RPC on one Durable Object in the same run:`,
    '',
    head,
    sep,
    ...rows,
  ];
  const counts = results.filter((r) => r.flash);
  lines.push(
    '',
    'Counts read back after each run (region `sg`, the admin API\'s `GET /admin/api/inventory/:sku`; the Worker\'s counts include the warm-up):',
    '',
    '| scenario | received | available | held | sold | oversold | 200s (Worker) | 409s (Worker) | shards holding the variant: held | sold out after | checks |',
    '|---|--:|--:|--:|--:|--:|--:|--:|---|--:|---|',
    ...counts.map((r) => {
      const f = r.flash!;
      const failed = f.checks.filter((c) => !c.ok);
      const shards = f.perShard.map((s) => `${s.shard}: ${s.held}`).join(', ');
      return (
        `| \`${r.name}\` | ${f.admin.received} | ${f.admin.available} | ${f.admin.held} | ${f.admin.sold} | ${f.oversold} | ${f.worker.ok} | ${f.worker.outOfStock} | ${shards} | ` +
        `${f.sellout ? (f.sellout.soldOutAfterMs === null ? 'not sold out' : `${f.sellout.soldOutAfterMs} ms`) : '-'} | ` +
        `${failed.length ? `**FAILED**: ${failed.map((c) => `${c.name} (${c.detail})`).join('; ')}` : `all ${f.checks.length} passed`} |`
      );
    }),
  );
  return lines.join('\n');
}

/** The checkout flash sale: rates against the ceilings, outcomes and the counts read back. */
export function checkoutTable(results: ScenarioResult[]): string {
  const head =
    '| scenario | units | shoppers | in flight | accepted (202) | accepted/s | ratio to `ceiling` | POST p50 / p99 ms | time to settle all s | confirmed | confirmed/s | ratio to `ceiling-do` | out_of_stock | other | sold / held / available | oversold | PG orders | captured at sim | checks |';
  const sep = '|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|---|--:|--:|--:|---|';
  const rows = results
    .filter((r) => r.checkout)
    .map((r) => {
      const c = r.checkout!;
      const other = Object.entries(c.outcomes).filter(([k]) => k !== 'confirmed' && k !== 'out_of_stock');
      const failed = c.checks.filter((x) => !x.ok).length;
      return (
        `| \`${r.name}\` | ${c.units} | ${c.shoppers} | ${c.concurrency} | ${c.accepted} | ${c.acceptedPerSecond.toFixed(0)} | ${fmt(c.acceptedRatioToCeiling, 3)} | ` +
        `${ms(c.postLatencyMs.p50)} / ${ms(c.postLatencyMs.p99)} | ${c.settleSeconds.toFixed(2)} | ${c.outcomes.confirmed ?? 0} | ${c.confirmedPerSecond.toFixed(1)} | ${fmt(c.confirmedRatioToCeilingDo, 3)} | ` +
        `${c.outcomes.out_of_stock ?? 0} | ${other.length ? other.map(([k, n]) => `${k} ${n}`).join(', ') : '-'} | ${c.admin.sold} / ${c.admin.held} / ${c.admin.available} | ${c.oversold} | ${c.orders.orders} | ${c.captured} | ` +
        `${failed ? `${failed} FAILED` : `all ${c.checks.length} passed`} |`
      );
    });
  return [head, sep, ...rows].join('\n');
}

/** The queued flash sales: ticket rate against the ceilings, admission against the rate, sold-out notice, the books. */
export function queueTable(results: ScenarioResult[]): string {
  const doRow = results.find((r) => r.name === 'ceiling-do');
  const qs = results.filter((r) => r.queue);
  const n = (v: number | null | undefined, d = 0) => (v === null || v === undefined ? 'n/a' : v.toFixed(d));
  const lines = [
    `Tickets (\`POST /api/sales/:id/tickets\`: answers ÷ time from the first POST to the last answer) against \`ceiling-do\` (${doRow ? `${doRow.rps.toFixed(0)} req/s` : 'not run'}), an empty RPC on one Durable Object in the same run; admission per full second of the sale before the sold-out mark (the queue's own \`admittedAt\` stamps) against the configured rate:`,
    '',
    '| scenario | queue objects | shoppers | tickets/s | ratio to `ceiling-do` | ticket p50 / p95 / p99 ms | ticket 5xx (pressed again) | PG q / shopper | WebSockets open (p50 / p99 ms) | rate /s | admitted | admitted/s mean (min-max) | accuracy | sold out after start s |',
    '|---|--:|--:|--:|--:|---|--:|--:|---|--:|--:|---|--:|--:|',
    ...qs.map((r) => {
      const q = r.queue!;
      const t = q.tickets.latencyMs;
      return (
        `| \`${r.name}\` | ${q.queueShards} | ${q.shoppers.toLocaleString('en')} | ${q.tickets.perSecond.toFixed(0)} | ${fmt(q.tickets.ratioToCeilingDo)} | ${ms(t.p50)} / ${ms(t.p95)} / ${ms(t.p99)} | ${q.tickets.errors} (${q.tickets.retries}) | ${fmt(q.tickets.pgQueriesPerTicket ?? null)} | ` +
        `${q.wsOpens.ok}${q.wsOpens.failed ? ` (${q.wsOpens.failed} failed)` : ''} (${ms(q.wsOpens.latencyMs.p50)} / ${ms(q.wsOpens.latencyMs.p99)}) | ${q.admissionRate} | ${q.admission.admitted} | ` +
        `${n(q.admission.perSecondMean, 1)} (${n(q.admission.perSecondMin)}-${n(q.admission.perSecondMax)}) over ${q.admission.fullSeconds} s | ${fmt(q.admission.accuracy)} | ${q.soldOut.afterStartMs === null ? 'n/a' : (q.soldOut.afterStartMs / 1000).toFixed(2)} |`
      );
    }),
    '',
    "Sold out: from the queue's sold-out mark (the report's `soldOutAt`: the inventory objects saw the last unit go) to each shopper still waiting hearing it (WebSocket `progress`, or a poll's `sold_out`); checkouts and the books:",
    '',
    '| scenario | waiting at the mark | told | told p50 / p99 / max ms (WebSocket) | told p50 / p99 / max ms (polling) | checkout p50 / p95 / p99 ms (report) | first checkouts | second checkouts (cap) | sold / stock | oversold | orders | captured at sim | max units per shopper | rejected (report) | checks |',
    '|---|--:|--:|---|---|---|---|---|---|--:|--:|--:|--:|---|---|',
    ...qs.map((r) => {
      const q = r.queue!;
      const failed = q.checks.filter((c) => !c.ok);
      const kv = (o: Record<string, number>) => Object.entries(o).map(([k, v]) => `${k} ${v}`).join(', ') || '-';
      return (
        `| \`${r.name}\` | ${q.soldOut.waiting} | ${q.soldOut.told} | ${ms(q.soldOut.ws.p50)} / ${ms(q.soldOut.ws.p99)} / ${ms(q.soldOut.ws.max)} (${q.soldOut.ws.n}) | ` +
        `${ms(q.soldOut.poll.p50)} / ${ms(q.soldOut.poll.p99)} / ${ms(q.soldOut.poll.max)} (${q.soldOut.poll.n}) | ${n(q.reportLatencyMs.p50)} / ${n(q.reportLatencyMs.p95)} / ${n(q.reportLatencyMs.p99)} | ` +
        `${kv(q.checkouts.outcomes)} | ${kv(q.checkouts.second)} | ${q.admin.sold} / ${q.units} | ${q.oversold} | ${q.orders.orders} | ${q.captured} | ${q.orders.maxUnitsPerEmail} (cap ${q.cap}) | ${kv(q.report?.rejected ?? {})} | ` +
        `${failed.length ? `**FAILED**: ${failed.map((c) => `${c.name} (${c.detail})`).join('; ')}` : `all ${q.checks.length} passed`} |`
      );
    }),
  ];
  return lines.join('\n');
}

/** The whole Markdown report. */
export function markdownReport(opts: { machine: Machine; command: string; settings: string; results: ScenarioResult[] }): string {
  const lines = [
    opts.results.some((r) => r.queue) && opts.results.every((r) => r.queue || r.target === 'ceiling')
      ? '# Flash-sale queue benchmarks'
      : opts.results.some((r) => r.flash) ? (opts.results.some((r) => !r.flash && r.target !== 'ceiling') ? '# Catalog and flash-sale benchmarks' : '# Flash-sale benchmarks') : '# Catalog benchmarks',
    '',
    `Machine: ${machineLine(opts.machine)}.`,
    '',
    `Command: \`${opts.command}\`. ${opts.settings}`,
    '',
    resultsTable(opts.results),
    '',
    'Cores busy during each measured window (CPU seconds per second; the machine column is all processes):',
    '',
    cpuTable(opts.results),
    '',
    ...(opts.results.some((r) => r.flash) ? ['Flash sale:', '', flashTable(opts.results), ''] : []),
    ...(opts.results.some((r) => r.checkout) ? ['Checkout flash sale:', '', checkoutTable(opts.results), ''] : []),
    ...(opts.results.some((r) => r.queue) ? ['Flash sale through the queue:', '', queueTable(opts.results), ''] : []),
    'Scenarios:',
    '',
    ...opts.results.map((r) => `- \`${r.name}\` (${r.target}, ${r.mode}, expects ${r.expect}): ${r.title}.${r.notes.length ? ` ${r.notes.join(' ')}` : ''}`),
    '',
  ];
  return lines.join('\n');
}
