/**
 * Promotions end to end in workerd, against real Postgres and Redis: codes
 * on carts, the checkout saga re-validating and redeeming them, the order's
 * discount lines, limits under concurrency, and the admin API.
 *
 * Test files share one database and run in parallel: every promotion here
 * is redeemed by a code or aimed at this file's own variants, so no other
 * test's cart ever gets a discount it does not expect. Shipping rates are
 * set only for the Philippines, which no other test checks out in.
 */
import { env } from 'cloudflare:workers';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDatabase } from '../../db/client';
import { callWith } from '../auth/test-helpers';
import { admin, api, fx } from '../carts/test-helpers';
import { randomToken } from '../lib/ids';
import { REGIONS } from '../../db/regions';
import { holdUses, loadPromotionContext } from './store';

const made: string[] = [];
afterAll(async () => {
  await Promise.all(made.map((id) => admin(`/admin/api/products/${id}`, 'DELETE')));
});

const tag = () => randomToken(5).toUpperCase();
const hourAgo = () => new Date(Date.now() - 3_600_000).toISOString();
const inHours = (h: number) => new Date(Date.now() + h * 3_600_000).toISOString();

async function createPromotion(body: Record<string, unknown>): Promise<any> {
  const res = await admin('/admin/api/promotions', 'POST', body);
  if (res.status !== 201) throw new Error(`promotion create failed: ${res.status} ${await res.text()}`);
  return res.json();
}

/** A product of this file (in `category`, default the busiest) with variants priced `amounts` and stocked in `region`. */
async function stocked(region: string, amounts: number[], stock = 100, category = fx.busiestCategorySlug) {
  const t = tag();
  const res = await admin('/admin/api/products', 'POST', {
    title: `Promo Test Kopi ${t}`,
    category,
    variants: amounts.map((amount, i) => ({ sku: `PROMO-${t}-${i + 1}`, title: `Size ${i + 1}`, prices: { [region]: { amount } } })),
  });
  if (res.status !== 201) throw new Error(`product create failed: ${res.status} ${await res.text()}`);
  const p = await res.json<{ id: string; variants: { id: string; sku: string }[] }>();
  made.push(p.id);
  for (const v of p.variants) expect((await admin(`/admin/api/inventory/${v.sku}`, 'PUT', { region, quantity: stock })).status).toBe(200);
  return p;
}

async function cartOf(region: string, lines: [string, number][]): Promise<string> {
  const cart = await (await api('/api/carts', 'POST', {}, region)).json<{ id: string }>();
  for (const [variantId, quantity] of lines) expect((await api(`/api/carts/${cart.id}/items`, 'POST', { variantId, quantity }, region)).status).toBe(200);
  return cart.id;
}

const applyCode = (cartId: string, code: string, region: string) => api(`/api/carts/${cartId}/promotions`, 'POST', { code }, region);

function checkoutBody(cartId: string, email = `buyer-${tag().toLowerCase()}@example.com`, country = 'PH') {
  return { cartId, email, shippingAddress: { name: 'Maria Santos', line1: '1 Ayala Ave', city: 'Makati', postalCode: '1226', country }, payment: { method: 'card', token: 'tok_ok' } };
}

/** `POST /api/checkout` needs its Idempotency-Key header; api() has none, so this wraps the call. */
async function startCheckout(cartId: string, region: string, email?: string): Promise<string> {
  const res = await callWith({}, '/api/checkout', {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-region': region, 'idempotency-key': `promo-${randomToken(10)}` },
    body: JSON.stringify(checkoutBody(cartId, email)),
  });
  expect(res.status).toBe(202);
  return (await res.json<{ checkoutId: string }>()).checkoutId;
}

