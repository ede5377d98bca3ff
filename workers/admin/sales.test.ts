/**
 * The flash-sale admin API through the Worker: scheduling, reading, changing
 * and ending a sale, the refusals of each write (shared/API.md's envelope),
 * who may call what, and the report after a small real sale.
 *
 * Other test files share the database and run at the same time: every sale
 * here sells a fresh SKU, and every assertion names rows this file created.
 */
import { env, exports } from 'cloudflare:workers';
import { beforeAll, describe, expect, it } from 'vitest';
import { settle, stockedVariant } from '../../test/workers/shop';
import { SaleShopper, scheduledSale, until } from '../../test/workers/sale';
import { randomToken } from '../lib/ids';

const bootstrap = env.ADMIN_BOOTSTRAP_TOKEN!;
const call = (path: string, init?: RequestInit) => exports.default.fetch(new Request(`http://pasar.test${path}`, init));
const adminCall = (path: string, method = 'GET', body?: unknown, token: string | null = bootstrap) =>
  call(path, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
const errorOf = async (res: Response) => (await res.json<{ error: { code: string; message: string; details?: any } }>()).error;

const SALE_KEYS = [
  'admissionRate', 'admissionTtlSeconds', 'createdAt', 'endedAt', 'endsAt', 'id', 'name', 'perShopperCap',
  'queueShards', 'regions', 'startsAt', 'state', 'turnstile', 'updatedAt', 'variants',
].sort();

/** A SKU no other sale sells. */
const freshSku = async () => (await stockedVariant(5, 990)).sku;
const inAnHour = () => new Date(Date.now() + 3_600_000).toISOString();

/** A valid create body for `skus`. */
function saleBody(skus: string[], overrides: Record<string, unknown> = {}) {
  return { name: `Admin test drop ${randomToken(4)}`, skus, regions: ['sg'], startsAt: inAnHour(), perShopperCap: 2, admissionRate: 50, ...overrides };
}

async function createSale(body: Record<string, unknown>): Promise<any> {
  const res = await adminCall('/admin/api/sales', 'POST', body);
  expect(res.status, await res.clone().text()).toBe(201);
  return res.json<any>();
}

/** A sale of a fresh SKU that has started (it was scheduled 1.5 s ahead). */
async function liveSale(): Promise<{ saleId: string; sku: string; startsAt: number }> {
  const sale = await scheduledSale({ units: 5, cap: 2, rate: 100 });
  await until(sale.startsAt + 50);
  return sale;
}

const tokens: Record<'catalog' | 'fulfillment' | 'readonly', string> = { catalog: '', fulfillment: '', readonly: '' };
beforeAll(async () => {
  for (const role of ['catalog', 'fulfillment', 'readonly'] as const) {
    const res = await adminCall('/admin/api/tokens', 'POST', { name: `sales test ${role} ${randomToken(4)}`, role });
    expect(res.status).toBe(201);
    tokens[role] = (await res.json<{ token: string }>()).token;
  }
});

describe('POST /admin/api/sales', () => {
  it('schedules a sale: 201 with the stored sale, instants in UTC and the defaults filled in', async () => {
    const sku = await freshSku();
    const startsAt = new Date(Math.floor(Date.now() / 1000) * 1000 + 86_400_000);
    // The same instant written in Singapore time.
    const local = new Date(startsAt.getTime() + 8 * 3_600_000).toISOString().replace('Z', '+08:00');
    const res = await adminCall('/admin/api/sales', 'POST', saleBody([sku], { name: '  11.11 sambal drop  ', regions: ['sg', 'my'], startsAt: local }));
    expect(res.status).toBe(201);
    const sale = await res.json<any>();
    expect(Object.keys(sale).sort()).toEqual(SALE_KEYS);
    expect(sale.id).toMatch(/^sale_[0-9a-z]{26}$/);
    expect(sale).toMatchObject({
      name: '11.11 sambal drop',
      state: 'scheduled',
      startsAt: startsAt.toISOString(),
      endsAt: null,
      endedAt: null,
      perShopperCap: 2,
      admissionRate: 50,
      queueShards: 1,
      admissionTtlSeconds: 600,
      turnstile: true,
      regions: ['my', 'sg'],
    });
    expect(sale.variants).toEqual([{ variantId: expect.any(String), sku, productSlug: expect.any(String), productId: expect.any(String) }]);
  });

  it('keeps the optional settings it is given', async () => {
    const sku = await freshSku();
    const endsAt = new Date(Date.now() + 7_200_000).toISOString();
    const sale = await createSale(saleBody([sku, sku], { endsAt, queueShards: 4, admissionTtlSeconds: 120, turnstile: false }));
    expect(sale).toMatchObject({ endsAt, queueShards: 4, admissionTtlSeconds: 120, turnstile: false });
    // A SKU listed twice is one variant of the sale.
    expect(sale.variants).toHaveLength(1);
  });

  it('refuses unknown fields with 400 invalid_request naming each', async () => {
    const sku = await freshSku();
    const res = await adminCall('/admin/api/sales', 'POST', { ...saleBody([sku]), discount: 50, state: 'live' });
    expect(res.status).toBe(400);
    const error = await errorOf(res);
    expect(error.code).toBe('invalid_request');
    expect(error.details).toEqual(
      expect.arrayContaining([
        { in: 'body', field: 'discount', message: 'Unknown field.' },
        { in: 'body', field: 'state', message: 'Unknown field.' },
      ]),
    );
  });

  it('refuses instants that are not ISO 8601 with an offset', async () => {
    const sku = await freshSku();
    for (const startsAt of ['tomorrow', '2030-12-11', '2030-12-11T04:00:00', '2030-13-11T04:00:00Z', 1893456000000, null]) {
      const res = await adminCall('/admin/api/sales', 'POST', saleBody([sku], { startsAt }));
      expect(res.status, String(startsAt)).toBe(400);
      const error = await errorOf(res);
      expect(error.code).toBe('invalid_request');
      expect(error.details.map((d: any) => d.field)).toContain('startsAt');
    }
    const badEnd = await adminCall('/admin/api/sales', 'POST', saleBody([sku], { endsAt: 'soon' }));
    expect(badEnd.status).toBe(400);
    expect((await errorOf(badEnd)).details.map((d: any) => d.field)).toContain('endsAt');
  });

  it('refuses an end at or before the start (400 on endsAt)', async () => {
    const sku = await freshSku();
    const startsAt = inAnHour();
    for (const endsAt of [startsAt, new Date(Date.parse(startsAt) - 60_000).toISOString()]) {
      const res = await adminCall('/admin/api/sales', 'POST', saleBody([sku], { startsAt, endsAt }));
      expect(res.status).toBe(400);
      expect((await errorOf(res)).details).toEqual([expect.objectContaining({ in: 'body', field: 'endsAt' })]);
    }
  });

  it('refuses a cap, rate, shard count or admission time out of range, naming the field', async () => {
    const sku = await freshSku();
    const cases: [string, unknown][] = [
      ['perShopperCap', 0],
      ['perShopperCap', 100],
      ['perShopperCap', 1.5],
      ['perShopperCap', '2'],
      ['admissionRate', 0],
      ['admissionRate', 100_001],
      ['admissionRate', -5],
      ['queueShards', 0],
      ['queueShards', 17],
      ['admissionTtlSeconds', 59],
      ['admissionTtlSeconds', 7201],
      ['turnstile', 'yes'],
      ['regions', []],
      ['regions', ['sg', 'uk']],
      ['skus', []],
      ['name', ''],
      ['name', 'drop\u0007'],
    ];
    for (const [field, value] of cases) {
      const res = await adminCall('/admin/api/sales', 'POST', saleBody([sku], { [field]: value }));
      expect(res.status, `${field}=${JSON.stringify(value)}`).toBe(400);
      const error = await errorOf(res);
      expect(error.code).toBe('invalid_request');
      expect(error.details.some((d: any) => d.field === field || d.field.startsWith(`${field}.`)), `${field}: ${JSON.stringify(error.details)}`).toBe(true);
    }
  });

  it('answers 400, never 500, for a body that is not a JSON object', async () => {
    for (const body of ['{"name":', '[]', 'null', '"sale"', '']) {
      const res = await adminCall('/admin/api/sales', 'POST', body);
      expect(res.status, body).toBe(400);
      expect((await errorOf(res)).code).toMatch(/^invalid_/);
    }
  });

  it('refuses an unknown SKU with 422 unknown_sku naming the missing ones, and creates nothing', async () => {
    const sku = await freshSku();
    const missing = `NOPE-${randomToken(6).toUpperCase()}`;
    const res = await adminCall('/admin/api/sales', 'POST', saleBody([sku, missing]));
    expect(res.status).toBe(422);
    expect(await errorOf(res)).toMatchObject({ code: 'unknown_sku', details: { skus: [missing] } });
    // Nothing half-made: the known SKU is still free for a sale.
    await createSale(saleBody([sku]));
  });

  it('refuses a start in the past with 422 starts_in_past', async () => {
    const sku = await freshSku();
    const startsAt = new Date(Date.now() - 60_000).toISOString();
    const res = await adminCall('/admin/api/sales', 'POST', saleBody([sku], { startsAt }));
    expect(res.status).toBe(422);
    expect(await errorOf(res)).toMatchObject({ code: 'starts_in_past', details: { startsAt } });
  });

  it('refuses a variant already in another open sale in an overlapping region (409 variant_in_sale); another region is fine', async () => {
    const sku = await freshSku();
    const first = await createSale(saleBody([sku], { regions: ['sg', 'th'] }));
    const clash = await adminCall('/admin/api/sales', 'POST', saleBody([sku], { regions: ['th', 'vn'] }));
    expect(clash.status).toBe(409);
    const error = await errorOf(clash);
    expect(error.code).toBe('variant_in_sale');
    expect(error.details.clashes).toEqual([{ saleId: first.id, sku, region: 'th' }]);
    await createSale(saleBody([sku], { regions: ['my'] }));
  });

  it('lets exactly one of two concurrent sales of the same variant in the same region win', async () => {
    for (let round = 0; round < 3; round++) {
      const sku = await freshSku();
      const results = await Promise.all([adminCall('/admin/api/sales', 'POST', saleBody([sku])), adminCall('/admin/api/sales', 'POST', saleBody([sku], { regions: ['sg', 'my'] }))]);
      expect(results.map((r) => r.status).sort()).toEqual([201, 409]);
      const loser = results.find((r) => r.status === 409)!;
      expect((await errorOf(loser)).code).toBe('variant_in_sale');
    }
  });

  it('frees the variant for a new sale once the old one has ended', async () => {
    const sku = await freshSku();
    const first = await createSale(saleBody([sku]));
    expect((await adminCall('/admin/api/sales', 'POST', saleBody([sku]))).status).toBe(409);
    expect((await adminCall(`/admin/api/sales/${first.id}/end`, 'POST')).status).toBe(200);
    await createSale(saleBody([sku]));
  });
});

describe('GET /admin/api/sales and /:id', () => {
  it('reads back a sale as created, and lists it', async () => {
    const sale = await createSale(saleBody([await freshSku()], { startsAt: new Date(Date.now() + 400 * 86_400_000).toISOString() }));
    const one = await adminCall(`/admin/api/sales/${sale.id}`);
    expect(one.status).toBe(200);
    expect(await one.json()).toEqual(sale);
    const list = await adminCall('/admin/api/sales');
    expect(list.status).toBe(200);
    const { items } = await list.json<{ items: any[] }>();
    // Newest start first: a sale starting in 400 days is near the top.
    expect(items.find((s) => s.id === sale.id)).toEqual(sale);
    for (let i = 1; i < items.length; i++) expect(Date.parse(items[i - 1].startsAt)).toBeGreaterThanOrEqual(Date.parse(items[i].startsAt));
  });

  it('answers 404 for an unknown sale, on every route that takes an id', async () => {
    const id = `sale_${'0'.repeat(26)}`;
    for (const [path, method, body] of [
      [`/admin/api/sales/${id}`, 'GET', undefined],
      [`/admin/api/sales/${id}`, 'PATCH', { name: 'x' }],
      [`/admin/api/sales/${id}/end`, 'POST', undefined],
      [`/admin/api/sales/${id}/report`, 'GET', undefined],
    ] as const) {
      const res = await adminCall(path, method, body);
      expect(res.status, `${method} ${path}`).toBe(404);
      expect((await errorOf(res)).code).toBe('not_found');
    }
  });
});

describe('PATCH /admin/api/sales/:id', () => {
  it('changes anything before the start', async () => {
    const sale = await createSale(saleBody([await freshSku()]));
    const otherSku = await freshSku();
    const startsAt = new Date(Math.floor(Date.now() / 1000) * 1000 + 7_200_000).toISOString();
    const endsAt = new Date(Date.parse(startsAt) + 3_600_000).toISOString();
    const patch = { name: 'Renamed drop', skus: [otherSku], regions: ['my', 'th'], startsAt, endsAt, perShopperCap: 5, admissionRate: 200, queueShards: 3, admissionTtlSeconds: 900, turnstile: false };
    const res = await adminCall(`/admin/api/sales/${sale.id}`, 'PATCH', patch);
    expect(res.status).toBe(200);
    const changed = await res.json<any>();
    const { skus: _skus, ...settings } = patch;
    expect(changed).toMatchObject({ ...settings, id: sale.id, state: 'scheduled', createdAt: sale.createdAt });
    expect(changed.variants.map((v: any) => v.sku)).toEqual([otherSku]);
    expect(Date.parse(changed.updatedAt)).toBeGreaterThanOrEqual(Date.parse(sale.updatedAt));
    expect(await (await adminCall(`/admin/api/sales/${sale.id}`)).json()).toEqual(changed);
  });

  it('republishes the products a change of skus takes out of the sale, so their pages stop showing it', async () => {
    const sale = await createSale(saleBody([await freshSku()]));
    const before = sale.variants[0].productSlug as string;
    const product = async (slug: string) => (await call(`/api/products/${slug}`, { headers: { 'x-region': 'sg' } })).json<any>();
    expect((await product(before)).sale).toMatchObject({ id: sale.id });
    const otherSku = await freshSku();
    const res = await adminCall(`/admin/api/sales/${sale.id}`, 'PATCH', { skus: [otherSku] });
    expect(res.status).toBe(200);
    const after = (await res.json<any>()).variants[0].productSlug as string;
    expect((await product(after)).sale).toMatchObject({ id: sale.id });
    expect((await product(before)).sale ?? null).toBeNull();
  });

  it('refuses unknown fields and bad values like the create, and an end before the start with 422 invalid_window', async () => {
    const sale = await createSale(saleBody([await freshSku()]));
    const unknown = await adminCall(`/admin/api/sales/${sale.id}`, 'PATCH', { endedAt: new Date().toISOString() });
    expect(unknown.status).toBe(400);
    expect((await errorOf(unknown)).details).toEqual([{ in: 'body', field: 'endedAt', message: 'Unknown field.' }]);
    const cap = await adminCall(`/admin/api/sales/${sale.id}`, 'PATCH', { perShopperCap: 0 });
    expect(cap.status).toBe(400);
    const window = await adminCall(`/admin/api/sales/${sale.id}`, 'PATCH', { endsAt: new Date(Date.parse(sale.startsAt) - 1000).toISOString() });
    expect(window.status).toBe(422);
    expect((await errorOf(window)).code).toBe('invalid_window');
    const past = await adminCall(`/admin/api/sales/${sale.id}`, 'PATCH', { startsAt: new Date(Date.now() - 1000).toISOString() });
    expect(past.status).toBe(422);
    expect((await errorOf(past)).code).toBe('starts_in_past');
    const unknownSku = await adminCall(`/admin/api/sales/${sale.id}`, 'PATCH', { skus: [`NOPE-${randomToken(6)}`] });
    expect(unknownSku.status).toBe(422);
    expect((await errorOf(unknownSku)).code).toBe('unknown_sku');
    // None of the refused patches changed the sale.
    expect(await (await adminCall(`/admin/api/sales/${sale.id}`)).json()).toEqual(sale);
  });

  it('refuses moving a variant into a sale where another open sale already sells it (409 variant_in_sale)', async () => {
    const taken = await freshSku();
    await createSale(saleBody([taken]));
    const sale = await createSale(saleBody([await freshSku()]));
    const res = await adminCall(`/admin/api/sales/${sale.id}`, 'PATCH', { skus: [taken] });
    expect(res.status).toBe(409);
    expect((await errorOf(res)).code).toBe('variant_in_sale');
  });

  it('once started, refuses changes to skus, regions, startsAt, perShopperCap and queueShards with 409 sale_started', async () => {
    const { saleId, sku } = await liveSale();
    const cases: Record<string, unknown>[] = [
      { skus: [sku, await freshSku()] },
      { regions: ['sg', 'my'] },
      { startsAt: inAnHour() },
      // Even a start in the past: the sale has started, whatever the new value.
      { startsAt: new Date(Date.now() - 60_000).toISOString() },
      { perShopperCap: 5 },
      { queueShards: 2 },
    ];
    for (const patch of cases) {
      const res = await adminCall(`/admin/api/sales/${saleId}`, 'PATCH', patch);
      expect(res.status, JSON.stringify(patch)).toBe(409);
      expect(await errorOf(res)).toMatchObject({ code: 'sale_started', details: { fields: Object.keys(patch) } });
    }
    const sale = await (await adminCall(`/admin/api/sales/${saleId}`)).json<any>();
    expect(sale).toMatchObject({ state: 'live', perShopperCap: 2, queueShards: 1, regions: ['sg'] });
  });

  it('once started, still changes admissionRate, endsAt, name, admissionTtlSeconds and turnstile', async () => {
    const { saleId } = await liveSale();
    const endsAt = new Date(Math.floor(Date.now() / 1000) * 1000 + 3_600_000).toISOString();
    const patch = { admissionRate: 500, endsAt, name: 'Still going', admissionTtlSeconds: 300, turnstile: false };
    const res = await adminCall(`/admin/api/sales/${saleId}`, 'PATCH', patch);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ ...patch, state: 'live' });
    // The queue runs on the new rate at once.
    const shopper = new SaleShopper();
    const joined = await shopper.join(saleId);
    expect(joined.status).toBe(201);
    expect((await joined.json<any>()).ratePerSecond).toBe(500);
  });

  it('refuses any change to an ended sale with 409 sale_ended', async () => {
    const sale = await createSale(saleBody([await freshSku()]));
    expect((await adminCall(`/admin/api/sales/${sale.id}/end`, 'POST')).status).toBe(200);
    for (const patch of [{ name: 'Back again' }, { endsAt: inAnHour() }, { admissionRate: 10 }, { startsAt: new Date(Date.now() - 60_000).toISOString() }]) {
      const res = await adminCall(`/admin/api/sales/${sale.id}`, 'PATCH', patch);
      expect(res.status).toBe(409);
      expect((await errorOf(res)).code).toBe('sale_ended');
    }
  });
});

