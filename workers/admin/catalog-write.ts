/**
 * Catalog writes shared by the admin product routes and the bulk import:
 * input schemas, and the batched, transactional upsert of products with
 * their variants and regional prices. Everything here runs on the primary.
 */
import { z } from '@hono/zod-openapi';
import { and, eq, inArray, sql } from 'drizzle-orm';
import type { Database } from '../../db/client';
import { REGION_CODES, REGIONS, type RegionCode } from '../../db/regions';
import { categories, prices, products, variants } from '../../db/schema';
import { newId } from '../lib/ids';

const SLUG = /^[a-z0-9]+(-[a-z0-9]+)*$/;
const SKU = /^[A-Z0-9][A-Z0-9._-]{0,63}$/;

export const PriceInput = z
  .object({
    amount: z.number().int().min(0).max(1e12).openapi({ description: 'Minor units of the region currency' }),
    compareAtAmount: z.number().int().min(0).max(1e12).nullable().optional().openapi({ description: 'Struck-through "was" price; above amount' }),
  })
  .strict()
  .refine((p) => p.compareAtAmount == null || p.compareAtAmount > p.amount, { message: 'compareAtAmount must be above amount', path: ['compareAtAmount'] });

/** Prices keyed by region code; the currency is the region's. `null` stops selling the variant there. */
export const PricesInput = z.partialRecord(z.enum(REGION_CODES), PriceInput.nullable());

const status = z.enum(['draft', 'active', 'archived']);

export const VariantInput = z
  .object({
    sku: z.string().regex(SKU, 'Upper-case letters, digits, . _ -; up to 64'),
    title: z.string().trim().min(1).max(200),
    options: z.record(z.string().max(50), z.string().max(100)).optional(),
    position: z.number().int().min(0).max(10_000).optional(),
    status: status.optional(),
    weightGrams: z.number().int().min(1).max(1_000_000).nullable().optional(),
    prices: PricesInput.optional(),
  })
  .strict();

export const ProductInput = z
  .object({
    slug: z.string().regex(SLUG, 'Lower-case words joined by hyphens').max(200).optional(),
    title: z.string().trim().min(1).max(300),
    description: z.string().max(20_000).optional(),
    brand: z.string().trim().max(100).nullable().optional(),
    category: z.string().regex(SLUG).max(100).openapi({ description: 'Category slug' }),
    status: status.optional(),
    variants: z.array(VariantInput).min(1).max(100),
  })
  .strict()
  .refine((p) => new Set(p.variants.map((v) => v.sku)).size === p.variants.length, { message: 'SKUs must be unique', path: ['variants'] });

export const ProductPatch = z
  .object({
    slug: z.string().regex(SLUG).max(200).optional(),
    title: z.string().trim().min(1).max(300).optional(),
    description: z.string().max(20_000).optional(),
    brand: z.string().trim().max(100).nullable().optional(),
    category: z.string().regex(SLUG).max(100).optional(),
    status: status.optional(),
    variants: z
      .array(VariantInput.partial().required({ sku: true }).strict())
      .max(100)
      .optional()
      .openapi({ description: 'Upserted by SKU: a new SKU is added (title and prices required), a known one changes only the fields given' }),
  })
  .strict();

export type ProductInput = z.infer<typeof ProductInput>;
export type ProductPatch = z.infer<typeof ProductPatch>;

/** A refusal tied to one input (becomes a 409/422 for a single write, a line error for an import). */
export class CatalogRuleError extends Error {
  constructor(
    readonly status: 409 | 422,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Slug from a title, with a suffix that keeps it unique. */
export function slugify(title: string, suffix: string): string {
  const base = title
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 80)
    .replace(/-+$/, '');
  const tail = suffix.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '');
  return [base || 'product', tail].filter(Boolean).join('-');
}

type Tx = Parameters<Parameters<Database['transaction']>[0]>[0];

/** Category ids by slug, for the slugs given. */
export async function categoryIds(db: Database | Tx, slugs: string[]): Promise<Map<string, string>> {
  if (slugs.length === 0) return new Map();
  const rows = await db.select({ id: categories.id, slug: categories.slug }).from(categories).where(inArray(categories.slug, [...new Set(slugs)]));
  return new Map(rows.map((r) => [r.slug, r.id]));
}

/** What {@link upsertProducts} did for one input. */
export interface UpsertResult {
  productId: string;
  slug: string;
  previousSlug?: string;
  categoryId: string;
  previousCategoryId?: string;
  created: boolean;
}

/**
 * Creates or updates products by SKU inside `tx`, all or nothing.
 *
 * An input whose SKUs already belong to one product updates that product
 * (title, text, category, status, variants, prices); one whose SKUs are all
 * new creates a product. `mode: 'create'` refuses to touch existing ones.
 * Throws {@link CatalogRuleError} for an input the rules refuse.
 */
