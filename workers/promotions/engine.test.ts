import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { allocate, evaluate, percentOf, type Promotion, type PromotionLine } from './engine';

const NOW = new Date('2026-12-01T08:00:00Z');

function promo(over: Partial<Promotion> & Pick<Promotion, 'id' | 'kind'>): Promotion {
  return {
    title: over.id,
    code: null,
    percentBps: null,
    amount: null,
    regionCode: null,
    currency: null,
    minSubtotalAmount: null,
    appliesTo: 'cart',
    categoryIds: [],
    variantIds: [],
    buyQuantity: null,
    getQuantity: null,
    startsAt: new Date('2026-01-01T00:00:00Z'),
    endsAt: null,
    usageLimit: null,
    usageLimitPerCustomer: null,
    active: true,
    createdAt: new Date('2026-01-01T00:00:00Z'),
    ...over,
  };
}

const line = (variantId: string, unitAmount: number, quantity: number, categoryIds = ['cat_audio']): PromotionLine => ({ variantId, unitAmount, quantity, categoryIds });
const base = { regionCode: 'id', currency: 'IDR', shipping: null, now: NOW, code: null };

describe('promotion engine: amounts', () => {
  it('takes a category percentage off only that category, rounded half up once and shared out in whole rupiah', () => {
    const tenPct = promo({ id: 'p10', kind: 'percentage', percentBps: 1250, appliesTo: 'categories', categoryIds: ['cat_audio'], code: 'AUDIO' });
    const lines = [line('v1', 149_999, 1), line('v2', 33_333, 3), line('v3', 500_000, 1, ['cat_other'])];
    const r = evaluate({ ...base, lines, promotions: [tenPct], code: 'AUDIO' });
    // 12.5% of (149,999 + 99,999) = 31,249.75 → 31,250, over two lines.
    expect(r.code).toEqual({ code: 'AUDIO', applied: true, promotionId: 'p10' });
    expect(r.discount).toBe(31_250);
    expect(r.lineDiscounts.v3).toBeUndefined();
    expect(r.lineDiscounts.v1! + r.lineDiscounts.v2!).toBe(31_250);
    expect(Number.isInteger(r.lineDiscounts.v1) && Number.isInteger(r.lineDiscounts.v2)).toBe(true);
    expect(Math.abs(r.lineDiscounts.v1! - 149_999 * 0.125)).toBeLessThan(1);
    expect(r.total).toBe(149_999 + 99_999 + 500_000 - 31_250);
  });

  it('buy 2 get 1 free discounts the cheapest eligible unit of every three', () => {
    const b2g1 = promo({ id: 'b', kind: 'buy_x_get_y', buyQuantity: 2, getQuantity: 1, percentBps: 10_000, appliesTo: 'variants', variantIds: ['v1', 'v2'] });
    const r = evaluate({ ...base, lines: [line('v1', 1000, 4), line('v2', 300, 2), line('v3', 50, 9)], promotions: [b2g1] });
    // 6 eligible units → 2 free: the two 300s.
    expect(r.applied.map((a) => [a.promotionId, a.amount])).toEqual([['b', 600]]);
    expect(r.lineDiscounts).toEqual({ v2: 600 });
  });

  it('buy-X-get-Y takes its percentage once over the free units, not per unit', () => {
    const half = promo({ id: 'h', kind: 'buy_x_get_y', buyQuantity: 1, getQuantity: 1, percentBps: 5_000, appliesTo: 'variants', variantIds: ['v1'] });
    // Four units of 101: two are "Y"; 50% of 202 is 101 (per unit it would be 51 + 51).
    expect(evaluate({ ...base, lines: [line('v1', 101, 4)], promotions: [half] }).discount).toBe(101);
  });

  it('free shipping with a minimum looks at the goods after discounts', () => {
    const ship = promo({ id: 's', kind: 'free_shipping', regionCode: 'id', currency: 'IDR', minSubtotalAmount: 50_000 });
    const order = promo({ id: 'o', kind: 'percentage', percentBps: 2000, code: 'TWENTY' });
    const rate = { amount: 9_000, freeOverAmount: null };
    const full = evaluate({ ...base, shipping: rate, lines: [line('v1', 55_000, 1)], promotions: [ship] });
    expect(full.applied.map((a) => a.promotionId)).toEqual(['s']);
    const discounted = evaluate({ ...base, shipping: rate, lines: [line('v1', 55_000, 1)], promotions: [ship, order], code: 'TWENTY' });
    // 55,000 − 20% = 44,000 < 50,000: shipping is charged.
    expect(discounted.applied.map((a) => a.promotionId)).toEqual(['o']);
    expect(discounted.total).toBe(44_000 + 9_000);
  });

  it('caps a fixed amount at what its lines cost', () => {
    const fixed = promo({ id: 'f', kind: 'fixed', amount: 50_000, regionCode: 'id', currency: 'IDR', appliesTo: 'variants', variantIds: ['v1'] });
    const r = evaluate({ ...base, lines: [line('v1', 20_000, 1), line('v2', 70_000, 1)], promotions: [fixed] });
    expect(r.discount).toBe(20_000);
    expect(r.lineDiscounts).toEqual({ v1: 20_000 });
  });

  it('free shipping removes the region rate; a rate is free from its threshold on the discounted goods', () => {
    const ship = promo({ id: 's', kind: 'free_shipping', code: 'SHIPFREE' });
    const rate = { amount: 15_000, freeOverAmount: 200_000 };
    const withCode = evaluate({ ...base, shipping: rate, lines: [line('v1', 100_000, 1)], promotions: [ship], code: 'SHIPFREE' });
    expect([withCode.shipping, withCode.discount, withCode.total]).toEqual([15_000, 15_000, 100_000]);
    const over = evaluate({ ...base, shipping: rate, lines: [line('v1', 100_000, 2)], promotions: [] });
    expect([over.shipping, over.total]).toEqual([0, 200_000]);
    // A discount that brings the goods under the threshold brings shipping back.
    const pct = promo({ id: 'p', kind: 'percentage', percentBps: 1000 });
    const under = evaluate({ ...base, shipping: rate, lines: [line('v1', 100_000, 2)], promotions: [pct] });
    expect([under.discount, under.shipping, under.total]).toEqual([20_000, 15_000, 195_000]);
  });
});

