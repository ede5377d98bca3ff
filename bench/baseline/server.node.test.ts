/**
 * The benchmark baseline (bench/baseline/server.ts) against the test
 * database and Redis: the same wire shapes and rules as the store's catalog
 * read and add-to-cart, checked against what Postgres holds.
 */
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { REGIONS } from '../../db/regions';
import { startBaseline, type BaselineServer } from './server';

const databaseUrl = inject('databaseUrl');
const redisUrl = inject('redisUrl');
const fixtures = inject('seedFixtures');

let server: BaselineServer;
let client: pg.Client;
const cartIds: string[] = [];

beforeAll(async () => {
  server = await startBaseline({ databaseUrl, redisUrl, port: 0, poolSize: 4 });
  client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
});
afterAll(async () => {
  await server?.close();
  await client?.end();
  // The machine's Redis is shared: leave no test carts behind.
  if (cartIds.length) {
    const redis = new Redis(redisUrl);
    await redis.del(...cartIds.flatMap((id) => [`bcart:${id}`, `bcart:${id}:meta`]));
    await redis.quit();
  }
});

interface Money {
  amount: number;
  currency: string;
}
interface Cart {
  id: string;
  region: string;
  items: { id: string; variantId: string; sku: string; title: string; quantity: number; unitPrice: Money; lineTotal: Money }[];
  subtotal: Money;
}
interface ErrorEnvelope {
  error: { code: string; message: string; details?: unknown };
}

async function call<T = unknown>(path: string, init: RequestInit & { region?: string } = {}): Promise<{ status: number; headers: Headers; body: T }> {
  const { region, ...rest } = init;
  const headers = new Headers(rest.headers);
  if (region) headers.set('x-region', region);
  if (rest.body !== undefined) headers.set('content-type', 'application/json');
  const res = await fetch(`${server.url}${path}`, { ...rest, headers });
  return { status: res.status, headers: res.headers, body: (await res.json()) as T };
}

const post = <T = unknown>(path: string, body: unknown, region?: string) =>
  call<T>(path, { method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body), region });

async function newCart(region?: string): Promise<Cart> {
  const res = await call<Cart>('/api/carts', { method: 'POST', region });
  expect(res.status).toBe(201);
  cartIds.push(res.body.id);
  return res.body;
}

/** The first active variant of a seed product priced in a region, straight from Postgres. */
async function sellableVariant(slug: string, region: string): Promise<{ id: string; sku: string; amount: number }> {
  const { rows } = await client.query<{ id: string; sku: string; amount: string }>(
    `select v.id, v.sku, pr.amount from variants v join products p on p.id = v.product_id
       join prices pr on pr.variant_id = v.id and pr.region_code = $2
      where p.slug = $1 and v.status = 'active' order by v.position, v.sku limit 1`,
    [slug, region],
  );
  expect(rows[0], `${slug} has a variant priced in ${region}`).toBeDefined();
  return { id: rows[0]!.id, sku: rows[0]!.sku, amount: Number(rows[0]!.amount) };
}

