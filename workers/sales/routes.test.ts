import { env } from 'cloudflare:workers';
import { describe, expect, inject, it } from 'vitest';
import { admin, call, cartWith, checkoutBody, json, settle, stockedVariant } from '../../test/workers/shop';
import { signedInShopper } from '../auth/test-helpers';
import { regionLevels } from '../inventory/shards';
import { SaleShopper, scheduledSale, until } from '../../test/workers/sale';
import { createApp } from '../app';
import { checkoutIdFor } from '../checkout/routes';
import { randomToken } from '../lib/ids';
import { signToken } from '../lib/signed';

describe('flash sale: queue to order', () => {
  it('admits a ticket, which then checks out within the cap', async () => {
    const sale = await scheduledSale({ units: 5, cap: 2, rate: 100 });
    const shopper = new SaleShopper();
    const early = await shopper.join(sale.saleId);
    expect(early.status).toBe(422);
    expect((await early.json<any>()).error.code).toBe('sale_not_started');
    await until(sale.startsAt + 50);
    const joined = await shopper.join(sale.saleId);
    expect(joined.status).toBe(201);
    const turn = await shopper.waitTurn(sale.saleId);
    expect(turn.state).toBe('admitted');
    const res = await shopper.checkout(await shopper.cart(sale.variantId, 2));
    expect(res.status).toBe(202);
    expect(await settle((await res.json<any>()).checkoutId)).toMatchObject({ status: 'confirmed' });
    const again = await shopper.checkout(await shopper.cart(sale.variantId, 1));
    expect(await settle((await again.json<any>()).checkoutId)).toMatchObject({ status: 'failed', reason: 'cap_exceeded' });
  });

  it('refuses a checkout of the sale variant without an admitted ticket', async () => {
    const sale = await scheduledSale({ units: 5, cap: 2, rate: 100 });
    await until(sale.startsAt + 50);
    const shopper = new SaleShopper();
    const res = await shopper.checkout(await shopper.cart(sale.variantId, 1));
    expect(await settle((await res.json<any>()).checkoutId)).toMatchObject({ status: 'failed', reason: 'not_admitted' });
  });

  it('refuses a ticket copied to another session', async () => {
    const sale = await scheduledSale({ units: 5, cap: 2, rate: 100 });
    await until(sale.startsAt + 50);
    const owner = new SaleShopper();
    await owner.join(sale.saleId);
    const thief = new SaleShopper();
    const res = await thief.call(`/api/sales/${sale.saleId}/queue`, {}, { 'x-queue-ticket': owner.ticket! });
    expect(res.status).toBe(403);
    expect((await res.json<any>()).error).toMatchObject({ code: 'invalid_ticket', details: { reason: 'other_session' } });
  });
});

const errorOf = async (res: Response) => (await res.json<{ error: { code: string; message: string; details?: any } }>()).error;
const report = async (saleId: string) => (await admin(`/admin/api/sales/${saleId}/report`, 'GET')).json<any>();
/** A ticket token with its MAC changed: what a forger sends. */
const tampered = (ticket: string) => {
  const [payload, mac] = ticket.split('.') as [string, string];
  return `${payload}.${mac.startsWith('A') ? 'B' : 'A'}${mac.slice(1)}`;
};
/** A sale that has started (scheduled 1.5 s ahead). */
async function liveSale(opts: { units?: number; cap?: number; rate?: number } = {}) {
  const sale = await scheduledSale({ units: opts.units ?? 5, cap: opts.cap ?? 2, rate: opts.rate ?? 100 });
  await until(sale.startsAt + 50);
  return sale;
}

