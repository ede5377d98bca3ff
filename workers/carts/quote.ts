/**
 * A cart's quote: its lines at origin prices, the promotions they get, the
 * shipping, and the total. The cart answer shows it; the checkout saga's
 * price step computes the same thing from the primary and charges it.
 */
import type { Database } from '../../db/client';
import type { Region } from '../../db/regions';
import { formatMoney, money, type Money } from '../lib/money';
import { evaluate, type Evaluation, type PromotionKind } from '../promotions/engine';
import { CART_PROMOTIONS_MEMO_MS, loadPromotionContext, type PromotionContext } from '../promotions/store';

export { CART_PROMOTIONS_MEMO_MS };
import { loadVariantFacts, priceLines, type PricedCart, type PricedItem, type VariantFacts } from './pricing';
import type { CartLine } from './store';

/** A priced cart with its promotions. */
export interface Quote {
  priced: PricedCart;
  evaluation: Evaluation;
  context: PromotionContext;
}

/** Evaluates the promotions of already-priced lines (only lines that can be bought take part). */
export function quoteOf(region: Region, priced: PricedCart, facts: Map<string, VariantFacts>, context: PromotionContext, code: string | null, now = new Date()): Quote {
  const lines = priced.items
    .filter((i) => i.status === 'ok')
    .map((i) => ({ variantId: i.variantId, unitAmount: i.unitPrice.amount, quantity: i.quantity, categoryIds: facts.get(i.variantId)?.categoryIds ?? [] }));
  const evaluation = evaluate({
    regionCode: region.code,
    currency: region.currency,
    lines,
    promotions: context.promotions,
    code,
    shipping: context.shipping,
    now,
    format: (amount) => formatMoney(money(amount, region), region),
  });
  return { priced, evaluation, context };
}

/**
 * Prices `lines` and evaluates promotions (with `code`) from `db`: pass the
 * primary and no `memoMs` to quote what will be charged; a replica and
 * {@link CART_PROMOTIONS_MEMO_MS} to show the cart.
 */
export async function quoteCart(
  db: Database,
  region: Region,
  lines: readonly CartLine[],
  code: string | null,
  options: {
    /** Facts already loaded for some of the lines. */
    known?: Map<string, VariantFacts>;
    /** See {@link CART_PROMOTIONS_MEMO_MS}; cart answers only. */
    memoMs?: number;
    /** The checkout quoting: its own holds do not count against the limits. */
    checkoutId?: string;
  } = {},
): Promise<Quote & { facts: Map<string, VariantFacts> }> {
  const { known, memoMs, checkoutId } = options;
  const facts = new Map(known ?? []);
  const missing = lines.map((l) => l.variantId).filter((v) => !facts.has(v));
  // Both on one connection, one after the other: set-up costs more than the second query.
  if (missing.length) for (const [id, f] of await loadVariantFacts(db, region, missing)) facts.set(id, f);
  const context = await loadPromotionContext(db, region, code, { ...(memoMs ? { memoMs } : {}), ...(checkoutId ? { checkoutId } : {}) });
  return { ...quoteOf(region, priceLines(region, lines, facts), facts, context, code), facts };
}

/** The wire shape of a quote's extra fields (shared/API.md fields stay as they are). */
export interface QuoteFields {
  items: (PricedItem & { discount: Money })[];
  promotions: { promotionId: string; code: string | null; title: string; kind: PromotionKind; amount: Money }[];
  code: { code: string; applied: boolean; reason?: string; message?: string } | null;
  shipping: Money;
  discount: Money;
  total: Money;
}

/** The cart answer's items and totals for a quote. */
export function quoteFields(region: Region, quote: Quote): QuoteFields {
  const e = quote.evaluation;
  return {
    items: quote.priced.items.map((i) => ({ ...i, discount: money(e.lineDiscounts[i.variantId] ?? 0, region) })),
    promotions: e.applied.map((a) => ({ promotionId: a.promotionId, code: a.code, title: a.title, kind: a.kind, amount: money(a.amount, region) })),
    code: e.code ? (e.code.applied ? { code: e.code.code, applied: true } : { code: e.code.code, applied: false, reason: e.code.reason, message: e.code.message }) : null,
    shipping: money(e.shipping, region),
    discount: money(e.discount, region),
    total: money(e.total, region),
  };
}