describe('POST /admin/api/sales/:id/end', () => {
  it('ends a sale now, and ending it again keeps the first end', async () => {
    const { saleId } = await liveSale();
    const first = await adminCall(`/admin/api/sales/${saleId}/end`, 'POST');
    expect(first.status).toBe(200);
    const ended = await first.json<any>();
    expect(ended.state).toBe('ended');
    expect(Date.parse(ended.endedAt)).toBeLessThanOrEqual(Date.now());
    const again = await adminCall(`/admin/api/sales/${saleId}/end`, 'POST');
    expect(again.status).toBe(200);
    expect(await again.json()).toMatchObject({ state: 'ended', endedAt: ended.endedAt });
    // The queue is closed to new shoppers.
    await new Promise((r) => setTimeout(r, 2_100)); // the storefront's memo of the sale (SALE_MEMO_MS)
    const late = await new SaleShopper().join(saleId);
    expect(late.status).toBe(422);
    expect((await errorOf(late)).code).toBe('sale_ended');
  });
});

describe('admin sales: who may call', () => {
  it('answers 401 without a token or with an unknown one, on every route', async () => {
    const sale = await createSale(saleBody([await freshSku()]));
    const routes: [string, string, unknown?][] = [
      ['/admin/api/sales', 'POST', saleBody([await freshSku()])],
      ['/admin/api/sales', 'GET'],
      [`/admin/api/sales/${sale.id}`, 'GET'],
      [`/admin/api/sales/${sale.id}`, 'PATCH', { name: 'hijacked' }],
      [`/admin/api/sales/${sale.id}/end`, 'POST'],
      [`/admin/api/sales/${sale.id}/report`, 'GET'],
    ];
    for (const [path, method, body] of routes) {
      for (const token of [null, `pasar_o_${randomToken(20)}`]) {
        const res = await adminCall(path, method, body, token);
        expect(res.status, `${method} ${path} ${token ? 'bad token' : 'no token'}`).toBe(401);
        expect((await errorOf(res)).code).toBe('unauthorized');
      }
    }
    expect(await (await adminCall(`/admin/api/sales/${sale.id}`)).json()).toEqual(sale);
  });

  it('lets fulfillment and readonly tokens read sales and reports but not write (403)', async () => {
    const sale = await createSale(saleBody([await freshSku()]));
    for (const role of ['fulfillment', 'readonly'] as const) {
      const token = tokens[role];
      for (const [path, method, body] of [
        ['/admin/api/sales', 'POST', saleBody([await freshSku()])],
        [`/admin/api/sales/${sale.id}`, 'PATCH', { perShopperCap: 99 }],
        [`/admin/api/sales/${sale.id}/end`, 'POST', undefined],
      ] as const) {
        const res = await adminCall(path, method, body, token);
        expect(res.status, `${role} ${method} ${path}`).toBe(403);
        expect((await errorOf(res)).code).toBe('forbidden');
      }
      for (const path of ['/admin/api/sales', `/admin/api/sales/${sale.id}`, `/admin/api/sales/${sale.id}/report`]) {
        expect((await adminCall(path, 'GET', undefined, token)).status, `${role} GET ${path}`).toBe(200);
      }
    }
    // Nothing the refused writes asked for happened.
    expect(await (await adminCall(`/admin/api/sales/${sale.id}`)).json()).toEqual(sale);
  });

  it('lets a catalog token schedule, change and end a sale', async () => {
    const res = await adminCall('/admin/api/sales', 'POST', saleBody([await freshSku()]), tokens.catalog);
    expect(res.status).toBe(201);
    const sale = await res.json<any>();
    expect((await adminCall(`/admin/api/sales/${sale.id}`, 'PATCH', { perShopperCap: 3 }, tokens.catalog)).status).toBe(200);
    expect((await adminCall(`/admin/api/sales/${sale.id}/end`, 'POST', undefined, tokens.catalog)).status).toBe(200);
  });
});

