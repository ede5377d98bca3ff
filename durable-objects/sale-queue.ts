/**
 * `SaleQueue`: the waiting room of one flash sale in one region (object name
 * `sale:<saleId>:<region>:<shard>`, see workers/sales/queue.ts). Shoppers who
 * press "buy" take a ticket here; tickets are admitted first come, first
 * served, at the sale's admission rate; the shopper's page follows its place
 * over a hibernating WebSocket (or by polling), and learns at once when the
 * stock is gone.
 *
 * Admission is a fixed window per {@link TICK_MS}: window w may admit
 * `floor(r·(w+1)·tick) − floor(r·w·tick)` tickets (r per millisecond), so a
 * second admits exactly the rate and a window's unused room is not carried
 * into a burst later. It runs whenever the object is called (issue, status)
 * and from an alarm every tick while anyone waits, so admission times are
 * real even when nobody polls. Everything an admission changes is written in
 * one synchronous step; running the alarm twice in a window admits nothing
 * twice.
 *
 * One object per sale per region per shard: the unit of contention is the
 * sale's queue in a region. A sale expecting more arrivals than one object
 * takes splits its queue over `queueShards` objects, each admitting its share
 * of the rate in its own order.
 */
import { DurableObject } from 'cloudflare:workers';
import type { RegionCode } from '../db/regions';
import { regionLevels } from '../workers/inventory/shards';
import { newId } from '../workers/lib/ids';
import { migrateSql } from './sql-migrations';

/** Admission window. Shorter windows make admission smoother; each is one alarm while people wait. */
export const TICK_MS = 250;
/** How often a page may ask for its status over its socket. */
const SOCKET_ASK_EVERY_MS = 1_000;
/** How often waiting pages get a progress update (position, estimate). */
const PROGRESS_EVERY_MS = 1_000;
/** How often the object asks the inventory objects whether the sale's stock is gone or back. */
const STOCK_CHECK_EVERY_MS = 2_000;
/** How long after selling out the stock is watched that closely (holds of unfinished checkouts come back within their lifetime). */
const SOLD_OUT_CLOSE_WATCH_MS = 20 * 60_000;
/** How often it is looked at after that, while anyone still waits. */
const STOCK_RECHECK_LATER_MS = 60_000;

/** What one queue object knows of its sale (pushed by the admin API on every change). */
export interface SaleQueueConfig {
  saleId: string;
  region: RegionCode;
  shard: number;
  shards: number;
  /** Epoch ms. */
  startsAt: number;
  /** Epoch ms; the earlier of the planned end and a merchant's early end. Null: open-ended. */
  endsAt: number | null;
  /** Shoppers admitted per second in the region (this object admits its share). */
  admissionRate: number;
  /** How long an admitted ticket may check out. */
  admissionTtlMs: number;
  variantIds: string[];
  /** The sale's `updated_at` (epoch ms): an older push never overwrites a newer one. */
  version?: number;
}

/** Where a ticket stands, as the shopper's page shows it. */
export type QueueState = 'waiting' | 'admitted' | 'expired' | 'sold_out' | 'ended';

/** A ticket's place in the queue. */
export interface QueueStatus {
  ticketId: string;
  state: QueueState;
  position: number;
  /** Tickets ahead of this one still waiting. */
  ahead: number;
  /** Positions up to this one are admitted. */
  admittedThrough: number;
  /** Admissions per second of this queue object. */
  ratePerSecond: number;
  /** Seconds until admission at the current rate (0 once admitted). */
  estimatedWaitSeconds: number;
  issuedAt: number;
  admittedAt?: number;
  /** An admitted ticket may check out until then (epoch ms). */
  admissionExpiresAt?: number;
  soldOut: boolean;
  soldOutAt?: number;
  startsAt: number;
  endsAt: number | null;
}

export type IssueResult =
  | { ok: true; created: boolean; status: QueueStatus }
  | { ok: false; reason: 'unknown_sale' | 'not_started' | 'ended'; startsAt?: number; endsAt?: number | null };