async function settle(checkoutId: string, ms = 30_000): Promise<any> {
  const deadline = Date.now() + ms;
  for (;;) {
    const state = await (await api(`/api/checkout/${checkoutId}`)).json<any>();
    if (state.status === 'confirmed' || state.status === 'failed') return state;
    if (Date.now() > deadline) throw new Error(`checkout still ${state.status}`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

async function originRows<T>(query: ReturnType<typeof sql>): Promise<T[]> {
  const db = createDatabase(env);
  try {
    return (await db.primary.execute<T & Record<string, unknown>>(query)).rows as T[];
  } finally {
    await db.close();
  }
}

describe('a percentage code on a category, in rupiah', () => {
  it('rounds to whole rupiah once, shares the discount over the category lines, and the order adds up line by line', async () => {
    const { items: categories } = await (await api('/api/categories', 'GET', undefined, 'id')).json<{ items: { slug: string; parent: string | null }[] }>();
    const other = categories.find((c) => c.slug !== fx.busiestCategorySlug && !categories.some((k) => k.parent === c.slug));
    expect(other).toBeDefined();
    const audio = await stocked('id', [149_999, 33_333]);
    const elsewhere = await stocked('id', [500_001], 100, other!.slug);
    const code = `IDR${tag()}`;
    await createPromotion({ title: '12.5% off the category', code, kind: 'percentage', percentBps: 1250, appliesTo: 'categories', categories: [fx.busiestCategorySlug], startsAt: hourAgo() });

    const cartId = await cartOf('id', [
      [audio.variants[0]!.id, 1],
      [audio.variants[1]!.id, 3],
      [elsewhere.variants[0]!.id, 1],
    ]);
    const res = await applyCode(cartId, code.toLowerCase(), 'id');
    expect(res.status).toBe(200);
    const cart = await res.json<any>();
    // 12.5% of 149,999 + 99,999 = 31,249.75 → Rp 31,250, nothing off the other category.
    expect(cart.code).toEqual({ code, applied: true });
    expect(cart.discount).toEqual({ amount: 31_250, currency: 'IDR' });
    const byVariant = new Map(cart.items.map((i: any) => [i.variantId, i]));
    const d = (v: string) => (byVariant.get(v) as any).discount.amount as number;
    expect(d(elsewhere.variants[0]!.id)).toBe(0);
    expect(d(audio.variants[0]!.id) + d(audio.variants[1]!.id)).toBe(31_250);
    for (const i of cart.items) expect(Number.isInteger(i.discount.amount)).toBe(true);
    expect(Math.abs(d(audio.variants[0]!.id) - 149_999 * 0.125)).toBeLessThan(1);
    expect(cart.total.amount).toBe(cart.subtotal.amount + cart.shipping.amount - 31_250);
    expect(cart.promotions).toEqual([expect.objectContaining({ code, kind: 'percentage', amount: { amount: 31_250, currency: 'IDR' } })]);

    const state = await settle(await startCheckout(cartId, 'id'));
    expect(state.status).toBe('confirmed');
    const order = await (await api(`/api/orders/${state.orderId}?token=${state.orderToken}`, 'GET', undefined, 'id')).json<any>();
    expect(order.discount).toEqual({ amount: 31_250, currency: 'IDR' });
    expect(order.discounts).toEqual([{ code, title: '12.5% off the category', kind: 'percentage', amount: { amount: 31_250, currency: 'IDR' } }]);
    const lineNet = order.lines.reduce((s: number, l: any) => s + l.lineTotal.amount - l.discount.amount, 0);
    expect(order.lines.reduce((s: number, l: any) => s + l.discount.amount, 0)).toBe(31_250);
    expect(order.total.amount).toBe(lineNet + order.shipping.amount);
    expect(order.total.amount).toBe(order.subtotal.amount + order.shipping.amount - order.discount.amount);
    // Charged what the order says.
    const [pay] = await originRows<{ amount: string }>(sql`select amount from payments where order_id = ${state.orderId}`);
    expect(Number(pay!.amount)).toBe(order.total.amount);
    // The used code leaves the cart with the bought lines.
    const after = await (await api(`/api/carts/${cartId}`, 'GET', undefined, 'id')).json<any>();
    expect(after.code).toBeNull();
  });
});

describe('single-use codes', () => {
  it('50 parallel checkouts with one single-use code: exactly one gets it, the rest fail promotion_exhausted', async () => {
    const p = await stocked('th', [25_900], 500);
    const code = `ONCE${tag()}`;
    const promo = await createPromotion({ title: 'One lucky shopper', code, kind: 'fixed', amount: 5_000, region: 'th', appliesTo: 'cart', usageLimit: 1, startsAt: hourAgo() });
    const carts = await Promise.all(
      Array.from({ length: 50 }, async () => {
        const id = await cartOf('th', [[p.variants[0]!.id, 1]]);
        expect((await applyCode(id, code, 'th')).status).toBe(200);
        return id;
      }),
    );
    const ids = await Promise.all(carts.map((id) => startCheckout(id, 'th')));
    const states = await Promise.all(ids.map((id) => settle(id, 60_000)));
    const confirmed = states.filter((s) => s.status === 'confirmed');
    expect(confirmed).toHaveLength(1);
    expect(states.filter((s) => s.status === 'failed').map((s) => s.reason)).toEqual(Array(49).fill('promotion_exhausted'));
    const uses = await originRows<{ status: string; order_id: string | null }>(sql`select status, order_id from promotion_redemptions where promotion_id = ${promo.id} and status <> 'released'`);
    expect(uses).toEqual([{ status: 'redeemed', order_id: confirmed[0]!.orderId }]);
    const [order] = await originRows<{ discount_amount: string; total_amount: string }>(sql`select discount_amount, total_amount from orders where id = ${confirmed[0]!.orderId}`);
    expect([Number(order!.discount_amount), Number(order!.total_amount)]).toEqual([5_000, 20_900]);
    // Used up: the cart says so, and applying it again is refused.
    const refused = await applyCode(carts[0]!, code, 'th');
    expect(refused.status).toBe(422);
    expect((await refused.json<any>()).error.code).toBe('promotion_exhausted');
  }, 120_000);

  it('50 parallel holds of a single-use promotion at the origin: exactly one succeeds', async () => {
    const promo = await createPromotion({ title: 'Origin race', code: `RACE${tag()}`, kind: 'percentage', percentBps: 1000, usageLimit: 1, startsAt: hourAgo() });
    const db = createDatabase(env);
    try {
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, i) => holdUses(db.primary, `chk_race_${promo.id}_${i}`, { email: `r${i}@example.com` }, [{ promotionId: promo.id, usageLimit: 1, usageLimitPerCustomer: null }])),
      );
      expect(results.filter((r) => r.ok)).toHaveLength(1);
      expect(results.filter((r) => !r.ok && r.reason === 'promotion_exhausted')).toHaveLength(49);
    } finally {
      await db.close();
    }
  }, 60_000);

  it("a checkout pricing again does not count its own hold against the limit", async () => {
    const promo = await createPromotion({ title: 'Own hold', code: `OWN${tag()}`, kind: 'percentage', percentBps: 1000, usageLimit: 1, startsAt: hourAgo() });
    const db = createDatabase(env);
    try {
      const checkoutId = `chk_own_${promo.id}`;
      expect(await holdUses(db.primary, checkoutId, { email: 'own@example.com' }, [{ promotionId: promo.id, usageLimit: 1, usageLimitPerCustomer: null }])).toEqual({ ok: true });
      const others = await loadPromotionContext(db.primary, REGIONS.th, promo.code);
      const mine = await loadPromotionContext(db.primary, REGIONS.th, promo.code, { checkoutId });
      expect(others.promotions.find((p) => p.id === promo.id)?.used).toBe(1);
      expect(mine.promotions.find((p) => p.id === promo.id)?.used).toBe(0);
      // And holding again is the same hold, not a second use.
      expect(await holdUses(db.primary, checkoutId, { email: 'own@example.com' }, [{ promotionId: promo.id, usageLimit: 1, usageLimitPerCustomer: null }])).toEqual({ ok: true });
    } finally {
      await db.close();
    }
  });

  it('a code that covers the whole order confirms it without asking the payment provider', async () => {
    const p = await stocked('th', [25_900], 5);
    const code = `FREE${tag()}`;
    await createPromotion({ title: 'On the house', code, kind: 'percentage', percentBps: 10_000, startsAt: hourAgo() });
    const cartId = await cartOf('th', [[p.variants[0]!.id, 1]]);
    const cart = await (await applyCode(cartId, code, 'th')).json<any>();
    expect(cart.total).toEqual({ amount: 0, currency: 'THB' });
    const state = await settle(await startCheckout(cartId, 'th'));
    expect(state.status).toBe('confirmed');
    const [pay] = await originRows<{ provider: string; status: string; amount: string }>(sql`select provider, status, amount from payments where order_id = ${state.orderId}`);
    expect(pay).toEqual({ provider: 'none', status: 'captured', amount: '0' });
  }, 60_000);

  it('a failed checkout gives its use back', async () => {
    const p = await stocked('th', [25_900], 5);
    const code = `BACK${tag()}`;
    const promo = await createPromotion({ title: 'Comes back', code, kind: 'percentage', percentBps: 1000, usageLimit: 1, startsAt: hourAgo() });
    const cartId = await cartOf('th', [[p.variants[0]!.id, 1]]);
    expect((await applyCode(cartId, code, 'th')).status).toBe(200);
    const declined = await callWith({}, '/api/checkout', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-region': 'th', 'idempotency-key': `promo-${randomToken(10)}` },
      body: JSON.stringify({ ...checkoutBody(cartId), payment: { method: 'card', token: 'tok_decline' } }),
    });
    const state = await settle((await declined.json<any>()).checkoutId);
    expect(state).toMatchObject({ status: 'failed', reason: 'payment_declined' });
    const uses = await originRows<{ status: string }>(sql`select status from promotion_redemptions where promotion_id = ${promo.id}`);
    expect(uses.map((u) => u.status)).toEqual(['released']);
    expect((await settle(await startCheckout(cartId, 'th'))).status).toBe('confirmed');
  }, 60_000);

  it('a per-customer limit counts the same buyer by email', async () => {
    const p = await stocked('th', [25_900], 10);
    const code = `ONCEEACH${tag()}`;
    await createPromotion({ title: 'Once each', code, kind: 'percentage', percentBps: 1000, usageLimitPerCustomer: 1, startsAt: hourAgo() });
    const email = `same-${tag().toLowerCase()}@example.com`;
    const first = await cartOf('th', [[p.variants[0]!.id, 1]]);
    await applyCode(first, code, 'th');
    expect((await settle(await startCheckout(first, 'th', email))).status).toBe('confirmed');
    const second = await cartOf('th', [[p.variants[0]!.id, 1]]);
    expect((await applyCode(second, code, 'th')).status).toBe(200);
    expect(await settle(await startCheckout(second, 'th', email.toUpperCase()))).toMatchObject({ status: 'failed', reason: 'promotion_limit_reached' });
    // Someone else may still use it.
    expect((await settle(await startCheckout(second, 'th'))).status).toBe('confirmed');
  }, 60_000);
});