describe('GET /admin/api/sales/:id/report', () => {
  it('reports an empty scheduled sale with zeros and null percentiles', async () => {
    const sale = await createSale(saleBody([await freshSku()], { regions: ['sg', 'my'] }));
    const res = await adminCall(`/admin/api/sales/${sale.id}/report`);
    expect(res.status).toBe(200);
    const nothing = { ticketsIssued: 0, admitted: 0, orders: 0, unitsSold: 0, soldOutAt: null, checkoutLatencyMs: { p50: null, p95: null, p99: null } };
    expect(await res.json()).toEqual({
      saleId: sale.id,
      state: 'scheduled',
      totals: { ticketsIssued: 0, admitted: 0, orders: 0, unitsSold: 0 },
      regions: { my: nothing, sg: nothing },
      checkoutLatencyMs: { p50: null, p95: null, p99: null },
      rejected: {},
    });
  });

  it('after a small sale: tickets, admissions, orders, units, sold-out time, latency and refusals by reason', async () => {
    const sale = await scheduledSale({ units: 3, cap: 2, rate: 100 });
    await until(sale.startsAt + 50);
    const [alice, bob, carol] = [new SaleShopper(), new SaleShopper(), new SaleShopper()];
    expect((await alice.join(sale.saleId)).status).toBe(201);
    expect((await bob.join(sale.saleId)).status).toBe(201);
    // Asking again is the same ticket, not a second one.
    expect((await alice.join(sale.saleId)).status).toBe(200);
    expect((await alice.waitTurn(sale.saleId)).state).toBe('admitted');
    expect((await bob.waitTurn(sale.saleId)).state).toBe('admitted');

    const a1 = await alice.checkout(await alice.cart(sale.variantId, 2));
    expect(await settle((await a1.json<any>()).checkoutId)).toMatchObject({ status: 'confirmed' });
    const a2 = await alice.checkout(await alice.cart(sale.variantId, 1));
    expect(await settle((await a2.json<any>()).checkoutId)).toMatchObject({ status: 'failed', reason: 'cap_exceeded' });
    const b1 = await bob.checkout(await bob.cart(sale.variantId, 1));
    expect(await settle((await b1.json<any>()).checkoutId)).toMatchObject({ status: 'confirmed' });
    // Carol never queued.
    const c1 = await carol.checkout(await carol.cart(sale.variantId, 1));
    expect(await settle((await c1.json<any>()).checkoutId)).toMatchObject({ status: 'failed', reason: 'not_admitted' });
    // A forged ticket at the queue.
    const [payload, mac] = alice.ticket!.split('.') as [string, string];
    const forged = await carol.call(`/api/sales/${sale.saleId}/queue`, {}, { 'x-queue-ticket': `${payload}.${mac.startsWith('A') ? 'B' : 'A'}${mac.slice(1)}` });
    expect(forged.status).toBe(403);

    const report = async () => (await adminCall(`/admin/api/sales/${sale.saleId}/report`)).json<any>();
    // Outcomes reach the queue objects and refusals reach Redis just after the answers.
    await expect.poll(async () => (await report()).rejected, { timeout: 10_000, interval: 250 }).toEqual({ cap_exceeded: 1, not_admitted: 1, invalid_ticket: 1 });
    const r = await report();
    expect(r).toMatchObject({ saleId: sale.saleId, state: 'live', totals: { ticketsIssued: 2, admitted: 2, orders: 2, unitsSold: 3 } });
    expect(Object.keys(r.regions)).toEqual(['sg']);
    expect(r.regions.sg).toMatchObject({ ticketsIssued: 2, admitted: 2, orders: 2, unitsSold: 3 });
    expect(Date.parse(r.regions.sg.soldOutAt)).toBeGreaterThanOrEqual(sale.startsAt);
    expect(Date.parse(r.regions.sg.soldOutAt)).toBeLessThanOrEqual(Date.now());
    for (const p of [r.checkoutLatencyMs, r.regions.sg.checkoutLatencyMs]) {
      expect(p.p99).toBeGreaterThan(0);
      expect(p.p50).toBeLessThanOrEqual(p.p95);
      expect(p.p95).toBeLessThanOrEqual(p.p99);
    }
  }, 60_000);
});