export async function upsertProducts(tx: Tx, inputs: ProductInput[], mode: 'create' | 'upsert'): Promise<UpsertResult[]> {
  const skus = inputs.flatMap((p) => p.variants.map((v) => v.sku));
  const cats = await categoryIds(tx, inputs.map((p) => p.category));
  const existingVariants = skus.length
    ? await tx.select({ sku: variants.sku, productId: variants.productId }).from(variants).where(inArray(variants.sku, skus))
    : [];
  const productOfSku = new Map(existingVariants.map((v) => [v.sku, v.productId]));
  const existingIds = [...new Set(existingVariants.map((v) => v.productId))];
  const existingProducts = existingIds.length
    ? await tx.select({ id: products.id, slug: products.slug, categoryId: products.categoryId }).from(products).where(inArray(products.id, existingIds))
    : [];
  const productById = new Map(existingProducts.map((p) => [p.id, p]));

  const plans = inputs.map((input) => {
    const categoryId = cats.get(input.category);
    if (!categoryId) throw new CatalogRuleError(422, 'unknown_category', `No category "${input.category}".`);
    const owners = new Set(input.variants.map((v) => productOfSku.get(v.sku)).filter((x): x is string => !!x));
    if (owners.size > 1) throw new CatalogRuleError(409, 'sku_conflict', `SKUs ${input.variants.map((v) => v.sku).join(', ')} belong to different products.`);
    const existing = owners.size ? productById.get([...owners][0]!) : undefined;
    if (existing && mode === 'create') {
      throw new CatalogRuleError(409, 'sku_taken', `SKU ${input.variants.find((v) => productOfSku.has(v.sku))!.sku} already exists.`);
    }
    const slug = input.slug ?? existing?.slug ?? slugify(input.title, input.variants[0]!.sku);
    return { input, categoryId, existing, id: existing?.id ?? newId('prod'), slug };
  });

  const slugs = plans.map((p) => p.slug);
  if (new Set(slugs).size !== slugs.length) throw new CatalogRuleError(409, 'slug_taken', 'Two products in this write have the same slug.');
  const slugOwners = await tx.select({ id: products.id, slug: products.slug }).from(products).where(inArray(products.slug, slugs));
  for (const owner of slugOwners) {
    const plan = plans.find((p) => p.slug === owner.slug)!;
    if (owner.id !== plan.id) throw new CatalogRuleError(409, 'slug_taken', `The slug "${owner.slug}" is taken by another product.`);
  }

  const now = new Date();
  await tx
    .insert(products)
    .values(
      plans.map((p) => ({
        id: p.id,
        slug: p.slug,
        title: p.input.title,
        description: p.input.description ?? '',
        brand: p.input.brand ?? null,
        categoryId: p.categoryId,
        status: p.input.status ?? 'active',
        createdAt: now,
        updatedAt: now,
      })),
    )
    .onConflictDoUpdate({
      target: products.id,
      set: {
        slug: sql`excluded.slug`,
        title: sql`excluded.title`,
        description: sql`excluded.description`,
        brand: sql`excluded.brand`,
        categoryId: sql`excluded.category_id`,
        status: sql`excluded.status`,
        version: sql`${products.version} + 1`,
        updatedAt: now,
      },
    });

  await upsertVariants(
    tx,
    plans.flatMap((p) => p.input.variants.map((v, i) => ({ productId: p.id, variant: { ...v, position: v.position ?? i } }))),
    now,
    false,
  );

  return plans.map((p) => ({
    productId: p.id,
    slug: p.slug,
    ...(p.existing && p.existing.slug !== p.slug ? { previousSlug: p.existing.slug } : {}),
    categoryId: p.categoryId,
    ...(p.existing && p.existing.categoryId !== p.categoryId ? { previousCategoryId: p.existing.categoryId } : {}),
    created: !p.existing,
  }));
}

type VariantWrite = { productId: string; variant: z.infer<typeof VariantInput> | (Partial<z.infer<typeof VariantInput>> & { sku: string }) };

/**
 * Upserts variants by SKU and their prices. With `partial`, fields left out
 * of a known SKU keep their values; a new SKU always needs a title.
 */
