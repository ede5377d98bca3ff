/**
 * The price a shopper pays for a variant in a region at a moment: the shelf
 * price (`prices.amount`), or the lowest price of the region's price lists
 * running then, when that is lower. Every reader that prices (carts,
 * checkout, the catalog's documents) uses this one fragment, so the
 * storefront never shows a price checkout would not charge.
 */
import { sql, type SQL } from 'drizzle-orm';

/**
 * A `left join lateral … as <alias>` giving `<alias>.amount`, the lowest
 * price-list price running at `at` (default: the database's `now()`) for
 * the variant `variantId` (an SQL expression, e.g. `sql\`v.id\``) in
 * `regionCode`; null when no list is running.
 */
export function runningListPrice(variantId: SQL, regionCode: string, alias = 'plp', at: SQL = sql`now()`): SQL {
  return sql`left join lateral (
      select min(lp.amount) as amount
      from price_list_prices lp
      join price_lists l on l.id = lp.price_list_id
      where lp.variant_id = ${variantId} and l.region_code = ${regionCode}
        and l.starts_at <= ${at} and (l.ends_at is null or l.ends_at > ${at})
    ) ${sql.raw(alias)} on true`;
}

/** The effective amount given the shelf price column and a {@link runningListPrice} alias. */
export function effectiveAmount(shelf: SQL, alias = 'plp'): SQL {
  return sql`least(${shelf}, coalesce(${sql.raw(alias)}.amount, ${shelf}))`;
}
