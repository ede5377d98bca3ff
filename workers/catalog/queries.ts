/**
 * Origin reads of the catalog: what the tiers fall back to on a miss, and
 * what writers republish from. Every price is the region's; a product is sold
 * in a region exactly when it has active, priced variants there.
 */
import { sql, type SQL } from 'drizzle-orm';
import type { Region } from '../../db/regions';
import type { Database } from '../../db/client';
import { effectiveAmount, runningListPrice } from '../prices/effective';
import type { Category, Image, Product, ProductSummary } from './schemas';

/** Public URL of a media object. */
export function mediaUrl(key: string): string {
  return `/media/${key}`;
}

/** Active categories with the number of active products sold in the region. */
export async function loadCategories(db: Database, region: Region): Promise<Category[]> {
  const { rows } = await db.execute<{ id: string; slug: string; name: string; description: string; parent: string | null; product_count: number }>(sql`
    select c.id, c.slug, c.name, c.description, parent.slug as parent,
      (select count(distinct p.id)::int
         from products p
         join categories pc on pc.id = p.category_id
         join variants v on v.product_id = p.id and v.status = 'active'
         join prices pr on pr.variant_id = v.id and pr.region_code = ${region.code}
        where p.status = 'active' and (pc.id = c.id or pc.parent_id = c.id)) as product_count
    from categories c
    left join categories parent on parent.id = c.parent_id
    order by c.parent_id nulls first, c.position, c.name`);
  return rows.map((r) => ({ id: r.id, slug: r.slug, name: r.name, description: r.description, parent: r.parent, productCount: r.product_count }));
}

/**
 * A product document as the tiers store it: the public document plus, per
 * variant, how many inventory shards its stock is split over in the region
 * (read by the live availability overlay, never sent to shoppers).
 */
export type StoredProduct = Omit<Product, 'variants'> & {
  variants: (Product['variants'][number] & { shards: number })[];
  /**
   * When a price in this document next changes by itself (a price list of
   * its variants in the region starts or ends; epoch ms), or null. The tiers
   * treat the document as a miss from then on (./tiers.ts); never sent to shoppers.
   */
  validUntil: number | null;
};

/**
 * The compare-at ("was") amount shown beside `effective`: while a price list
 * undercuts the shelf price, the shelf price (or the shelf compare-at when
 * that is higher); otherwise the shelf compare-at as stored.
 */
function compareAtAmount(shelf: SQL, shelfCompareAt: SQL, effective: SQL): SQL {
  return sql`case when ${effective} < ${shelf} then greatest(${shelf}, coalesce(${shelfCompareAt}, ${shelf})) else ${shelfCompareAt} end`;
}

/**
 * The next instant (epoch ms, by the database clock) at which a price list of
 * the region starts or ends, among lists holding a price for `variants` (an
 * SQL expression selecting variant ids), or for any variant when omitted.
 */
async function nextPriceSwitch(db: Database, regionCode: string, variantIds?: SQL): Promise<number | null> {
  const touching = variantIds ? sql`and exists (select 1 from price_list_prices lp where lp.price_list_id = l.id and lp.variant_id in (${variantIds}))` : sql``;
  const { rows } = await db.execute<{ at: number | null }>(sql`
      select (extract(epoch from min(t)) * 1000)::float8 as at
      from price_lists l
      cross join lateral (values (l.starts_at), (l.ends_at)) as b(t)
      where l.region_code = ${regionCode} and b.t > now() ${touching}`);
  const at = rows[0]?.at;
  // Rounded up: a read at validUntil must find the switch already made.
  return at === null || at === undefined ? null : Math.ceil(Number(at));
}

/** The next price switch for a listing page (any list of the region: a switch may also move products across a price filter). */
export function nextListingSwitch(db: Database, regionCode: string): Promise<number | null> {
  return nextPriceSwitch(db, regionCode);
}