describe('refused codes', () => {
  it('an expired code is refused with the reason and when it expired, and the cart is unchanged', async () => {
    const p = await stocked('th', [25_900]);
    const code = `OLD${tag()}`;
    const endsAt = new Date(Date.now() - 60_000).toISOString();
    await createPromotion({ title: 'Gone', code, kind: 'percentage', percentBps: 1000, startsAt: new Date(Date.now() - 7_200_000).toISOString(), endsAt });
    const cartId = await cartOf('th', [[p.variants[0]!.id, 1]]);
    const res = await applyCode(cartId, code, 'th');
    expect(res.status).toBe(422);
    const body = await res.json<any>();
    expect(body.error.code).toBe('promotion_expired');
    expect(body.error.message).toContain(`expired at ${new Date(endsAt).toISOString()}`);
    const cart = await (await api(`/api/carts/${cartId}`, 'GET', undefined, 'th')).json<any>();
    expect([cart.code, cart.discount.amount, cart.promotions]).toEqual([null, 0, []]);
  });

  it('a code that expires after it was applied shows as not applied, and checkout fails saying so rather than charging full price', async () => {
    const p = await stocked('th', [25_900]);
    const code = `SOON${tag()}`;
    const promo = await createPromotion({ title: 'Soon gone', code, kind: 'percentage', percentBps: 1000, startsAt: hourAgo() });
    const cartId = await cartOf('th', [[p.variants[0]!.id, 1]]);
    expect((await applyCode(cartId, code, 'th')).status).toBe(200);
    expect((await admin(`/admin/api/promotions/${promo.id}`, 'PATCH', { endsAt: new Date(Date.now() + 1_000).toISOString() })).status).toBe(200);
    await new Promise((r) => setTimeout(r, 1_500));
    const cart = await (await api(`/api/carts/${cartId}`, 'GET', undefined, 'th')).json<any>();
    expect(cart.code).toMatchObject({ code, applied: false, reason: 'promotion_expired' });
    expect(cart.discount.amount).toBe(0);
    expect(await settle(await startCheckout(cartId, 'th'))).toMatchObject({ status: 'failed', reason: 'promotion_expired' });
    // Removing the code lets the shopper buy at full price.
    expect((await api(`/api/carts/${cartId}/promotions/${code.toLowerCase()}`, 'DELETE', undefined, 'th')).status).toBe(200);
    expect((await settle(await startCheckout(cartId, 'th'))).status).toBe('confirmed');
  }, 60_000);

  it.each([
    ['an unknown code', 'promotion_not_found', () => `NOPE${tag()}`],
    ['a code not started', 'promotion_not_started', async () => (await createPromotion({ title: 'Later', code: `LATER${tag()}`, kind: 'percentage', percentBps: 500, startsAt: inHours(2) })).code],
    ['a code of another region', 'promotion_not_in_region', async () => (await createPromotion({ title: 'SG only', code: `SGONLY${tag()}`, kind: 'fixed', amount: 500, region: 'sg', startsAt: hourAgo() })).code],
    ['a disabled code', 'promotion_disabled', async () => (await createPromotion({ title: 'Off', code: `OFF${tag()}`, kind: 'percentage', percentBps: 500, active: false, startsAt: hourAgo() })).code],
    ['a code for other variants', 'promotion_not_applicable', async () => (await createPromotion({ title: 'Not these', code: `NOTHESE${tag()}`, kind: 'percentage', percentBps: 500, appliesTo: 'variants', skus: [fx.archivedVariantSku], startsAt: hourAgo() })).code],
  ])('%s is refused with 422 %s', async (_, reason, makeCode) => {
    const p = await stocked('th', [25_900]);
    const cartId = await cartOf('th', [[p.variants[0]!.id, 1]]);
    const res = await applyCode(cartId, await makeCode(), 'th');
    expect(res.status).toBe(422);
    const body = await res.json<any>();
    expect(body.error.code).toBe(reason);
    expect(body.error.message.length).toBeGreaterThan(10);
  });

  it('a malformed body or unknown cart never changes anything', async () => {
    const cart = await (await api('/api/carts', 'POST', {}, 'th')).json<{ id: string }>();
    for (const body of [{}, { code: '' }, { code: 'X'.repeat(41) }, { code: 'OK123', discount: 100 }, '{"code":']) {
      const res = await api(`/api/carts/${cart.id}/promotions`, 'POST', body, 'th');
      expect([400]).toContain(res.status);
      expect((await res.json<any>()).error.code).toMatch(/invalid_request|invalid_json/);
    }
    expect((await api(`/api/carts/cart_${'0'.repeat(32)}/promotions`, 'POST', { code: 'ANY123' }, 'th')).status).toBe(404);
    expect((await api(`/api/carts/${cart.id}/promotions/NOTON`, 'DELETE', undefined, 'th')).status).toBe(404);
  });
});