describe('baseline server', () => {
  it('answers /health', async () => {
    const res = await call<{ ok: boolean }>('/health');
    expect(res).toMatchObject({ status: 200, body: { ok: true } });
  });

  it("reads a seed product with its variants priced in the region's currency and the region's stock", async () => {
    const slug = fixtures.productSlugs[0]!;
    const res = await call<{
      id: string; slug: string; title: string; description: string; category: { slug: string; name: string }; images: unknown[];
      variants: { id: string; sku: string; title: string; options: Record<string, string>; price: Money; available: number }[];
    }>(`/api/products/${slug}`, { region: 'my' });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-region')).toBe('my');
    const p = res.body;
    expect(p).toMatchObject({ slug, category: { slug: expect.any(String), name: expect.any(String) } });
    expect(p.title.length).toBeGreaterThan(0);
    expect(Array.isArray(p.images)).toBe(true);

    const { rows } = await client.query<{ id: string; sku: string; amount: string; received: number }>(
      `select v.id, v.sku, pr.amount, coalesce(s.received, 0) as received
         from variants v join products p on p.id = v.product_id
         join prices pr on pr.variant_id = v.id and pr.region_code = 'my'
         left join stock s on s.variant_id = v.id and s.region_code = 'my'
        where p.slug = $1 and v.status = 'active' order by v.position, v.sku`,
      [slug],
    );
    expect(rows.length).toBeGreaterThan(0);
    expect(p.variants.map((v) => ({ id: v.id, sku: v.sku, price: v.price, available: v.available }))).toEqual(
      rows.map((r) => ({ id: r.id, sku: r.sku, price: { amount: Number(r.amount), currency: 'MYR' }, available: r.received })),
    );
    for (const v of p.variants) {
      expect(Number.isInteger(v.price.amount)).toBe(true);
      expect(typeof v.options).toBe('object');
    }

    // Without a header the region is sg, priced in SGD.
    const sg = await call<{ variants: { price: Money }[] }>(`/api/products/${slug}`);
    expect(sg.headers.get('x-region')).toBe('sg');
    expect(sg.body.variants.every((v) => v.price.currency === REGIONS.sg.currency)).toBe(true);
  });

  it('answers 404 envelopes for an unknown slug, a product not sold in the region and a hidden product', async () => {
    for (const [slug, region] of [
      ['no-such-product-anywhere', 'sg'],
      [fixtures.regionLimitedSlug, fixtures.regionLimitedNotSoldIn[0]!],
      [fixtures.draftSlug, 'sg'],
    ] as const) {
      const res = await call<ErrorEnvelope>(`/api/products/${slug}`, { region });
      expect(res.status, `${slug} in ${region}`).toBe(404);
      expect(res.headers.get('content-type')).toMatch(/application\/json/);
      expect(res.body.error).toMatchObject({ code: 'not_found', message: expect.any(String) });
    }
    const sold = await call(`/api/products/${fixtures.regionLimitedSlug}`, { region: fixtures.regionLimitedSoldIn[0]! });
    expect(sold.status).toBe(200);
  });

  it('refuses an unknown region with 400 invalid_region', async () => {
    const res = await call<ErrorEnvelope>(`/api/products/${fixtures.productSlugs[0]!}`, { region: 'us' });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('invalid_region');
  });

  it('creates a cart and adds to one line: quantities add, line total = unit × quantity, subtotal = sum', async () => {
    const cart = await newCart('th');
    expect(cart).toEqual({ id: expect.any(String), region: 'th', items: [], subtotal: { amount: 0, currency: 'THB' } });
    expect(cart.id).toMatch(/^[A-Za-z0-9_-]{22}$/);

    const a = await sellableVariant(fixtures.productSlugs[0]!, 'th');
    const b = await sellableVariant(fixtures.productSlugs[1]!, 'th');
    const first = await post<Cart>(`/api/carts/${cart.id}/items`, { variantId: a.id, quantity: 2 });
    expect(first.status).toBe(200);
    expect(first.body.items).toHaveLength(1);
    const second = await post<Cart>(`/api/carts/${cart.id}/items`, { variantId: a.id, quantity: 3 });
    expect(second.status).toBe(200);
    expect(second.body.items).toHaveLength(1);
    expect(second.body.items[0]).toMatchObject({
      id: a.id,
      variantId: a.id,
      sku: a.sku,
      title: expect.any(String),
      quantity: 5,
      unitPrice: { amount: a.amount, currency: 'THB' },
      lineTotal: { amount: a.amount * 5, currency: 'THB' },
    });

    const third = await post<Cart>(`/api/carts/${cart.id}/items`, { variantId: b.id, quantity: 1 });
    expect(third.status).toBe(200);
    expect(third.body.items.map((i) => [i.variantId, i.quantity])).toEqual([
      [a.id, 5],
      [b.id, 1],
    ]);
    for (const i of third.body.items) expect(i.lineTotal.amount).toBe(i.unitPrice.amount * i.quantity);
    expect(third.body.subtotal).toEqual({ amount: a.amount * 5 + b.amount, currency: 'THB' });

    // A read prices the same lines again from Postgres; the request region does not reprice the cart.
    const read = await call<Cart>(`/api/carts/${cart.id}`, { region: 'sg' });
    expect(read.status).toBe(200);
    expect(read.body).toEqual(third.body);
  });

  it('answers 400 invalid_request for quantity 0, 100, a fraction or an unknown field, and 400 invalid_json for bad JSON', async () => {
    const cart = await newCart();
    const v = await sellableVariant(fixtures.productSlugs[0]!, 'sg');
    for (const body of [{ variantId: v.id, quantity: 0 }, { variantId: v.id, quantity: 100 }, { variantId: v.id, quantity: 1.5 }, { variantId: v.id, quantity: 1, price: 1 }, { quantity: 1 }]) {
      const res = await post<ErrorEnvelope>(`/api/carts/${cart.id}/items`, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error.code).toBe('invalid_request');
      expect(Array.isArray(res.body.error.details)).toBe(true);
    }
    const bad = await post<ErrorEnvelope>(`/api/carts/${cart.id}/items`, '{"variantId": ');
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('invalid_json');
    expect((await call<Cart>(`/api/carts/${cart.id}`)).body.items).toEqual([]);
  });

  it('answers 422 unknown_variant for an unknown variant and one not sold in the cart region', async () => {
    const cart = await newCart(fixtures.regionLimitedNotSoldIn[0]!);
    const unknown = await post<ErrorEnvelope>(`/api/carts/${cart.id}/items`, { variantId: 'var_doesnotexist000', quantity: 1 });
    expect(unknown.status).toBe(422);
    expect(unknown.body.error.code).toBe('unknown_variant');

    const elsewhere = await sellableVariant(fixtures.regionLimitedSlug, fixtures.regionLimitedSoldIn[0]!);
    const notHere = await post<ErrorEnvelope>(`/api/carts/${cart.id}/items`, { variantId: elsewhere.id, quantity: 1 });
    expect(notHere.status).toBe(422);
    expect(notHere.body.error.code).toBe('unknown_variant');
    expect((await call<Cart>(`/api/carts/${cart.id}`)).body.items).toEqual([]);
  });

  it('answers 422 quantity_limit for a line that would pass 99 and leaves the line as it was', async () => {
    const cart = await newCart();
    const v = await sellableVariant(fixtures.productSlugs[2]!, 'sg');
    expect((await post(`/api/carts/${cart.id}/items`, { variantId: v.id, quantity: 60 })).status).toBe(200);
    const over = await post<ErrorEnvelope>(`/api/carts/${cart.id}/items`, { variantId: v.id, quantity: 40 });
    expect(over.status).toBe(422);
    expect(over.body.error.code).toBe('quantity_limit');
    const exact = await post<Cart>(`/api/carts/${cart.id}/items`, { variantId: v.id, quantity: 39 });
    expect(exact.status).toBe(200);
    expect(exact.body.items[0]!.quantity).toBe(99);
    expect((await post<ErrorEnvelope>(`/api/carts/${cart.id}/items`, { variantId: v.id, quantity: 1 })).body.error.code).toBe('quantity_limit');
  });

  it('never lets concurrent adds push a line past 99', async () => {
    const cart = await newCart();
    const v = await sellableVariant(fixtures.productSlugs[3]!, 'sg');
    const answers = await Promise.all(Array.from({ length: 12 }, () => post(`/api/carts/${cart.id}/items`, { variantId: v.id, quantity: 10 })));
    expect(answers.filter((a) => a.status === 200)).toHaveLength(9);
    expect(answers.filter((a) => a.status === 422)).toHaveLength(3);
    expect((await call<Cart>(`/api/carts/${cart.id}`)).body.items[0]!.quantity).toBe(90);
  });

  it('answers 404 for an unknown cart, whether well-formed or not', async () => {
    const v = await sellableVariant(fixtures.productSlugs[0]!, 'sg');
    for (const id of ['AAAAAAAAAAAAAAAAAAAAAA', 'not-a-cart']) {
      const read = await call<ErrorEnvelope>(`/api/carts/${id}`);
      expect(read.status).toBe(404);
      expect(read.body.error.code).toBe('not_found');
      const add = await post<ErrorEnvelope>(`/api/carts/${id}/items`, { variantId: v.id, quantity: 1 });
      expect(add.status).toBe(404);
      expect(add.body.error.code).toBe('not_found');
    }
  });

  it('answers unknown routes with a JSON 404 envelope', async () => {
    const res = await call<ErrorEnvelope>('/api/nothing-here');
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('not_found');
  });
});
