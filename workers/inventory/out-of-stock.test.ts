/**
 * The out-of-stock counter where the Worker side learns of it: a reservation
 * that cannot hold a line (`reserveAcross`, which the checkout saga calls).
 * The Analytics Engine dataset is a write-only sink, so a recording stand-in
 * takes its place; the inventory objects and Postgres are the real ones.
 */
import { env, exports } from 'cloudflare:workers';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { createDatabase } from '../../db/client';
import { randomToken } from '../lib/ids';
import { releaseParts, reserveAcross } from './shards';

const fx = inject('seedFixtures');
const db = createDatabase(env);
afterAll(() => db.close());

/** A fresh variant with `stock` units in sg (its own, so no other test's stock moves). */
async function freshVariant(stock: number): Promise<string> {
  const sku = `OOS-${randomToken(6).toUpperCase()}`;
  const admin = (path: string, method: string, body: unknown) =>
    exports.default.fetch(
      new Request(`http://pasar.test${path}`, {
        method,
        headers: { authorization: `Bearer ${env.ADMIN_BOOTSTRAP_TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      }),
    );
  const res = await admin('/admin/api/products', 'POST', {
    title: `Out-of-stock test kaya ${sku}`,
    category: fx.busiestCategorySlug,
    variants: [{ sku, title: 'Jar', prices: { sg: { amount: 800 } } }],
  });
  expect(res.status).toBe(201);
  const variantId = (await res.json<{ variants: { id: string }[] }>()).variants[0]!.id;
  expect((await admin(`/admin/api/inventory/${sku}`, 'PUT', { region: 'sg', quantity: stock })).status).toBe(200);
  return variantId;
}

function counted() {
  const points: AnalyticsEngineDataPoint[] = [];
  return { env: { ...env, METRICS: { writeDataPoint: (p?: AnalyticsEngineDataPoint) => void points.push(p!) } as AnalyticsEngineDataset }, points };
}

describe('out_of_stock counter (reserveAcross)', () => {
  it('counts each line a reservation could not hold, with the units asked for', async () => {
    const { env: e, points } = counted();
    const holdId = `hold-oos-${randomToken(6)}`;
    const variantId = await freshVariant(2);
    const result = await reserveAcross(e, db.primary, 'sg', holdId, `ck-${holdId}`, [{ variantId, quantity: 3 }], 60_000);
    expect(result).toMatchObject({ ok: false, reason: 'out_of_stock' });
    expect(points).toEqual([{ indexes: ['out_of_stock'], blobs: ['out_of_stock', 'sg', 'refused', variantId, 'reserve'], doubles: [1, 3] }]);
  });

  it('counts nothing for a reservation that holds', async () => {
    const { env: e, points } = counted();
    const holdId = `hold-ok-${randomToken(6)}`;
    const variantId = await freshVariant(2);
    const result = await reserveAcross(e, db.primary, 'sg', holdId, `ck-${holdId}`, [{ variantId, quantity: 1 }], 60_000);
    expect(result.ok).toBe(true);
    if (result.ok) await releaseParts(env, result.parts);
    expect(points).toEqual([]);
  });
});