describe('automatic promotions, stacking and shipping', () => {
  it('an automatic buy-2-get-1 on these variants applies with no code, and a free-shipping code combines with it', async () => {
    expect((await admin('/admin/api/shipping-rates/ph', 'PUT', { amount: 15_000 })).status).toBe(200);
    const p = await stocked('ph', [50_000, 20_000]);
    await createPromotion({ title: 'Buy 2 get 1', kind: 'buy_x_get_y', buyQuantity: 2, getQuantity: 1, percentBps: 10_000, appliesTo: 'variants', skus: p.variants.map((v) => v.sku), startsAt: hourAgo() });
    const ship = `SHIP${tag()}`;
    await createPromotion({ title: 'Free shipping', code: ship, kind: 'free_shipping', region: 'ph', startsAt: hourAgo() });
    const cartId = await cartOf('ph', [
      [p.variants[0]!.id, 2],
      [p.variants[1]!.id, 1],
    ]);
    const before = await (await api(`/api/carts/${cartId}`, 'GET', undefined, 'ph')).json<any>();
    expect(before.promotions.map((x: any) => [x.title, x.amount.amount])).toEqual([['Buy 2 get 1', 20_000]]);
    expect([before.subtotal.amount, before.shipping.amount, before.discount.amount, before.total.amount]).toEqual([120_000, 15_000, 20_000, 115_000]);
    const withCode = await (await applyCode(cartId, ship, 'ph')).json<any>();
    expect(withCode.promotions.map((x: any) => x.title)).toEqual(['Buy 2 get 1', 'Free shipping']);
    expect(withCode.total.amount).toBe(100_000);
    const state = await settle(await startCheckout(cartId, 'ph'));
    expect(state.status).toBe('confirmed');
    const order = await (await api(`/api/orders/${state.orderId}?token=${state.orderToken}`, 'GET', undefined, 'ph')).json<any>();
    expect([order.subtotal.amount, order.shipping.amount, order.discount.amount, order.total.amount]).toEqual([120_000, 15_000, 35_000, 100_000]);
    expect(order.discounts.map((x: any) => [x.kind, x.amount.amount]).sort()).toEqual([['buy_x_get_y', 20_000], ['free_shipping', 15_000]]);
  }, 60_000);
});

