/**
 * `Checkout`: one object per checkout id, running that checkout's saga:
 *
 *   price (cart from Redis, prices and promotions from the origin primary;
 *          the uses of limited promotions held)
 *   -> reserve (every line in the inventory shards, all or none)
 *   -> authorize (payment provider, idempotency key = checkout id)
 *   -> write order (one Postgres transaction, unique on checkout id)
 *   -> capture -> commit holds (held -> sold), clear the cart, emit order.created
 *
 * Every transition is written to SQLite before the next step starts, and
 * every outbound call is preceded by the write that records it is about to
 * happen (a Durable Object's input/output gates do not cover `fetch`). The
 * saga runs from the alarm: a transient failure (Postgres down, provider 5xx,
 * a restart) reschedules the alarm with backoff and the step runs again with
 * the same ids, so the checkout is delayed, never lost or done twice.
 * Failures release the holds and promotion uses (and void an authorisation)
 * and end in `failed` with a reason.
 */
import { Redis } from '@upstash/redis/cloudflare';
import { DurableObject } from 'cloudflare:workers';
import { and, eq } from 'drizzle-orm';
import { createDatabase, currentLsn } from '../db/client';
import { parseReplicas } from '../db/replicas';
import { REGIONS, type RegionCode } from '../db/regions';
import { orderDiscounts, orderEvents, orderLines, orders, payments } from '../db/schema';
import { getTableConfig } from 'drizzle-orm/pg-core';
import { quoteCart, quoteOf, type Quote } from '../workers/carts/quote';
import { clearCart, readCart } from '../workers/carts/store';
import type { PromotionKind } from '../workers/promotions/engine';
import { holdUses, NoRoom, redeemUses, releaseUses, type UseRequest } from '../workers/promotions/store';
import { commitParts, releaseParts, reserveAcross, stableHash, type CapRequest, type HoldPart } from '../workers/inventory/shards';
import { openSalesFor, variantsInOpenSales, type OpenSale } from '../workers/sales/store';
import { queueStub } from '../workers/sales/tickets';
import { markSoldOut } from '../workers/inventory/soldout';
import { pgError, type PgError } from '../workers/lib/db-errors';
import { sha256Hex } from '../workers/lib/hash';
import { countCheckoutOutcome } from '../workers/lib/metrics';
import { newId, randomToken } from '../workers/lib/ids';
import { paymentCallTimeoutMs, paymentProvider } from '../workers/payments/provider';
import { migrateSql } from './sql-migrations';

/** Where a checkout is in its saga, as shoppers see it. */
export type CheckoutStatus = 'pending' | 'reserved' | 'paid' | 'confirmed' | 'failed';

/** What `status()` reports. */
export interface CheckoutState {
  checkoutId: string;
  status: CheckoutStatus;
  reason?: string;
  orderId?: string;
  orderToken?: string;
  /**
   * Internal, never sent to shoppers: the primary's WAL position after the
   * order's last write, for read-your-writes (workers/lib/read-your-writes.ts).
   */
  readAfter?: string;
}

/** The checkout request as accepted by `POST /api/checkout`. */
export interface CheckoutRequest {
  cartId: string;
  email: string;
  shippingAddress: { name: string; line1: string; line2?: string; city: string; postalCode: string; country: string };
  payment: { method: 'card'; token: string };
  /** The signed-in buyer (from the session, never from the body): the order is theirs, and only their own cart may be bought. */
  userId?: string;
  /**
   * Who is buying, for flash-sale caps (set by the Worker, never from the
   * body, and not part of the idempotency comparison): the device cookie
   * and the client address.
   */
  shopper?: { device?: string; ip: string };
  /** Flash-sale tickets the request presented, checked by the Worker (signature, device, expiry). */
  tickets?: { saleId: string; region: RegionCode; shard: number; ticketId: string }[];
}

/** The parts of a request that identify the buyer's device, not the purchase: left out of the idempotency comparison. */
export const UNHASHED_REQUEST_FIELDS = ['shopper', 'tickets'] as const;

/** Answer of {@link Checkout.start}. */
export type StartResult = { ok: true; state: CheckoutState; created: boolean } | { ok: false; reason: 'idempotency_conflict' };

/**
 * The saga's steps. `void` is compensation: the checkout has failed (the
 * shopper is told at once) and an authorisation that may exist at the
 * provider is being voided, retried for as long as it takes.
 */
type Step = 'price' | 'reserve' | 'authorize' | 'write_order' | 'capture' | 'commit' | 'void' | 'done';

/** A priced line, frozen at the price step: what the order will say. */
interface FrozenLine {
  variantId: string;
  sku: string;
  title: string;
  quantity: number;
  unitAmount: number;
  /** This line's share of the order's item and order promotions. */
  discountAmount?: number;
  /** The flash sale this line is bought in: its cap applies and its queue hears the outcome. */
  sale?: { id: string; cap: number; queueShards: number };
  /** In an open sale somewhere: never borrowed from another region (a lender's units are its sale's, behind its queue). */
  noBorrow?: true;
}

/** The order's money beyond its lines, frozen at the price step with the lines. */
interface Pricing {
  subtotal: number;
  shipping: number;
  discount: number;
  /** The cart's code that applied, if any (dropped from the cart when the order is confirmed). */
  code: string | null;
  discounts: { promotionId: string; code: string | null; title: string; kind: PromotionKind; amount: number }[];
  /** Uses to hold (price step) and redeem (order write). */
  uses: UseRequest[];
  /** Set once holding has begun, so a failure gives the uses back. */
  holding?: true;
}

