import { env } from 'cloudflare:workers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../app';
import { CART_TTL_SECONDS } from './store';
import { TH_PRICE, TW_PRICE, admin, api, archiveCreatedProducts, call, createProduct, fx, newCart, testRedis, type TestProduct } from './test-helpers';

const items = (id: string) => `/api/carts/${id}/items`;
const add = (cartId: string, variantId: string, quantity: number, region = 'tw') => api(items(cartId), 'POST', { variantId, quantity }, region);
const errorOf = async (res: Response) => (await res.json<{ error: { code: string; message: string; details?: any } }>()).error;

let product: TestProduct;
beforeAll(async () => {
  product = await createProduct({ count: 3 });
});
afterAll(archiveCreatedProducts);

describe('POST /api/carts', () => {
  it("creates an empty cart in the request's region, with or without a body", async () => {
    const inits: RequestInit[] = [
      { method: 'POST' },
      { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' },
      { method: 'POST', headers: { 'content-type': 'application/json' } },
      { method: 'POST', headers: { 'content-type': 'application/json' }, body: '  ' },
    ];
    for (const init of inits) {
      const res = await call('/api/carts', { ...init, headers: { ...(init.headers as Record<string, string>), 'x-region': 'th' } });
      expect(res.status, JSON.stringify(init)).toBe(201);
      expect(res.headers.get('cache-control')).toBe('no-store');
      const body = await res.json<any>();
      const zero = { amount: 0, currency: 'THB' };
      expect(body).toEqual({ id: expect.any(String), region: 'th', createdAt: expect.any(String), items: [], subtotal: zero, promotions: [], code: null, shipping: zero, discount: zero, total: zero });
    }
  });

  it('mints unguessable ids: cart_ + 32 base32 characters (160 bits), all different', async () => {
    const ids = await Promise.all(Array.from({ length: 20 }, async () => (await newCart()).id));
    for (const id of ids) expect(id).toMatch(/^cart_[0-9a-hjkmnp-tv-z]{32}$/);
    expect(new Set(ids).size).toBe(ids.length);
    // 32 characters of a 32-symbol alphabet: 5 bits each.
    expect((ids[0]!.length - 'cart_'.length) * Math.log2(32)).toBeGreaterThanOrEqual(128);
  });

  it('refuses unknown fields and malformed JSON', async () => {
    const unknown = await api('/api/carts', 'POST', { region: 'my' });
    expect(unknown.status).toBe(400);
    expect(await errorOf(unknown)).toMatchObject({ code: 'invalid_request', details: [{ in: 'body', field: 'region' }] });
    const bad = await api('/api/carts', 'POST', '{"oops"');
    expect(bad.status).toBe(400);
    expect((await errorOf(bad)).code).toBe('invalid_json');
  });

  it('sets a 30 day TTL, and every read slides it back', async () => {
    const { id } = await newCart();
    const redis = testRedis();
    const ttl = await redis.ttl(`cart:${id}`);
    expect(ttl).toBeGreaterThan(CART_TTL_SECONDS - 60);
    expect(ttl).toBeLessThanOrEqual(CART_TTL_SECONDS);
    expect(CART_TTL_SECONDS).toBe(30 * 24 * 3600);
    await redis.expire(`cart:${id}`, 100);
    expect((await api(`/api/carts/${id}`)).status).toBe(200);
    expect(await redis.ttl(`cart:${id}`)).toBeGreaterThan(CART_TTL_SECONDS - 60);
    await redis.expire(`cart:${id}`, 100);
    expect((await add(id, product.variants[0]!.id, 1)).status).toBe(200);
    expect(await redis.ttl(`cart:${id}`)).toBeGreaterThan(CART_TTL_SECONDS - 60);
  });
});

describe('GET /api/carts/:id', () => {
  it('reads a cart back with priced items', async () => {
    const { id } = await newCart();
    expect((await add(id, product.variants[0]!.id, 2)).status).toBe(200);
    const res = await api(`/api/carts/${id}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const cart = await res.json<any>();
    expect(cart).toMatchObject({
      id,
      region: 'tw',
      items: [
        {
          id: product.variants[0]!.id,
          variantId: product.variants[0]!.id,
          sku: product.variants[0]!.sku,
          title: expect.stringContaining('Cart Test Kopi'),
          quantity: 2,
          unitPrice: { amount: TW_PRICE, currency: 'TWD' },
          lineTotal: { amount: 2 * TW_PRICE, currency: 'TWD' },
          status: 'ok',
        },
      ],
      subtotal: { amount: 2 * TW_PRICE, currency: 'TWD' },
    });
    expect(cart.items[0].problem).toBeUndefined();
    expect(cart.items[0].previousUnitPrice).toBeUndefined();
  });

  it("prices in the cart's region whatever region the request names", async () => {
    const { id } = await newCart('th');
    const added = await add(id, product.variants[0]!.id, 1, 'tw');
    expect(added.status).toBe(200);
    const res = await api(`/api/carts/${id}`, 'GET', undefined, 'tw');
    expect(res.headers.get('x-region')).toBe('tw');
    const cart = await res.json<any>();
    expect(cart.region).toBe('th');
    expect(cart.items[0].unitPrice).toEqual({ amount: TH_PRICE, currency: 'THB' });
    expect(cart.subtotal).toEqual({ amount: TH_PRICE, currency: 'THB' });
  });

  it('404s an unknown cart and a malformed id with the JSON envelope', async () => {
    const unknown = `cart_${'0'.repeat(32)}`;
    for (const id of [unknown, 'abc', 'cart_123', `cart_${'U'.repeat(32)}`, `${unknown}x`, encodeURIComponent("cart_'; flushall; --")]) {
      for (const [path, method, body] of [
        [`/api/carts/${id}`, 'GET', undefined],
        [items(id), 'POST', { variantId: product.variants[0]!.id, quantity: 1 }],
        [`${items(id)}/${product.variants[0]!.id}`, 'PATCH', { quantity: 1 }],
        [`${items(id)}/${product.variants[0]!.id}`, 'DELETE', undefined],
      ] as const) {
        const res = await api(path, method, body);
        expect(res.status, `${method} ${path}`).toBe(404);
        expect(res.headers.get('content-type')).toContain('application/json');
        expect((await errorOf(res)).code).toBe('not_found');
      }
    }
  });

  it('answers 503 unavailable with Retry-After when Redis is down', async () => {
    const dead = { ...env, UPSTASH_REDIS_REST_URL: env.TEST_DEAD_UPSTASH_URL! };
    const app = createApp();
    const cases: [string, RequestInit][] = [
      ['/api/carts', { method: 'POST' }],
      [`/api/carts/cart_${'1'.repeat(32)}`, {}],
      [items(`cart_${'1'.repeat(32)}`), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ variantId: product.variants[0]!.id, quantity: 1 }) }],
      [`${items(`cart_${'1'.repeat(32)}`)}/${product.variants[0]!.id}`, { method: 'DELETE' }],
    ];
    for (const [path, init] of cases) {
      const res = await app.request(path, init, dead);
      expect(res.status, path).toBe(503);
      expect(res.headers.get('retry-after')).toBe('5');
      expect(res.headers.get('content-type')).toContain('application/json');
      expect((await errorOf(res)).code).toBe('unavailable');
    }
  });

  it('answers 503 unavailable when Postgres cannot price the cart', async () => {
    const { id } = await newCart();
    await add(id, product.variants[0]!.id, 1);
    const app = createApp();
    const res = await app.request(`/api/carts/${id}`, {}, { ...env, DATABASE_URL: 'postgres://postgres@127.0.0.1:1/nowhere' });
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('5');
    expect((await errorOf(res)).code).toBe('unavailable');
  });
});

describe('POST /api/carts/:id/items', () => {
  it('adds to the existing line of a variant', async () => {
    const { id } = await newCart();
    await add(id, product.variants[0]!.id, 2);
    const res = await add(id, product.variants[0]!.id, 3);
    expect(res.status).toBe(200);
    const cart = await res.json<any>();
    expect(cart.items).toHaveLength(1);
    expect(cart.items[0]).toMatchObject({ variantId: product.variants[0]!.id, quantity: 5, lineTotal: { amount: 5 * TW_PRICE } });
    expect(cart.subtotal.amount).toBe(5 * TW_PRICE);
  });

  it('keeps lines in the order they were first added', async () => {
    const { id } = await newCart();
    const [a, b, c] = product.variants.map((v) => v.id);
    await add(id, b!, 1);
    await add(id, a!, 1);
    await add(id, c!, 1);
    await add(id, b!, 1);
    const cart = await (await api(`/api/carts/${id}`)).json<any>();
    expect(cart.items.map((i: any) => i.variantId)).toEqual([b, a, c]);
  });

  it('counts every one of 50 concurrent adds of the same variant (new line, then existing line)', async () => {
    const { id } = await newCart();
    const results = await Promise.all(Array.from({ length: 50 }, () => add(id, product.variants[0]!.id, 1)));
    expect(results.map((r) => r.status)).toEqual(Array(50).fill(200));
    const cart = await (await api(`/api/carts/${id}`)).json<any>();
    expect(cart.items).toHaveLength(1);
    expect(cart.items[0].quantity).toBe(50);
    expect(cart.subtotal.amount).toBe(50 * TW_PRICE);
    // Again, now that the line exists: 49 more make exactly 99.
    const more = await Promise.all(Array.from({ length: 49 }, () => add(id, product.variants[0]!.id, 1)));
    expect(more.map((r) => r.status)).toEqual(Array(49).fill(200));
    expect((await (await api(`/api/carts/${id}`)).json<any>()).items[0].quantity).toBe(99);
  });

  it('keeps both lines when two tabs add different variants at once', async () => {
    const { id } = await newCart();
    const [a, b] = [product.variants[0]!.id, product.variants[1]!.id];
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => add(id, i % 2 ? a : b, 1)));
    expect(results.every((r) => r.status === 200)).toBe(true);
    const cart = await (await api(`/api/carts/${id}`)).json<any>();
    expect(cart.items.map((i: any) => [i.variantId, i.quantity]).sort()).toEqual([[a, 10], [b, 10]].sort());
  });

  it('refuses a line that would pass 99 with 422 quantity_limit and changes nothing', async () => {
    const { id } = await newCart();
    const v = product.variants[0]!.id;
    expect((await add(id, v, 60)).status).toBe(200);
    const over = await add(id, v, 40);
    expect(over.status).toBe(422);
    expect(await errorOf(over)).toMatchObject({ code: 'quantity_limit', details: { quantity: 60, requested: 40, max: 99 } });
    expect((await (await api(`/api/carts/${id}`)).json<any>()).items[0].quantity).toBe(60);
    expect((await add(id, v, 39)).status).toBe(200);
    const at99 = await add(id, v, 1);
    expect(at99.status).toBe(422);
    expect((await (await api(`/api/carts/${id}`)).json<any>()).items[0].quantity).toBe(99);
  });

  it('enforces the 99 limit atomically under concurrent adds', async () => {
    const { id } = await newCart();
    const results = await Promise.all(Array.from({ length: 12 }, () => add(id, product.variants[1]!.id, 10)));
    const statuses = results.map((r) => r.status).sort();
    expect(statuses.filter((s) => s === 200)).toHaveLength(9);
    expect(statuses.filter((s) => s === 422)).toHaveLength(3);
    expect((await (await api(`/api/carts/${id}`)).json<any>()).items[0].quantity).toBe(90);
  });

  it('holds at most 100 lines: the 101st is 422 cart_full, also under concurrency, and existing lines can still grow', async () => {
    const bulk = await createProduct({ count: 100 });
    const extra = product.variants.map((v) => v.id);
    const { id } = await newCart();
    // 95 lines, 19 at a time.
    for (let i = 0; i < 95; i += 19) {
      const batch = await Promise.all(bulk.variants.slice(i, i + 19).map((v) => add(id, v.id, 1)));
      expect(batch.every((r) => r.status === 200)).toBe(true);
    }
    // 8 different new variants at once for the last 5 places: exactly 5 get in.
    const racers = [...bulk.variants.slice(95).map((v) => v.id), ...extra];
    const raced = await Promise.all(racers.map((v) => add(id, v, 1)));
    expect(raced.filter((r) => r.status === 200)).toHaveLength(5);
    const refusals = raced.filter((r) => r.status === 422);
    expect(refusals).toHaveLength(3);
    for (const r of refusals) expect((await errorOf(r)).code).toBe('cart_full');
    let cart = await (await api(`/api/carts/${id}`)).json<any>();
    expect(cart.items).toHaveLength(100);
    const outside = racers.find((v) => !cart.items.some((i: any) => i.variantId === v))!;
    const full = await add(id, outside, 1);
    expect(full.status).toBe(422);
    expect(await errorOf(full)).toMatchObject({ code: 'cart_full', details: { maxLines: 100 } });
    const grow = await add(id, cart.items[0].variantId, 2);
    expect(grow.status).toBe(200);
    cart = await grow.json<any>();
    expect(cart.items).toHaveLength(100);
    expect(cart.items[0].quantity).toBe(3);
    expect(cart.subtotal.amount).toBe(cart.items.reduce((sum: number, i: any) => sum + i.lineTotal.amount, 0));
  });

  it('400s quantities outside 1-99, non-integers, non-numbers, missing fields and unknown fields', async () => {
    const { id } = await newCart();
    const v = product.variants[0]!.id;
    const bodies: [unknown, string][] = [
      [{ variantId: v, quantity: 0 }, 'quantity'],
      [{ variantId: v, quantity: 100 }, 'quantity'],
      [{ variantId: v, quantity: -1 }, 'quantity'],
      [{ variantId: v, quantity: 1.5 }, 'quantity'],
      [{ variantId: v, quantity: 'x' }, 'quantity'],
      [{ variantId: v, quantity: '2' }, 'quantity'],
      [{ variantId: v }, 'quantity'],
      [{ quantity: 1 }, 'variantId'],
      [{ variantId: 42, quantity: 1 }, 'variantId'],
      [{ variantId: v, quantity: 1, price: { amount: 1, currency: 'TWD' } }, 'price'],
      [{ variantId: v, quantity: 1, unitPrice: 1 }, 'unitPrice'],
    ];
    for (const [body, field] of bodies) {
      const res = await api(items(id), 'POST', body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      const error = await errorOf(res);
      expect(error.code).toBe('invalid_request');
      expect(error.details.map((d: any) => d.field)).toContain(field);
    }
    const bad = await api(items(id), 'POST', '{"variantId": ');
    expect(bad.status).toBe(400);
    expect((await errorOf(bad)).code).toBe('invalid_json');
    const cart = await (await api(`/api/carts/${id}`)).json<any>();
    expect(cart.items).toEqual([]);
  });

  it('422s unknown_variant for an unknown, archived or draft variant, before writing anything', async () => {
    const { id } = await newCart();
    const archivedVariant = await createProduct({ variantStatus: 'archived' });
    const draftProduct = await createProduct({ status: 'draft' });
    for (const variantId of ['var_doesnotexist000000', "x'; drop table variants; --", archivedVariant.variants[0]!.id, draftProduct.variants[0]!.id]) {
      const res = await add(id, variantId, 1);
      expect(res.status, variantId).toBe(422);
      expect((await errorOf(res)).code).toBe('unknown_variant');
    }
    expect((await (await api(`/api/carts/${id}`)).json<any>()).items).toEqual([]);
  });

  it("422s a variant that is not sold in the cart's region", async () => {
    const soldIn = fx.regionLimitedSoldIn[0]!;
    const notSoldIn = fx.regionLimitedNotSoldIn[0]!;
    const doc = await (await api(`/api/products/${fx.regionLimitedSlug}`, 'GET', undefined, soldIn)).json<any>();
    const variantId = doc.variants[0].id as string;
    const elsewhere = await newCart(notSoldIn);
    // Even when the request claims the region where it is sold: the cart's region decides.
    const res = await add(elsewhere.id, variantId, 1, soldIn);
    expect(res.status).toBe(422);
    expect(await errorOf(res)).toMatchObject({ code: 'unknown_variant', details: { reason: 'not_sold_in_region', region: notSoldIn } });
    const home = await newCart(soldIn);
    const ok = await add(home.id, variantId, 1, notSoldIn);
    expect(ok.status).toBe(200);
    expect((await ok.json<any>()).items[0].unitPrice).toEqual(doc.variants[0].price);
  });
});

describe('PATCH and DELETE /api/carts/:id/items/:itemId', () => {
  it('sets a quantity, and 0 removes the line', async () => {
    const { id } = await newCart();
    const [a, b] = [product.variants[0]!.id, product.variants[1]!.id];
    await add(id, a, 1);
    await add(id, b, 1);
    const set = await api(`${items(id)}/${a}`, 'PATCH', { quantity: 7 });
    expect(set.status).toBe(200);
    const cart = await set.json<any>();
    expect(cart.items.find((i: any) => i.id === a).quantity).toBe(7);
    expect(cart.subtotal.amount).toBe(8 * TW_PRICE);
    const zero = await api(`${items(id)}/${a}`, 'PATCH', { quantity: 0 });
    expect(zero.status).toBe(200);
    expect((await zero.json<any>()).items.map((i: any) => i.id)).toEqual([b]);
    expect((await (await api(`/api/carts/${id}`)).json<any>()).items.map((i: any) => i.id)).toEqual([b]);
  });

  it('DELETE removes a line', async () => {
    const { id } = await newCart();
    const [a, b] = [product.variants[0]!.id, product.variants[1]!.id];
    await add(id, a, 2);
    await add(id, b, 3);
    const res = await api(`${items(id)}/${b}`, 'DELETE');
    expect(res.status).toBe(200);
    const cart = await res.json<any>();
    expect(cart.items.map((i: any) => [i.id, i.quantity])).toEqual([[a, 2]]);
    expect(cart.subtotal.amount).toBe(2 * TW_PRICE);
    // A removed line can come back, as a new line at the end.
    await add(id, b, 1);
    expect((await (await api(`/api/carts/${id}`)).json<any>()).items.map((i: any) => i.id)).toEqual([a, b]);
  });

  it('404s an item the cart does not have, and a malformed item id', async () => {
    const { id } = await newCart();
    await add(id, product.variants[0]!.id, 1);
    for (const itemId of [product.variants[1]!.id, 'var_nope', encodeURIComponent('a b/c'), 'x'.repeat(65)]) {
      for (const [method, body] of [['PATCH', { quantity: 1 }], ['DELETE', undefined]] as const) {
        const res = await api(`${items(id)}/${itemId}`, method, body);
        expect(res.status, `${method} ${itemId}`).toBe(404);
        expect((await errorOf(res)).code).toBe('not_found');
      }
    }
    // Removing twice: the second is a 404, the cart is unchanged.
    expect((await api(`${items(id)}/${product.variants[0]!.id}`, 'DELETE')).status).toBe(200);
    expect((await api(`${items(id)}/${product.variants[0]!.id}`, 'DELETE')).status).toBe(404);
  });

  it('400s PATCH quantities outside 0-99 and unknown fields', async () => {
    const { id } = await newCart();
    const v = product.variants[0]!.id;
    await add(id, v, 4);
    for (const body of [{ quantity: 100 }, { quantity: -1 }, { quantity: 1.5 }, { quantity: 'x' }, {}, { quantity: 1, price: 1 }]) {
      const res = await api(`${items(id)}/${v}`, 'PATCH', body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect((await errorOf(res)).code).toBe('invalid_request');
    }
    expect((await (await api(`/api/carts/${id}`)).json<any>()).items[0].quantity).toBe(4);
  });
});

describe('prices from the origin', () => {
  it('shows a price change on the next read: unitPrice, lineTotal, subtotal, and the price it was added at', async () => {
    const p = await createProduct({ count: 2 });
    const [a, b] = p.variants;
    const { id } = await newCart();
    await add(id, a!.id, 3);
    await add(id, b!.id, 1);
    const patched = await admin(`/admin/api/products/${p.id}`, 'PATCH', { variants: [{ sku: a!.sku, prices: { tw: { amount: 650 } } }] });
    expect(patched.status).toBe(200);
    const cart = await (await api(`/api/carts/${id}`)).json<any>();
    const lineA = cart.items.find((i: any) => i.variantId === a!.id);
    expect(lineA).toMatchObject({
      unitPrice: { amount: 650, currency: 'TWD' },
      lineTotal: { amount: 3 * 650, currency: 'TWD' },
      previousUnitPrice: { amount: TW_PRICE, currency: 'TWD' },
      status: 'ok',
    });
    expect(cart.items.find((i: any) => i.variantId === b!.id).previousUnitPrice).toBeUndefined();
    expect(cart.subtotal).toEqual({ amount: 3 * 650 + TW_PRICE, currency: 'TWD' });
    // Adding again at the new price: the line no longer says it was repriced.
    const again = await (await add(id, a!.id, 1)).json<any>();
    expect(again.items.find((i: any) => i.variantId === a!.id)).not.toHaveProperty('previousUnitPrice');
  });

  it('keeps an archived product line, marked unavailable and left out of the subtotal', async () => {
    const gone = await createProduct();
    const stays = await createProduct({ prices: { tw: { amount: 120 } } });
    const { id } = await newCart();
    await add(id, gone.variants[0]!.id, 2);
    await add(id, stays.variants[0]!.id, 1);
    expect((await admin(`/admin/api/products/${gone.id}`, 'DELETE')).status).toBeLessThan(300);
    const cart = await (await api(`/api/carts/${id}`)).json<any>();
    expect(cart.items).toHaveLength(2);
    expect(cart.items[0]).toMatchObject({
      variantId: gone.variants[0]!.id,
      quantity: 2,
      status: 'unavailable',
      problem: 'archived',
      unitPrice: { amount: TW_PRICE, currency: 'TWD' },
      lineTotal: { amount: 0, currency: 'TWD' },
    });
    expect(cart.items[1]).toMatchObject({ status: 'ok', lineTotal: { amount: 120 } });
    expect(cart.subtotal).toEqual({ amount: 120, currency: 'TWD' });
    // It cannot be added again, but it can be removed.
    expect((await errorOf(await add(id, gone.variants[0]!.id, 1))).code).toBe('unknown_variant');
    const removed = await api(`${items(id)}/${gone.variants[0]!.id}`, 'DELETE');
    expect((await removed.json<any>()).items).toHaveLength(1);
  });

  it('marks a line no longer priced in the region as not_sold_in_region', async () => {
    const p = await createProduct();
    const { id } = await newCart('th');
    await add(id, p.variants[0]!.id, 1, 'th');
    expect((await admin(`/admin/api/products/${p.id}`, 'PATCH', { variants: [{ sku: p.variants[0]!.sku, prices: { th: null } }] })).status).toBe(200);
    const cart = await (await api(`/api/carts/${id}`, 'GET', undefined, 'th')).json<any>();
    expect(cart.items[0]).toMatchObject({ status: 'unavailable', problem: 'not_sold_in_region', unitPrice: { amount: TH_PRICE, currency: 'THB' }, lineTotal: { amount: 0 } });
    expect(cart.subtotal).toEqual({ amount: 0, currency: 'THB' });
  });
});

describe('OpenAPI', () => {
  it('documents every cart route under the Storefront tag', async () => {
    const doc = await (await call('/api/openapi.json')).json<any>();
    const expected: [string, string][] = [
      ['/api/carts', 'post'],
      ['/api/carts/{id}', 'get'],
      ['/api/carts/{id}/items', 'post'],
      ['/api/carts/{id}/items/{itemId}', 'patch'],
      ['/api/carts/{id}/items/{itemId}', 'delete'],
    ];
    for (const [path, method] of expected) {
      expect(doc.paths[path]?.[method]?.tags, `${method} ${path}`).toEqual(['Storefront']);
    }
    expect(doc.paths['/api/carts/{id}/items'].post.responses['422']).toBeDefined();
    expect(doc.components.schemas.Cart).toBeDefined();
    expect(doc.components.schemas.AddCartItem.additionalProperties).toBe(false);
  });
});