describe('promotion engine: stacking', () => {
  it('applies the best promotion of each class and combines classes', () => {
    const autoItem = promo({ id: 'a', kind: 'percentage', percentBps: 1000, appliesTo: 'categories', categoryIds: ['cat_audio'] });
    const codeItem = promo({ id: 'c', kind: 'percentage', percentBps: 500, appliesTo: 'categories', categoryIds: ['cat_audio'], code: 'FIVE' });
    const order = promo({ id: 'o', kind: 'fixed', amount: 1_000, regionCode: 'id', currency: 'IDR' });
    const r = evaluate({ ...base, lines: [line('v1', 100_000, 1)], promotions: [autoItem, codeItem, order], code: 'FIVE' });
    expect(r.applied.map((a) => a.promotionId)).toEqual(['a', 'o']);
    expect(r.discount).toBe(10_000 + 1_000);
    expect(r.code).toMatchObject({ applied: false, reason: 'promotion_not_best' });
  });

  it('an order percentage is taken from what is left after item discounts', () => {
    const item = promo({ id: 'i', kind: 'fixed', amount: 10_000, regionCode: 'id', currency: 'IDR', appliesTo: 'variants', variantIds: ['v1'] });
    const order = promo({ id: 'o', kind: 'percentage', percentBps: 1000, code: 'TEN' });
    const r = evaluate({ ...base, lines: [line('v1', 100_000, 1), line('v2', 50_000, 1)], promotions: [item, order], code: 'TEN' });
    expect(r.applied.map((a) => [a.promotionId, a.amount])).toEqual([['i', 10_000], ['o', 14_000]]);
    expect(r.lineDiscounts).toEqual({ v1: 19_000, v2: 5_000 });
  });
});

describe('promotion engine: refusals', () => {
  const cart = [line('v1', 100_000, 1)];
  it.each([
    ['promotion_expired', promo({ id: 'x', kind: 'percentage', percentBps: 1000, code: 'OLD', endsAt: new Date('2026-11-30T00:00:00Z') }), /expired at 2026-11-30T00:00:00.000Z/],
    ['promotion_not_started', promo({ id: 'x', kind: 'percentage', percentBps: 1000, code: 'OLD', startsAt: new Date('2026-12-02T00:00:00Z') }), /not valid yet\.$/],
    ['promotion_not_in_region', promo({ id: 'x', kind: 'fixed', amount: 500, regionCode: 'sg', currency: 'SGD', code: 'OLD' }), /not valid in this region/],
    ['promotion_exhausted', promo({ id: 'x', kind: 'percentage', percentBps: 1000, code: 'OLD', usageLimit: 1, used: 1 }), /used as many times/],
    ['promotion_disabled', promo({ id: 'x', kind: 'percentage', percentBps: 1000, code: 'OLD', active: false }), /no longer valid/],
    ['promotion_min_subtotal', promo({ id: 'x', kind: 'percentage', percentBps: 1000, code: 'OLD', regionCode: 'id', currency: 'IDR', minSubtotalAmount: 200_000 }), /at least/],
    ['promotion_not_applicable', promo({ id: 'x', kind: 'percentage', percentBps: 1000, code: 'OLD', appliesTo: 'variants', variantIds: ['v9'] }), /does not apply/],
  ])('refuses a code with %s and a clear message, and discounts nothing', (reason, p, message) => {
    const r = evaluate({ ...base, lines: cart, promotions: [p], code: 'OLD' });
    expect(r.code).toMatchObject({ code: 'OLD', applied: false, reason });
    expect(r.code && !r.code.applied && r.code.message).toMatch(message);
    expect([r.discount, r.total]).toEqual([0, 100_000]);
  });

  it('an unknown code is not found', () => {
    expect(evaluate({ ...base, lines: cart, promotions: [], code: 'NOPE' }).code).toMatchObject({ applied: false, reason: 'promotion_not_found' });
  });
});