type Row = {
  id: string;
  status: CheckoutStatus;
  step: Step;
  reason: string | null;
  request_json: string;
  request_hash: string;
  region: string | null;
  lines_json: string | null;
  total_amount: number | null;
  currency: string | null;
  parts_json: string | null;
  authorization_id: string | null;
  order_id: string | null;
  order_number: string | null;
  order_token: string | null;
  last_lsn: string | null;
  step_at: number | null;
  pricing_json: string | null;
  attempts: number;
  created_at: number;
};

/** Hold lifetime: long enough for a slow provider and a few retries. */
const HOLD_TTL_MS = 15 * 60 * 1000;
/** Attempts of one step before a retryable failure becomes final (about 20 minutes of backoff). */
const MAX_ATTEMPTS = 12;
/** Postgres outages delay orders rather than fail them: this step retries far longer. */
const MAX_ORDER_WRITE_ATTEMPTS = 60;
/** How long the authorise step keeps retrying a slow or unreachable provider before the checkout fails (`PAYMENT_DEADLINE_MS`). */
const DEFAULT_PAYMENT_DEADLINE_MS = 5 * 60 * 1000;

/** Backoff before attempt `n` (1-based): 0.5 s doubling, capped at 60 s, with jitter. */
export function backoffMs(n: number): number {
  const base = Math.min(60_000, 500 * 2 ** Math.max(0, n - 1));
  return Math.round(base * (0.75 + Math.random() * 0.5));
}

/** A step failed in a way that retrying may fix. */
class Retry extends Error {}

/** The unique constraint on `orders.number`, as the migrations name it. */
const ORDER_NUMBER_CONSTRAINT = getTableConfig(orders).columns.find((c) => c.name === 'number')!.uniqueName!;

/**
 * The Postgres error behind `err` (drizzle wraps the driver's in `cause`)
 * when it is the database refusing the data, not failing to answer:
 * SQLSTATE class 22 (data exception: bad text, out of range) or 23
 * (integrity constraint). Undefined for anything else (outages, timeouts).
 */
function databaseRefusal(err: unknown): PgError | undefined {
  const refusal = pgError(err);
  return refusal && /^2[23]/.test(refusal.code) ? refusal : undefined;
}
/** A step failed for good: the checkout ends `failed` with this reason. */
class Fail extends Error {
  constructor(readonly reason: string) {
    super(reason);
  }
}

const MIGRATIONS = [
  `create table checkout (
     id text primary key,
     status text not null check (status in ('pending', 'reserved', 'paid', 'confirmed', 'failed')),
     step text not null,
     reason text,
     request_hash text not null,
     request_json text not null,
     region text,
     lines_json text,
     total_amount integer,
     currency text,
     parts_json text,
     authorization_id text,
     order_id text,
     order_number text,
     order_token text,
     attempts integer not null default 0,
     created_at integer not null,
     updated_at integer not null
   );
   create table transitions (
     seq integer primary key autoincrement,
     status text not null,
     step text not null,
     detail text,
     at integer not null
   );`,
  // The primary's WAL position after the order's last write (read-your-writes),
  // and when the current step began (the payment deadline counts from it).
  `alter table checkout add column last_lsn text;
   alter table checkout add column step_at integer;`,
  // Shipping, promotions and their uses (v3; older code refuses v3 objects: roll forward only).
  `alter table checkout add column pricing_json text;`,
] as const;

/** The `payments.provider` of an order promotions paid for in full: no provider was asked. */
const FREE_PROVIDER = 'none';

/** How many times the price step drops an automatic promotion whose uses ran out and prices again. */
const MAX_REPRICES = 3;

