/**
 * `GET /api/orders/:orderId`: an order, for the account that placed it (its
 * session), or for whoever presents its access token (handed out by the
 * confirmed checkout) as `?token=` or `x-order-token`.
 * Everyone else gets the same 404 as for an order that does not exist, so the
 * answer says nothing about which order ids are real. Read from the primary:
 * an order just placed is visible to its buyer at once.
 */
import { createRoute, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { asc, eq } from 'drizzle-orm';
import { orderDiscounts, orderLines, orders } from '../../db/schema';
import { notFound } from '../lib/errors';
import { MoneySchema } from '../lib/money';
import { createRouter, errorResponse } from '../lib/router';
import { sha256Hex } from '../lib/hash';
import type { AppEnv } from '../types';

/** An order line as the buyer and the admin API show it. */
export const OrderLineSchema = z.object({
  variantId: z.string(),
  sku: z.string(),
  title: z.string(),
  quantity: z.number().int(),
  unitPrice: MoneySchema,
  lineTotal: MoneySchema,
  discount: MoneySchema.openapi({ description: "This line's share of the order's item and order discounts" }),
});

/** An `order_lines` row in the order's currency, as {@link OrderLineSchema}. */
export function orderLineView(l: typeof orderLines.$inferSelect, currency: string): z.infer<typeof OrderLineSchema> {
  const money = (amount: number) => ({ amount, currency });
  return {
    variantId: l.variantId,
    sku: l.sku,
    title: l.title,
    quantity: l.quantity,
    unitPrice: money(l.unitAmount),
    lineTotal: money(l.lineAmount),
    discount: money(l.discountAmount),
  };
}

const OrderSchema = z
  .object({
    id: z.string(),
    number: z.string(),
    status: z.enum(['confirmed', 'cancelled', 'fulfilled']),
    region: z.string(),
    email: z.string(),
    lines: z.array(OrderLineSchema),
    subtotal: MoneySchema,
    shipping: MoneySchema,
    discounts: z
      .array(z.object({ code: z.string().nullable(), title: z.string(), kind: z.string(), amount: MoneySchema }))
      .openapi({ description: 'Each promotion the order received' }),
    discount: MoneySchema.openapi({ description: 'All discounts: total = subtotal + shipping − discount' }),
    tax: MoneySchema.openapi({ description: 'Tax included in the total' }),
    total: MoneySchema,
    shippingAddress: z.record(z.string(), z.string()),
    createdAt: z.string(),
  })
  .openapi('Order');

/** An order as its buyer sees it (the JSON of `GET /api/orders/:orderId`). */
export type OrderView = z.infer<typeof OrderSchema>;

/**
 * Order `orderId` for whoever may read it: the holder of its access token
 * (`token`), else the account that placed it (the session); null for
 * everyone else, as for an order that does not exist. Shared by the API and
 * the order confirmation page.
 */
export async function readOrder(c: Context<AppEnv>, orderId: string, token: string | undefined): Promise<OrderView | null> {
  const session = token ? null : await c.var.shopper.session();
  if ((!token && !session) || !/^ord_[0-9a-z]{26}$/.test(orderId)) return null;
  // A replica serves it (read-your-writes: once it has the buyer's order);
  // a replica that has not replayed a brand-new order yet is not a 404.
  const { row: order, db } = await c.var.services.db.lookup(async (d) => (await d.select().from(orders).where(eq(orders.id, orderId)))[0]);
  if (!order) return null;
  if (token) {
    const presented = new TextEncoder().encode(await sha256Hex(token));
    const expected = new TextEncoder().encode(order.accessTokenHash);
    if (presented.length !== expected.length || !crypto.subtle.timingSafeEqual(presented, expected)) return null;
  } else if (order.userId === null || order.userId !== session!.userId) {
    return null;
  }
  const lines = await db.select().from(orderLines).where(eq(orderLines.orderId, orderId)).orderBy(asc(orderLines.sku));
  const discounts = order.discountAmount > 0 ? await db.select().from(orderDiscounts).where(eq(orderDiscounts.orderId, orderId)).orderBy(asc(orderDiscounts.title)) : [];
  const money = (amount: number) => ({ amount, currency: order.currency });
  return {
    id: order.id,
    number: order.number,
    status: order.status,
    region: order.regionCode,
    email: order.email,
    lines: lines.map((l) => orderLineView(l, order.currency)),
    subtotal: money(order.subtotalAmount),
    shipping: money(order.shippingAmount),
    discounts: discounts.map((d) => ({ code: d.code, title: d.title, kind: d.kind, amount: money(d.amount) })),
    discount: money(order.discountAmount),
    tax: money(order.taxAmount),
    total: money(order.totalAmount),
    shippingAddress: order.shippingAddress as unknown as Record<string, string>,
    createdAt: order.createdAt.toISOString(),
  };
}

export const orderRoutes = createRouter().openapi(
  createRoute({
    method: 'get',
    path: '/orders/{orderId}',
    tags: ['Storefront'],
    summary: "An order, for its buyer: the account's session, or the access token from the confirmed checkout",
    request: {
      params: z.object({ orderId: z.string().max(64) }),
      query: z.object({ token: z.string().max(200).optional(), region: z.string().optional() }),
    },
    responses: {
      200: { description: 'The order', content: { 'application/json': { schema: OrderSchema } } },
      404: errorResponse('No such order, or not yours'),
    },
  }),
  async (c) => {
    const { orderId } = c.req.valid('param');
    const token = c.req.valid('query').token ?? c.req.header('x-order-token');
    const order = await readOrder(c, orderId, token);
    if (!order) throw notFound('No such order.');
    c.header('cache-control', 'private, no-store');
    return c.json(order, 200);
  },
);