/** Whether a ticket may check out now. */
export type AdmissionCheck = { ok: true; admittedAt: number; expiresAt: number } | { ok: false; reason: 'not_admitted' | 'admission_expired' | 'unknown_ticket' | 'ended' };

/** A finished checkout of the sale, for the report. */
export interface CheckoutRecord {
  checkoutId: string;
  outcome: 'confirmed' | 'failed';
  reason?: string;
  latencyMs: number;
  units: number;
}

/** What this object contributes to the sale's report. */
export interface QueueReport {
  shard: number;
  issued: number;
  admitted: number;
  soldOutAt: number | null;
  checkouts: { outcome: string; reason: string | null; count: number; units: number }[];
  latenciesMs: number[];
  firstTicketAt: number | null;
  lastAdmittedAt: number | null;
}

const MIGRATIONS = [
  `create table config (
     id integer primary key check (id = 1),
     json text not null,
     updated_at integer not null
   );
   create table tickets (
     position integer primary key,
     ticket_id text not null unique,
     session text not null,
     issued_at integer not null,
     admitted_at integer
   );
   create index tickets_session on tickets (session, position);
   create table queue (
     id integer primary key check (id = 1),
     admitted_through integer not null default 0,
     window integer not null default -1,
     window_used integer not null default 0,
     sold_out_at integer,
     out_variants text not null default '[]',
     stock_checked_at integer not null default 0,
     progress_sent_at integer not null default 0
   );
   insert into queue (id) values (1);
   create table checkouts (
     checkout_id text primary key,
     outcome text not null check (outcome in ('confirmed', 'failed')),
     reason text,
     latency_ms integer not null,
     units integer not null,
     at integer not null
   );`,
] as const;

type QueueRow = {
  admitted_through: number;
  window: number;
  window_used: number;
  sold_out_at: number | null;
  out_variants: string;
  stock_checked_at: number;
  progress_sent_at: number;
};
type TicketRow = { position: number; ticket_id: string; session: string; issued_at: number; admitted_at: number | null };

/** Sockets carry their ticket so a woken object knows whom it talks to. */
interface SocketAttachment {
  ticketId: string;
  position: number;
  /** When the page last asked for its status over the socket. */
  askedAt?: number;
}