export class Checkout extends DurableObject<Env> {
  private readonly sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    void ctx.blockConcurrencyWhile(async () => migrateSql(ctx.storage.sql, MIGRATIONS));
  }

  /**
   * Starts the checkout, or returns it if this object already holds one with
   * the same request (same idempotency key, same body), concurrently too: the
   * object runs one call at a time. A different body is a conflict.
   */
  async start(checkoutId: string, requestHash: string, request: CheckoutRequest): Promise<StartResult> {
    const existing = this.row();
    if (existing) {
      if (existing.request_hash !== requestHash) return { ok: false, reason: 'idempotency_conflict' };
      return { ok: true, state: this.stateOf(existing), created: false };
    }
    const now = Date.now();
    this.ctx.storage.transactionSync(() => {
      this.sql.exec(
        `insert into checkout (id, status, step, request_hash, request_json, created_at, updated_at) values (?, 'pending', 'price', ?, ?, ?, ?)`,
        checkoutId, requestHash, JSON.stringify(request), now, now,
      );
      this.sql.exec(`insert into transitions (status, step, at) values ('pending', 'price', ?)`, now);
    });
    await this.ctx.storage.setAlarm(now);
    return { ok: true, state: this.stateOf(this.row()!), created: true };
  }

  /** The checkout's state, or null when this object holds none. */
  status(): CheckoutState | null {
    const row = this.row();
    return row ? this.stateOf(row) : null;
  }

  /** The steps taken so far, for support and tests. */
  history(): { status: string; step: string; detail: string | null; at: number }[] {
    return this.sql.exec<{ status: string; step: string; detail: string | null; at: number }>('select status, step, detail, at from transitions order by seq').toArray();
  }

  /** Runs steps until the saga ends or a step must wait; safe to run again at any point. */
  override async alarm(): Promise<void> {
    for (;;) {
      const row = this.row();
      if (!row) return;
      if (row.step === 'done') return this.reportToSales();
      try {
        await this.runStep(row);
      } catch (err) {
        if (err instanceof Fail) {
          await this.fail(err.reason);
          await this.reportToSales();
          return;
        }
        const attempts = row.attempts + 1;
        const limit = row.step === 'write_order' || row.step === 'commit' || row.step === 'capture' ? MAX_ORDER_WRITE_ATTEMPTS : MAX_ATTEMPTS;
        this.sql.exec('update checkout set attempts = ?, updated_at = ? where id = ?', attempts, Date.now(), row.id);
        this.log(row.status, row.step, `attempt ${attempts} failed: ${String(err instanceof Error ? err.message : err).slice(0, 300)}`);
        const pastDeadline = row.step === 'authorize' && Date.now() - (row.step_at ?? row.created_at) >= this.paymentDeadlineMs();
        if ((attempts >= limit || pastDeadline) && (row.step === 'price' || row.step === 'reserve' || row.step === 'authorize')) {
          await this.fail(row.step === 'authorize' ? 'payment_failed' : 'unavailable');
          await this.reportToSales();
          return;
        }
        await this.ctx.storage.setAlarm(Date.now() + backoffMs(attempts));
        return;
      }
    }
  }

  private async runStep(row: Row): Promise<void> {
    const request = JSON.parse(row.request_json) as CheckoutRequest;
    switch (row.step) {
      case 'price':
        return this.price(row, request);
      case 'reserve':
        return this.reserve(row);
      case 'authorize':
        return this.authorize(row, request);
      case 'write_order':
        return this.writeOrder(row, request);
      case 'capture':
        return this.capture(row);
      case 'commit':
        return this.commit(row, request);
      case 'void':
        return this.voidAuthorization(row, request);
    }
  }

  private paymentDeadlineMs(): number {
    const ms = Number(this.env.PAYMENT_DEADLINE_MS);
    return ms > 0 ? ms : DEFAULT_PAYMENT_DEADLINE_MS;
  }

  /** Freezes the cart's lines at origin prices. */
  private async price(row: Row, request: CheckoutRequest): Promise<void> {
    const redis = this.redis();
    const cart = await readCart(redis, request.cartId, request.userId ?? '').catch((err) => {
      throw new Retry(`cart read failed: ${err}`);
    });
    if (!cart) throw new Fail('cart_not_found');
    if (cart.lines.length === 0) throw new Fail('empty_cart');
    const region = REGIONS[cart.region];
    const db = createDatabase(this.env);
    try {
      let quote = await quoteCart(db.primary, region, cart.lines, cart.code ?? null, { checkoutId: row.id }).catch((err) => {
        throw new Retry(`pricing failed: ${err}`);
      });
      const priced = quote.priced;
      const unavailable = priced.items.filter((i) => i.status !== 'ok');
      if (unavailable.length) throw new Fail('unavailable_items');
      // The code the shopper applied must still apply: charging without the
      // discount they were shown would be worse than saying why not.
      if (quote.evaluation.code && !quote.evaluation.code.applied) throw new Fail(quote.evaluation.code.reason);
      const variantIds = priced.items.map((i) => i.variantId);
      const [open, inSales] = await Promise.all([openSalesFor(db.primary, region.code, variantIds), variantsInOpenSales(db.primary, variantIds)]).catch((err) => {
        throw new Retry(`sale lookup failed: ${err}`);
      });
      const saleOf = new Map(open.flatMap((o) => o.variantIds.map((id) => [id, o] as const)));
      const frozen = (): FrozenLine[] =>
        priced.items.map((i) => {
          const sale = saleOf.get(i.variantId);
          const discountAmount = quote.evaluation.lineDiscounts[i.variantId];
          return {
            variantId: i.variantId,
            sku: i.sku,
            title: i.title,
            quantity: i.quantity,
            unitAmount: i.unitPrice.amount,
            ...(discountAmount ? { discountAmount } : {}),
            ...(sale ? { sale: { id: sale.saleId, cap: sale.cap, queueShards: sale.queueShards } } : {}),
            ...(inSales.has(i.variantId) ? { noBorrow: true } : {}),
          };
        });
      const refusal = await this.admissionRefusal(open, region.code, request);
      if (refusal) {
        // Kept so the sale's report hears of this refused attempt.
        this.sql.exec('update checkout set region = ?, lines_json = ? where id = ?', region.code, JSON.stringify(frozen()), row.id);
        throw new Fail(refusal);
      }
      // Hold the uses of limited promotions (all or none). An automatic
      // promotion that ran out is dropped and the cart priced again; the
      // code's running out fails the checkout with the reason.
      const customer = { email: request.email, ...(request.userId ? { userId: request.userId } : {}) };
      let pricing = this.pricingOf(quote);
      for (let attempt = 0; ; attempt++) {
        // Recorded before the outbound call: if the object dies after the
        // holds are written, a later failure still gives them back.
        this.sql.exec('update checkout set pricing_json = ? where id = ?', JSON.stringify({ ...pricing, holding: true }), row.id);
        const held = await holdUses(db.primary, row.id, customer, pricing.uses).catch((err) => {
          throw new Retry(`promotion hold failed: ${err}`);
        });
        if (held.ok) break;
        const dropped = quote.evaluation.applied.find((a) => a.promotionId === held.promotionId);
        if (!dropped || dropped.code !== null || attempt >= MAX_REPRICES) throw new Fail(held.reason);
        const context = { ...quote.context, promotions: quote.context.promotions.filter((p) => p.id !== held.promotionId) };
        quote = { ...quoteOf(region, priced, quote.facts, context, cart.code ?? null), facts: quote.facts };
        // Without the dropped promotion the code may no longer be the best of its class.
        if (quote.evaluation.code && !quote.evaluation.code.applied) throw new Fail(quote.evaluation.code.reason);
        pricing = this.pricingOf(quote);
      }
      this.advance(row.id, 'pending', 'reserve', {
        region: region.code,
        lines_json: JSON.stringify(frozen()),
        total_amount: quote.evaluation.total,
        currency: priced.subtotal.currency,
        pricing_json: JSON.stringify({ ...pricing, holding: true }),
      });
    } finally {
      await db.close();
    }
  }

  /** The order's totals, discount lines and promotion uses of a quote. */
  private pricingOf(quote: Quote): Pricing {
    const e = quote.evaluation;
    const byId = new Map(quote.context.promotions.map((p) => [p.id, p]));
    return {
      subtotal: e.subtotal,
      shipping: e.shipping,
      discount: e.discount,
      code: e.code?.applied ? e.code.code : null,
      discounts: e.applied.map((a) => ({ promotionId: a.promotionId, code: a.code, title: a.title, kind: a.kind, amount: a.amount })),
      uses: e.applied.map((a) => ({
        promotionId: a.promotionId,
        usageLimit: byId.get(a.promotionId)?.usageLimit ?? null,
        usageLimitPerCustomer: byId.get(a.promotionId)?.usageLimitPerCustomer ?? null,
      })),
    };
  }

  /** The frozen pricing, or the plain one of a checkout priced before promotions existed. */
  private pricing(row: Row): Pricing {
    if (row.pricing_json) return JSON.parse(row.pricing_json) as Pricing;
    return { subtotal: row.total_amount!, shipping: 0, discount: 0, code: null, discounts: [], uses: [] };
  }

  /**
   * Why this checkout may not buy its flash-sale lines, or null when it may:
   * each open sale among them must have started and have admitted the
   * ticket this request presented (bound to the same device).
   */
  private async admissionRefusal(open: OpenSale[], region: RegionCode, request: CheckoutRequest): Promise<string | null> {
    for (const sale of open) {
      if (Date.now() < sale.startsAt) return 'sale_not_started';
      const ticket = request.tickets?.find((t) => t.saleId === sale.saleId && t.region === region);
      if (!ticket || !request.shopper?.device) return 'not_admitted';
      const check = await queueStub(this.env, sale.saleId, region, ticket.shard)
        .admission(ticket.ticketId, request.shopper.device)
        .catch((err) => {
          throw new Retry(`admission check failed: ${err}`);
        });
      if (!check.ok) return check.reason === 'admission_expired' ? 'admission_expired' : 'not_admitted';
    }
    return null;
  }

  /** The caps of the sales this checkout buys in, for the inventory objects to enforce. */
  private capsOf(lines: FrozenLine[], request: CheckoutRequest): CapRequest[] {
    // The device is always a key: one admitted device signing in to several
    // accounts in turn still buys the cap once. Guests count by address too;
    // accounts not (carrier-grade NAT puts many of them behind one).
    const device = `d:${request.shopper?.device ?? 'none'}`;
    const keys = request.userId ? [`u:${request.userId}`, device] : [device, `ip:${request.shopper?.ip ?? 'unknown'}`];
    const bySale = new Map<string, CapRequest>();
    for (const l of lines) {
      if (!l.sale) continue;
      const cap = bySale.get(l.sale.id) ?? { scope: l.sale.id, cap: l.sale.cap, variantIds: [], keys };
      cap.variantIds.push(l.variantId);
      bySale.set(l.sale.id, cap);
    }
    return [...bySale.values()];
  }

  /** Tells the queues of the sales among `lines` that some of their variants have nothing left. */
  private async saleSoldOut(region: RegionCode, lines: FrozenLine[], variantIds: string[]): Promise<void> {
    const sales = new Map<string, { shards: number; ids: string[] }>();
    for (const l of lines) {
      if (!l.sale || !variantIds.includes(l.variantId)) continue;
      const s = sales.get(l.sale.id) ?? { shards: l.sale.queueShards, ids: [] };
      s.ids.push(l.variantId);
      sales.set(l.sale.id, s);
    }
    const at = Date.now();
    await Promise.all(
      [...sales].flatMap(([saleId, s]) => Array.from({ length: s.shards }, (_, shard) => queueStub(this.env, saleId, region, shard).soldOut(s.ids, at))),
    ).catch((err) => console.warn(JSON.stringify({ level: 'warn', msg: 'sale sold-out notice failed', error: String(err) })));
  }

  /**
   * Reports how this checkout ended to the queues of the sales it bought in
   * (their report: outcomes, refusals, latency). Idempotent at the queue;
   * best effort, after the outcome is stored.
   */
  private async reportToSales(): Promise<void> {
    const row = this.row();
    if (!row?.lines_json || (row.status !== 'confirmed' && row.status !== 'failed')) return;
    const lines = JSON.parse(row.lines_json) as FrozenLine[];
    const sales = new Map<string, { shards: number; units: number }>();
    for (const l of lines) {
      if (!l.sale) continue;
      const s = sales.get(l.sale.id) ?? { shards: l.sale.queueShards, units: 0 };
      s.units += l.quantity;
      sales.set(l.sale.id, s);
    }
    await Promise.all(
      [...sales].map(([saleId, s]) =>
        queueStub(this.env, saleId, row.region as RegionCode, stableHash(row.id) % s.shards)
          .recordCheckout({
            checkoutId: row.id,
            outcome: row.status === 'confirmed' ? 'confirmed' : 'failed',
            ...(row.reason ? { reason: row.reason } : {}),
            latencyMs: this.finishedAt() - row.created_at,
            units: s.units,
          })
          .catch((err) => console.warn(JSON.stringify({ level: 'warn', msg: 'sale outcome not recorded', checkoutId: row.id, error: String(err) }))),
      ),
    );
  }

  /** When the checkout reached confirmed or failed. */
  private finishedAt(): number {
    return this.sql.exec<{ at: number | null }>(`select min(at) as at from transitions where status in ('confirmed', 'failed')`).one().at ?? Date.now();
  }

  /** Holds every line in the inventory objects, or fails out of stock. */
  private async reserve(row: Row): Promise<void> {
    const region = row.region as RegionCode;
    const lines = JSON.parse(row.lines_json!) as FrozenLine[];
    const db = createDatabase(this.env);
    const redis = this.redis();
    try {
      const request = JSON.parse(row.request_json) as CheckoutRequest;
      const result = await reserveAcross(
        this.env,
        db.primary,
        region,
        row.id,
        row.id,
        lines.map((l) => ({ variantId: l.variantId, quantity: l.quantity })),
        HOLD_TTL_MS,
        async (ids) => {
          await Promise.all([markSoldOut(redis, region, ids).catch(() => {}), this.saleSoldOut(region, lines, ids)]);
        },
        this.capsOf(lines, request),
        new Set(lines.filter((l) => l.noBorrow).map((l) => l.variantId)),
      ).catch((err) => {
        throw new Retry(`reserve failed: ${err}`);
      });
      if (!result.ok) throw new Fail(result.reason === 'cap_exceeded' ? 'cap_exceeded' : 'out_of_stock');
      this.advance(row.id, 'reserved', 'authorize', { parts_json: JSON.stringify(result.parts) });
    } finally {
      await db.close();
    }
  }

  /** Authorises the payment; the step is recorded before the provider is called. */
  private async authorize(row: Row, request: CheckoutRequest): Promise<void> {
    if (row.total_amount === 0) {
      // Promotions covered everything: nothing to charge, and providers
      // refuse a zero amount. The order is written as paid by no provider.
      this.log(row.status, 'authorize', 'nothing to charge');
      this.advance(row.id, 'reserved', 'write_order', { order_id: newId('ord'), order_number: `${(row.region ?? 'xx').toUpperCase()}-${randomDigits(8)}`, order_token: randomToken(24) });
      return;
    }
    this.log(row.status, 'authorize', 'calling provider');
    const provider = paymentProvider(this.env);
    const outcome = await provider.authorize(
      { amount: row.total_amount!, currency: row.currency!, token: request.payment.token, reference: row.id },
      `${row.id}:authorize`,
    );
    if (outcome.kind === 'retry') throw new Retry(outcome.detail);
    if (outcome.kind === 'failed') throw new Fail('payment_failed');
    if (outcome.kind === 'declined') throw new Fail('payment_declined');
    // The order's ids and the buyer's access token are fixed before the order
    // write, so every retry of that write inserts the very same order.
    this.advance(row.id, 'reserved', 'write_order', {
      authorization_id: outcome.authorizationId,
      order_id: newId('ord'),
      order_number: `${(row.region ?? 'xx').toUpperCase()}-${randomDigits(8)}`,
      order_token: randomToken(24),
    });
  }

  /** Writes the order, its lines, the payment and the order.created event in one transaction. */
  private async writeOrder(row: Row, request: CheckoutRequest): Promise<void> {
    const lines = JSON.parse(row.lines_json!) as FrozenLine[];
    const pricing = this.pricing(row);
    const db = createDatabase(this.env);
    try {
      const tokenHash = await sha256Hex(row.order_token!);
      await db.primary
        .transaction(async (tx) => {
          const inserted = await tx
            .insert(orders)
            .values({
              id: row.order_id!,
              number: row.order_number!,
              checkoutId: row.id,
              userId: request.userId ?? null,
              email: request.email.trim().toLowerCase(),
              regionCode: row.region!,
              currency: row.currency!,
              status: 'confirmed',
              subtotalAmount: pricing.subtotal,
              shippingAmount: pricing.shipping,
              discountAmount: pricing.discount,
              totalAmount: row.total_amount!,
              taxAmount: taxIncluded(row.total_amount!, REGIONS[row.region as RegionCode].taxRateBps),
              shippingAddress: request.shippingAddress,
              accessTokenHash: tokenHash,
            })
            .onConflictDoNothing({ target: orders.checkoutId })
            .returning({ id: orders.id });
          // Already written by an earlier attempt whose answer was lost: done.
          if (inserted.length === 0) return;
          await tx.insert(orderLines).values(
            lines.map((l) => ({
              id: newId('ol'),
              orderId: row.order_id!,
              variantId: l.variantId,
              sku: l.sku,
              title: l.title,
              quantity: l.quantity,
              unitAmount: l.unitAmount,
              lineAmount: l.unitAmount * l.quantity,
              discountAmount: l.discountAmount ?? 0,
            })),
          );
          if (pricing.discounts.length) {
            await tx.insert(orderDiscounts).values(
              pricing.discounts.map((d) => ({ id: newId('odc'), orderId: row.order_id!, promotionId: d.promotionId, code: d.code, title: d.title, kind: d.kind, amount: d.amount })),
            );
          }
          // The uses become the order's in its own transaction: one exists exactly when the other does.
          await redeemUses(tx, row.id, row.order_id!, { email: request.email, ...(request.userId ? { userId: request.userId } : {}) }, pricing.uses);
          await tx
            .insert(payments)
            .values({
              id: newId('pay'),
              orderId: row.order_id!,
              checkoutId: row.id,
              provider: row.total_amount === 0 ? FREE_PROVIDER : paymentProvider(this.env).name,
              providerRef: row.authorization_id,
              status: row.total_amount === 0 ? 'captured' : 'authorized',
              amount: row.total_amount!,
              currency: row.currency!,
            })
            .onConflictDoNothing();
          await tx.insert(orderEvents).values({
            id: newId('oev'),
            orderId: row.order_id!,
            type: 'order.created',
            payload: { checkoutId: row.id, total: { amount: row.total_amount, currency: row.currency } },
          });
        })
        .catch((err) => {
          // A use held so long it lapsed, and was taken by someone else meanwhile.
          if (err instanceof NoRoom) throw new Fail(err.reason);
          const refusal = databaseRefusal(err);
          if (refusal?.code === '23505' && refusal.constraint === ORDER_NUMBER_CONSTRAINT) {
            // Eight random digits can collide: draw another number and write again.
            this.sql.exec('update checkout set order_number = ? where id = ?', `${(row.region ?? 'xx').toUpperCase()}-${randomDigits(8)}`, row.id);
            throw new Retry('order number taken; drew another');
          }
          // The database refuses this order's data itself (a data exception, a
          // NOT NULL, foreign key or CHECK constraint): retrying cannot help,
          // and would hold the stock and the authorisation for ever. Fail:
          // void, release, say why. Any other unique violation is retried.
          if (refusal && refusal.code !== '23505') throw new Fail('order_rejected');
          throw new Retry(`order write failed: ${err}`);
        });
      this.advance(row.id, 'reserved', 'capture', {});
    } finally {
      await db.close();
    }
  }

  /** Captures the authorised payment and records it. */
  private async capture(row: Row): Promise<void> {
    const outcome = row.total_amount === 0 ? ({ kind: 'captured' } as const) : await paymentProvider(this.env).capture(row.authorization_id!, `${row.id}:capture`);
    if (outcome.kind === 'retry') throw new Retry(outcome.detail);
    if (outcome.kind === 'failed') {
      // The provider will not capture (the authorisation was voided or has
      // lapsed): retrying cannot help. The order was written but is unpaid.
      await this.cancelUnpaidOrder(row, outcome.detail);
      return;
    }
    const db = createDatabase(this.env);
    let lsn: string | null = null;
    try {
      await db.primary
        .update(payments)
        .set({ status: 'captured', updatedAt: new Date() })
        .where(and(eq(payments.checkoutId, row.id), eq(payments.status, 'authorized')))
        .catch((err) => {
          throw new Retry(`payment update failed: ${err}`);
        });
      // After the order's last write: once a replica has replayed this far
      // it can show the buyer their order (read-your-writes).
      // Best effort: without it the buyer's reads fall back on the replica
      // lookup's primary retry, which is no reason to hold a paid order up.
      if (parseReplicas(this.env.DATABASE_REPLICA_URLS).length) lsn = await currentLsn(db.primary).catch(() => null);
    } finally {
      await db.close();
    }
    this.advance(row.id, 'paid', 'commit', { last_lsn: lsn });
  }

  /** Holds become sold; the cart empties; order.created goes to the queue. */
  private async commit(row: Row, request: CheckoutRequest): Promise<void> {
    const parts = JSON.parse(row.parts_json!) as HoldPart[];
    const refused = await commitParts(this.env, parts).catch((err) => {
      throw new Retry(`commit failed: ${err}`);
    });
    if (refused.length) {
      // The holds expired during a long outage and their units went back on
      // sale. The order cannot be filled as promised: cancel it and refund.
      await this.cancelPaidOrder(row, 'expired');
      return;
    }
    // Only what was bought leaves the cart: a line added in another tab while
    // paying stays for next time.
    const bought = (JSON.parse(row.lines_json!) as FrozenLine[]).map((l) => ({ variantId: l.variantId, quantity: l.quantity }));
    await clearCart(this.redis(), request.cartId, bought, this.pricing(row).code ?? '').catch(() => {
      // A cart that could not be emptied is a nuisance, not a lost order.
    });
    await this.env.ORDER_EVENTS.send({ type: 'order.created', orderId: row.order_id, at: new Date().toISOString(), data: { checkoutId: row.id } }).catch(() => {
      // The event is also in order_events (the outbox); a consumer can catch up from there.
    });
    this.advance(row.id, 'confirmed', 'done', {});
    this.countOutcome(row, 'confirmed');
  }

  /** Ends a checkout whose order was written and paid but cannot be filled. */
  private async cancelPaidOrder(row: Row, reason: string): Promise<void> {
    if (row.total_amount !== 0) {
      const refund = await paymentProvider(this.env).refund(row.authorization_id!, `${row.id}:refund`);
      if (refund.kind === 'retry') throw new Retry(refund.detail);
    }
    const db = createDatabase(this.env);
    try {
      await db.primary.transaction(async (tx) => {
        await tx.update(orders).set({ status: 'cancelled', updatedAt: new Date() }).where(eq(orders.id, row.order_id!));
        await tx.update(payments).set({ status: 'refunded', updatedAt: new Date() }).where(eq(payments.checkoutId, row.id));
        await tx.insert(orderEvents).values({ id: newId('oev'), orderId: row.order_id!, type: 'order.cancelled', payload: { reason } });
        await releaseUses(tx, row.id, true);
      });
    } catch (err) {
      throw new Retry(`order cancel failed: ${err}`);
    } finally {
      await db.close();
    }
    const parts = JSON.parse(row.parts_json!) as HoldPart[];
    await releaseParts(this.env, parts).catch(() => {});
    await this.announceCancelled(row, reason);
    this.finish(row.id, reason);
  }

  /**
   * Puts the cancellation on ORDER_EVENTS, as the admin API's cancel does, so
   * the buyer is told and merchants' webhooks hear it. Best effort: the
   * event is in order_events (the outbox) either way.
   */
  private async announceCancelled(row: Row, reason: string): Promise<void> {
    await this.env.ORDER_EVENTS.send({ type: 'order.cancelled', orderId: row.order_id, at: new Date().toISOString(), data: { checkoutId: row.id, reason } }).catch(() => {});
  }

  /** Ends a checkout whose order was written but whose payment cannot be captured. */
  private async cancelUnpaidOrder(row: Row, detail: string): Promise<void> {
    const db = createDatabase(this.env);
    try {
      await db.primary.transaction(async (tx) => {
        await tx.update(orders).set({ status: 'cancelled', updatedAt: new Date() }).where(eq(orders.id, row.order_id!));
        await tx.update(payments).set({ status: 'failed', updatedAt: new Date() }).where(and(eq(payments.checkoutId, row.id), eq(payments.status, 'authorized')));
        await tx.insert(orderEvents).values({ id: newId('oev'), orderId: row.order_id!, type: 'order.cancelled', payload: { reason: 'payment_failed', detail: detail.slice(0, 300) } });
        await releaseUses(tx, row.id, true);
      });
    } catch (err) {
      throw new Retry(`order cancel failed: ${err}`);
    } finally {
      await db.close();
    }
    await releaseParts(this.env, JSON.parse(row.parts_json!) as HoldPart[]).catch(() => {});
    await this.announceCancelled(row, 'payment_failed');
    this.finish(row.id, 'payment_failed');
  }

  /**
   * Ends the checkout `failed` with `reason`, undoing what was done: the
   * holds go back first (nothing can be sold with them now), then, if the
   * provider may hold an authorisation for this checkout, the `void` step
   * takes over. The shopper sees `failed` at once either way; no
   * authorisation is left standing, however long the provider is away.
   */
  private async fail(reason: string): Promise<void> {
    const row = this.row()!;
    if (row.pricing_json && this.pricing(row).holding) await this.releasePromotionUses(row);
    if (row.parts_json) {
      await releaseParts(this.env, JSON.parse(row.parts_json) as HoldPart[]).catch(async () => {
        // Holds expire by themselves; releasing early is a courtesy to other shoppers.
      });
    }
    // Before capture, an authorisation is voided, never refunded. One whose
    // answer never arrived (a timeout) may exist all the same.
    const mayHoldAuthorization = row.step !== 'capture' && row.step !== 'commit' && (row.authorization_id !== null || (row.step === 'authorize' && this.providerCalled()));
    if (!mayHoldAuthorization) return this.finish(row.id, reason);
    this.advance(row.id, 'failed', 'void', { reason });
    this.countOutcome(row, 'failed', reason);
    await this.ctx.storage.setAlarm(Date.now());
  }

  /**
   * Gives back the promotion uses this checkout held. Best effort: a hold
   * Postgres did not hear the release of lapses by itself
   * (`REDEMPTION_HOLD_MS`), so a code is never lost for good.
   */
  private async releasePromotionUses(row: Row): Promise<void> {
    const db = createDatabase(this.env);
    try {
      await releaseUses(db.primary, row.id);
    } catch (err) {
      console.warn(JSON.stringify({ level: 'warn', msg: 'promotion uses not released; they lapse', checkoutId: row.id, error: String(err).slice(0, 300) }));
    } finally {
      await db.close();
    }
  }

  /** Whether the authorise step has called the provider at least once. */
  private providerCalled(): boolean {
    return this.lastProviderCall() > 0;
  }

  /** When the authorise step last called the provider (ms), 0 if never. */
  private lastProviderCall(): number {
    const row = this.sql.exec<{ at: number | null }>(`select max(at) as at from transitions where step = 'authorize' and detail = 'calling provider'`).toArray()[0];
    return row?.at ?? 0;
  }

  /**
   * Compensation: voids this checkout's authorisation. When its id is not
   * known (the authorise call timed out), the provider is asked for the one
   * standing under this checkout's reference, without creating one; a
   * provider with no such lookup is sent the same authorise request again
   * under the same idempotency key, which answers with the original if it
   * made one (and, if it never saw the first, makes one that is voided at
   * once). A provider that refuses outright is logged for a person to check:
   * retrying a refusal would never end.
   */
  private async voidAuthorization(row: Row, request: CheckoutRequest): Promise<void> {
    const provider = paymentProvider(this.env);
    let authorizationId = row.authorization_id;
    if (!authorizationId) {
      if (provider.find) {
        const found = await provider.find(row.id);
        if (found.kind === 'retry') throw new Retry(found.detail);
        // "None" is only believed once a request the last timed-out call
        // sent can no longer land: until then it may still make one.
        if (found.kind === 'none' && Date.now() - this.lastProviderCall() < 2 * paymentCallTimeoutMs(this.env)) {
          throw new Retry('waiting for a timed-out authorise call to land before trusting "none"');
        }
        authorizationId = found.kind === 'found' ? found.authorizationId : null;
      } else {
        const replay = await provider.authorize(
          { amount: row.total_amount!, currency: row.currency!, token: request.payment.token, reference: row.id },
          `${row.id}:authorize`,
        );
        if (replay.kind === 'retry') throw new Retry(replay.detail);
        if (replay.kind === 'failed') return this.needsReview(row, `replayed authorise refused: ${replay.detail}`);
        authorizationId = replay.kind === 'authorized' ? replay.authorizationId : null;
      }
      if (authorizationId) this.sql.exec('update checkout set authorization_id = ? where id = ?', authorizationId, row.id);
    }
    if (authorizationId) {
      const voided = await provider.void(authorizationId, `${row.id}:void`);
      if (voided.kind === 'retry') throw new Retry(voided.detail);
      if (voided.kind === 'failed') return this.needsReview(row, `void refused: ${voided.detail}`);
    }
    this.advance(row.id, 'failed', 'done', {});
  }

  /** Ends compensation the saga cannot finish itself, loudly: an authorisation may stand until it lapses. */
  private needsReview(row: Row, detail: string): void {
    console.error(JSON.stringify({ level: 'error', event: 'checkout.needs_review', checkoutId: row.id, authorizationId: row.authorization_id, detail: detail.slice(0, 300) }));
    this.log('failed', 'void', `needs review: ${detail.slice(0, 300)}`);
    this.advance(row.id, 'failed', 'done', {});
  }

  private finish(id: string, reason: string): void {
    const now = Date.now();
    this.ctx.storage.transactionSync(() => {
      this.sql.exec(`update checkout set status = 'failed', step = 'done', reason = ?, updated_at = ? where id = ?`, reason, now, id);
      this.sql.exec(`insert into transitions (status, step, detail, at) values ('failed', 'done', ?, ?)`, reason, now);
    });
    this.countOutcome(this.row()!, 'failed', reason);
  }

  /**
   * One data point per checkout outcome (Workers Analytics Engine; a no-op
   * without the binding). Called where the shopper-visible state becomes
   * final, after it is stored: at most once per checkout, since a final
   * state is never left. A paid order the store cancels later (capture
   * refused, holds lapsed) was confirmed to nobody and counts as failed.
   */
  private countOutcome(row: Row, outcome: 'confirmed' | 'failed', reason?: string): void {
    countCheckoutOutcome(this.env, { region: row.region ?? 'unknown', outcome, ...(reason ? { reason } : {}), latencyMs: Date.now() - row.created_at });
  }

  /** Moves to `step` with `status`, saving the given columns, in one transaction. */
  private advance(id: string, status: CheckoutStatus, step: Step, fields: Partial<Record<keyof Row, string | number | null>>): void {
    const now = Date.now();
    const cols = Object.keys(fields);
    this.ctx.storage.transactionSync(() => {
      this.sql.exec(
        `update checkout set status = ?, step = ?, attempts = 0, updated_at = ?, step_at = ?${cols.map((c) => `, ${c} = ?`).join('')} where id = ?`,
        status, step, now, now, ...cols.map((c) => fields[c as keyof Row] ?? null), id,
      );
      this.sql.exec('insert into transitions (status, step, at) values (?, ?, ?)', status, step, now);
    });
  }

  private log(status: string, step: string, detail: string): void {
    this.sql.exec('insert into transitions (status, step, detail, at) values (?, ?, ?, ?)', status, step, detail, Date.now());
  }

  private row(): Row | undefined {
    return this.sql.exec<Row>('select * from checkout limit 1').toArray()[0];
  }

  private stateOf(row: Row): CheckoutState {
    return {
      checkoutId: row.id,
      status: row.status,
      ...(row.reason ? { reason: row.reason } : {}),
      ...(row.status === 'confirmed' && row.order_id ? { orderId: row.order_id, orderToken: row.order_token! } : {}),
      ...(row.status === 'confirmed' && row.last_lsn ? { readAfter: row.last_lsn } : {}),
    };
  }

  private redis(): Redis {
    return new Redis({ url: this.env.UPSTASH_REDIS_REST_URL, token: this.env.UPSTASH_REDIS_REST_TOKEN, enableTelemetry: false, retry: { retries: 1, backoff: () => 100 } });
  }
}

/** Tax contained in a tax-inclusive total: total × rate / (1 + rate), rounded to the minor unit. */
export function taxIncluded(total: number, rateBps: number): number {
  return Math.round((total * rateBps) / (10_000 + rateBps));
}

function randomDigits(n: number): string {
  const bytes = crypto.getRandomValues(new Uint8Array(n));
  return [...bytes].map((b) => String(b % 10)).join('');
}

