/**
 * After an admin write commits on the primary: republish what shoppers read.
 *
 * - a product's document is rebuilt from the primary for every region and
 *   written to KV under the current product epoch (a region where it is no
 *   longer sold, or an archived product, gets a "gone" document, so the edge
 *   answers 404 without asking the origin);
 * - the listing versions of its categories (old and new, and their parents)
 *   and of `*` are bumped, so listings and search refill from the origin;
 * - this location's Cache API copies of the product are deleted, so the
 *   writer's own location sees the change at once (others within the 1 s
 *   edge TTL after their KV does).
 *
 * A bulk import changes too many products to republish one by one; it bumps
 * the product epoch instead, and documents refill lazily on first read.
 */
import { inArray, sql } from 'drizzle-orm';
import { REGIONS, REGION_CODES } from '../../db/regions';
import type { Database } from '../../db/client';
import { categories } from '../../db/schema';
import { loadProduct } from './queries';
import { productKey } from './service';
import { etagOf, purgeLocal } from './tiers';
import { bumpVersions, listingScope, readVersion } from './versions';

/** KV lifetime of a republished product document (see routes.ts). */
const PRODUCT_STORE_TTL = 6 * 3_600;

/** What a write touched: product slugs (old and new) and category ids (old and new). */
export interface CatalogChange {
  slugs: string[];
  categoryIds: string[];
}

/** Category slugs whose listings include products of `categoryIds` (themselves and their parents). */
async function affectedCategorySlugs(db: Database, categoryIds: string[]): Promise<string[]> {
  if (categoryIds.length === 0) return [];
  const rows = await db
    .select({ slug: categories.slug, parentSlug: sql<string | null>`(select p.slug from categories p where p.id = ${categories.parentId})` })
    .from(categories)
    .where(inArray(categories.id, categoryIds));
  return [...new Set(rows.flatMap((r) => (r.parentSlug ? [r.slug, r.parentSlug] : [r.slug])))];
}

/** Republishes the products and bumps the listings a single-product write touched. */
export async function publishChange(db: Database, kv: KVNamespace, change: CatalogChange): Promise<void> {
  const epoch = await readVersion(kv, 'products');
  const slugs = [...new Set(change.slugs)];
  await Promise.all(
    slugs.flatMap((slug) =>
      REGION_CODES.map(async (code) => {
        const body = await loadProduct(db, REGIONS[code], slug);
        await kv.put(productKey(epoch, code, slug), JSON.stringify({ etag: await etagOf(body), body }), {
          expirationTtl: PRODUCT_STORE_TTL,
        });
      }),
    ),
  );
  const categorySlugs = await affectedCategorySlugs(db, change.categoryIds);
  await bumpVersions(kv, [listingScope(undefined), ...categorySlugs.map((s) => listingScope(s))]);
  await purgeLocal(slugs.flatMap((slug) => REGION_CODES.map((code) => productKey(epoch, code, slug))));
}

/** After a bulk import: every product document and listing refills from the origin. */
export async function publishEverything(db: Database, kv: KVNamespace, categoryIds: string[]): Promise<void> {
  const categorySlugs = await affectedCategorySlugs(db, categoryIds);
  await bumpVersions(kv, ['products', listingScope(undefined), ...categorySlugs.map((s) => listingScope(s))]);
}
