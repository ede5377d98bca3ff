/**
 * The shape of the seed's named fixtures, in a module of its own with no
 * runtime imports so tests inside workerd can type what they are handed
 * (db/seed.ts itself needs Node).
 */
import type { RegionCode } from './regions';

type SeedRegionCode = RegionCode;

/** Well-known rows for tests and benchmarks, derived from the data (see `seedFixtures`). */
export interface SeedFixtures {
  /** Five active products sold in all 7 regions whose first variant is active and in stock everywhere. */
  productSlugs: string[];
  /** The variant with the deepest stock in its thinnest region, sold everywhere: the flash-sale target. */
  hotVariantSku: string;
  hotVariantId: string;
  /** Its smallest per-region `received` (every region holds at least this many). */
  hotVariantMinReceived: number;
  /** An active variant of an active, sold-everywhere product with 0 units received in every region. */
  soldOutSku: string;
  soldOutVariantId: string;
  /** An active variant of an active product, in stock in every region, with a compare-at price everywhere. */
  onSaleSku: string;
  /** An archived variant inside an active product (a discontinued colour/size). */
  archivedVariantSku: string;
  /** An active product sold in some (at least two) but not all regions. */
  regionLimitedSlug: string;
  regionLimitedSoldIn: SeedRegionCode[];
  regionLimitedNotSoldIn: SeedRegionCode[];
  /** Hidden products. */
  draftSlug: string;
  archivedSlug: string;
  /** The leaf category with the most active products. */
  busiestCategorySlug: string;
  /** A word that full-text search finds in many titles/descriptions. */
  searchTerm: string;
}
