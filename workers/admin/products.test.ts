import { env, exports } from 'cloudflare:workers';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { sql } from 'drizzle-orm';
import { createDatabase } from '../../db/client';
import { apiTokens } from '../../db/schema';
import { newId, randomToken } from '../lib/ids';
import { hashToken } from '../middleware/admin-auth';

const fx = inject('seedFixtures');
const owner = env.ADMIN_BOOTSTRAP_TOKEN!;
const call = (path: string, init?: RequestInit) => exports.default.fetch(new Request(`http://pasar.test${path}`, init));
const admin = (path: string, method: string, body?: unknown, token = owner) =>
  call(path, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });

let readonlyToken = '';
let catalogToken = '';
beforeAll(async () => {
  const db = createDatabase(env);
  readonlyToken = `ro_${randomToken(20)}`;
  catalogToken = `cat_${randomToken(20)}`;
  await db.primary.insert(apiTokens).values([
    { id: newId('tok'), name: 'test readonly', tokenHash: await hashToken(readonlyToken), role: 'readonly' },
    { id: newId('tok'), name: 'test catalog', tokenHash: await hashToken(catalogToken), role: 'catalog' },
  ]);
  await db.close();
});

const unique = () => randomToken(6).toUpperCase();
function newProduct(overrides: Record<string, unknown> = {}) {
  const sku = `TEST-${unique()}`;
  return {
    title: `Pandan Chiffon Test Cake ${sku}`,
    description: 'A light green sponge scented with pandan leaves.',
    brand: 'Kopi Roast Co.',
    category: fx.busiestCategorySlug,
    variants: [
      {
        sku,
        title: 'Whole cake',
        options: { size: '18 cm' },
        prices: { sg: { amount: 2490 }, my: { amount: 6990 }, id: { amount: 249000, compareAtAmount: 299000 } },
      },
    ],
    ...overrides,
  };
}

