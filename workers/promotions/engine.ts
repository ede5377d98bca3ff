/**
 * The promotion engine: which promotions a cart gets, and how much each
 * takes off each line. Pure (no I/O): the cart answer and the checkout
 * saga's price step call it with what they loaded, so the shopper is shown
 * exactly what checkout charges for the same facts.
 *
 * Stacking rules (docs/ARCHITECTURE.md, "Promotions"):
 * - Three classes: **item** discounts (percentage, fixed or buy-X-get-Y on
 *   categories or variants), **order** discounts (percentage or fixed on the
 *   whole cart) and **shipping** discounts (free shipping).
 * - Within a class the one promotion worth most to the shopper applies (ties:
 *   the code, then the earlier-created); across classes they combine. So
 *   automatic promotions and one code combine only when they are of
 *   different classes.
 * - Item discounts come first; an order discount is a share of what is left;
 *   free shipping (and a rate's free-over threshold) looks at the goods after
 *   both.
 * - A cart carries at most one code.
 *
 * Rounding: every amount is an integer number of minor units. A percentage
 * is rounded once, half up, on the total it applies to, then shared out
 * over the lines in proportion to their amounts by largest remainder, so
 * the line shares are whole and add up to the discount exactly. A line's
 * discount never exceeds what is left of it.
 */

/** The kinds and targets stored in `promotions` (db/schema.ts). */
export type PromotionKind = 'percentage' | 'fixed' | 'free_shipping' | 'buy_x_get_y';
export type PromotionTarget = 'cart' | 'categories' | 'variants';
export type PromotionClass = 'item' | 'order' | 'shipping';

/** A promotion as the engine needs it. */
export interface Promotion {
  id: string;
  title: string;
  code: string | null;
  kind: PromotionKind;
  percentBps: number | null;
  amount: number | null;
  regionCode: string | null;
  currency: string | null;
  minSubtotalAmount: number | null;
  appliesTo: PromotionTarget;
  categoryIds: readonly string[];
  variantIds: readonly string[];
  buyQuantity: number | null;
  getQuantity: number | null;
  startsAt: Date;
  endsAt: Date | null;
  usageLimit: number | null;
  usageLimitPerCustomer: number | null;
  /** Uses so far (redeemed, and held by checkouts in progress), when the promotion is limited. */
  used?: number;
  active: boolean;
  createdAt: Date;
}

/** A cart line that can be bought, priced. */
export interface PromotionLine {
  variantId: string;
  /** The product's category and its parent. */
  categoryIds: readonly string[];
  unitAmount: number;
  quantity: number;
}

/** A region's shipping rate (none: ships free). */
export interface ShippingRate {
  amount: number;
  freeOverAmount: number | null;
}

/** Why a code does not apply; each has a message for the shopper. */
export type CodeProblem =
  | 'promotion_not_found'
  | 'promotion_disabled'
  | 'promotion_not_started'
  | 'promotion_expired'
  | 'promotion_not_in_region'
  | 'promotion_exhausted'
  | 'promotion_min_subtotal'
  | 'promotion_not_applicable'
  | 'promotion_not_best';

/** A promotion that applies, with what it takes off. */
export interface AppliedPromotion {
  promotionId: string;
  code: string | null;
  title: string;
  kind: PromotionKind;
  class: PromotionClass;
  /** Minor units off in all. */
  amount: number;
  /** Per variant: minor units off that line (item and order discounts; empty for shipping). */
  lines: Record<string, number>;
}

/** What a cart's code came to. */
export type CodeStatus = { code: string; applied: true; promotionId: string } | { code: string; applied: false; reason: CodeProblem; message: string };

/** The engine's answer. */
export interface Evaluation {
  subtotal: number;
  /** The shipping charge before any shipping discount. */
  shipping: number;
  /** Item + order + shipping discounts. */
  discount: number;
  /** `subtotal + shipping − discount`. */
  total: number;
  applied: AppliedPromotion[];
  /** Per variant: the line's share of item and order discounts. */
  lineDiscounts: Record<string, number>;
  code: CodeStatus | null;
}

/** What the engine is asked. */
export interface EvaluationInput {
  regionCode: string;
  currency: string;
  lines: readonly PromotionLine[];
  /** Running automatic promotions of the region, and the cart code's promotion if found; others are ignored. */
  promotions: readonly Promotion[];
  /** The code on the cart (upper case), if any. */
  code: string | null;
  shipping: ShippingRate | null;
  now: Date;
  /** Formats an amount for messages (e.g. `S$50.00`). */
  format?: (amount: number) => string;
}

/** The class a promotion belongs to. */
export function classOf(p: Pick<Promotion, 'kind' | 'appliesTo'>): PromotionClass {
  if (p.kind === 'free_shipping') return 'shipping';
  return p.appliesTo === 'cart' ? 'order' : 'item';
}

/** Upper-cases and trims a code as shoppers type it. */
export function normalizeCode(code: string): string {
  return code.trim().toUpperCase();
}