describe('promotion engine: properties', () => {
  it('allocate gives whole shares that add up to the total and never pass a weight', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 10_000_000_000 }), { minLength: 1, maxLength: 20 }), fc.integer({ min: 0, max: 10_000_000_000 }), (weights, total) => {
        const shares = allocate(total, weights);
        const sum = weights.reduce((a, b) => a + b, 0);
        expect(shares.reduce((a, b) => a + b, 0)).toBe(Math.min(total, sum));
        shares.forEach((s, i) => {
          expect(Number.isInteger(s)).toBe(true);
          expect(s).toBeGreaterThanOrEqual(0);
          expect(s).toBeLessThanOrEqual(weights[i]!);
        });
      }),
    );
  });

  it('every evaluation adds up line by line, in whole minor units, and never goes below zero', () => {
    const arbLine = fc.record({ variantId: fc.constantFrom('v1', 'v2', 'v3', 'v4', 'v5'), unitAmount: fc.integer({ min: 0, max: 50_000_000 }), quantity: fc.integer({ min: 1, max: 99 }), categoryIds: fc.constantFrom(['a'], ['b'], ['a', 'b']) });
    const arbPromo = fc.oneof(
      fc.record({ id: fc.constant('pc'), kind: fc.constant('percentage' as const), percentBps: fc.integer({ min: 1, max: 10_000 }), appliesTo: fc.constantFrom('cart' as const, 'categories' as const), categoryIds: fc.constant(['a']) }),
      fc.record({ id: fc.constant('fx'), kind: fc.constant('fixed' as const), amount: fc.integer({ min: 1, max: 100_000_000 }), currency: fc.constant('IDR'), regionCode: fc.constant('id'), appliesTo: fc.constantFrom('cart' as const, 'variants' as const), variantIds: fc.constant(['v1', 'v2']) }),
      fc.record({ id: fc.constant('bx'), kind: fc.constant('buy_x_get_y' as const), buyQuantity: fc.integer({ min: 1, max: 5 }), getQuantity: fc.integer({ min: 1, max: 5 }), percentBps: fc.integer({ min: 1, max: 10_000 }), appliesTo: fc.constant('categories' as const), categoryIds: fc.constant(['b']) }),
      fc.record({ id: fc.constant('fs'), kind: fc.constant('free_shipping' as const) }),
    );
    fc.assert(
      fc.property(fc.uniqueArray(arbLine, { selector: (l) => l.variantId, minLength: 1, maxLength: 5 }), fc.array(arbPromo, { maxLength: 4 }), fc.option(fc.record({ amount: fc.integer({ min: 0, max: 100_000 }), freeOverAmount: fc.option(fc.integer({ min: 1, max: 1e9 }), { nil: null }) }), { nil: null }), (lines, ps, shipping) => {
        const promotions = ps.map((p, i) => promo({ ...p, id: `${p.id}${i}` }));
        const r = evaluate({ ...base, lines, promotions, shipping });
        const lineSum = Object.values(r.lineDiscounts).reduce((a, b) => a + b, 0);
        const shippingOff = r.applied.filter((a) => a.class === 'shipping').reduce((s, a) => s + a.amount, 0);
        expect(lineSum + shippingOff).toBe(r.discount);
        expect(r.total).toBe(r.subtotal + r.shipping - r.discount);
        for (const l of lines) {
          const d = r.lineDiscounts[l.variantId] ?? 0;
          expect(Number.isInteger(d)).toBe(true);
          expect(d).toBeLessThanOrEqual(l.unitAmount * l.quantity);
        }
        for (const a of r.applied) expect(a.amount).toBe(a.class === 'shipping' ? r.shipping : Object.values(a.lines).reduce((x, y) => x + y, 0));
        expect(r.applied.filter((a) => a.class === 'item').length).toBeLessThanOrEqual(1);
        expect(r.applied.filter((a) => a.class === 'order').length).toBeLessThanOrEqual(1);
        expect(r.total).toBeGreaterThanOrEqual(0);
      }),
    );
  });

  it('percentOf rounds half up exactly, even for amounts past 2^53 / 10000', () => {
    expect(percentOf(5, 1000)).toBe(1); // 0.5 → 1
    expect(percentOf(4, 1000)).toBe(0); // 0.4 → 0
    expect(percentOf(999_999_999_999, 1)).toBe(100_000_000);
  });
});
