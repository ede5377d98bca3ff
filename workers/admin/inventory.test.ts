import { env, exports } from 'cloudflare:workers';
import { sql } from 'drizzle-orm';
import { describe, expect, inject, it } from 'vitest';
import { createDatabase } from '../../db/client';
import { randomToken } from '../lib/ids';
import { Redis } from '@upstash/redis/cloudflare';
import { forgetStockConfig, regionLevels, reserveAcross, commitParts, releaseParts, shardsOf } from '../inventory/shards';
import { markSoldOut } from '../inventory/soldout';

const fx = inject('seedFixtures');
const owner = env.ADMIN_BOOTSTRAP_TOKEN!;
const call = (path: string, init?: RequestInit) => exports.default.fetch(new Request(`http://pasar.test${path}`, init));
const admin = (path: string, method: string, body?: unknown) =>
  call(path, {
    method,
    headers: { authorization: `Bearer ${owner}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });

/** Creates a fresh product with one variant priced in sg and my, and returns its SKU and variant id. */
async function freshVariant(): Promise<{ sku: string; variantId: string; slug: string }> {
  const sku = `INV-${randomToken(6).toUpperCase()}`;
  const res = await admin('/admin/api/products', 'POST', {
    title: `Inventory test kopi ${sku}`,
    category: fx.busiestCategorySlug,
    variants: [{ sku, title: '250 g', prices: { sg: { amount: 1500 }, my: { amount: 4500 } } }],
  });
  expect(res.status).toBe(201);
  const body = await res.json<any>();
  return { sku, variantId: body.variants[0].id, slug: body.slug };
}

function expectBalanced(level: { received: number; available: number; held: number; sold: number }) {
  expect(level.available + level.held + level.sold).toBe(level.received);
  for (const n of [level.available, level.held, level.sold]) expect(n).toBeGreaterThanOrEqual(0);
}

describe('PUT/GET /admin/api/inventory/:sku', () => {
  it('sets stock received per region and reports available + held + sold = received', async () => {
    const { sku } = await freshVariant();
    const put = await admin(`/admin/api/inventory/${sku}`, 'PUT', { region: 'sg', quantity: 40 });
    expect(put.status).toBe(200);
    const view = await put.json<any>();
    expect(view.regions.sg).toMatchObject({ received: 40, available: 40, held: 0, sold: 0, shards: 1 });
    const got = await (await admin(`/admin/api/inventory/${sku}`, 'GET')).json<any>();
    expect(got.regions.sg.received).toBe(40);
    expectBalanced(got.regions.sg);
  });

  it('refuses to go below what is held or sold (422) and changes nothing', async () => {
    const { sku, variantId } = await freshVariant();
    await admin(`/admin/api/inventory/${sku}`, 'PUT', { region: 'sg', quantity: 10 });
    const db = createDatabase(env);
    const held = await reserveAcross(env, db.primary, 'sg', `hold_${randomToken()}`, 'chk_test', [{ variantId, quantity: 6 }], 60_000);
    expect(held.ok).toBe(true);
    const res = await admin(`/admin/api/inventory/${sku}`, 'PUT', { region: 'sg', quantity: 5 });
    expect(res.status).toBe(422);
    expect((await res.json<any>()).error.code).toBe('below_committed');
    const { rows } = await db.primary.execute<{ received: number }>(sql`select received from stock where variant_id = ${variantId} and region_code = 'sg'`);
    await db.close();
    expect(rows[0]!.received).toBe(10);
    const level = (await regionLevels(env, 'sg', [variantId])).get(variantId)!;
    expect(level).toMatchObject({ received: 10, held: 6, available: 4 });
  });

  it('400s unknown fields and bad quantities, 404s unknown SKUs, 401s without a token', async () => {
    const { sku } = await freshVariant();
    for (const body of [{ region: 'sg', quantity: -1 }, { region: 'sg', quantity: 1.5 }, { region: 'zz', quantity: 1 }, { region: 'sg', quantity: 1, sold: 5 }]) {
      const res = await admin(`/admin/api/inventory/${sku}`, 'PUT', body);
      expect(res.status, JSON.stringify(body)).toBe(400);
    }
    expect((await admin('/admin/api/inventory/NO-SUCH-SKU', 'PUT', { region: 'sg', quantity: 1 })).status).toBe(404);
    expect((await call(`/admin/api/inventory/${sku}`)).status).toBe(401);
  });
});

describe('hot variants: stock split over shards', () => {
  it('splits stock over K shards and sells exactly the stock across them', async () => {
    const { sku, variantId } = await freshVariant();
    await admin(`/admin/api/inventory/${sku}`, 'PUT', { region: 'sg', quantity: 100 });
    const res = await admin(`/admin/api/inventory/${sku}/sharding`, 'PUT', { region: 'sg', shards: 4 });
    expect(res.status).toBe(200);
    expect((await res.json<any>()).regions.sg).toMatchObject({ received: 100, available: 100, shards: 4 });
    const perShard = await Promise.all(shardsOf(variantId, 4).map((i) => regionLevels(env, 'sg', [variantId], [i])));
    expect(perShard.map((m) => m.get(variantId)!.received)).toEqual([25, 25, 25, 25]);

    const db = createDatabase(env);
    const attempts = await Promise.all(
      Array.from({ length: 160 }, (_, n) => reserveAcross(env, db.primary, 'sg', `hold_${n}_${randomToken()}`, `chk_${n}`, [{ variantId, quantity: 1 }], 60_000)),
    );
    await db.close();
    expect(attempts.filter((a) => a.ok)).toHaveLength(100);
    expect(attempts.filter((a) => !a.ok && a.reason === 'out_of_stock')).toHaveLength(60);
    const level = (await regionLevels(env, 'sg', [variantId])).get(variantId)!;
    expect(level).toMatchObject({ received: 100, available: 0, held: 100, sold: 0 });
  });

  it('borrows from another region when the merchant allows it', async () => {
    const { sku, variantId } = await freshVariant();
    await admin(`/admin/api/inventory/${sku}`, 'PUT', { region: 'sg', quantity: 1 });
    await admin(`/admin/api/inventory/${sku}`, 'PUT', { region: 'my', quantity: 5 });
    const db = createDatabase(env);
    const first = await reserveAcross(env, db.primary, 'sg', `hold_${randomToken()}`, 'chk_a', [{ variantId, quantity: 1 }], 60_000);
    expect(first.ok).toBe(true);
    const refused = await reserveAcross(env, db.primary, 'sg', `hold_${randomToken()}`, 'chk_b', [{ variantId, quantity: 2 }], 60_000);
    expect(refused.ok).toBe(false);
    await admin(`/admin/api/inventory/${sku}/sharding`, 'PUT', { region: 'sg', shards: 1, borrowFrom: ['my'] });
    // Isolates reuse a variant's configuration for up to 5 s; stand in for that lapse.
    forgetStockConfig();
    const borrowed = await reserveAcross(env, db.primary, 'sg', `hold_${randomToken()}`, 'chk_c', [{ variantId, quantity: 2 }], 60_000);
    await db.close();
    expect(borrowed.ok).toBe(true);
    if (borrowed.ok) expect(borrowed.parts[0]!.region).toBe('my');
    expect((await regionLevels(env, 'my', [variantId])).get(variantId)).toMatchObject({ received: 5, held: 2, available: 3 });
  });

  it('refuses a self-borrow', async () => {
    const { sku } = await freshVariant();
    const res = await admin(`/admin/api/inventory/${sku}/sharding`, 'PUT', { region: 'sg', shards: 2, borrowFrom: ['sg'] });
    expect(res.status).toBe(400);
  });
});

describe('reservations across shards', () => {
  it('holds every line or none, releasing partial holds when one line is short', async () => {
    const a = await freshVariant();
    const b = await freshVariant();
    await admin(`/admin/api/inventory/${a.sku}`, 'PUT', { region: 'sg', quantity: 5 });
    await admin(`/admin/api/inventory/${b.sku}`, 'PUT', { region: 'sg', quantity: 1 });
    const db = createDatabase(env);
    const result = await reserveAcross(env, db.primary, 'sg', `hold_${randomToken()}`, 'chk_multi', [
      { variantId: a.variantId, quantity: 2 },
      { variantId: b.variantId, quantity: 3 },
    ], 60_000);
    expect(result).toMatchObject({ ok: false, reason: 'out_of_stock', shortages: [{ variantId: b.variantId, requested: 3 }] });
    const levels = await regionLevels(env, 'sg', [a.variantId, b.variantId]);
    expect(levels.get(a.variantId)).toMatchObject({ available: 5, held: 0 });
    expect(levels.get(b.variantId)).toMatchObject({ available: 1, held: 0 });

    const ok = await reserveAcross(env, db.primary, 'sg', `hold_${randomToken()}`, 'chk_multi2', [
      { variantId: a.variantId, quantity: 2 },
      { variantId: b.variantId, quantity: 1 },
    ], 60_000);
    expect(ok.ok).toBe(true);
    if (!ok.ok) return;
    // Retrying the same hold id holds nothing more.
    const again = await reserveAcross(env, db.primary, 'sg', ok.holdId, 'chk_multi2', [
      { variantId: a.variantId, quantity: 2 },
      { variantId: b.variantId, quantity: 1 },
    ], 60_000);
    await db.close();
    expect(again.ok).toBe(true);
    expect((await regionLevels(env, 'sg', [a.variantId])).get(a.variantId)).toMatchObject({ held: 2, available: 3 });
    expect(await commitParts(env, ok.parts)).toEqual([]);
    expect(await commitParts(env, ok.parts)).toEqual([]);
    expect((await regionLevels(env, 'sg', [a.variantId])).get(a.variantId)).toMatchObject({ held: 0, sold: 2, available: 3 });
    await releaseParts(env, ok.parts);
    expect((await regionLevels(env, 'sg', [a.variantId])).get(a.variantId)).toMatchObject({ sold: 2 });
  });

  it('loads a seeded variant into its shard on first use, from the stock received in Postgres', async () => {
    const db = createDatabase(env);
    const { rows } = await db.primary.execute<{ id: string; received: number }>(
      sql`select v.id, s.received from variants v join stock s on s.variant_id = v.id and s.region_code = 'th' where v.sku = ${fx.hotVariantSku}`,
    );
    const { id, received } = rows[0]!;
    const held = await reserveAcross(env, db.primary, 'th', `hold_${randomToken()}`, 'chk_seed', [{ variantId: id, quantity: 3 }], 60_000);
    await db.close();
    expect(held.ok).toBe(true);
    expect((await regionLevels(env, 'th', [id])).get(id)).toMatchObject({ received, held: 3, available: received - 3 });
  });
});

describe('live availability on the product page', () => {
  it('shows units available from the inventory objects, not the cached document', async () => {
    const { sku, variantId, slug } = await freshVariant();
    await admin(`/admin/api/inventory/${sku}`, 'PUT', { region: 'sg', quantity: 7 });
    const first = await (await call(`/api/products/${slug}`, { headers: { 'x-region': 'sg' } })).json<any>();
    expect(first.variants[0].available).toBe(7);
    expect(first.variants[0]).not.toHaveProperty('shards');
    const db = createDatabase(env);
    await reserveAcross(env, db.primary, 'sg', `hold_${randomToken()}`, 'chk_live', [{ variantId, quantity: 3 }], 60_000);
    await db.close();
    const second = await call(`/api/products/${slug}`, { headers: { 'x-region': 'sg' } });
    expect(second.headers.get('server-timing')).toMatch(/^cache;/);
    expect((await second.json<any>()).variants[0].available).toBe(4);
  });
});

describe('sold-out flags on listings', () => {
  it('shows a product sold out in listings once its stock is held, and back when stock is added', async () => {
    const { sku, variantId } = await freshVariant();
    await admin(`/admin/api/inventory/${sku}`, 'PUT', { region: 'sg', quantity: 2 });
    const listed = async () => {
      const res = await call(`/api/products?category=${fx.busiestCategorySlug}&limit=100`, { headers: { 'x-region': 'sg' } });
      const body = await res.json<{ items: { id: string; available: boolean; stocked?: unknown }[] }>();
      return body.items.find((i) => i.id === created.id);
    };
    const created = await productOf(variantId);
    expect((await listed())?.available).toBe(true);
    expect(await listed()).not.toHaveProperty('stocked');

    const db = createDatabase(env);
    const redis = new Redis({ url: env.UPSTASH_REDIS_REST_URL, token: env.UPSTASH_REDIS_REST_TOKEN });
    const held = await reserveAcross(env, db.primary, 'sg', `hold_${randomToken()}`, 'chk_so', [{ variantId, quantity: 2 }], 60_000, (ids) =>
      markSoldOut(redis, 'sg', ids),
    );
    await db.close();
    expect(held.ok).toBe(true);
    expect((await listed())?.available).toBe(false);

    await admin(`/admin/api/inventory/${sku}`, 'PUT', { region: 'sg', quantity: 5 });
    expect((await listed())?.available).toBe(true);
  });
});

async function productOf(variantId: string): Promise<{ id: string }> {
  const db = createDatabase(env);
  const { rows } = await db.primary.execute<{ id: string }>(sql`select product_id as id from variants where id = ${variantId}`);
  await db.close();
  return rows[0]!;
}

describe('POST /admin/api/inventory/reconcile', () => {
  it("reports drift between the shards' sold units and order lines, and repairs an excess", async () => {
    const { sku, variantId } = await freshVariant();
    await admin(`/admin/api/inventory/${sku}`, 'PUT', { region: 'sg', quantity: 10 });
    const db = createDatabase(env);
    // Three units sold in the shards...
    const held = await reserveAcross(env, db.primary, 'sg', `hold_${randomToken()}`, 'chk_rec', [{ variantId, quantity: 3 }], 60_000);
    if (!held.ok) throw new Error('reserve failed');
    await commitParts(env, held.parts);
    // ...but only one on a confirmed order in Postgres.
    const orderId = `ord_${randomToken()}`;
    await db.primary.execute(sql`insert into orders (id, number, checkout_id, email, region_code, currency, subtotal_amount, total_amount, shipping_address, access_token_hash)
      values (${orderId}, ${`SG-${randomToken(5)}`}, ${`chk_${randomToken()}`}, 'rec@example.com', 'sg', 'SGD', 1500, 1500, '{}', 'x')`);
    await db.primary.execute(sql`insert into order_lines (id, order_id, variant_id, sku, title, quantity, unit_amount, line_amount)
      values (${`ol_${randomToken()}`}, ${orderId}, ${variantId}, ${sku}, 'x', 1, 1500, 1500)`);
    await db.close();

    const report = await (await admin('/admin/api/inventory/reconcile', 'POST', { skus: [sku] })).json<any>();
    expect(report.drift).toContainEqual({ sku, region: 'sg', shardSold: 3, orderedUnits: 1, repaired: false });
    expect((await regionLevels(env, 'sg', [variantId])).get(variantId)).toMatchObject({ sold: 3, available: 7 });

    const repaired = await (await admin('/admin/api/inventory/reconcile', 'POST', { skus: [sku], repair: true })).json<any>();
    expect(repaired.drift).toContainEqual({ sku, region: 'sg', shardSold: 3, orderedUnits: 1, repaired: true });
    expect((await regionLevels(env, 'sg', [variantId])).get(variantId)).toMatchObject({ received: 10, sold: 1, available: 9 });
    const clean = await (await admin('/admin/api/inventory/reconcile', 'POST', { skus: [sku] })).json<any>();
    expect(clean.drift.filter((d: { sku: string }) => d.sku === sku)).toEqual([]);
  });
});
