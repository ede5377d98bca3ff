/**
 * Wire shapes of the catalog (shared/API.md), as zod schemas that both
 * validate and document: the OpenAPI document is generated from these.
 */
import { z } from '@hono/zod-openapi';
import { MoneySchema } from '../lib/money';

export const ImageSchema = z
  .object({
    url: z.string().openapi({ example: '/media/media/3f2a….jpg' }),
    alt: z.string(),
    width: z.number().int().nullable(),
    height: z.number().int().nullable(),
  })
  .openapi('Image');

export const CategorySchema = z
  .object({
    id: z.string(),
    slug: z.string().openapi({ example: 'audio' }),
    name: z.string().openapi({ example: 'Audio' }),
    description: z.string(),
    parent: z.string().nullable().openapi({ description: 'Slug of the parent category', example: 'electronics' }),
    productCount: z.number().int().openapi({ description: 'Active products sold in the region' }),
  })
  .openapi('Category');

export const ProductSummarySchema = z
  .object({
    id: z.string(),
    slug: z.string(),
    title: z.string(),
    brand: z.string().nullable(),
    category: z.string().openapi({ description: 'Category slug' }),
    price: MoneySchema.openapi({ description: 'Lowest variant price in the region' }),
    compareAtPrice: MoneySchema.nullable(),
    image: ImageSchema.nullable(),
    available: z.boolean().openapi({ description: 'Whether any variant has stock in the region (may lag by the bound in docs)' }),
  })
  .openapi('ProductSummary');

export const ProductListSchema = z
  .object({
    items: z.array(ProductSummarySchema),
    nextCursor: z.string().nullable(),
  })
  .openapi('ProductList');

export const VariantSchema = z
  .object({
    id: z.string(),
    sku: z.string(),
    title: z.string(),
    options: z.record(z.string(), z.string()),
    price: MoneySchema,
    compareAtPrice: MoneySchema.nullable(),
    available: z.number().int().openapi({ description: 'Units available in the region' }),
  })
  .openapi('Variant');

export const ProductSchema = z
  .object({
    id: z.string(),
    slug: z.string(),
    title: z.string(),
    description: z.string(),
    brand: z.string().nullable(),
    category: z.object({ slug: z.string(), name: z.string() }),
    images: z.array(ImageSchema),
    variants: z.array(VariantSchema),
    sale: z
      .object({
        id: z.string(),
        name: z.string(),
        startsAt: z.string(),
        endsAt: z.string().nullable(),
        perShopperCap: z.number().int(),
        variantIds: z.array(z.string()),
      })
      .nullable()
      .optional()
      .openapi({ description: 'A flash sale of this product in the region (scheduled or live): these variants sell only through its queue (`POST /api/sales/{id}/tickets`), at most `perShopperCap` per shopper' }),
  })
  .openapi('Product');

export type Category = z.infer<typeof CategorySchema>;
export type ProductSummary = z.infer<typeof ProductSummarySchema>;
export type ProductList = z.infer<typeof ProductListSchema>;
export type Product = z.infer<typeof ProductSchema>;
export type Image = z.infer<typeof ImageSchema>;