export async function upsertVariants(tx: Tx, writes: VariantWrite[], now: Date, partial: boolean): Promise<void> {
  if (writes.length === 0) return;
  const existing = await tx
    .select({ id: variants.id, sku: variants.sku, productId: variants.productId })
    .from(variants)
    .where(inArray(variants.sku, writes.map((w) => w.variant.sku)));
  const bySku = new Map(existing.map((v) => [v.sku, v]));
  const rows = writes.map(({ productId, variant }) => {
    const known = bySku.get(variant.sku);
    if (known && known.productId !== productId) {
      throw new CatalogRuleError(409, 'sku_taken', `SKU ${variant.sku} belongs to another product.`);
    }
    if (!known && !variant.title) throw new CatalogRuleError(422, 'incomplete_variant', `New variant ${variant.sku} needs a title.`);
    return { id: known?.id ?? newId('var'), productId, variant };
  });

  const toRow = (r: (typeof rows)[number]): typeof variants.$inferInsert => ({
    id: r.id,
    productId: r.productId,
    sku: r.variant.sku,
    title: r.variant.title!,
    options: r.variant.options ?? {},
    position: r.variant.position ?? 0,
    status: r.variant.status ?? 'active',
    weightGrams: r.variant.weightGrams ?? null,
    createdAt: now,
    updatedAt: now,
  });

  if (!partial) {
    // Whole variants (create, import): one multi-row upsert per thousand.
    // The owner check above guarantees no SKU moves between products.
    const values = rows.map(toRow);
    for (let i = 0; i < values.length; i += 1_000) {
      await tx
        .insert(variants)
        .values(values.slice(i, i + 1_000))
        .onConflictDoUpdate({
          target: variants.sku,
          set: {
            title: sql`excluded.title`,
            options: sql`excluded.options`,
            position: sql`excluded.position`,
            status: sql`excluded.status`,
            weightGrams: sql`excluded.weight_grams`,
            updatedAt: now,
          },
        });
    }
  } else {
    // A patch changes only the fields it names; new SKUs are inserted whole.
    const fresh = rows.filter((r) => !bySku.has(r.variant.sku));
    if (fresh.length) {
      await tx.insert(variants).values(
        fresh.map(toRow));
    }
    for (const r of rows.filter((r) => bySku.has(r.variant.sku))) {
      const v = r.variant;
      const set = {
        ...(v.title !== undefined ? { title: v.title } : {}),
        ...(v.options !== undefined ? { options: v.options } : {}),
        ...(v.position !== undefined ? { position: v.position } : {}),
        ...(v.status !== undefined ? { status: v.status } : {}),
        ...(v.weightGrams !== undefined ? { weightGrams: v.weightGrams } : {}),
        updatedAt: now,
      };
      await tx.update(variants).set(set).where(eq(variants.id, r.id));
    }
  }

  const upserts: (typeof prices.$inferInsert)[] = [];
  const removals: { variantId: string; regionCode: RegionCode }[] = [];
  for (const r of rows) {
    for (const [code, price] of Object.entries(r.variant.prices ?? {}) as [RegionCode, z.infer<typeof PriceInput> | null][]) {
      if (price === null) removals.push({ variantId: r.id, regionCode: code });
      else
        upserts.push({
          variantId: r.id,
          regionCode: code,
          currency: REGIONS[code].currency,
          amount: price.amount,
          compareAtAmount: price.compareAtAmount ?? null,
          updatedAt: now,
        });
    }
  }
  for (let i = 0; i < upserts.length; i += 1_000) {
    await tx
      .insert(prices)
      .values(upserts.slice(i, i + 1_000))
      .onConflictDoUpdate({
        target: [prices.variantId, prices.regionCode],
        set: { amount: sql`excluded.amount`, compareAtAmount: sql`excluded.compare_at_amount`, updatedAt: now },
      });
  }
  for (const r of removals) {
    await tx.delete(prices).where(and(eq(prices.variantId, r.variantId), eq(prices.regionCode, r.regionCode)));
  }
}

/** The admin view of a product: every variant with its prices in every region. */
export async function adminProduct(db: Database | Tx, id: string) {
  const [product] = await db
    .select({
      id: products.id,
      slug: products.slug,
      title: products.title,
      description: products.description,
      brand: products.brand,
      category: categories.slug,
      categoryId: products.categoryId,
      status: products.status,
      version: products.version,
      createdAt: products.createdAt,
      updatedAt: products.updatedAt,
    })
    .from(products)
    .innerJoin(categories, eq(categories.id, products.categoryId))
    .where(eq(products.id, id));
  if (!product) return null;
  const vs = await db.select().from(variants).where(eq(variants.productId, id)).orderBy(variants.position, variants.sku);
  const ps = vs.length ? await db.select().from(prices).where(inArray(prices.variantId, vs.map((v) => v.id))) : [];
  return {
    ...product,
    createdAt: product.createdAt.toISOString(),
    updatedAt: product.updatedAt.toISOString(),
    variants: vs.map((v) => ({
      id: v.id,
      sku: v.sku,
      title: v.title,
      options: v.options,
      position: v.position,
      status: v.status,
      weightGrams: v.weightGrams,
      prices: Object.fromEntries(
        ps
          .filter((p) => p.variantId === v.id)
          .map((p) => [p.regionCode, { amount: p.amount, currency: p.currency, compareAtAmount: p.compareAtAmount }]),
      ),
    })),
  };
}
