/**
 * The flash-sale queue end to end, through the real Worker in workerd:
 * 5,000 shoppers (each its own device cookie and client address) press
 * "buy" at the start of a sale of 300 units capped at 2 per shopper, follow
 * their ticket over the queue's WebSocket, and check out when admitted.
 * Exactly 300 units are sold, nobody gets more than 2, the queue admits in
 * ticket order within each window's budget, and everyone still waiting
 * hears "sold out" within a second of the last unit. Tickets that were
 * edited, or copied to another session, are refused.
 */
import { env } from 'cloudflare:workers';
import { sql } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import { createDatabase } from '../../db/client';
import { TICK_MS } from '../../durable-objects/sale-queue';
import { regionLevels } from '../../workers/inventory/shards';
import { queueStub } from '../../workers/sales/tickets';
import { admin, settle, simAuthorizations } from './shop';
import { inPool, openQueueSocket, SaleShopper, scheduledSale, until, type QueueSocket } from './sale';

const SHOPPERS = 5_000;
const UNITS = 300;
const CAP = 2;
/**
 * Admissions per second. 300 units go to roughly 200 shoppers, so the sale
 * sells out about a minute in. Slow on purpose: on this 2-core machine the
 * 5,000 joins (ticket + socket) run at only ~35/s, and the sold-out notice
 * is only tested for shoppers already waiting on an open socket then.
 */
const RATE = 3;
/** Joins (ticket + socket) in flight at once: the two cores, not the test, are the limit. */
const JOINS_IN_FLIGHT = 40;
/**
 * A 5xx is what a page retries (the same request, the same Idempotency-Key):
 * under this load Postgres connections time out or drop (see the report).
 * Counted and logged.
 */
const RETRIES = 30;

/** What a shopper does once admitted. */
type Plan = 'one' | 'two' | 'three_in_one_cart' | 'three_parallel' | 'two_then_one';
const planOf = (i: number): Plan => {
  const k = i % 20;
  if (k === 0) return 'three_in_one_cart';
  if (k === 1) return 'three_parallel';
  if (k === 2) return 'two_then_one';
  return k < 11 ? 'two' : 'one';
};

interface Outcome {
  checkoutId: string;
  quantity: number;
  status: string;
  reason?: string;
}

interface Runner {
  index: number;
  plan: Plan;
  shopper: SaleShopper;
  position?: number;
  socket?: QueueSocket;
  joinedAt?: number;
  admittedSeenAt?: number;
  soldOutSeenAt?: number;
  buying?: Promise<void>;
  outcomes: Outcome[];
  problems: string[];
}