/** The product document for a slug in a region, or null (unknown, not active, or not sold there). */
export async function loadProduct(db: Database, region: Region, slug: string): Promise<StoredProduct | null> {
  const { rows: products } = await db.execute<{
    id: string; slug: string; title: string; description: string; brand: string | null; category_slug: string; category_name: string;
  }>(sql`
    select p.id, p.slug, p.title, p.description, p.brand, c.slug as category_slug, c.name as category_name
    from products p join categories c on c.id = p.category_id
    where p.slug = ${slug} and p.status = 'active'`);
  const product = products[0];
  if (!product) return null;
  // One after the other on one connection: on a miss, connection set-up
  // costs far more than the second query (measured in bench/).
  // The next price switch is read before the prices: a list starting between
  // the two reads then only makes the document expire at once.
  const switchAt = await nextPriceSwitch(db, region.code, sql`select id from variants where product_id = ${product.id}`);
  const { rows: variants } = await db.execute<{ id: string; sku: string; title: string; options: Record<string, string>; amount: number; compare_at_amount: number | null; received: number; shards: number }>(sql`
      select v.id, v.sku, v.title, v.options, ${effectiveAmount(sql`pr.amount`)}::float8 as amount,
             ${compareAtAmount(sql`pr.amount`, sql`pr.compare_at_amount`, effectiveAmount(sql`pr.amount`))}::float8 as compare_at_amount,
             coalesce(s.received, 0) as received, coalesce(s.shards, 1)::int as shards
      from variants v
      join prices pr on pr.variant_id = v.id and pr.region_code = ${region.code}
      ${runningListPrice(sql`v.id`, region.code)}
      left join stock s on s.variant_id = v.id and s.region_code = ${region.code}
      where v.product_id = ${product.id} and v.status = 'active'
      order by v.position, v.sku`);
  const { rows: images } = await db.execute<{ key: string; alt: string; width: number | null; height: number | null }>(sql`
      select key, alt, width, height from media where product_id = ${product.id} order by position, key`);
  if (variants.length === 0) return null;
  // A flash sale open for the product here: the page shows its countdown and queue.
  const { rows: saleRows } = await db.execute<{ id: string; name: string; starts_at: string; ends_at: string | null; cap: number; variant_ids: string[] }>(sql`
      select s.id, s.name, s.starts_at, least(s.ends_at, s.ended_at) as ends_at, s.per_shopper_cap as cap, array_agg(sv.variant_id order by sv.variant_id) as variant_ids
      from sales s
      join sale_regions sr on sr.sale_id = s.id and sr.region_code = ${region.code}
      join sale_variants sv on sv.sale_id = s.id
      join variants v on v.id = sv.variant_id and v.product_id = ${product.id}
      where s.ended_at is null and (s.ends_at is null or s.ends_at > now())
      group by s.id
      order by s.starts_at
      limit 1`);
  const sale = saleRows[0];
  // The flash sale leaves the document when it ends: that is a switch too.
  const saleEnd = sale?.ends_at ? new Date(sale.ends_at).getTime() : null;
  const validUntil = switchAt === null ? saleEnd : saleEnd === null ? switchAt : Math.min(switchAt, saleEnd);
  return {
    id: product.id,
    slug: product.slug,
    title: product.title,
    description: product.description,
    brand: product.brand,
    category: { slug: product.category_slug, name: product.category_name },
    images: images.map((m): Image => ({ url: mediaUrl(m.key), alt: m.alt, width: m.width, height: m.height })),
    variants: variants.map((v) => ({
      id: v.id,
      sku: v.sku,
      title: v.title,
      options: v.options,
      price: { amount: Number(v.amount), currency: region.currency },
      compareAtPrice: v.compare_at_amount === null ? null : { amount: Number(v.compare_at_amount), currency: region.currency },
      // Stock received: what the page shows if the inventory objects cannot be asked.
      available: Number(v.received),
      shards: v.shards,
    })),
    sale: sale
      ? {
          id: sale.id,
          name: sale.name,
          startsAt: new Date(sale.starts_at).toISOString(),
          endsAt: sale.ends_at === null ? null : new Date(sale.ends_at).toISOString(),
          perShopperCap: Number(sale.cap),
          variantIds: sale.variant_ids,
        }
      : null,
    validUntil,
  };
}

/** Where a listing page resumes. */
export interface ListingPosition {
  createdAt: string;
  id: string;
}

/** Filters shared by listings and search. */
export interface ListingFilters {
  /** Category id whose products (and its children's) are listed. */
  categoryId?: string;
  minPrice?: number;
  maxPrice?: number;
}

type SummaryRow = {
  id: string;
  slug: string;
  title: string;
  brand: string | null;
  category: string;
  created_at: string;
  price: number;
  compare_at: number | null;
  available: boolean;
  stocked: string[] | null;
  image_key: string | null;
  image_alt: string | null;
  image_width: number | null;
  image_height: number | null;
};