/** Rounds `value × bps / 10000` half up, exactly (BigInt: IDR/VND totals times basis points pass 2^53). */
export function percentOf(value: number, bps: number): number {
  return Number((BigInt(value) * BigInt(bps) + 5_000n) / 10_000n);
}

/**
 * Shares `total` over `weights` in proportion, by largest remainder: whole
 * shares that add up to `total` exactly, none above its weight (when
 * `total` ≤ the sum of the weights). Ties go to the earlier entry.
 */
export function allocate(total: number, weights: readonly number[]): number[] {
  const sum = weights.reduce((a, b) => a + b, 0);
  if (sum <= 0 || total <= 0) return weights.map(() => 0);
  const t = BigInt(Math.min(total, sum));
  const s = BigInt(sum);
  const exact = weights.map((w) => BigInt(w) * t);
  const shares = exact.map((e) => Number(e / s));
  let left = Number(t) - shares.reduce((a, b) => a + b, 0);
  const order = exact
    .map((e, i) => ({ i, rem: e % s }))
    .filter(({ i }) => shares[i]! < weights[i]!)
    .sort((a, b) => (b.rem > a.rem ? 1 : b.rem < a.rem ? -1 : a.i - b.i));
  for (const { i } of order) {
    if (left === 0) break;
    shares[i]! += 1;
    left -= 1;
  }
  return shares;
}

/** Why promotion `p` cannot apply now in this region at all (before looking at the lines), or null. */
export function availabilityProblem(p: Promotion, regionCode: string, now: Date): CodeProblem | null {
  if (!p.active) return 'promotion_disabled';
  if (p.startsAt.getTime() > now.getTime()) return 'promotion_not_started';
  if (p.endsAt && p.endsAt.getTime() <= now.getTime()) return 'promotion_expired';
  if (p.regionCode && p.regionCode !== regionCode) return 'promotion_not_in_region';
  if (p.usageLimit !== null && (p.used ?? 0) >= p.usageLimit) return 'promotion_exhausted';
  return null;
}

function targets(p: Promotion, line: PromotionLine): boolean {
  if (p.appliesTo === 'cart') return true;
  if (p.appliesTo === 'variants') return p.variantIds.includes(line.variantId);
  return line.categoryIds.some((c) => p.categoryIds.includes(c));
}

/** Per-line amounts after earlier discounts. */
type Remaining = Map<string, number>;

/**
 * What an item or order promotion takes off each line, given what is left
 * of each line; empty when it takes nothing.
 */
function lineShares(p: Promotion, lines: readonly PromotionLine[], remaining: Remaining): Record<string, number> {
  const eligible = lines.filter((l) => targets(p, l) && (remaining.get(l.variantId) ?? 0) > 0);
  if (eligible.length === 0) return {};
  const weights = eligible.map((l) => remaining.get(l.variantId)!);
  const base = weights.reduce((a, b) => a + b, 0);
  let shares: number[];
  switch (p.kind) {
    case 'percentage':
      shares = allocate(percentOf(base, p.percentBps!), weights);
      break;
    case 'fixed':
      shares = allocate(Math.min(p.amount!, base), weights);
      break;
    case 'buy_x_get_y': {
      // The cheapest eligible units are the "Y": per X + Y units, Y of them.
      // Their amounts are added up, the percentage taken once, and shared
      // over the lines they came from.
      const units = eligible.flatMap((l, i) => Array.from({ length: l.quantity }, () => ({ i, unit: Math.min(l.unitAmount, Math.floor(weights[i]! / l.quantity)) })));
      units.sort((a, b) => a.unit - b.unit || a.i - b.i);
      const free = Math.floor(units.length / (p.buyQuantity! + p.getQuantity!)) * p.getQuantity!;
      const freeAmounts = eligible.map(() => 0);
      for (const u of units.slice(0, free)) freeAmounts[u.i]! += u.unit;
      shares = allocate(percentOf(freeAmounts.reduce((a, b) => a + b, 0), p.percentBps!), freeAmounts);
      break;
    }
    default:
      return {};
  }
  const out: Record<string, number> = {};
  eligible.forEach((l, i) => {
    if (shares[i]! > 0) out[l.variantId] = shares[i]!;
  });
  return out;
}

const sumOf = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);

/** Picks the promotion worth most (ties: the code, then the earliest created, then id). */
function best<T extends { p: Promotion; amount: number }>(candidates: T[]): T | undefined {
  return candidates
    .filter((c) => c.amount > 0)
    .sort((a, b) => b.amount - a.amount || Number(b.p.code !== null) - Number(a.p.code !== null) || a.p.createdAt.getTime() - b.p.createdAt.getTime() || (a.p.id < b.p.id ? -1 : 1))[0];
}