describe('GET /api/sales/:id', () => {
  it('shows shoppers the countdown facts and nothing of the merchant settings', async () => {
    const sale = await scheduledSale({ units: 5, cap: 2, rate: 100, startsInMs: 60_000 });
    const res = await new SaleShopper().call(`/api/sales/${sale.saleId}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const body = await res.json<any>();
    expect(Object.keys(body).sort()).toEqual(['endsAt', 'id', 'name', 'perShopperCap', 'regions', 'serverTime', 'startsAt', 'state', 'turnstileSiteKey', 'variants']);
    expect(body).toMatchObject({ id: sale.saleId, state: 'scheduled', startsAt: new Date(sale.startsAt).toISOString(), perShopperCap: 2, regions: ['sg'], turnstileSiteKey: null });
    expect(body.variants).toEqual([{ variantId: sale.variantId, sku: sale.sku, productSlug: expect.any(String) }]);
    expect(Math.abs(Date.parse(body.serverTime) - Date.now())).toBeLessThan(5_000);
  });

  it('answers 404 not_found for an unknown sale, at every storefront route', async () => {
    const id = `sale_${'0'.repeat(26)}`;
    const shopper = new SaleShopper();
    for (const res of [await shopper.call(`/api/sales/${id}`), await shopper.join(id), await shopper.call(`/api/sales/${id}/queue`)]) {
      expect(res.status).toBe(404);
      expect((await errorOf(res)).code).toBe('not_found');
    }
  });

  it('answers 404 in a region the sale does not run in, and counts the attempt', async () => {
    const sale = await liveSale();
    const shopper = new SaleShopper();
    for (const res of [
      await shopper.call(`/api/sales/${sale.saleId}`, {}, { 'x-region': 'my' }),
      await shopper.call(`/api/sales/${sale.saleId}/tickets`, { method: 'POST', body: '{}' }, { 'x-region': 'my' }),
    ]) {
      expect(res.status).toBe(404);
      expect((await errorOf(res)).code).toBe('not_found');
    }
    expect(shopper.cookies.size).toBe(0);
    await expect.poll(async () => (await report(sale.saleId)).rejected.not_in_region, { timeout: 10_000 }).toBe(2);
    expect((await report(sale.saleId)).totals.ticketsIssued).toBe(0);
  });
});

describe('POST /api/sales/:id/tickets', () => {
  it('gives the same device the same ticket when it asks again (200, same place)', async () => {
    const sale = await liveSale({ rate: 1 });
    const shopper = new SaleShopper();
    const first = await shopper.join(sale.saleId);
    expect(first.status).toBe(201);
    const a = await first.json<any>();
    expect(a).toMatchObject({ saleId: sale.saleId, region: 'sg', ticketId: expect.any(String), position: expect.any(Number), ticket: expect.any(String) });
    // The device cookie and the ticket cookie, both HttpOnly __Host- cookies.
    expect([...shopper.cookies.keys()].sort()).toEqual(['__Host-pasar_device', `__Host-pasar_q_${sale.saleId}`]);
    const again = await shopper.join(sale.saleId);
    expect(again.status).toBe(200);
    const b = await again.json<any>();
    expect(b.ticketId).toBe(a.ticketId);
    expect(b.position).toBe(a.position);
    // Another device is another place in the queue.
    const other = await new SaleShopper().join(sale.saleId);
    expect(other.status).toBe(201);
    expect((await other.json<any>()).position).toBe(a.position + 1);
    expect((await report(sale.saleId)).totals.ticketsIssued).toBe(2);
  });

  it('refuses a ticket for an ended sale with 422 sale_ended, and counts it', async () => {
    const sale = await scheduledSale({ units: 5, cap: 2, rate: 100 });
    // Ended before any shopper asked (the storefront memoises a sale for 2 s).
    expect((await admin(`/admin/api/sales/${sale.saleId}/end`, 'POST')).status).toBe(200);
    const res = await new SaleShopper().join(sale.saleId);
    expect(res.status).toBe(422);
    expect((await errorOf(res)).code).toBe('sale_ended');
    await expect.poll(async () => (await report(sale.saleId)).rejected.ended, { timeout: 10_000 }).toBe(1);
  });

  it('takes a strict body: unknown fields and bad tokens are 400 invalid_request, never 500', async () => {
    const sale = await liveSale();
    const shopper = new SaleShopper();
    const cases: [unknown, string][] = [
      [{ turnstileToken: 'x', position: 1 }, 'position'],
      [{ turnstileToken: '' }, 'turnstileToken'],
      [{ turnstileToken: 'x'.repeat(2049) }, 'turnstileToken'],
      [{ turnstileToken: 42 }, 'turnstileToken'],
    ];
    for (const [body, field] of cases) {
      const res = await shopper.join(sale.saleId, body);
      expect(res.status, JSON.stringify(body).slice(0, 60)).toBe(400);
      const error = await errorOf(res);
      expect(error.code).toBe('invalid_request');
      expect(error.details).toEqual([expect.objectContaining({ in: 'body', field })]);
    }
    for (const raw of ['{"turnstileToken":', '[]', 'null', '', '"token"']) {
      const res = await shopper.call(`/api/sales/${sale.saleId}/tickets`, { method: 'POST', body: raw });
      expect(res.status, raw).toBe(400);
    }
    expect(shopper.cookies.size).toBe(0);
  });

  it('limits tickets per client IP: 429 with Retry-After, counted as rate_limited in the report', async () => {
    const sale = await liveSale();
    const app = createApp();
    const limits = { ...env, RATE_LIMITS: 'on; sale_ticket=3/1h' };
    // Unique per run: the limit's counters live in the shared Redis for the window's hour.
    const ip = `192.0.2.${(Math.random() * 250) | 1}-${randomToken(4)}`;
    const from = (address: string) => app.request(`/api/sales/${sale.saleId}/tickets`, { method: 'POST', headers: { 'x-region': 'sg', 'cf-connecting-ip': address, 'content-type': 'application/json' }, body: '{}' }, limits);
    // Three devices behind one address (no cookies: each is a new device).
    for (let i = 0; i < 3; i++) expect((await from(ip)).status).toBe(201);
    const blocked = await from(ip);
    expect(blocked.status).toBe(429);
    const retryAfter = Number(blocked.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(3600);
    expect(await errorOf(blocked)).toMatchObject({ code: 'rate_limited', details: { rule: 'sale_ticket', limit: 3 } });
    expect(blocked.headers.getSetCookie()).toEqual([]);
    // Another address is not affected.
    expect((await from(`192.0.2.${(Math.random() * 250) | 1}-${randomToken(4)}`)).status).toBe(201);
    const r = await report(sale.saleId);
    expect(r.rejected.rate_limited).toBe(1);
    expect(r.totals.ticketsIssued).toBe(4);
  });
});

describe('POST /api/sales/:id/tickets when Redis is down', () => {
  it('refuses tickets with 503 rather than letting them through unlimited (the rule fails closed)', async () => {
    const sale = await liveSale();
    const app = createApp();
    const dead = { ...env, RATE_LIMITS: 'on', UPSTASH_REDIS_REST_URL: env.TEST_DEAD_UPSTASH_URL! };
    const res = await app.request(`/api/sales/${sale.saleId}/tickets`, { method: 'POST', headers: { 'x-region': 'sg', 'cf-connecting-ip': '192.0.2.77', 'content-type': 'application/json' }, body: '{}' }, dead);
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toEqual(expect.any(String));
    expect((await errorOf(res)).code).toBe('unavailable');
    expect(res.headers.getSetCookie()).toEqual([]);
    expect((await report(sale.saleId)).totals.ticketsIssued).toBe(0);
  });
});

describe('GET /api/sales/:id/queue', () => {
  it('answers 404 no_ticket without a ticket', async () => {
    const sale = await liveSale();
    const res = await new SaleShopper().call(`/api/sales/${sale.saleId}/queue`);
    expect(res.status).toBe(404);
    expect((await errorOf(res)).code).toBe('no_ticket');
  });

  it('answers 403 invalid_ticket for a forged ticket, in the header or the cookie, and counts it', async () => {
    const sale = await liveSale();
    const shopper = new SaleShopper();
    expect((await shopper.join(sale.saleId)).status).toBe(201);
    const forged = tampered(shopper.ticket!);
    const byHeader = await shopper.call(`/api/sales/${sale.saleId}/queue`, {}, { 'x-queue-ticket': forged });
    expect(byHeader.status).toBe(403);
    expect(await errorOf(byHeader)).toMatchObject({ code: 'invalid_ticket', details: { reason: 'invalid' } });
    const thief = new SaleShopper();
    thief.cookies.set(`__Host-pasar_q_${sale.saleId}`, forged);
    const byCookie = await thief.call(`/api/sales/${sale.saleId}/queue`);
    expect(byCookie.status).toBe(403);
    expect((await errorOf(byCookie)).code).toBe('invalid_ticket');
    // A ticket signed with another secret is as good as made up.
    const madeUp = await signToken({ s: sale.saleId, r: 'sg', q: 0, t: 'tkt_x', d: 'x'.repeat(26), x: Date.now() + 60_000 }, 'sale-ticket', 'not-the-store-secret');
    expect((await thief.call(`/api/sales/${sale.saleId}/queue`, {}, { 'x-queue-ticket': madeUp })).status).toBe(403);
    // The owner's own ticket still works.
    expect((await shopper.status(sale.saleId)).ticketId).toEqual(expect.any(String));
    await expect.poll(async () => (await report(sale.saleId)).rejected.invalid_ticket, { timeout: 10_000 }).toBe(3);
  });
});

describe('POST /api/checkout with a sale ticket', () => {
  it('buys anything else with a stale ticket cookie in the browser (dropped and cleared), while the sale line without a valid ticket fails not_admitted', async () => {
    const sale = await liveSale();
    const shopper = new SaleShopper();
    expect((await shopper.join(sale.saleId)).status).toBe(201);
    // The cookie outlived its device (or a secret rotation): it no longer verifies.
    shopper.cookies.set(`__Host-pasar_q_${sale.saleId}`, tampered(shopper.ticket!));
    const { variantId } = await stockedVariant(5);
    const res = await shopper.checkout(await shopper.cart(variantId, 1));
    expect(res.status).toBe(202);
    expect(res.headers.getSetCookie().some((c) => c.startsWith(`__Host-pasar_q_${sale.saleId}=;`))).toBe(true);
    expect(await settle((await res.json<any>()).checkoutId)).toMatchObject({ status: 'confirmed' });
    const saleLine = await shopper.checkout(await shopper.cart(sale.variantId, 1));
    expect(await settle((await saleLine.json<any>()).checkoutId)).toMatchObject({ status: 'failed', reason: 'not_admitted' });
  });

  it('refuses a forged ticket with 403 invalid_ticket before any checkout starts', async () => {
    const sale = await liveSale();
    const shopper = new SaleShopper();
    expect((await shopper.join(sale.saleId)).status).toBe(201);
    expect((await shopper.waitTurn(sale.saleId)).state).toBe('admitted');
    const cartId = await shopper.cart(sale.variantId, 1);
    const key = `key-${randomToken()}`;
    const res = await shopper.checkout(cartId, { 'x-queue-ticket': tampered(shopper.ticket!), 'idempotency-key': key });
    expect(res.status).toBe(403);
    expect(await errorOf(res)).toMatchObject({ code: 'invalid_ticket', details: { reason: 'invalid' } });
    // Nothing started under that key.
    expect((await call(`/api/checkout/${await checkoutIdFor(env.SIGNING_SECRET, key)}`)).status).toBe(404);
    // A ticket from another session is refused the same way.
    const thief = new SaleShopper();
    const stolen = await thief.call('/api/checkout', { method: 'POST', body: JSON.stringify(checkoutBody(await cartWith(sale.variantId, 1))) }, { 'idempotency-key': `key-${randomToken()}`, 'x-queue-ticket': shopper.ticket! });
    expect(stolen.status).toBe(403);
    expect(await errorOf(stolen)).toMatchObject({ code: 'invalid_ticket', details: { reason: 'other_session' } });
    // The real ticket, unchanged, still buys.
    const ok = await shopper.checkout(cartId);
    expect(ok.status).toBe(202);
    expect(await settle((await ok.json<any>()).checkoutId)).toMatchObject({ status: 'confirmed' });
  });
});

describe('GET /api/sales/:id/queue/ws', () => {
  it('answers 426 upgrade_required in the JSON envelope without an Upgrade header', async () => {
    const sale = await liveSale();
    const res = await new SaleShopper().call(`/api/sales/${sale.saleId}/queue/ws`);
    expect(res.status).toBe(426);
    expect(res.headers.get('content-type')).toContain('application/json');
    expect(res.headers.get('upgrade')).toBe('websocket');
    expect(await errorOf(res)).toMatchObject({ code: 'upgrade_required', message: expect.any(String) });
  });

  it('refuses an upgrade without a ticket (404 no_ticket) or with a forged one (403)', async () => {
    const sale = await liveSale();
    const shopper = new SaleShopper();
    const none = await shopper.call(`/api/sales/${sale.saleId}/queue/ws`, {}, { upgrade: 'websocket' });
    expect(none.status).toBe(404);
    expect((await errorOf(none)).code).toBe('no_ticket');
    expect((await shopper.join(sale.saleId)).status).toBe(201);
    const forged = await shopper.call(`/api/sales/${sale.saleId}/queue/ws`, {}, { upgrade: 'websocket', 'x-queue-ticket': tampered(shopper.ticket!) });
    expect(forged.status).toBe(403);
    expect((await errorOf(forged)).code).toBe('invalid_ticket');
  });

  it('opens a socket for a valid ticket and sends its status at once', async () => {
    const sale = await liveSale();
    const shopper = new SaleShopper();
    const joined = await (await shopper.join(sale.saleId)).json<any>();
    const res = await shopper.call(`/api/sales/${sale.saleId}/queue/ws`, {}, { upgrade: 'websocket' });
    expect(res.status).toBe(101);
    const ws = res.webSocket!;
    const first = new Promise<any>((resolve) => ws.addEventListener('message', (e) => resolve(JSON.parse(e.data as string))));
    ws.accept();
    const message = await first;
    expect(message).toMatchObject({ type: 'status', ticketId: joined.ticketId, position: joined.position });
    ws.close(1000, 'done');
  });
});

describe('caps and borrowing around a sale', () => {
  it('one admitted device cannot buy the cap again by signing in to another account', async () => {
    const sale = await liveSale({ units: 10, cap: 2 });
    const shopper = new SaleShopper();
    expect((await shopper.join(sale.saleId)).status).toBe(201);
    expect((await shopper.waitTurn(sale.saleId)).state).toBe('admitted');
    const signIn = (cookie: string) => {
      const [name, value] = [cookie.slice(0, cookie.indexOf('=')), cookie.slice(cookie.indexOf('=') + 1)];
      shopper.cookies.set(name, value);
    };
    signIn((await signedInShopper()).cookie);
    const first = await shopper.checkout(await shopper.cart(sale.variantId, 2));
    expect(await settle((await first.json<any>()).checkoutId)).toMatchObject({ status: 'confirmed' });
    signIn((await signedInShopper()).cookie);
    const second = await shopper.checkout(await shopper.cart(sale.variantId, 1));
    expect(await settle((await second.json<any>()).checkoutId)).toMatchObject({ status: 'failed', reason: 'cap_exceeded' });
  });

  it("a region that may borrow the variant does not take the sale's units from the sale's region", async () => {
    const sku = `SALEB-${randomToken(6).toUpperCase()}`;
    const created = await admin('/admin/api/products', 'POST', {
      title: `Borrowed drop ${sku}`,
      category: inject('seedFixtures').busiestCategorySlug,
      variants: [{ sku, title: 'One', prices: { sg: { amount: 990 }, my: { amount: 3200 } } }],
    });
    expect(created.status).toBe(201);
    const variantId = (await created.json<any>()).variants[0].id as string;
    expect((await admin(`/admin/api/inventory/${sku}`, 'PUT', { region: 'sg', quantity: 3 })).status).toBe(200);
    expect((await admin(`/admin/api/inventory/${sku}/sharding`, 'PUT', { region: 'my', shards: 1, borrowFrom: ['sg'] })).status).toBe(200);
    const startsAt = Date.now() + 1_000;
    expect((await admin('/admin/api/sales', 'POST', { name: 'sg only', skus: [sku], regions: ['sg'], startsAt: new Date(startsAt).toISOString(), perShopperCap: 1, admissionRate: 10 })).status).toBe(201);
    await until(startsAt + 50);
    const my = (method: string, body: unknown, headers: Record<string, string> = {}) => json(method, body, { 'x-region': 'my', ...headers });
    const cart = await (await call('/api/carts', my('POST', {}))).json<any>();
    expect((await call(`/api/carts/${cart.id}/items`, my('POST', { variantId, quantity: 1 }))).status).toBe(200);
    const res = await call('/api/checkout', my('POST', { ...checkoutBody(cart.id), shippingAddress: { name: 'Aminah', line1: '1 Jalan Ampang', city: 'Kuala Lumpur', postalCode: '50450', country: 'MY' } }, { 'idempotency-key': `key-${randomToken()}` }));
    expect(await settle((await res.json<any>()).checkoutId)).toMatchObject({ status: 'failed', reason: 'out_of_stock' });
    expect((await regionLevels(env, 'sg', [variantId])).get(variantId)).toMatchObject({ available: 3, held: 0, sold: 0 });
  });
});

describe('the cap through the Worker', () => {
  it('50 parallel checkouts by one admitted guest, against a cap of 2 over 4 shards, confirm exactly 2 units', async () => {
    const sale = await scheduledSale({ units: 100, cap: 2, rate: 100, shards: 4 });
    await until(sale.startsAt + 50);
    const shopper = new SaleShopper();
    expect((await shopper.join(sale.saleId)).status).toBe(201);
    expect((await shopper.waitTurn(sale.saleId)).state).toBe('admitted');
    const carts: string[] = [];
    for (let i = 0; i < 50; i += 10) carts.push(...(await Promise.all(Array.from({ length: 10 }, () => shopper.cart(sale.variantId, 1)))));
    const started = await Promise.all(carts.map((cartId) => shopper.checkout(cartId)));
    const outcomes = await Promise.all(started.map(async (res) => settle((await res.json<any>()).checkoutId, 60_000)));
    const count = (f: (o: any) => boolean) => outcomes.filter(f).length;
    expect(count((o) => o.status === 'confirmed')).toBe(2);
    expect(count((o) => o.status === 'failed' && o.reason === 'cap_exceeded')).toBe(48);
    expect((await regionLevels(env, 'sg', [sale.variantId])).get(sale.variantId)).toMatchObject({ sold: 2, held: 0, available: 98 });
  }, 120_000);
});
