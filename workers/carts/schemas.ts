/** Wire shapes of carts (shared/API.md), as zod schemas that validate and document. */
import { z } from '@hono/zod-openapi';
import { REGION_CODES } from '../../db/regions';
import { MoneySchema } from '../lib/money';
import { MAX_LINE_QUANTITY, MAX_LINES } from './store';

export const CartItemSchema = z
  .object({
    id: z.string().openapi({ description: 'Line id (the variant id: one line per variant)', example: 'var_bsx6cc41fd62wgpf' }),
    variantId: z.string().openapi({ example: 'var_bsx6cc41fd62wgpf' }),
    sku: z.string().openapi({ example: 'PSR-659199-1' }),
    title: z.string().openapi({ description: 'Product and variant title', example: 'Shieldo Fast Power Bank Pro – Black' }),
    productTitle: z.string(),
    variantTitle: z.string(),
    productSlug: z.string().nullable(),
    image: z.object({ url: z.string(), alt: z.string() }).nullable(),
    quantity: z.number().int().min(1).max(MAX_LINE_QUANTITY),
    unitPrice: MoneySchema.openapi({
      description: "Current origin price in the cart's region (for a line no longer priced there, the price it was added at)",
    }),
    lineTotal: MoneySchema.openapi({ description: '`unitPrice × quantity`; 0 for an unavailable line, so line totals add up to the subtotal' }),
    status: z.enum(['ok', 'unavailable']).openapi({ description: '`unavailable` lines stay in the cart but are not in the subtotal and cannot be checked out' }),
    problem: z
      .enum(['archived', 'not_sold_in_region', 'unknown_variant'])
      .optional()
      .openapi({ description: 'Why an unavailable line cannot be bought' }),
    previousUnitPrice: MoneySchema.optional().openapi({ description: 'Present when the price changed since the line was last added: the price then' }),
    discount: MoneySchema.openapi({ description: "This line's share of the item and order promotions (whole minor units; the lines' shares add up to the goods discount)" }),
  })
  .openapi('CartItem');

export const AppliedPromotionSchema = z
  .object({
    promotionId: z.string(),
    code: z.string().nullable().openapi({ description: 'The code, or null for an automatic promotion' }),
    title: z.string().openapi({ example: '10% off audio' }),
    kind: z.enum(['percentage', 'fixed', 'free_shipping', 'buy_x_get_y']),
    amount: MoneySchema.openapi({ description: 'What it takes off in all' }),
  })
  .openapi('AppliedPromotion');

export const CartSchema = z
  .object({
    id: z.string().openapi({ description: 'Unguessable cart token (160 bits); whoever holds it may use the cart', example: 'cart_5x2m…' }),
    region: z.enum(REGION_CODES).openapi({ description: 'The region the cart was created in; it prices every read' }),
    createdAt: z.string().openapi({ example: '2026-01-31T08:00:00.000Z' }),
    items: z.array(CartItemSchema).openapi({ description: `At most ${MAX_LINES} lines, in the order first added` }),
    subtotal: MoneySchema.openapi({ description: 'Sum of the available lines, from origin prices' }),
    promotions: z.array(AppliedPromotionSchema).openapi({ description: 'The promotions applied: at most one per class (item, order, shipping), the best for the shopper' }),
    code: z
      .object({
        code: z.string(),
        applied: z.boolean(),
        reason: z.string().optional().openapi({ description: 'Why the code does not apply now (`promotion_expired`, `promotion_exhausted`, ...)' }),
        message: z.string().optional(),
      })
      .nullable()
      .openapi({ description: 'The code on the cart and whether it applies now; checkout fails with `reason` if it does not' }),
    shipping: MoneySchema.openapi({ description: "The region's shipping charge for this cart, before a free-shipping promotion" }),
    discount: MoneySchema.openapi({ description: 'All promotions together' }),
    total: MoneySchema.openapi({ description: '`subtotal + shipping − discount`: what checkout charges if nothing changes' }),
  })
  .openapi('Cart');

export const ApplyCodeBody = z
  .object({ code: z.string().trim().min(1).max(40).openapi({ example: 'AUDIO10' }) })
  .strict()
  .openapi('ApplyPromotionCode');

export const CartCodeParams = z.object({
  id: z.string().openapi({ param: { name: 'id', in: 'path' }, example: 'cart_5x2m…' }),
  code: z.string().openapi({ param: { name: 'code', in: 'path' }, example: 'AUDIO10' }),
});

export const CreateCartBody = z.object({}).strict().openapi('CreateCart', { description: 'Optional; the request region decides the cart region' });

export const AddItemBody = z
  .object({
    variantId: z.string().min(1).max(64).openapi({ example: 'var_bsx6cc41fd62wgpf' }),
    quantity: z.number().int().min(1).max(MAX_LINE_QUANTITY).openapi({ example: 1 }),
  })
  .strict()
  .openapi('AddCartItem');

export const UpdateItemBody = z
  .object({
    quantity: z.number().int().min(0).max(MAX_LINE_QUANTITY).openapi({ description: '0 removes the line', example: 2 }),
  })
  .strict()
  .openapi('UpdateCartItem');

export const CartIdParam = z.object({
  id: z.string().openapi({ param: { name: 'id', in: 'path' }, example: 'cart_5x2m…' }),
});

export const CartItemParams = z.object({
  id: z.string().openapi({ param: { name: 'id', in: 'path' }, example: 'cart_5x2m…' }),
  itemId: z.string().openapi({ param: { name: 'itemId', in: 'path' }, example: 'var_bsx6cc41fd62wgpf' }),
});