/** The shared select of product summaries, with `where` and `order`/`limit` supplied by the caller. */
function summarySelect(region: Region, filters: ListingFilters, extraWhere: SQL, extraSelect: SQL, tail: SQL): SQL {
  const category = filters.categoryId ? sql`and (c.id = ${filters.categoryId} or c.parent_id = ${filters.categoryId})` : sql``;
  const price = effectiveAmount(sql`pr.amount`);
  const having = [
    filters.minPrice !== undefined ? sql`min(${price}) >= ${filters.minPrice}` : undefined,
    filters.maxPrice !== undefined ? sql`min(${price}) <= ${filters.maxPrice}` : undefined,
  ].filter((x): x is SQL => x !== undefined);
  return sql`
    select p.id, p.slug, p.title, p.brand, c.slug as category,
      to_char(p.created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as created_at,
      min(${price})::float8 as price,
      (array_agg(${compareAtAmount(sql`pr.amount`, sql`pr.compare_at_amount`, price)} order by ${price}))[1]::float8 as compare_at,
      bool_or(coalesce(s.received, 0) > 0) as available,
      array_agg(v.id order by v.id) filter (where coalesce(s.received, 0) > 0) as stocked,
      img.key as image_key, img.alt as image_alt, img.width as image_width, img.height as image_height
      ${extraSelect}
    from products p
    join categories c on c.id = p.category_id
    join variants v on v.product_id = p.id and v.status = 'active'
    join prices pr on pr.variant_id = v.id and pr.region_code = ${region.code}
    ${runningListPrice(sql`v.id`, region.code)}
    left join stock s on s.variant_id = v.id and s.region_code = ${region.code}
    left join lateral (
      select m.key, m.alt, m.width, m.height from media m where m.product_id = p.id order by m.position, m.key limit 1
    ) img on true
    where p.status = 'active' ${category} ${extraWhere}
    group by p.id, c.slug, img.key, img.alt, img.width, img.height
    ${having.length ? sql`having ${sql.join(having, sql` and `)}` : sql``}
    ${tail}`;
}

/**
 * A listing item as the tiers store it: the public summary plus the ids of its
 * variants that had stock received, which the sold-out overlay checks
 * (never sent to shoppers).
 */
export type StoredSummary = ProductSummary & { stocked: string[] };

function toSummary(region: Region, r: SummaryRow): StoredSummary {
  return {
    id: r.id,
    slug: r.slug,
    title: r.title,
    brand: r.brand,
    category: r.category,
    price: { amount: Number(r.price), currency: region.currency },
    compareAtPrice: r.compare_at === null ? null : { amount: Number(r.compare_at), currency: region.currency },
    image: r.image_key ? { url: mediaUrl(r.image_key), alt: r.image_alt ?? '', width: r.image_width, height: r.image_height } : null,
    available: r.available,
    stocked: r.stocked ?? [],
  };
}

/** A page of the newest-first listing, and where the next page starts (null at the end). */
export async function loadListing(
  db: Database,
  region: Region,
  filters: ListingFilters,
  after: ListingPosition | undefined,
  limit: number,
): Promise<{ items: StoredSummary[]; next: ListingPosition | null }> {
  const resume = after ? sql`and (p.created_at, p.id) < (${after.createdAt}::timestamptz, ${after.id})` : sql``;
  const { rows } = await db.execute<SummaryRow>(
    summarySelect(region, filters, resume, sql``, sql`order by p.created_at desc, p.id desc limit ${limit + 1}`),
  );
  const page = rows.slice(0, limit);
  const last = page[page.length - 1];
  return {
    items: page.map((r) => toSummary(region, r)),
    next: rows.length > limit && last ? { createdAt: last.created_at, id: last.id } : null,
  };
}

let trigramAvailable: boolean | undefined;

/** Whether the database has pg_trgm (cached per isolate: extensions do not come and go). */
export async function hasTrigram(db: Database): Promise<boolean> {
  if (trigramAvailable === undefined) {
    const { rows } = await db.execute<{ present: boolean }>(sql`select exists(select 1 from pg_extension where extname = 'pg_trgm') as present`);
    trigramAvailable = rows[0]?.present === true;
  }
  return trigramAvailable;
}

/**
 * Ranked search: full-text matches first (by ts_rank over title > brand >
 * description), then, where pg_trgm exists, titles that resemble the query
 * (typos: "wireles earbds"), by word similarity.
 */
export async function searchProducts(
  db: Database,
  region: Region,
  q: string,
  filters: ListingFilters,
  offset: number,
  limit: number,
): Promise<{ items: StoredSummary[]; more: boolean; typoTolerant: boolean }> {
  const trigram = await hasTrigram(db);
  const tsq = sql`websearch_to_tsquery('english', ${q})`;
  const match = trigram ? sql`and (p.search @@ ${tsq} or ${q} <% p.title)` : sql`and p.search @@ ${tsq}`;
  const rank = trigram
    ? sql`, (p.search @@ ${tsq}) as exact, ts_rank_cd(p.search, ${tsq}) as rank, word_similarity(${q}, p.title) as similarity`
    : sql`, true as exact, ts_rank_cd(p.search, ${tsq}) as rank, 0 as similarity`;
  const { rows } = await db.execute<SummaryRow>(
    summarySelect(region, filters, match, rank, sql`order by exact desc, rank desc, similarity desc, p.id limit ${limit + 1} offset ${offset}`),
  );
  return { items: rows.slice(0, limit).map((r) => toSummary(region, r)), more: rows.length > limit, typoTolerant: trigram };
}

/** A category's id by slug (null when unknown). */
export async function categoryIdBySlug(db: Database, slug: string): Promise<string | null> {
  const { rows } = await db.execute<{ id: string }>(sql`select id from categories where slug = ${slug}`);
  return rows[0]?.id ?? null;
}
