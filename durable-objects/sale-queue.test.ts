/**
 * The SaleQueue object on its own: tickets per device, first come first
 * served at the configured rate, admission windows, sold out, reports and
 * the page's WebSocket.
 */
import { runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { shardsOf, shardStub } from '../workers/inventory/shards';
import { randomToken } from '../workers/lib/ids';
import { queueStub } from '../workers/sales/tickets';
import { TICK_MS, type SaleQueue, type SaleQueueConfig } from './sale-queue';

/** A configured queue object of a fresh sale; `at` shifts the start relative to now. */
async function queue(overrides: Partial<SaleQueueConfig> = {}): Promise<{ stub: DurableObjectStub<SaleQueue>; config: SaleQueueConfig }> {
  const config: SaleQueueConfig = {
    saleId: `sale_${randomToken()}`,
    region: 'sg',
    shard: 0,
    shards: 1,
    startsAt: Date.now() - 1,
    endsAt: null,
    admissionRate: 8,
    admissionTtlMs: 60_000,
    variantIds: [`var_${randomToken()}`],
    ...overrides,
  };
  const stub = queueStub(env, config.saleId, 'sg', 0);
  await stub.configure(config);
  return { stub, config };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Waits for the start of the next admission window of a sale that started at `startsAt`. */
const nextWindow = (startsAt: number) => sleep(TICK_MS - ((Date.now() - startsAt) % TICK_MS) + 5);

describe('sale queue: tickets', () => {
  it('gives each device one ticket, in order of arrival, and the same ticket when it asks again', async () => {
    const { stub } = await queue();
    const a = await stub.issue('dev-a');
    const b = await stub.issue('dev-b');
    const again = await stub.issue('dev-a');
    if (!a.ok || !b.ok || !again.ok) throw new Error('expected tickets');
    expect([a.status.position, b.status.position]).toEqual([1, 2]);
    expect(a.created && b.created).toBe(true);
    expect(again).toMatchObject({ created: false, status: { ticketId: a.status.ticketId, position: 1 } });
  });

  it('refuses tickets before the start and after the end, and for a sale it was never told about', async () => {
    const early = await queue({ startsAt: Date.now() + 60_000 });
    expect(await early.stub.issue('dev')).toMatchObject({ ok: false, reason: 'not_started', startsAt: early.config.startsAt });
    const over = await queue({ startsAt: Date.now() - 10_000, endsAt: Date.now() - 1 });
    expect(await over.stub.issue('dev')).toMatchObject({ ok: false, reason: 'ended' });
    expect(await queueStub(env, `sale_${randomToken()}`, 'sg', 0).issue('dev')).toEqual({ ok: false, reason: 'unknown_sale' });
  });

  it('knows nothing of a ticket it did not issue, and checks admission against the device it was issued to', async () => {
    const { stub } = await queue({ admissionRate: 1000 });
    const t = await stub.issue('dev-a');
    if (!t.ok) throw new Error('expected a ticket');
    expect(await stub.status(`qt_${randomToken()}`)).toBeNull();
    expect(await stub.admission(t.status.ticketId, 'dev-b')).toEqual({ ok: false, reason: 'unknown_ticket' });
    expect(await stub.admission(t.status.ticketId, 'dev-a')).toMatchObject({ ok: true });
  });
});

describe('sale queue: settings', () => {
  it('keeps the newer settings when two admin changes arrive out of order', async () => {
    const { stub, config } = await queue({ admissionRate: 8, version: 2 });
    await stub.configure({ ...config, admissionRate: 400, version: 1 });
    const t = await stub.issue('dev-a');
    expect(t.ok && t.status.ratePerSecond).toBe(8);
    await stub.configure({ ...config, admissionRate: 400, version: 3 });
    expect((await stub.status(t.ok ? t.status.ticketId : ''))!.ratePerSecond).toBe(400);
  });
});

describe('sale queue: admission', () => {
  it('admits first come, first served, no more per window than the rate allows, whether or not anyone polls', async () => {
    // 8 a second: 2 per 250 ms window.
    const { stub, config } = await queue({ admissionRate: 8 });
    await nextWindow(config.startsAt);
    const tickets = [];
    for (let i = 0; i < 7; i++) tickets.push(await stub.issue(`dev-${i}`));
    // The first window has room for two.
    expect(tickets.map((t) => t.ok && t.status.state)).toEqual(['admitted', 'admitted', 'waiting', 'waiting', 'waiting', 'waiting', 'waiting']);
    // The same window again admits nothing more, however often the alarm runs.
    await runInDurableObject(stub, async (instance: SaleQueue) => {
      await instance.alarm();
      await instance.alarm();
    });
    expect((await stub.admissions()).filter((a) => a.admittedAt !== null)).toHaveLength(2);
    // Nobody polls: the alarm admits the next windows on its own.
    await sleep(2 * TICK_MS + 50);
    for (let i = 0; i < 3; i++) await runDurableObjectAlarm(stub);
    const admitted = (await stub.admissions()).filter((a) => a.admittedAt !== null);
    expect(admitted.length).toBeGreaterThanOrEqual(4);
    expect(admitted.map((a) => a.position)).toEqual(admitted.map((_, i) => i + 1));
    const times = admitted.map((a) => a.admittedAt!);
    expect(times).toEqual([...times].sort((x, y) => x - y));
    // No window holds more than two admissions.
    const perWindow = new Map<number, number>();
    for (const t of times) perWindow.set(Math.floor((t - config.startsAt) / TICK_MS), (perWindow.get(Math.floor((t - config.startsAt) / TICK_MS)) ?? 0) + 1);
    expect(Math.max(...perWindow.values())).toBeLessThanOrEqual(2);
  });

  it('tells a waiting ticket how many are ahead and how long that takes at the rate', async () => {
    const { stub, config } = await queue({ admissionRate: 4 });
    await nextWindow(config.startsAt);
    for (let i = 0; i < 5; i++) await stub.issue(`dev-${i}`);
    const last = await stub.issue('dev-last');
    if (!last.ok) throw new Error('expected a ticket');
    // One admitted in this window (4/s is one per 250 ms); four ahead of the sixth.
    expect(last.status).toMatchObject({ state: 'waiting', position: 6, ahead: 4, admittedThrough: 1, ratePerSecond: 4, estimatedWaitSeconds: 2 });
  });

  it('lets an admitted ticket check out until its admission runs out, then gives the device a new place at the back', async () => {
    const { stub } = await queue({ admissionRate: 1000, admissionTtlMs: 300 });
    const t = await stub.issue('dev-a');
    if (!t.ok) throw new Error('expected a ticket');
    expect(await stub.admission(t.status.ticketId, 'dev-a')).toMatchObject({ ok: true, expiresAt: t.status.admittedAt! + 300 });
    await sleep(400);
    expect(await stub.admission(t.status.ticketId, 'dev-a')).toEqual({ ok: false, reason: 'admission_expired' });
    expect(await stub.status(t.status.ticketId)).toMatchObject({ state: 'expired' });
    const again = await stub.issue('dev-a');
    expect(again).toMatchObject({ ok: true, created: true, status: { position: 2 } });
  });

  it('stops admitting once the sale ends, and says so', async () => {
    const { stub, config } = await queue({ admissionRate: 1 });
    await nextWindow(config.startsAt);
    await stub.issue('dev-a');
    const waiting = await stub.issue('dev-b');
    if (!waiting.ok) throw new Error('expected a ticket');
    await stub.configure({ ...config, endsAt: Date.now() });
    expect(await stub.status(waiting.status.ticketId)).toMatchObject({ state: 'ended' });
    expect(await stub.admission(waiting.status.ticketId, 'dev-b')).toEqual({ ok: false, reason: 'ended' });
  });
});

describe('sale queue: sold out', () => {
  it('tells every waiting ticket at once when the last variant of the sale is gone, and admits no one after', async () => {
    const variants = [`var_${randomToken()}`, `var_${randomToken()}`];
    // Both really are empty: the object's own stock check (at its first
    // alarm, a window from now) must agree with the notices pushed before it.
    for (const id of variants) await shardStub(env, 'sg', shardsOf(id)[0]!).setReceived(id, 0);
    // 4 a second: one per window, so of two arrivals in one window the first is in.
    const { stub, config } = await queue({ admissionRate: 4, variantIds: variants });
    await nextWindow(config.startsAt);
    const first = await stub.issue('dev-a');
    const second = await stub.issue('dev-b');
    if (!first.ok || !second.ok) throw new Error('expected tickets');
    // One of two variants gone: still selling.
    await stub.soldOut([variants[0]!, 'var_not_in_this_sale']);
    expect(await stub.status(second.status.ticketId)).toMatchObject({ state: 'waiting', soldOut: false });
    const at = Date.now();
    await stub.soldOut([variants[1]!], at);
    expect(await stub.status(second.status.ticketId)).toMatchObject({ state: 'sold_out', soldOut: true, soldOutAt: at });
    // An admitted ticket keeps its admission: units held by failing checkouts may come back.
    expect(await stub.status(first.status.ticketId)).toMatchObject({ state: 'admitted', soldOut: true });
    await sleep(2 * TICK_MS);
    await runDurableObjectAlarm(stub);
    expect((await stub.status(second.status.ticketId))!.admittedAt).toBeUndefined();
  });

  it('finds out from the inventory objects when a sold-out notice was missed, and reopens when units come back', async () => {
    const variantId = `var_${randomToken()}`;
    const inv = shardStub(env, 'sg', shardsOf(variantId)[0]!);
    await inv.setReceived(variantId, 0);
    const { stub, config } = await queue({ admissionRate: 1, variantIds: [variantId] });
    await nextWindow(config.startsAt);
    await stub.issue('dev-a');
    const waiting = await stub.issue('dev-b');
    if (!waiting.ok) throw new Error('expected a ticket');
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await stub.status(waiting.status.ticketId)).toMatchObject({ state: 'sold_out' });
    // A unit comes back (a checkout failed and released its hold): the queue moves again.
    await inv.setReceived(variantId, 1);
    await sleep(2_050);
    await runDurableObjectAlarm(stub);
    expect(await stub.status(waiting.status.ticketId)).toMatchObject({ soldOut: false });
  });
});

describe('sale queue: the page socket', () => {
  it('sends the ticket its status on connect and every waiting page the sold-out news', async () => {
    const { stub, config } = await queue({ admissionRate: 1 });
    await nextWindow(config.startsAt);
    await stub.issue('dev-a');
    const t = await stub.issue('dev-b');
    if (!t.ok) throw new Error('expected a ticket');
    const res = await stub.fetch(`https://queue/ws?ticket=${t.status.ticketId}`, { headers: { upgrade: 'websocket' } });
    expect(res.status).toBe(101);
    const ws = res.webSocket!;
    const messages: any[] = [];
    const soldOut = new Promise<void>((resolve) =>
      ws.addEventListener('message', (e) => {
        const m = JSON.parse(e.data as string);
        messages.push(m);
        if (m.soldOut) resolve();
      }),
    );
    ws.accept();
    await stub.soldOut(config.variantIds);
    await soldOut;
    expect(messages[0]).toMatchObject({ type: 'status', ticketId: t.status.ticketId, state: 'waiting', position: 2 });
    expect(messages.at(-1)).toMatchObject({ type: 'progress', soldOut: true });
    ws.close(1000, 'done');
  });

  it('refuses a socket for a ticket it never issued, and a plain request', async () => {
    const { stub } = await queue();
    expect((await stub.fetch(`https://queue/ws?ticket=qt_${randomToken()}`, { headers: { upgrade: 'websocket' } })).status).toBe(404);
    expect((await stub.fetch('https://queue/ws')).status).toBe(426);
  });
});

describe('sale queue: report', () => {
  it('counts tickets, admissions and each checkout once, however often it is reported', async () => {
    const { stub } = await queue({ admissionRate: 1000 });
    await stub.issue('dev-a');
    await stub.issue('dev-b');
    await stub.recordCheckout({ checkoutId: 'chk_1', outcome: 'confirmed', latencyMs: 900, units: 2 });
    await stub.recordCheckout({ checkoutId: 'chk_1', outcome: 'confirmed', latencyMs: 900, units: 2 });
    await stub.recordCheckout({ checkoutId: 'chk_2', outcome: 'failed', reason: 'cap_exceeded', latencyMs: 300, units: 1 });
    const report = await stub.report();
    expect(report).toMatchObject({ issued: 2, admitted: 2, soldOutAt: null, latenciesMs: [900] });
    expect(report.checkouts).toEqual([
      { outcome: 'confirmed', reason: null, count: 1, units: 2 },
      { outcome: 'failed', reason: 'cap_exceeded', count: 1, units: 1 },
    ]);
  });
});