export class SaleQueue extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  /** The stored config, parsed once: only `configure` changes it, and it resets this. */
  private cached: SaleQueueConfig | null | undefined;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    void ctx.blockConcurrencyWhile(async () => migrateSql(ctx.storage.sql, MIGRATIONS));
  }

  /** Stores the sale's settings (idempotent); the admin API calls every queue object of a sale on each change. */
  async configure(config: SaleQueueConfig): Promise<void> {
    // Two admin changes at once push in either order: the newer write wins.
    const current = this.config();
    if (current && (current.version ?? 0) > (config.version ?? 0)) return;
    this.sql.exec(
      'insert into config (id, json, updated_at) values (1, ?1, ?2) on conflict (id) do update set json = ?1, updated_at = ?2',
      JSON.stringify(config),
      Date.now(),
    );
    this.cached = config;
    await this.wake(Date.now());
  }

  /**
   * A ticket for `session` (the shopper's device), or the one it already
   * has: pressing "buy" again, or reloading, keeps the shopper's place. A
   * ticket whose admission ran out is replaced by a new one at the back.
   */
  async issue(session: string): Promise<IssueResult> {
    const cfg = this.config();
    if (!cfg) return { ok: false, reason: 'unknown_sale' };
    const now = Date.now();
    if (now < cfg.startsAt) return { ok: false, reason: 'not_started', startsAt: cfg.startsAt };
    if (cfg.endsAt !== null && now >= cfg.endsAt) return { ok: false, reason: 'ended', endsAt: cfg.endsAt };
    this.admit(cfg, now);
    const existing = this.sql.exec<TicketRow>('select * from tickets where session = ? order by position desc limit 1', session).toArray()[0];
    if (existing && !(existing.admitted_at !== null && now > existing.admitted_at + cfg.admissionTtlMs)) {
      return { ok: true, created: false, status: this.statusOf(cfg, existing, now) };
    }
    const position = this.sql.exec<{ next: number }>('select coalesce(max(position), 0) + 1 as next from tickets').one().next;
    this.sql.exec('insert into tickets (position, ticket_id, session, issued_at) values (?, ?, ?, ?)', position, newId('qt'), session, now);
    // A ticket that arrives to an empty queue with room left in this window goes straight in.
    this.admit(cfg, now);
    const row = this.ticketAt(position)!;
    await this.wake(now);
    return { ok: true, created: true, status: this.statusOf(cfg, row, now) };
  }

  /** Where `ticketId` stands, or null when this object never issued it. */
  status(ticketId: string): QueueStatus | null {
    const cfg = this.config();
    const row = this.ticket(ticketId);
    if (!cfg || !row) return null;
    const now = Date.now();
    this.admit(cfg, now);
    return this.statusOf(cfg, this.ticket(ticketId)!, now);
  }

  /** Whether `ticketId` (issued to `session`) may check out now. */
  admission(ticketId: string, session: string): AdmissionCheck {
    const cfg = this.config();
    const row = this.ticket(ticketId);
    if (!cfg || !row || row.session !== session) return { ok: false, reason: 'unknown_ticket' };
    const now = Date.now();
    if (cfg.endsAt !== null && now >= cfg.endsAt) return { ok: false, reason: 'ended' };
    this.admit(cfg, now);
    const admittedAt = this.ticket(ticketId)!.admitted_at;
    if (admittedAt === null) return { ok: false, reason: 'not_admitted' };
    const expiresAt = admittedAt + cfg.admissionTtlMs;
    return now <= expiresAt ? { ok: true, admittedAt, expiresAt } : { ok: false, reason: 'admission_expired' };
  }

  /**
   * The inventory objects found these of the sale's variants empty in the
   * region (a reservation just took the last unit). Once every variant of
   * the sale is out, everyone still waiting is told at once.
   */
  soldOut(variantIds: string[], at: number = Date.now()): void {
    const cfg = this.config();
    if (!cfg) return;
    const q = this.queueRow();
    const out = new Set([...(JSON.parse(q.out_variants) as string[]), ...variantIds.filter((id) => cfg.variantIds.includes(id))]);
    this.sql.exec('update queue set out_variants = ? where id = 1', JSON.stringify([...out]));
    if (q.sold_out_at === null && cfg.variantIds.every((id) => out.has(id))) {
      this.sql.exec('update queue set sold_out_at = ? where id = 1', at);
      this.broadcast(cfg, Date.now());
    }
  }

  /** Records a finished checkout of the sale (idempotent by checkout id). */
  recordCheckout(record: CheckoutRecord): void {
    this.sql.exec(
      'insert into checkouts (checkout_id, outcome, reason, latency_ms, units, at) values (?, ?, ?, ?, ?, ?) on conflict (checkout_id) do nothing',
      record.checkoutId, record.outcome, record.reason ?? null, Math.max(0, Math.round(record.latencyMs)), record.units, Date.now(),
    );
  }

  /** This object's part of the sale's report. */
  report(): QueueReport {
    const q = this.queueRow();
    const t = this.sql
      .exec<{ issued: number; admitted: number; first: number | null; last: number | null }>(
        'select count(*) as issued, count(admitted_at) as admitted, min(issued_at) as first, max(admitted_at) as last from tickets',
      )
      .one();
    return {
      shard: this.config()?.shard ?? 0,
      issued: t.issued,
      admitted: t.admitted,
      soldOutAt: q.sold_out_at,
      checkouts: this.sql
        .exec<{ outcome: string; reason: string | null; count: number; units: number }>(
          'select outcome, reason, count(*) as count, sum(units) as units from checkouts group by outcome, reason order by outcome, reason',
        )
        .toArray(),
      latenciesMs: this.sql.exec<{ latency_ms: number }>(`select latency_ms from checkouts where outcome = 'confirmed' order by latency_ms`).toArray().map((r) => r.latency_ms),
      firstTicketAt: t.first,
      lastAdmittedAt: t.last,
    };
  }

  /** Every ticket's issue and admission time in queue order (for tests and support). */
  admissions(): { position: number; issuedAt: number; admittedAt: number | null }[] {
    return this.sql
      .exec<{ position: number; issued_at: number; admitted_at: number | null }>('select position, issued_at, admitted_at from tickets order by position')
      .toArray()
      .map((r) => ({ position: r.position, issuedAt: r.issued_at, admittedAt: r.admitted_at }));
  }

  /**
   * The page's live connection: a WebSocket the Worker hands over once it
   * has checked the shopper's ticket (`?ticket=<id>`). Hibernatable: while
   * nothing happens the object may be evicted and the sockets stay open.
   */
  override async fetch(request: Request): Promise<Response> {
    if (request.headers.get('upgrade')?.toLowerCase() !== 'websocket') return new Response('expected a WebSocket', { status: 426 });
    const ticketId = new URL(request.url).searchParams.get('ticket') ?? '';
    const status = this.status(ticketId);
    if (!status) return new Response('unknown ticket', { status: 404 });
    const { 0: client, 1: server } = new WebSocketPair();
    this.ctx.acceptWebSocket(server, [ticketId]);
    server.serializeAttachment({ ticketId, position: status.position } satisfies SocketAttachment);
    server.send(JSON.stringify({ type: 'status', ...status }));
    await this.wake(Date.now());
    return new Response(null, { status: 101, webSocket: client });
  }

  /** Any message from the page asks for its status again. */
  override webSocketMessage(ws: WebSocket): void {
    // One object serves the region's whole line: a page asks at most once a
    // second, and anything more is ignored rather than answered.
    const attachment = ws.deserializeAttachment() as SocketAttachment;
    const now = Date.now();
    if (now - (attachment.askedAt ?? 0) < SOCKET_ASK_EVERY_MS) return;
    ws.serializeAttachment({ ...attachment, askedAt: now } satisfies SocketAttachment);
    const status = this.status(attachment.ticketId);
    if (status) ws.send(JSON.stringify({ type: 'status', ...status }));
  }

  override webSocketClose(ws: WebSocket, code: number): void {
    // 1005/1006 carry no code we may echo; anything else is closed back in kind.
    try {
      ws.close(code === 1005 || code === 1006 ? 1000 : code, 'bye');
    } catch {
      // Already closed.
    }
  }

  /**
   * One admission window: admits what the window allows, tells the newly
   * admitted, sends progress, checks the stock now and then, and schedules
   * the next window while anyone waits. Safe to run any number of times.
   */
  override async alarm(): Promise<void> {
    const cfg = this.config();
    if (!cfg) return;
    const now = Date.now();
    if (cfg.endsAt !== null && now >= cfg.endsAt) {
      // The sale is over: open pages are told once (or twice, if the alarm repeats).
      this.broadcast(cfg, now);
      return;
    }
    // This window's admissions first: the stock check below waits on other objects.
    this.admit(cfg, now);
    const q = this.queueRow();
    const checkEvery = q.sold_out_at !== null && now - q.sold_out_at > SOLD_OUT_CLOSE_WATCH_MS ? STOCK_RECHECK_LATER_MS : STOCK_CHECK_EVERY_MS;
    if (now - q.stock_checked_at >= checkEvery - TICK_MS && this.issued() > 0) {
      // Mark the check before the calls go out: the gates do not cover RPCs.
      this.sql.exec('update queue set stock_checked_at = ? where id = 1', now);
      await this.checkStock(cfg).catch((err) => console.warn(JSON.stringify({ level: 'warn', msg: 'sale stock check failed', saleId: cfg.saleId, error: String(err) })));
    }
    this.admit(cfg, Date.now());
    await this.wake(Date.now(), true);
  }

  // ---------------------------------------------------------------------------

  /**
   * Admits what the window allows and tells whoever is waiting: the newly
   * admitted on their own sockets, everyone the queue's progress once a
   * second. Runs on every call as well as from the alarm: under a stream of
   * arrivals the calls take each window's room, and their pages must hear it
   * then, not at the next alarm.
   */
  private admit(cfg: SaleQueueConfig, now: number): void {
    for (const position of this.advance(cfg, now)) this.sendTo(cfg, position, now);
    if (now - this.queueRow().progress_sent_at >= PROGRESS_EVERY_MS && this.ctx.getWebSockets().length > 0) this.broadcast(cfg, now);
  }

  /** Admits what the current window allows; returns the newly admitted positions. */
  private advance(cfg: SaleQueueConfig, now: number): number[] {
    const q = this.queueRow();
    if (now < cfg.startsAt || q.sold_out_at !== null || (cfg.endsAt !== null && now >= cfg.endsAt)) return [];
    const perMs = cfg.admissionRate / cfg.shards / 1000;
    const w = Math.floor((now - cfg.startsAt) / TICK_MS);
    const budget = Math.floor(perMs * (w + 1) * TICK_MS) - Math.floor(perMs * w * TICK_MS);
    const used = q.window === w ? q.window_used : 0;
    const issued = this.issued();
    const n = Math.min(budget - used, issued - q.admitted_through);
    if (n <= 0) {
      if (q.window !== w) this.sql.exec('update queue set window = ?, window_used = 0 where id = 1', w);
      return [];
    }
    const from = q.admitted_through + 1;
    const to = q.admitted_through + n;
    this.ctx.storage.transactionSync(() => {
      this.sql.exec('update tickets set admitted_at = ? where position between ? and ?', now, from, to);
      this.sql.exec('update queue set admitted_through = ?, window = ?, window_used = ? where id = 1', to, w, used + n);
    });
    return Array.from({ length: n }, (_, i) => from + i);
  }

  /**
   * Asks the inventory objects whether anything of the sale is left in the
   * region: sets the sold-out mark when a push was missed, and lifts it when
   * held units came back (a checkout failed), so the queue moves again.
   */
  private async checkStock(cfg: SaleQueueConfig): Promise<void> {
    const asked = Date.now();
    const levels = await regionLevels(this.env, cfg.region, cfg.variantIds);
    const out = cfg.variantIds.filter((id) => {
      const l = levels.get(id);
      return l?.known && l.available === 0;
    });
    const q = this.queueRow();
    if (out.length === cfg.variantIds.length && q.sold_out_at === null) {
      this.sql.exec(`update queue set sold_out_at = ?, out_variants = ? where id = 1`, Date.now(), JSON.stringify(out));
      this.broadcast(cfg, Date.now());
    } else if (out.length < cfg.variantIds.length && q.sold_out_at !== null && q.sold_out_at < asked) {
      // Units came back. Only a mark older than the question is lifted: one
      // pushed while the levels were on their way is newer than they are.
      this.sql.exec(`update queue set sold_out_at = null, out_variants = ? where id = 1`, JSON.stringify(out));
      this.broadcast(cfg, Date.now());
    }
  }

  /** Schedules the next window while anyone waits (or the sold-out mark may lift), else lets the object rest. */
  private async wake(now: number, fromAlarm = false): Promise<void> {
    const cfg = this.config();
    if (!cfg || (cfg.endsAt !== null && now >= cfg.endsAt)) return;
    const q = this.queueRow();
    let at: number | null = null;
    if (now < cfg.startsAt) at = this.issued() > 0 ? cfg.startsAt : null;
    else if (q.sold_out_at !== null) {
      // Units come back from failed checkouts within minutes; after that, a merchant's restock is what reopens the queue, so look less often.
      const every = now - q.sold_out_at > SOLD_OUT_CLOSE_WATCH_MS ? STOCK_RECHECK_LATER_MS : STOCK_CHECK_EVERY_MS;
      at = this.waiting() > 0 || this.ctx.getWebSockets().length > 0 ? now + every : null;
    }
    else if (this.waiting() > 0) at = (Math.floor((now - cfg.startsAt) / TICK_MS) + 1) * TICK_MS + cfg.startsAt;
    // Open pages hear when the sale ends.
    if (cfg.endsAt !== null && (at === null || at > cfg.endsAt) && this.ctx.getWebSockets().length > 0) at = cfg.endsAt;
    if (at === null) return;
    const current = fromAlarm ? null : await this.ctx.storage.getAlarm();
    if (current === null || current > at) await this.ctx.storage.setAlarm(at);
  }

  private statusOf(cfg: SaleQueueConfig, row: TicketRow, now: number): QueueStatus {
    const q = this.queueRow();
    const ratePerSecond = cfg.admissionRate / cfg.shards;
    const admitted = row.admitted_at !== null;
    const ended = cfg.endsAt !== null && now >= cfg.endsAt;
    const expiresAt = admitted ? row.admitted_at! + cfg.admissionTtlMs : undefined;
    const ahead = admitted ? 0 : Math.max(0, row.position - q.admitted_through - 1);
    let state: QueueState;
    if (ended) state = 'ended';
    else if (admitted) state = now > expiresAt! ? 'expired' : 'admitted';
    else state = q.sold_out_at !== null ? 'sold_out' : 'waiting';
    return {
      ticketId: row.ticket_id,
      state,
      position: row.position,
      ahead,
      admittedThrough: q.admitted_through,
      ratePerSecond,
      estimatedWaitSeconds: admitted ? 0 : Math.ceil((ahead + 1) / ratePerSecond),
      issuedAt: row.issued_at,
      ...(admitted ? { admittedAt: row.admitted_at!, admissionExpiresAt: expiresAt! } : {}),
      soldOut: q.sold_out_at !== null,
      ...(q.sold_out_at !== null ? { soldOutAt: q.sold_out_at } : {}),
      startsAt: cfg.startsAt,
      endsAt: cfg.endsAt,
    };
  }

  /** Sends the ticket at `position` its status, on every socket it has open. */
  private sendTo(cfg: SaleQueueConfig, position: number, now: number): void {
    const row = this.ticketAt(position);
    if (!row) return;
    const message = JSON.stringify({ type: 'status', ...this.statusOf(cfg, row, now) });
    for (const ws of this.ctx.getWebSockets(row.ticket_id)) send(ws, message);
  }

  /** Tells every open page where the queue is: one message for all, each page knows its own position. */
  private broadcast(cfg: SaleQueueConfig, now: number): void {
    const q = this.queueRow();
    const message = JSON.stringify({
      type: 'progress',
      admittedThrough: q.admitted_through,
      issued: this.issued(),
      ratePerSecond: cfg.admissionRate / cfg.shards,
      soldOut: q.sold_out_at !== null,
      ...(q.sold_out_at !== null ? { soldOutAt: q.sold_out_at } : {}),
      ended: cfg.endsAt !== null && now >= cfg.endsAt,
      at: now,
    });
    for (const ws of this.ctx.getWebSockets()) send(ws, message);
    this.sql.exec('update queue set progress_sent_at = ? where id = 1', now);
  }

  private config(): SaleQueueConfig | null {
    if (this.cached === undefined) {
      const row = this.sql.exec<{ json: string }>('select json from config where id = 1').toArray()[0];
      this.cached = row ? (JSON.parse(row.json) as SaleQueueConfig) : null;
    }
    return this.cached;
  }

  private queueRow(): QueueRow {
    return this.sql.exec<QueueRow>('select * from queue where id = 1').one();
  }

  private issued(): number {
    return this.sql.exec<{ n: number }>('select coalesce(max(position), 0) as n from tickets').one().n;
  }

  private waiting(): number {
    return this.issued() - this.queueRow().admitted_through;
  }

  private ticket(ticketId: string): TicketRow | undefined {
    return this.sql.exec<TicketRow>('select * from tickets where ticket_id = ?', ticketId).toArray()[0];
  }

  private ticketAt(position: number): TicketRow | undefined {
    return this.sql.exec<TicketRow>('select * from tickets where position = ?', position).toArray()[0];
  }
}

/** A socket that closed under us is not an error for the others. */
function send(ws: WebSocket, message: string): void {
  try {
    ws.send(message);
  } catch {
    // Closed; its close handler tidies up.
  }
}