/** Polls the storefront until `check` holds; fails if it takes longer than the 1 s contract. */
async function visibleWithin(ms: number, read: () => Promise<Response>, check: (res: Response, body: any) => boolean) {
  const started = Date.now();
  for (;;) {
    const res = await read();
    const body = res.status === 200 ? await res.json() : await res.text();
    if (check(res, body)) return Date.now() - started;
    if (Date.now() - started > ms) throw new Error(`not visible within ${ms} ms: ${res.status} ${JSON.stringify(body).slice(0, 300)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('admin catalog: security', () => {
  it('401s without a token or with a wrong one, with the envelope', async () => {
    for (const headers of [{}, { authorization: 'Bearer not-a-real-token-at-all' }, { authorization: 'Basic abc' }] as Record<string, string>[]) {
      const res = await call('/admin/api/products', { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: '{}' });
      expect(res.status).toBe(401);
      expect((await res.json<any>()).error.code).toBe('unauthorized');
    }
  });

  it('403s a readonly token on writes but lets it read', async () => {
    const res = await admin('/admin/api/products', 'POST', newProduct(), readonlyToken);
    expect(res.status).toBe(403);
    expect((await res.json<any>()).error.code).toBe('forbidden');
  });

  it('refuses client-sent fields the contract does not know (price, role, status of variants objects)', async () => {
    const res = await admin('/admin/api/products', 'POST', { ...newProduct(), role: 'owner' });
    expect(res.status).toBe(400);
    const body = await res.json<any>();
    expect(body.error.code).toBe('invalid_request');
    expect(body.error.details).toContainEqual(expect.objectContaining({ field: 'role' }));
  });
});

describe('admin catalog: writes reach the storefront', () => {
  it('creates a product that the storefront of this location serves at once, in each region currency', async () => {
    const res = await admin('/admin/api/products', 'POST', newProduct(), catalogToken);
    expect(res.status).toBe(201);
    const created = await res.json<any>();
    expect(created.id).toMatch(/^prod_/);
    expect(created.variants[0].prices.id).toEqual({ amount: 249000, currency: 'IDR', compareAtAmount: 299000 });
    const sg = await call(`/api/products/${created.slug}`, { headers: { 'x-region': 'sg' } });
    expect(sg.status).toBe(200);
    expect((await sg.json<any>()).variants[0].price).toEqual({ amount: 2490, currency: 'SGD' });
    // Not priced in Thailand: not sold there.
    expect((await call(`/api/products/${created.slug}`, { headers: { 'x-region': 'th' } })).status).toBe(404);
  });

  it('shows a price change on the next read within 1 s, even right after a cached read', async () => {
    const created = await (await admin('/admin/api/products', 'POST', newProduct())).json<any>();
    const read = () => call(`/api/products/${created.slug}`, { headers: { 'x-region': 'sg' } });
    await read();
    expect((await read()).headers.get('server-timing')).toMatch(/^cache;/);
    const patched = await admin(`/admin/api/products/${created.id}`, 'PATCH', { variants: [{ sku: created.variants[0].sku, prices: { sg: { amount: 1990 } } }] });
    expect(patched.status).toBe(200);
    expect((await patched.json<any>()).variants[0].title).toBe('Whole cake'); // untouched fields kept
    const ms = await visibleWithin(1_000, read, (_, body) => body?.variants?.[0]?.price?.amount === 1990);
    expect(ms).toBeLessThanOrEqual(1_000);
  });

  it('lists a new product in its category within 1 s', async () => {
    const read = () => call(`/api/products?category=${fx.busiestCategorySlug}&limit=5`);
    await read();
    const created = await (await admin('/admin/api/products', 'POST', newProduct())).json<any>();
    await visibleWithin(1_000, read, (_, body) => body?.items?.[0]?.id === created.id);
  });

  it('archives: the product 404s on the storefront and leaves listings', async () => {
    const created = await (await admin('/admin/api/products', 'POST', newProduct())).json<any>();
    expect((await call(`/api/products/${created.slug}`)).status).toBe(200);
    const res = await admin(`/admin/api/products/${created.id}`, 'DELETE');
    expect(res.status).toBe(200);
    expect((await res.json<any>()).status).toBe('archived');
    await visibleWithin(1_000, () => call(`/api/products/${created.slug}`), (r) => r.status === 404);
  });

  it('renames a slug: the old one 404s, the new one serves', async () => {
    const created = await (await admin('/admin/api/products', 'POST', newProduct())).json<any>();
    await call(`/api/products/${created.slug}`);
    const slug = `renamed-${unique().toLowerCase()}`;
    expect((await admin(`/admin/api/products/${created.id}`, 'PATCH', { slug })).status).toBe(200);
    expect((await call(`/api/products/${created.slug}`)).status).toBe(404);
    expect((await call(`/api/products/${slug}`)).status).toBe(200);
  });
});

describe('admin catalog: refusals change nothing', () => {
  it('409s a SKU that exists and 422s an unknown category', async () => {
    const first = newProduct();
    expect((await admin('/admin/api/products', 'POST', first)).status).toBe(201);
    const dup = await admin('/admin/api/products', 'POST', { ...newProduct(), variants: first.variants });
    expect(dup.status).toBe(409);
    expect((await dup.json<any>()).error.code).toBe('sku_taken');
    const cat = await admin('/admin/api/products', 'POST', newProduct({ category: 'no-such-category' }));
    expect(cat.status).toBe(422);
    expect((await cat.json<any>()).error.code).toBe('unknown_category');
  });

  it('400s bad prices and malformed JSON', async () => {
    const p = newProduct();
    p.variants[0]!.prices = { sg: { amount: 500, compareAtAmount: 400 } } as never;
    const bad = await admin('/admin/api/products', 'POST', p);
    expect(bad.status).toBe(400);
    expect((await bad.json<any>()).error.details).toContainEqual(expect.objectContaining({ field: 'variants.0.prices.sg.compareAtAmount' }));
    const neg = newProduct();
    neg.variants[0]!.prices = { sg: { amount: -1 } } as never;
    expect((await admin('/admin/api/products', 'POST', neg)).status).toBe(400);
    const json = await admin('/admin/api/products', 'POST', '{"title": ');
    expect(json.status).toBe(400);
    expect((await json.json<any>()).error.code).toBe('invalid_json');
  });

  it('404s a patch of an unknown product', async () => {
    const res = await admin('/admin/api/products/prod_doesnotexist', 'PATCH', { title: 'x' });
    expect(res.status).toBe(404);
  });
});

describe('bulk import (NDJSON)', () => {
  const LINES = 10_000;
  const badLines = new Set([17, 4_242, 9_999]);
  const prefix = `IMP-${unique()}`;
  let ndjson = '';

  beforeAll(() => {
    const lines: string[] = [];
    for (let i = 1; i <= LINES; i++) {
      if (i === 17) lines.push('{"title": "broken json"');
      else if (i === 4_242) lines.push(JSON.stringify({ ...newProduct(), variants: [] }));
      else if (i === 9_999) lines.push(JSON.stringify({ ...newProduct(), price: 100 }));
      else {
        const sku = `${prefix}-${i}`;
        lines.push(
          JSON.stringify({
            slug: `imported-${prefix.toLowerCase()}-${i}`,
            title: `Imported Batik Shirt ${i}`,
            description: 'Hand-stamped batik cotton shirt.',
            category: fx.busiestCategorySlug,
            variants: [{ sku, title: 'M', options: { size: 'M' }, prices: { sg: { amount: 3990 + i }, vn: { amount: 590000 } } }],
          }),
        );
      }
    }
    ndjson = lines.join('\n') + '\n';
  });

  const post = (body: string) =>
    call('/admin/api/products/import', { method: 'POST', headers: { authorization: `Bearer ${owner}`, 'content-type': 'application/x-ndjson' }, body });

  it('imports 10,000 lines, reporting the 3 bad ones by line number', async () => {
    const res = await post(ndjson);
    expect(res.status).toBe(200);
    const result = await res.json<any>();
    expect(result).toMatchObject({ lines: LINES, created: LINES - 3, updated: 0, failed: 3 });
    expect(result.errors.map((e: { line: number }) => e.line)).toEqual([...badLines].sort((a, b) => a - b));
    expect(result.errors[0].code).toBe('invalid_json');
    expect(result.errors.find((e: { line: number }) => e.line === 9_999).details).toContainEqual(expect.objectContaining({ field: 'price' }));
    const one = await call(`/api/products/imported-${prefix.toLowerCase()}-5000`, { headers: { 'x-region': 'vn' } });
    expect(one.status).toBe(200);
    expect((await one.json<any>()).variants[0].price).toEqual({ amount: 590000, currency: 'VND' });
  }, 120_000);

  it('is idempotent by SKU: the same file again updates, creating nothing', async () => {
    const result = await (await post(ndjson)).json<any>();
    expect(result).toMatchObject({ lines: LINES, created: 0, updated: LINES - 3, failed: 3 });
    const db = createDatabase(env);
    const { rows } = await db.primary.execute<{ n: number }>(sql`select count(*)::int as n from variants where sku like ${`${prefix}-%`}`);
    await db.close();
    expect(rows[0]!.n).toBe(LINES - 3);
  }, 120_000);

  it('refuses a body that is not NDJSON', async () => {
    const res = await call('/admin/api/products/import', { method: 'POST', headers: { authorization: `Bearer ${owner}`, 'content-type': 'text/csv' }, body: 'a,b' });
    expect(res.status).toBe(400);
  });
});