/** Unique addresses: a shared one would share its cap between two shoppers. */
const ipOf = (i: number) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
const pct = (sorted: number[], p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]! : null);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('flash sale queue', () => {
  it(`${SHOPPERS} shoppers on the queue's WebSocket for ${UNITS} units capped at ${CAP}: exactly ${UNITS} sold, nobody above the cap, admitted in order, the rest told sold out within a second`, async () => {
    const sale = await scheduledSale({ units: UNITS, cap: CAP, rate: RATE, shards: 4, startsInMs: 3_000 });
    const runners: Runner[] = Array.from({ length: SHOPPERS }, (_, i) => ({ index: i, plan: planOf(i), shopper: new SaleShopper(ipOf(i + 1)), outcomes: [], problems: [] }));

    let unavailable = 0;
    /** Calls `attempt` again after a 5xx, as the shop's page does. */
    const retried = async (attempt: () => Promise<Response>): Promise<Response> => {
      for (let i = 0; ; i++) {
        const res = await attempt();
        if (res.status < 500 || i >= RETRIES) return res;
        unavailable++;
        await res.body?.cancel();
        await sleep(200 + Math.random() * 300);
      }
    };
    /** One checkout of `quantity` in a fresh cart, followed to its end. */
    const checkout = async (r: Runner, quantity: number): Promise<Outcome> => {
      const created = await retried(() => r.shopper.call('/api/carts', { method: 'POST', body: '{}' }));
      const cartId = (await created.json<{ id: string }>()).id;
      const added = await retried(() => r.shopper.call(`/api/carts/${cartId}/items`, { method: 'POST', body: JSON.stringify({ variantId: sale.variantId, quantity }) }));
      if (added.status !== 200) r.problems.push(`cart add answered ${added.status}`);
      const key = `key-${crypto.randomUUID()}`;
      const res = await retried(() => r.shopper.checkout(cartId, { 'idempotency-key': key }));
      if (res.status !== 202) {
        r.problems.push(`checkout answered ${res.status}: ${await res.text()}`);
        return { checkoutId: '', quantity, status: `http_${res.status}` };
      }
      const { checkoutId } = await res.json<{ checkoutId: string }>();
      const state = await settle(checkoutId, 240_000);
      const outcome: Outcome = { checkoutId, quantity, status: state.status, ...(state.reason ? { reason: state.reason } : {}) };
      r.outcomes.push(outcome);
      return outcome;
    };
    const buy = async (r: Runner): Promise<void> => {
      switch (r.plan) {
        case 'one':
          await checkout(r, 1);
          return;
        case 'two':
          await checkout(r, 2);
          return;
        case 'three_in_one_cart': {
          const over = await checkout(r, 3);
          if (over.reason !== 'cap_exceeded') r.problems.push(`3 in one cart: ${over.status} ${over.reason}`);
          else await checkout(r, 2);
          return;
        }
        case 'three_parallel':
          await Promise.all([1, 1, 1].map(() => checkout(r, 1)));
          return;
        case 'two_then_one': {
          const first = await checkout(r, 2);
          if (first.status !== 'confirmed') return;
          const more = await checkout(r, 1);
          if (more.reason !== 'cap_exceeded') r.problems.push(`a third unit after two: ${more.status} ${more.reason}`);
          return;
        }
      }
    };
    const admitted = (r: Runner, at: number) => {
      if (r.buying) return;
      r.admittedSeenAt = at;
      r.buying = buy(r).catch((err) => void r.problems.push(`buying failed: ${err}`));
    };

    const ticketMs: number[] = [];
    const socketMs: number[] = [];
    try {
      await run();
    } finally {
      for (const r of runners) r.socket?.close();
    }

    async function run() {
      await until(sale.startsAt + 5);
      const started = Date.now();
      await inPool(runners, JOINS_IN_FLIGHT, async (r) => {
        const t0 = Date.now();
        const res = await retried(() => r.shopper.join(sale.saleId));
        // 200: a retry after a failure past the queue got the same ticket back.
        if (res.status !== 201 && res.status !== 200) {
          r.problems.push(`join answered ${res.status}: ${await res.text()}`);
          return;
        }
        const ticket = await res.json<any>();
        r.joinedAt = Date.now();
        ticketMs.push(r.joinedAt - t0);
        r.position = ticket.position;
        r.socket = await openQueueSocket(retried, r.shopper, sale.saleId, ({ at, message }) => {
          if (message.soldOut && r.soldOutSeenAt === undefined) r.soldOutSeenAt = at;
          if ((message.type === 'status' && message.state === 'admitted') || (message.type === 'progress' && message.admittedThrough >= r.position!)) admitted(r, at);
        });
        socketMs.push(r.socket.openedAt - r.joinedAt);
        if (ticket.state === 'admitted') admitted(r, r.joinedAt);
      });
      const joinedIn = Date.now() - started;
      console.log(JSON.stringify({ flashQueueJoined: { ms: joinedIn, retriedAfter5xx: unavailable, buying: runners.filter((r) => r.buying).length, soldOutSeen: runners.filter((r) => r.soldOutSeenAt !== undefined).length } }));

      // Everyone is either buying or has heard the sale is sold out.
      const deadline = Date.now() + 180_000;
      while (!runners.every((r) => r.buying || r.soldOutSeenAt !== undefined || r.problems.length) && Date.now() < deadline) await sleep(100);
      await Promise.all(runners.map((r) => r.buying));
      const seconds = (Date.now() - started) / 1000;
      for (const r of runners) r.socket?.close();

      expect(runners.flatMap((r) => r.problems.map((p) => `shopper ${r.index} (${r.plan}): ${p}`))).toEqual([]);
      expect(runners.filter((r) => !r.buying && r.soldOutSeenAt === undefined).map((r) => r.index)).toEqual([]);

      // Exactly the stock is sold, and the orders say so.
      expect((await regionLevels(env, 'sg', [sale.variantId])).get(sale.variantId)).toMatchObject({ received: UNITS, sold: UNITS, held: 0, available: 0 });
      const outcomes = runners.flatMap((r) => r.outcomes.map((o) => ({ ...o, runner: r })));
      const confirmed = outcomes.filter((o) => o.status === 'confirmed');
      const db = createDatabase(env);
      let perCheckout: { checkout_id: string; units: number }[];
      try {
        ({ rows: perCheckout } = await db.primary.execute<{ checkout_id: string; units: number }>(
          sql`select o.checkout_id, sum(l.quantity)::int as units from orders o join order_lines l on l.order_id = o.id where l.variant_id = ${sale.variantId} and o.status = 'confirmed' group by o.checkout_id`,
        ));
      } finally {
        await db.close();
      }
      expect(perCheckout.reduce((n, r) => n + r.units, 0)).toBe(UNITS);
      expect(new Set(perCheckout.map((r) => r.checkout_id))).toEqual(new Set(confirmed.map((o) => o.checkoutId)));

      // Nobody above the cap: by the orders in Postgres, per shopper.
      const ownerOf = new Map(outcomes.map((o) => [o.checkoutId, o.runner]));
      const unitsOf = new Map<Runner, number>();
      for (const row of perCheckout) unitsOf.set(ownerOf.get(row.checkout_id)!, (unitsOf.get(ownerOf.get(row.checkout_id)!) ?? 0) + row.units);
      expect([...unitsOf].filter(([, n]) => n > CAP).map(([r, n]) => `${r.index}: ${n}`)).toEqual([]);
      for (const o of outcomes.filter((o) => o.quantity > CAP)) expect(o).toMatchObject({ status: 'failed', reason: 'cap_exceeded' });
      const reasons: Record<string, number> = {};
      for (const o of outcomes) reasons[o.status === 'failed' ? o.reason! : o.status] = (reasons[o.status === 'failed' ? o.reason! : o.status] ?? 0) + 1;
      // Out of stock happens only when someone admitted finds less than they
      // ask for; the sold-out mark stops admission, so a run may end without.
      expect(Object.keys(reasons).sort()).toEqual(expect.arrayContaining(['cap_exceeded', 'confirmed']));
      expect(Object.keys(reasons).filter((k) => !['cap_exceeded', 'confirmed', 'out_of_stock'].includes(k))).toEqual([]);

      // Charges equal orders: one captured authorisation per confirmed checkout, none for the rest.
      const confirmedIds = new Set(confirmed.map((o) => o.checkoutId));
      const charges = await inPool(outcomes, 50, async (o) => (await simAuthorizations(o.checkoutId)).filter((a) => a.status === 'captured').length);
      expect(outcomes.filter((o, i) => charges[i] !== (confirmedIds.has(o.checkoutId) ? 1 : 0)).map((o) => o.checkoutId)).toEqual([]);

      // Admission: first come first served, each 250 ms window within its budget.
      const queue = queueStub(env, sale.saleId, 'sg', 0);
      const admissions = await queue.admissions();
      expect(admissions.map((a) => a.position)).toEqual(Array.from({ length: SHOPPERS }, (_, i) => i + 1));
      const admittedCount = admissions.filter((a) => a.admittedAt !== null).length;
      // The admitted are a prefix of the queue, admitted at non-decreasing times: nobody overtook anyone.
      expect(admissions.slice(0, admittedCount).every((a) => a.admittedAt !== null)).toBe(true);
      expect(admissions.slice(admittedCount).every((a) => a.admittedAt === null)).toBe(true);
      const overtaken = admissions.slice(1, admittedCount).filter((a, i) => a.admittedAt! < admissions[i]!.admittedAt!);
      expect(overtaken).toEqual([]);
      expect(admissions.slice(0, admittedCount).filter((a) => a.admittedAt! < a.issuedAt)).toEqual([]);
      const perMs = RATE / 1000;
      const budget = (w: number) => Math.floor(perMs * (w + 1) * TICK_MS) - Math.floor(perMs * w * TICK_MS);
      const perWindow = new Map<number, number>();
      for (const a of admissions.slice(0, admittedCount)) {
        const w = Math.floor((a.admittedAt! - sale.startsAt) / TICK_MS);
        perWindow.set(w, (perWindow.get(w) ?? 0) + 1);
      }
      expect([...perWindow].filter(([w, n]) => w < 0 || n > budget(w))).toEqual([]);
      // Each shopper's place is the order its ticket was taken in.
      const byPosition = new Map(runners.map((r) => [r.position!, r]));
      expect(byPosition.size).toBe(SHOPPERS);
      // Every admitted shopper heard so, and nobody not admitted went to buy.
      const admittedRunners = admissions.slice(0, admittedCount).map((a) => byPosition.get(a.position)!);
      expect(admittedRunners.filter((r) => !r.buying).map((r) => r.position)).toEqual([]);
      expect(runners.filter((r) => r.buying && r.position! > admittedCount).map((r) => r.position)).toEqual([]);
      const admissionNotice = admittedRunners.map((r, i) => r.admittedSeenAt! - admissions[i]!.admittedAt!).sort((a, b) => a - b);

      // Sold out: the queue's mark, the last unit reserved and every waiting shopper's notice, all within a second.
      const report = await queue.report();
      expect(report.soldOutAt).not.toBeNull();
      const soldOutAt = report.soldOutAt!;
      const reservedAt = await inPool(confirmed, 50, async (o) => {
        const history = await env.CHECKOUT.get(env.CHECKOUT.idFromName(o.checkoutId)).history();
        return history.find((h) => h.status === 'reserved' && h.step === 'authorize')!.at;
      });
      const lastUnitAt = Math.max(...reservedAt);
      expect(Math.abs(soldOutAt - lastUnitAt)).toBeLessThanOrEqual(1_000);
      const waiting = admissions.filter((a) => a.admittedAt === null).map((a) => byPosition.get(a.position)!);
      const waitingAtSoldOut = waiting.filter((r) => r.socket!.openedAt <= soldOutAt);
      const notice = waitingAtSoldOut.map((r) => r.soldOutSeenAt! - Math.min(lastUnitAt, soldOutAt)).sort((a, b) => a - b);
      expect(waitingAtSoldOut.filter((r) => r.soldOutSeenAt === undefined).map((r) => r.position)).toEqual([]);
      expect(notice.filter((ms) => ms > 1_000)).toEqual([]);
      // Not a vacuous check: hundreds were waiting on their sockets when the last unit went.
      expect(waitingAtSoldOut.length).toBeGreaterThanOrEqual(300);
      // Those who joined after the mark heard it in their first message.
      const late = waiting.filter((r) => r.socket!.openedAt > soldOutAt);
      expect(late.filter((r) => !r.socket!.messages[0]?.message.soldOut).map((r) => r.position)).toEqual([]);

      // The merchant's report adds up.
      const res = await admin(`/admin/api/sales/${sale.saleId}/report`, 'GET');
      expect(res.status).toBe(200);
      const summary = await res.json<any>();
      expect(summary.totals).toEqual({ ticketsIssued: SHOPPERS, admitted: admittedCount, orders: confirmed.length, unitsSold: UNITS });
      expect(summary.regions.sg.soldOutAt).toBe(new Date(soldOutAt).toISOString());
      // Every refusal the shoppers met is in the report (a reason nobody met is absent, not 0).
      expect(summary.rejected).toMatchObject({ cap_exceeded: reasons.cap_exceeded, ...(reasons.out_of_stock ? { out_of_stock: reasons.out_of_stock } : {}) });

      console.log(
        JSON.stringify({
          flashQueue: {
            shoppers: SHOPPERS,
            units: UNITS,
            rate: RATE,
            seconds,
            joinSeconds: joinedIn / 1000,
            retriedAfter5xx: unavailable,
            joinLatencyMs: { ticketP50: pct(ticketMs.sort((a, b) => a - b), 50), ticketP99: pct(ticketMs, 99), socketP50: pct(socketMs.sort((a, b) => a - b), 50), socketP99: pct(socketMs, 99) },
            ticketsPerSecond: Math.round(SHOPPERS / (joinedIn / 1000)),
            admitted: admittedCount,
            orders: confirmed.length,
            outcomes: reasons,
            waitingAtSoldOut: waitingAtSoldOut.length,
            joinedAfterSoldOut: late.length,
            soldOutMinusLastUnitMs: soldOutAt - lastUnitAt,
            soldOutNoticeMs: { max: notice.at(-1) ?? null, p99: pct(notice, 99), p50: pct(notice, 50) },
            admissionNoticeMs: { max: admissionNotice.at(-1) ?? null, p99: pct(admissionNotice, 99), p50: pct(admissionNotice, 50) },
            checkoutLatencyMs: summary.checkoutLatencyMs,
          },
        }),
      );
    }
  }, 600_000);

  it('refuses an edited ticket and a ticket reused by another session, at the queue and at checkout, and nothing is bought with them', async () => {
    const sale = await scheduledSale({ units: 5, cap: 2, rate: 100 });
    await until(sale.startsAt + 50);
    const owner = new SaleShopper(ipOf(70_001));
    const thief = new SaleShopper(ipOf(70_002));
    expect((await owner.join(sale.saleId)).status).toBe(201);
    expect((await thief.join(sale.saleId)).status).toBe(201);
    expect((await owner.waitTurn(sale.saleId)).state).toBe('admitted');

    // Forged: the thief's own ticket with the owner's ticket id written in, its MAC kept.
    const decode = (part: string) => JSON.parse(atob(part.replace(/-/g, '+').replace(/_/g, '/')));
    const encode = (value: unknown) => btoa(JSON.stringify(value)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
    const [payload, mac] = thief.ticket!.split('.') as [string, string];
    const forged = `${encode({ ...decode(payload), t: decode(owner.ticket!.split('.')[0]!).t })}.${mac}`;
    const madeUp = `${encode({ ...decode(owner.ticket!.split('.')[0]!), d: 'x'.repeat(26) })}.${'A'.repeat(43)}`;

    for (const [ticket, reason] of [[forged, 'invalid'], [madeUp, 'invalid'], [owner.ticket!, 'other_session']] as const) {
      const queue = await thief.call(`/api/sales/${sale.saleId}/queue`, {}, { 'x-queue-ticket': ticket });
      expect(queue.status).toBe(403);
      expect((await queue.json<any>()).error).toMatchObject({ code: 'invalid_ticket', details: { reason } });
      const socket = await thief.call(`/api/sales/${sale.saleId}/queue/ws`, { headers: { upgrade: 'websocket' } }, { 'x-queue-ticket': ticket });
      expect(socket.status).toBe(403);
      expect((await socket.json<any>()).error.code).toBe('invalid_ticket');
      const checkout = await thief.checkout(await thief.cart(sale.variantId, 1), { 'x-queue-ticket': ticket });
      expect(checkout.status).toBe(403);
      expect((await checkout.json<any>()).error).toMatchObject({ code: 'invalid_ticket', details: { reason } });
    }
    // The owner's session alone still checks out with it; the thief bought nothing.
    expect((await regionLevels(env, 'sg', [sale.variantId])).get(sale.variantId)).toMatchObject({ available: 5, held: 0, sold: 0 });
    const mine = await owner.checkout(await owner.cart(sale.variantId, 1));
    expect(mine.status).toBe(202);
    expect(await settle((await mine.json<any>()).checkoutId)).toMatchObject({ status: 'confirmed' });
    expect((await regionLevels(env, 'sg', [sale.variantId])).get(sale.variantId)).toMatchObject({ available: 4, held: 0, sold: 1 });
  });
});
