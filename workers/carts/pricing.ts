/**
 * Cart pricing from the origin. Prices come from Postgres on every call,
 * for the cart's region, never from a cache and never from the client: the
 * storefront's cached documents may lag a price change, a cart may not.
 */
import { sql } from 'drizzle-orm';
import type { Database } from '../../db/client';
import type { Region } from '../../db/regions';
import { mediaUrl } from '../catalog/queries';
import { effectiveAmount, runningListPrice } from '../prices/effective';
import { money, type Money } from '../lib/money';
import type { CartLine } from './store';

/**
 * Why a line cannot be bought:
 * - `archived`: the variant or its product is no longer active (archived, or back to draft);
 * - `not_sold_in_region`: it has no price in the cart's region;
 * - `unknown_variant`: the variant no longer exists.
 */
export type LineProblem = 'archived' | 'not_sold_in_region' | 'unknown_variant';

/** A cart line priced for its region. */
export interface PricedItem {
  /** The line id. It is the variant id: a cart holds one line per variant. */
  id: string;
  variantId: string;
  sku: string;
  /** Product and variant title, e.g. `Shieldo Fast Power Bank Pro – Black`. */
  title: string;
  productTitle: string;
  variantTitle: string;
  productSlug: string | null;
  image: { url: string; alt: string } | null;
  quantity: number;
  /** Current origin price in the cart's region; for a line no longer priced there, the price it was added at. */
  unitPrice: Money;
  /** `unitPrice × quantity`, or 0 for an unavailable line (so the line totals add up to the subtotal). */
  lineTotal: Money;
  /** `unavailable` lines stay in the cart, are shown, and are left out of the subtotal. */
  status: 'ok' | 'unavailable';
  problem?: LineProblem;
  /** Present when the price changed since the line was last added: the price then. */
  previousUnitPrice?: Money;
}

/** A cart's lines with origin prices. */
export interface PricedCart {
  items: PricedItem[];
  /** Sum of the available lines. */
  subtotal: Money;
}

/** What the origin says about one variant in a region. */
export interface VariantFacts {
  id: string;
  sku: string;
  variantTitle: string;
  productTitle: string;
  productSlug: string;
  /** Variant and product both active. */
  active: boolean;
  /** Price in the region now (a running price list's when lower than the shelf price), or null when not sold there. */
  amount: number | null;
  /** The product's category and that category's parent (promotions on a category cover its sub-categories). */
  categoryIds: string[];
  image: { url: string; alt: string } | null;
}

/** Origin facts for variants in a region (unknown ids are simply absent). */
export async function loadVariantFacts(db: Database, region: Region, variantIds: readonly string[]): Promise<Map<string, VariantFacts>> {
  const ids = [...new Set(variantIds)];
  if (ids.length === 0) return new Map();
  const { rows } = await db.execute<{
    id: string;
    sku: string;
    variant_title: string;
    variant_status: string;
    product_title: string;
    product_slug: string;
    product_status: string;
    amount: number | null;
    category_id: string;
    parent_category_id: string | null;
    image_key: string | null;
    image_alt: string | null;
  }>(sql`
    select v.id, v.sku, v.title as variant_title, v.status as variant_status,
           p.title as product_title, p.slug as product_slug, p.status as product_status,
           ${effectiveAmount(sql`pr.amount`)}::float8 as amount, p.category_id, c.parent_id as parent_category_id,
           img.key as image_key, img.alt as image_alt
    from variants v
    join products p on p.id = v.product_id
    join categories c on c.id = p.category_id
    left join prices pr on pr.variant_id = v.id and pr.region_code = ${region.code}
    ${runningListPrice(sql`v.id`, region.code)}
    left join lateral (
      select m.key, m.alt from media m where m.product_id = p.id order by m.position, m.key limit 1
    ) img on true
    where v.id in (${sql.join(
      ids.map((id) => sql`${id}`),
      sql`, `,
    )})`);
  return new Map(
    rows.map((r) => [
      r.id,
      {
        id: r.id,
        sku: r.sku,
        variantTitle: r.variant_title,
        productTitle: r.product_title,
        productSlug: r.product_slug,
        active: r.variant_status === 'active' && r.product_status === 'active',
        amount: r.amount === null ? null : Number(r.amount),
        categoryIds: r.parent_category_id ? [r.category_id, r.parent_category_id] : [r.category_id],
        image: r.image_key ? { url: mediaUrl(r.image_key), alt: r.image_alt ?? '' } : null,
      },
    ]),
  );
}

/** Why a variant cannot be sold in the region, or null when it can. */
export function problemOf(facts: VariantFacts | undefined): LineProblem | null {
  if (!facts) return 'unknown_variant';
  if (!facts.active) return 'archived';
  if (facts.amount === null) return 'not_sold_in_region';
  return null;
}

function lineTitle(productTitle: string, variantTitle: string): string {
  const v = variantTitle.trim();
  return !v || v === productTitle || /^default( title)?$/i.test(v) ? productTitle : `${productTitle} – ${v}`;
}

/** Prices lines with facts already loaded (see {@link loadVariantFacts}). */
export function priceLines(region: Region, lines: readonly CartLine[], facts: Map<string, VariantFacts>): PricedCart {
  let subtotal = 0;
  const items = lines.map((line): PricedItem => {
    const f = facts.get(line.variantId);
    const problem = problemOf(f);
    const unit = f?.amount ?? line.addedUnitAmount ?? 0;
    const total = problem ? 0 : unit * line.quantity;
    subtotal += total;
    const repriced = !problem && line.addedUnitAmount !== undefined && line.addedUnitAmount !== unit;
    return {
      id: line.variantId,
      variantId: line.variantId,
      sku: f?.sku ?? '',
      title: f ? lineTitle(f.productTitle, f.variantTitle) : 'No longer available',
      productTitle: f?.productTitle ?? '',
      variantTitle: f?.variantTitle ?? '',
      productSlug: f?.productSlug ?? null,
      image: f?.image ?? null,
      quantity: line.quantity,
      unitPrice: money(unit, region),
      lineTotal: money(total, region),
      status: problem ? 'unavailable' : 'ok',
      ...(problem ? { problem } : {}),
      ...(repriced ? { previousUnitPrice: money(line.addedUnitAmount!, region) } : {}),
    };
  });
  return { items, subtotal: money(subtotal, region) };
}

/**
 * Prices a cart's lines from the origin for `region` (the cart's region).
 * Pass the primary to price what will be charged (checkout); a replica is
 * fine for showing the cart. Lines that cannot be bought come back with
 * `status: 'unavailable'` and a `problem`, and are not in the subtotal.
 */
export async function priceCart(db: Database, region: Region, lines: readonly CartLine[]): Promise<PricedCart> {
  return priceLines(region, lines, await loadVariantFacts(db, region, lines.map((l) => l.variantId)));
}
