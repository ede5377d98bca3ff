/**
 * The price-list admin API through the Worker: create, read, list, change
 * and delete; the refusals of each write (400/422 envelopes that change
 * nothing); who may call what. The switch at a list's start and end on the
 * storefront is in ../catalog/price-lists.test.ts.
 *
 * Other test files share the database and run at the same time: every list
 * here prices products this file created, and assertions name only those.
 */
import { env, exports } from 'cloudflare:workers';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { randomToken } from '../lib/ids';

const fx = inject('seedFixtures');
const bootstrap = env.ADMIN_BOOTSTRAP_TOKEN!;
const call = (path: string, init?: RequestInit) => exports.default.fetch(new Request(`http://pasar.test${path}`, init));
const adminCall = (path: string, method = 'GET', body?: unknown, token: string | null = bootstrap) =>
  call(path, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
const errorOf = async (res: Response) => (await res.json<{ error: { code: string; message: string; details?: any } }>()).error;

const LIST_KEYS = ['createdAt', 'currency', 'endsAt', 'id', 'name', 'prices', 'region', 'startsAt', 'state', 'updatedAt'].sort();

/** A fresh product with one variant priced in sg at `amount`. */
async function freshVariant(amount = 2500): Promise<{ sku: string; variantId: string; productId: string; slug: string }> {
  const sku = `PL-${randomToken(6).toUpperCase()}`;
  const res = await adminCall('/admin/api/products', 'POST', {
    title: `Price list admin test ${sku}`,
    category: fx.busiestCategorySlug,
    variants: [{ sku, title: '250 ml', prices: { sg: { amount }, my: { amount: amount * 3 } } }],
  });
  expect(res.status).toBe(201);
  const product = await res.json<any>();
  return { sku, variantId: product.variants[0].id, productId: product.id, slug: product.slug };
}

const inHours = (h: number) => new Date(Date.now() + h * 3_600_000).toISOString();
const body = (skus: string[], overrides: Record<string, unknown> = {}) => ({
  name: `Admin test list ${randomToken(4)}`,
  region: 'sg',
  startsAt: inHours(1),
  endsAt: inHours(2),
  prices: skus.map((sku) => ({ sku, amount: 1999 })),
  ...overrides,
});

async function createList(b: Record<string, unknown>): Promise<any> {
  const res = await adminCall('/admin/api/price-lists', 'POST', b);
  expect(res.status, await res.clone().text()).toBe(201);
  return res.json<any>();
}

/** Every list holding a price for `variantId` (through the admin API's list, newest first). */
async function listsWith(variantId: string): Promise<string[]> {
  const found: string[] = [];
  let cursor: string | null = null;
  do {
    const page: any = await (await adminCall(`/admin/api/price-lists?region=sg&limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`)).json();
    for (const item of page.items) {
      const full = await (await adminCall(`/admin/api/price-lists/${item.id}`)).json<any>();
      if (full.prices.some((p: any) => p.variantId === variantId)) found.push(item.id);
    }
    cursor = page.nextCursor;
    // Lists created in the last minute are enough: this file's own.
    if (page.items.length && Date.parse(page.items[page.items.length - 1].createdAt) < Date.now() - 60_000) break;
  } while (cursor);
  return found;
}

const tokens: Record<'catalog' | 'fulfillment' | 'readonly', string> = { catalog: '', fulfillment: '', readonly: '' };
beforeAll(async () => {
  for (const role of ['catalog', 'fulfillment', 'readonly'] as const) {
    const res = await adminCall('/admin/api/tokens', 'POST', { name: `price list test ${role} ${randomToken(4)}`, role });
    expect(res.status).toBe(201);
    tokens[role] = (await res.json<{ token: string }>()).token;
  }
});

describe('POST /admin/api/price-lists', () => {
  it('creates a list: 201 with the stored list, instants in UTC, the region currency and its prices', async () => {
    const a = await freshVariant();
    const b = await freshVariant();
    const startsAt = new Date(Math.floor(Date.now() / 1000) * 1000 + 86_400_000);
    const local = new Date(startsAt.getTime() + 8 * 3_600_000).toISOString().replace('Z', '+08:00');
    const list = await createList({
      name: '  Year-end sale  ',
      region: 'sg',
      startsAt: local,
      prices: [
        { sku: b.sku, amount: 1500 },
        { sku: a.sku, amount: 0 },
      ],
    });
    expect(Object.keys(list).sort()).toEqual(LIST_KEYS);
    expect(list.id).toMatch(/^pl_[0-9a-z]{26}$/);
    expect(list).toMatchObject({ name: 'Year-end sale', region: 'sg', currency: 'SGD', startsAt: startsAt.toISOString(), endsAt: null, state: 'scheduled' });
    expect(list.prices).toEqual(
      [
        { sku: a.sku, variantId: a.variantId, productId: a.productId, amount: 0 },
        { sku: b.sku, variantId: b.variantId, productId: b.productId, amount: 1500 },
      ].sort((x, y) => x.sku.localeCompare(y.sku)),
    );
    const again = await adminCall(`/admin/api/price-lists/${list.id}`);
    expect(again.status).toBe(200);
    expect(await again.json()).toEqual(list);
  });

  it('says running for a list whose start has passed', async () => {
    const v = await freshVariant();
    const list = await createList(body([v.sku], { startsAt: new Date(Date.now() - 60_000).toISOString() }));
    expect(list.state).toBe('running');
  });

  it('refuses bad bodies with 400 invalid_request naming the field, and writes nothing', async () => {
    const v = await freshVariant();
    const sameInstant = inHours(1);
    const cases: [Record<string, unknown>, string][] = [
      [{ ...body([v.sku]), discount: 10 }, 'discount'],
      [{ ...body([v.sku]), prices: [{ sku: v.sku, amount: 100, currency: 'SGD' }] }, 'prices.0.currency'],
      [body([v.sku], { prices: [{ sku: v.sku, amount: -1 }] }), 'prices.0.amount'],
      [body([v.sku], { prices: [{ sku: v.sku, amount: 12.5 }] }), 'prices.0.amount'],
      [body([v.sku], { prices: [{ sku: v.sku, amount: '100' }] }), 'prices.0.amount'],
      [body([v.sku], { startsAt: inHours(2), endsAt: inHours(1) }), 'endsAt'],
      [body([v.sku], { startsAt: sameInstant, endsAt: sameInstant }), 'endsAt'],
      [body([v.sku], { startsAt: 'tomorrow' }), 'startsAt'],
      [body([v.sku], { startsAt: '2030-12-11T04:00:00' }), 'startsAt'],
      [body([v.sku], { region: 'us' }), 'region'],
      [body([v.sku], { name: '' }), 'name'],
      [body([v.sku], { prices: [] }), 'prices'],
      [body([v.sku, v.sku]), 'prices'],
      [body([v.sku], { prices: Array.from({ length: 1001 }, (_, i) => ({ sku: `${v.sku}-${i}`, amount: 1 })) }), 'prices'],
    ];
    for (const [b, field] of cases) {
      const res = await adminCall('/admin/api/price-lists', 'POST', b);
      expect(res.status, JSON.stringify(b).slice(0, 200)).toBe(400);
      const error = await errorOf(res);
      expect(error.code).toBe('invalid_request');
      expect(error.details.map((d: any) => d.field)).toContain(field);
    }
    const endBeforeStart = await errorOf(await adminCall('/admin/api/price-lists', 'POST', body([v.sku], { startsAt: inHours(2), endsAt: inHours(1) })));
    expect(endBeforeStart.message).toContain('endsAt: Must be after startsAt.');
    const malformed = await adminCall('/admin/api/price-lists', 'POST', '{"name": ');
    expect(malformed.status).toBe(400);
    expect((await errorOf(malformed)).code).toBe('invalid_json');
    expect(await listsWith(v.variantId)).toEqual([]);
  });

  it('refuses an unknown SKU with 422 unknown_sku naming it, and writes nothing', async () => {
    const v = await freshVariant();
    const missing = `PL-NOPE-${randomToken(4).toUpperCase()}`;
    const res = await adminCall('/admin/api/price-lists', 'POST', body([v.sku, missing]));
    expect(res.status).toBe(422);
    const error = await errorOf(res);
    expect(error.code).toBe('unknown_sku');
    expect(error.message).toContain(missing);
    expect(error.details).toEqual({ skus: [missing] });
    expect(await listsWith(v.variantId)).toEqual([]);
  });
});

describe('GET /admin/api/price-lists', () => {
  it('lists newest first with the price count, pages with cursors, and filters by region', async () => {
    const v = await freshVariant();
    const first = await createList(body([v.sku]));
    const second = await createList(body([v.sku], { region: 'my' }));
    const third = await createList(body([v.sku]));
    const all = await (await adminCall('/admin/api/price-lists?limit=100')).json<any>();
    const ids = all.items.map((i: any) => i.id);
    expect(ids.indexOf(third.id)).toBeLessThan(ids.indexOf(second.id));
    expect(ids.indexOf(second.id)).toBeLessThan(ids.indexOf(first.id));
    const item = all.items.find((i: any) => i.id === first.id);
    expect(item).toMatchObject({ id: first.id, name: first.name, region: 'sg', currency: 'SGD', priceCount: 1, state: 'scheduled' });
    expect(item.prices).toBeUndefined();

    const sgOnly = await (await adminCall('/admin/api/price-lists?region=sg&limit=100')).json<any>();
    expect(sgOnly.items.every((i: any) => i.region === 'sg')).toBe(true);
    expect(sgOnly.items.map((i: any) => i.id)).not.toContain(second.id);

    const page1 = await (await adminCall('/admin/api/price-lists?limit=1')).json<any>();
    expect(page1.items).toHaveLength(1);
    expect(page1.nextCursor).toEqual(expect.any(String));
    const page2 = await (await adminCall(`/admin/api/price-lists?limit=1&cursor=${encodeURIComponent(page1.nextCursor)}`)).json<any>();
    expect(page2.items[0].id).not.toBe(page1.items[0].id);
    const forged = await adminCall('/admin/api/price-lists?limit=1&cursor=abc');
    expect(forged.status).toBe(400);
  });

  it('404s an unknown list', async () => {
    const res = await adminCall('/admin/api/price-lists/pl_nope');
    expect(res.status).toBe(404);
    expect((await errorOf(res)).code).toBe('not_found');
  });
});

describe('PATCH /admin/api/price-lists/:id', () => {
  it('changes the name and window, and replaces the prices', async () => {
    const a = await freshVariant();
    const b = await freshVariant();
    const list = await createList(body([a.sku]));
    const endsAt = inHours(5);
    const res = await adminCall(`/admin/api/price-lists/${list.id}`, 'PATCH', { name: 'Renamed', endsAt, prices: [{ sku: b.sku, amount: 777 }] });
    expect(res.status, await res.clone().text()).toBe(200);
    const changed = await res.json<any>();
    expect(changed).toMatchObject({ id: list.id, name: 'Renamed', startsAt: list.startsAt, endsAt, region: 'sg' });
    expect(changed.prices).toEqual([{ sku: b.sku, variantId: b.variantId, productId: b.productId, amount: 777 }]);
    const open = await (await adminCall(`/admin/api/price-lists/${list.id}`, 'PATCH', { endsAt: null })).json<any>();
    expect(open.endsAt).toBeNull();
  });

  it('refuses a window whose end would not follow its start (422 invalid_window), unknown fields and SKUs, and changes nothing', async () => {
    const v = await freshVariant();
    const list = await createList(body([v.sku]));
    const late = await adminCall(`/admin/api/price-lists/${list.id}`, 'PATCH', { startsAt: inHours(3) });
    expect(late.status).toBe(422);
    const error = await errorOf(late);
    expect(error.code).toBe('invalid_window');
    expect(error.message).toMatch(/endsAt .* must be after startsAt/);
    const both = await adminCall(`/admin/api/price-lists/${list.id}`, 'PATCH', { startsAt: inHours(3), endsAt: inHours(2) });
    expect(both.status).toBe(400);
    const region = await adminCall(`/admin/api/price-lists/${list.id}`, 'PATCH', { region: 'my' });
    expect(region.status).toBe(400);
    expect((await errorOf(region)).details).toEqual([{ in: 'body', field: 'region', message: 'Unknown field.' }]);
    const negative = await adminCall(`/admin/api/price-lists/${list.id}`, 'PATCH', { prices: [{ sku: v.sku, amount: -5 }] });
    expect(negative.status).toBe(400);
    const unknown = await adminCall(`/admin/api/price-lists/${list.id}`, 'PATCH', { name: 'Should not stick', prices: [{ sku: 'PL-NOPE-ZZZZ', amount: 5 }] });
    expect(unknown.status).toBe(422);
    expect((await errorOf(unknown)).code).toBe('unknown_sku');
    expect(await (await adminCall(`/admin/api/price-lists/${list.id}`)).json()).toEqual(list);
  });

  it('404s an unknown list', async () => {
    const res = await adminCall('/admin/api/price-lists/pl_nope', 'PATCH', { name: 'x' });
    expect(res.status).toBe(404);
  });
});

describe('DELETE /admin/api/price-lists/:id', () => {
  it('deletes the list and its prices; a second delete is 404', async () => {
    const v = await freshVariant();
    const list = await createList(body([v.sku]));
    const res = await adminCall(`/admin/api/price-lists/${list.id}`, 'DELETE');
    expect(res.status).toBe(204);
    expect((await adminCall(`/admin/api/price-lists/${list.id}`)).status).toBe(404);
    expect((await adminCall(`/admin/api/price-lists/${list.id}`, 'DELETE')).status).toBe(404);
  });
});

describe('who may call', () => {
  it('needs a token (401), and the catalog role to write (403 for fulfillment and readonly); readonly may read', async () => {
    const v = await freshVariant();
    expect((await adminCall('/admin/api/price-lists', 'POST', body([v.sku]), null)).status).toBe(401);
    expect((await adminCall('/admin/api/price-lists', 'GET', undefined, null)).status).toBe(401);
    for (const role of ['fulfillment', 'readonly'] as const) {
      const res = await adminCall('/admin/api/price-lists', 'POST', body([v.sku]), tokens[role]);
      expect(res.status, role).toBe(403);
      expect((await errorOf(res)).code).toBe('forbidden');
    }
    const list = await createList(body([v.sku]));
    for (const role of ['fulfillment', 'readonly'] as const) {
      expect((await adminCall(`/admin/api/price-lists/${list.id}`, 'PATCH', { name: 'x' }, tokens[role])).status).toBe(403);
      expect((await adminCall(`/admin/api/price-lists/${list.id}`, 'DELETE', undefined, tokens[role])).status).toBe(403);
    }
    expect((await adminCall(`/admin/api/price-lists/${list.id}`, 'GET', undefined, tokens.readonly)).status).toBe(200);
    expect((await adminCall('/admin/api/price-lists', 'GET', undefined, tokens.readonly)).status).toBe(200);
    const catalog = await adminCall('/admin/api/price-lists', 'POST', body([v.sku]), tokens.catalog);
    expect(catalog.status).toBe(201);
    expect(await listsWith(v.variantId)).toHaveLength(2);
  });
});

describe('price-list writes and webhooks', () => {
  it('tell product.updated subscribers about the products whose prices the list sets', async () => {
    const simUrl = env.TEST_PAYMENT_SIM_URL;
    const name = `pl-${randomToken(6)}`;
    const sub = await adminCall('/admin/api/webhooks', 'POST', { url: `${simUrl}/webhook-receiver/${name}`, eventTypes: ['product.updated'], description: 'price list test' });
    expect(sub.status).toBe(201);
    const { id: subscriptionId } = await sub.json<{ id: string }>();
    try {
      const v = await freshVariant();
      const res = await adminCall('/admin/api/price-lists', 'POST', { name: 'Hook sale', region: 'sg', startsAt: inHours(1), prices: [{ sku: v.sku, amount: 1900 }] });
      expect(res.status).toBe(201);
      // Deliveries are asynchronous (queue): wait for the receiver to hear of this product.
      const deadline = Date.now() + 20_000;
      let events: any[] = [];
      while (Date.now() < deadline) {
        const got = await (await fetch(`${simUrl}/webhook-receiver/${name}`)).json<{ requests: { body: string }[] }>();
        events = got.requests.map((r) => JSON.parse(r.body)).filter((e) => e.data?.productId === v.productId);
        if (events.length) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(events.map((e) => [e.type, e.data.slug, e.data.change])).toContainEqual(['product.updated', v.slug, 'updated']);
    } finally {
      await adminCall(`/admin/api/webhooks/${subscriptionId}`, 'DELETE');
    }
  }, 30_000);
});