describe('admin API', () => {
  it.each([
    [{ title: 'x', kind: 'percentage' }, 'percentBps'],
    [{ title: 'x', kind: 'fixed', amount: 100 }, 'region'],
    [{ title: 'x', kind: 'percentage', percentBps: 20_000 }, 'percentBps'],
    [{ title: 'x', kind: 'free_shipping', appliesTo: 'variants', skus: ['A'] }, 'appliesTo'],
    [{ title: 'x', kind: 'buy_x_get_y', percentBps: 10_000, appliesTo: 'cart' }, 'appliesTo'],
    [{ title: 'x', kind: 'percentage', percentBps: 100, code: 'a b' }, 'code'],
    [{ title: 'x', kind: 'percentage', percentBps: 100, startsAt: inHours(2), endsAt: inHours(1) }, 'endsAt'],
    [{ title: 'x', kind: 'percentage', percentBps: 100, usageCount: 3 }, 'usageCount'],
  ])('refuses %j naming %s', async (body, field) => {
    const res = await admin('/admin/api/promotions', 'POST', body);
    expect(res.status).toBe(400);
    const err = (await res.json<any>()).error;
    expect(err.code).toBe('invalid_request');
    expect(err.details.map((d: any) => d.field)).toContain(field);
  });

  it('a taken code is 409, an unknown SKU or category 422, and nothing is created', async () => {
    const code = `DUP${tag()}`;
    await createPromotion({ title: 'First', code, kind: 'percentage', percentBps: 100 });
    const dup = await admin('/admin/api/promotions', 'POST', { title: 'Second', code: code.toLowerCase(), kind: 'percentage', percentBps: 100 });
    expect(dup.status).toBe(409);
    expect((await dup.json<any>()).error.code).toBe('code_taken');
    const sku = await admin('/admin/api/promotions', 'POST', { title: 'x', code: `SKU${tag()}`, kind: 'percentage', percentBps: 100, appliesTo: 'variants', skus: ['NO-SUCH-SKU'] });
    expect([sku.status, (await sku.json<any>()).error.code]).toEqual([422, 'unknown_sku']);
    const cat = await admin('/admin/api/promotions', 'POST', { title: 'x', kind: 'percentage', percentBps: 100, appliesTo: 'categories', categories: ['no-such-category'] });
    expect([cat.status, (await cat.json<any>()).error.code]).toEqual([422, 'unknown_category']);
    const list = await (await admin(`/admin/api/promotions?code=${code}`, 'GET')).json<any>();
    expect(list.items.map((i: any) => i.title)).toEqual(['First']);
  });

  it('a promotion shows its state and uses; PATCH changes only schedule, limits, title and active', async () => {
    const promo = await createPromotion({ title: 'Patchable', code: `PATCH${tag()}`, kind: 'percentage', percentBps: 100, startsAt: inHours(1) });
    expect(promo).toMatchObject({ state: 'scheduled', uses: { redeemed: 0, held: 0 } });
    const patched = await (await admin(`/admin/api/promotions/${promo.id}`, 'PATCH', { active: false, usageLimit: 5 })).json<any>();
    expect(patched).toMatchObject({ state: 'disabled', usageLimit: 5 });
    expect((await admin(`/admin/api/promotions/${promo.id}`, 'PATCH', { percentBps: 9_000 })).status).toBe(400);
    expect((await admin(`/admin/api/promotions/${promo.id}`, 'PATCH', { endsAt: hourAgo() })).status).toBe(400);
    expect((await admin('/admin/api/promotions/promo_nope', 'GET')).status).toBe(404);
  });

  it('shipping rates are validated per region', async () => {
    expect((await admin('/admin/api/shipping-rates/zz', 'PUT', { amount: 100 })).status).toBe(400);
    expect((await admin('/admin/api/shipping-rates/ph', 'PUT', { amount: -1 })).status).toBe(400);
    expect((await admin('/admin/api/shipping-rates/ph', 'PUT', { amount: 15_000, currency: 'USD' })).status).toBe(400);
    const rates = await (await admin('/admin/api/shipping-rates', 'GET')).json<any>();
    expect(rates.items.every((r: any) => typeof r.amount.amount === 'number')).toBe(true);
  });

  it('needs an admin token with the catalog role to write', async () => {
    const none = await api('/admin/api/promotions', 'POST', { title: 'x', kind: 'percentage', percentBps: 100 });
    expect(none.status).toBe(401);
    const token = await admin('/admin/api/tokens', 'POST', { name: `ro-${tag()}`, role: 'readonly' });
    expect(token.status).toBe(201);
    const { token: readonly } = await token.json<any>();
    const res = await callWith({}, '/admin/api/promotions', {
      method: 'POST',
      headers: { authorization: `Bearer ${readonly}`, 'content-type': 'application/json' },
      body: JSON.stringify({ title: 'x', kind: 'percentage', percentBps: 100 }),
    });
    expect(res.status).toBe(403);
  });
});

describe('security', () => {
  it('trying codes is rate limited per client address (promotion_code)', async () => {
    const cart = await (await api('/api/carts', 'POST', {}, 'th')).json<{ id: string }>();
    const ip = `203.0.113.${Math.floor(Math.random() * 200) + 1}`;
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) {
      const res = await callWith({ RATE_LIMITS: 'on; promotion_code=10/60s; cart_write=1000/60s' }, `/api/carts/${cart.id}/promotions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-region': 'th', 'cf-connecting-ip': ip, 'x-forwarded-for': ip },
        body: JSON.stringify({ code: `GUESS${i}${tag()}` }),
      });
      statuses.push(res.status);
    }
    expect(statuses.slice(0, 10).every((s) => s === 422)).toBe(true);
    expect(statuses.slice(10)).toEqual([429, 429]);
  });
});