const MESSAGES: Record<CodeProblem, (code: string, p: Promotion | undefined, fmt: (n: number) => string) => string> = {
  promotion_not_found: (code) => `There is no promotion code "${code}".`,
  promotion_disabled: (code) => `The code ${code} is no longer valid.`,
  // Not when: a code published early must not tell when a sale starts.
  promotion_not_started: (code) => `The code ${code} is not valid yet.`,
  promotion_expired: (code, p) => `The code ${code} expired at ${p!.endsAt!.toISOString()}.`,
  promotion_not_in_region: (code) => `The code ${code} is not valid in this region.`,
  promotion_exhausted: (code) => `The code ${code} has been used as many times as it may be.`,
  promotion_min_subtotal: (code, p, fmt) => `The code ${code} needs a subtotal of at least ${fmt(p!.minSubtotalAmount!)}.`,
  promotion_not_applicable: (code) => `The code ${code} does not apply to anything in this cart.`,
  promotion_not_best: (code) => `The code ${code} does not combine with a better promotion already applied to this cart.`,
};

/** The shopper-facing message for a code problem. */
export function codeMessage(reason: CodeProblem, code: string, promotion?: Promotion, format: (n: number) => string = String): string {
  return MESSAGES[reason](code, promotion, format);
}

/** Evaluates a cart's promotions (see the module comment for the rules). */
export function evaluate(input: EvaluationInput): Evaluation {
  const { lines, now, regionCode } = input;
  const format = input.format ?? String;
  const subtotal = lines.reduce((s, l) => s + l.unitAmount * l.quantity, 0);
  const codePromotion = input.code ? input.promotions.find((p) => p.code === input.code) : undefined;
  let codeProblem: CodeProblem | null = input.code && !codePromotion ? 'promotion_not_found' : null;
  if (codePromotion) codeProblem = availabilityProblem(codePromotion, regionCode, now);
  if (codePromotion && !codeProblem && codePromotion.currency && codePromotion.currency !== input.currency) codeProblem = 'promotion_not_in_region';

  // Candidates: available automatic promotions and the code's (when available).
  const candidates = input.promotions.filter(
    (p) => (p.code === null || p === codePromotion) && availabilityProblem(p, regionCode, now) === null && (!p.currency || p.currency === input.currency),
  );
  // A minimum is met by the subtotal before promotions, except free
  // shipping's, which (like a rate's free-over threshold) looks at the goods
  // after item and order discounts.
  const meetsMinimum = (p: Promotion, goods = subtotal) => p.minSubtotalAmount === null || goods >= p.minSubtotalAmount;
  if (codePromotion && !codeProblem && classOf(codePromotion) !== 'shipping' && !meetsMinimum(codePromotion)) codeProblem = 'promotion_min_subtotal';

  const remaining: Remaining = new Map(lines.map((l) => [l.variantId, l.unitAmount * l.quantity]));
  const applied: AppliedPromotion[] = [];
  const take = (p: Promotion, shares: Record<string, number>) => {
    for (const [v, d] of Object.entries(shares)) remaining.set(v, remaining.get(v)! - d);
    applied.push({ promotionId: p.id, code: p.code, title: p.title, kind: p.kind, class: classOf(p), amount: sumOf(shares), lines: shares });
  };
  const offered = new Map<string, number>();
  for (const cls of ['item', 'order'] as const) {
    const options = candidates
      .filter((p) => classOf(p) === cls && meetsMinimum(p))
      .map((p) => {
        const shares = lineShares(p, lines, remaining);
        offered.set(p.id, sumOf(shares));
        return { p, shares, amount: sumOf(shares) };
      });
    const chosen = best(options);
    if (chosen) take(chosen.p, chosen.shares);
  }
  const goods = [...remaining.values()].reduce((a, b) => a + b, 0);
  const rate = input.shipping;
  const shipping = lines.length === 0 || !rate || (rate.freeOverAmount !== null && goods >= rate.freeOverAmount) ? 0 : rate.amount;
  const shippingOptions = candidates.filter((p) => classOf(p) === 'shipping' && meetsMinimum(p, goods)).map((p) => ({ p, amount: shipping }));
  for (const o of shippingOptions) offered.set(o.p.id, o.amount);
  const freeShipping = best(shippingOptions);
  if (freeShipping) applied.push({ promotionId: freeShipping.p.id, code: freeShipping.p.code, title: freeShipping.p.title, kind: 'free_shipping', class: 'shipping', amount: shipping, lines: {} });

  if (codePromotion && !codeProblem && classOf(codePromotion) === 'shipping' && !meetsMinimum(codePromotion, goods)) codeProblem = 'promotion_min_subtotal';
  if (codePromotion && !codeProblem && !applied.some((a) => a.promotionId === codePromotion.id)) {
    codeProblem = (offered.get(codePromotion.id) ?? 0) > 0 ? 'promotion_not_best' : 'promotion_not_applicable';
  }
  const lineDiscounts: Record<string, number> = {};
  for (const l of lines) {
    const d = l.unitAmount * l.quantity - remaining.get(l.variantId)!;
    if (d > 0) lineDiscounts[l.variantId] = d;
  }
  const discount = applied.reduce((s, a) => s + a.amount, 0);
  const code: CodeStatus | null = input.code
    ? codeProblem
      ? { code: input.code, applied: false, reason: codeProblem, message: codeMessage(codeProblem, input.code, codePromotion, format) }
      : { code: input.code, applied: true, promotionId: codePromotion!.id }
    : null;
  return { subtotal, shipping, discount, total: subtotal + shipping - discount, applied, lineDiscounts, code };
}
