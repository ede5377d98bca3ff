/**
 * The origin's schema: what Postgres (Neon in production, local Postgres or
 * PGlite in development) stores. Columns are snake_case, keys camelCase.
 *
 * The constraints here are the last line of defence: the application checks
 * the same things, but a bug, a retried saga step or a hand-written SQL fix
 * must not be able to produce a negative price, an order line whose total
 * disagrees with its unit price, two orders for one checkout, or a price in
 * the wrong currency for its region.
 *
 * Money is always an integer number of minor units of the stated currency
 * (`*_amount` columns, `bigint` so IDR/VND totals cannot overflow), time is
 * `timestamptz` in UTC, and ids are random text (see workers/lib/ids.ts),
 * never sequences, so they leak nothing about volume and can be minted at the
 * edge before the origin is reached.
 */
import { sql } from 'drizzle-orm';
import {
  bigint,
  boolean,
  check,
  foreignKey,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  smallint,
  text,
  timestamp,
  unique,
  uniqueIndex,
} from 'drizzle-orm/pg-core';

const createdAt = () => timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow();
const updatedAt = () => timestamp('updated_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow();
/** Integer minor units; `number` mode is safe up to 2^53, far above any real order. */
const amount = (name: string) => bigint(name, { mode: 'number' });

/** The selling regions: each fixes currency, tax and locale. */
export const regions = pgTable(
  'regions',
  {
    code: text('code').primaryKey(),
    name: text('name').notNull(),
    countryCode: text('country_code').notNull(),
    currency: text('currency').notNull(),
    /** Digits after the decimal point shown for this currency (IDR/VND: 0). */
    currencyExponent: smallint('currency_exponent').notNull(),
    locale: text('locale').notNull(),
    timeZone: text('time_zone').notNull(),
    /** Consumption tax in basis points (900 = 9 %). */
    taxRateBps: integer('tax_rate_bps').notNull(),
    /** Whether shelf prices already include the tax (true across APAC retail). */
    taxInclusive: boolean('tax_inclusive').notNull().default(true),
    /** Cloudflare Durable Object location hint for this region's objects. */
    locationHint: text('location_hint').notNull(),
    createdAt: createdAt(),
  },
  (t) => [
    unique('regions_code_currency_key').on(t.code, t.currency),
    check('regions_code_format', sql`${t.code} ~ '^[a-z]{2}$'`),
    check('regions_currency_format', sql`${t.currency} ~ '^[A-Z]{3}$'`),
    check('regions_currency_exponent_range', sql`${t.currencyExponent} between 0 and 3`),
    check('regions_tax_rate_range', sql`${t.taxRateBps} between 0 and 10000`),
  ],
);

export const categories = pgTable(
  'categories',
  {
    id: text('id').primaryKey(),
    slug: text('slug').notNull().unique(),
    name: text('name').notNull(),
    description: text('description').notNull().default(''),
    parentId: text('parent_id'),
    position: integer('position').notNull().default(0),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    foreignKey({ columns: [t.parentId], foreignColumns: [t.id], name: 'categories_parent_fk' }).onDelete('restrict'),
    check('categories_slug_format', sql`${t.slug} ~ '^[a-z0-9]+(-[a-z0-9]+)*$'`),
    check('categories_not_own_parent', sql`${t.parentId} is null or ${t.parentId} <> ${t.id}`),
  ],
);

export const productStatus = ['draft', 'active', 'archived'] as const;
export type ProductStatus = (typeof productStatus)[number];

export const products = pgTable(
  'products',
  {
    id: text('id').primaryKey(),
    slug: text('slug').notNull().unique(),
    title: text('title').notNull(),
    description: text('description').notNull().default(''),
    brand: text('brand'),
    categoryId: text('category_id')
      .notNull()
      .references(() => categories.id, { onDelete: 'restrict' }),
    status: text('status', { enum: productStatus }).notNull().default('active'),
    /** Bumped on every change; the catalog caches key their documents by it. */
    version: integer('version').notNull().default(1),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    index('products_category_idx').on(t.categoryId, t.status, t.id),
    check('products_slug_format', sql`${t.slug} ~ '^[a-z0-9]+(-[a-z0-9]+)*$'`),
    check('products_status_valid', sql`${t.status} in ('draft', 'active', 'archived')`),
    check('products_title_not_blank', sql`length(btrim(${t.title})) > 0`),
    check('products_version_positive', sql`${t.version} > 0`),
  ],
);

export const variants = pgTable(
  'variants',
  {
    id: text('id').primaryKey(),
    productId: text('product_id')
      .notNull()
      .references(() => products.id, { onDelete: 'cascade' }),
    sku: text('sku').notNull().unique(),
    title: text('title').notNull(),
    /** Option values that tell this variant apart, e.g. `{ "size": "M", "colour": "Teal" }`. */
    options: jsonb('options').$type<Record<string, string>>().notNull().default({}),
    position: integer('position').notNull().default(0),
    status: text('status', { enum: productStatus }).notNull().default('active'),
    weightGrams: integer('weight_grams'),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    index('variants_product_idx').on(t.productId, t.position),
    check('variants_sku_format', sql`${t.sku} ~ '^[A-Z0-9][A-Z0-9._-]{0,63}$'`),
    check('variants_status_valid', sql`${t.status} in ('draft', 'active', 'archived')`),
    check('variants_weight_positive', sql`${t.weightGrams} is null or ${t.weightGrams} > 0`),
  ],
);

/**
 * The shelf price of a variant in a region. A product is sold in a region
 * exactly when its variants have prices there. The composite foreign key on
 * (region, currency) makes a price in the wrong currency impossible.
 */
export const prices = pgTable(
  'prices',
  {
    variantId: text('variant_id')
      .notNull()
      .references(() => variants.id, { onDelete: 'cascade' }),
    regionCode: text('region_code').notNull(),
    currency: text('currency').notNull(),
    amount: amount('amount').notNull(),
    /** The "was" price shown struck through; must be above the price when set. */
    compareAtAmount: amount('compare_at_amount'),
    updatedAt: updatedAt(),
  },
  (t) => [
    primaryKey({ columns: [t.variantId, t.regionCode], name: 'prices_pkey' }),
    foreignKey({
      columns: [t.regionCode, t.currency],
      foreignColumns: [regions.code, regions.currency],
      name: 'prices_region_currency_fk',
    }).onDelete('restrict'),
    index('prices_region_idx').on(t.regionCode, t.variantId),
    check('prices_amount_non_negative', sql`${t.amount} >= 0`),
    check('prices_compare_at_above_amount', sql`${t.compareAtAmount} is null or ${t.compareAtAmount} > ${t.amount}`),
  ],
);

/** Product images; the bytes live in R2 (`MEDIA`) under `key`. */
export const media = pgTable(
  'media',
  {
    id: text('id').primaryKey(),
    productId: text('product_id').references(() => products.id, { onDelete: 'set null' }),
    key: text('key').notNull().unique(),
    contentType: text('content_type').notNull(),
    bytes: integer('bytes').notNull(),
    width: integer('width'),
    height: integer('height'),
    alt: text('alt').notNull().default(''),
    position: integer('position').notNull().default(0),
    createdAt: createdAt(),
  },
  (t) => [
    index('media_product_idx').on(t.productId, t.position),
    check('media_content_type_image', sql`${t.contentType} like 'image/%'`),
    check('media_bytes_positive', sql`${t.bytes} > 0`),
    check('media_dimensions_positive', sql`(${t.width} is null or ${t.width} > 0) and (${t.height} is null or ${t.height} > 0)`),
  ],
);

/**
 * Stock *received* per variant per region: every unit ever made sellable
 * there. The live split into available / held / sold lives in the region's
 * InventoryShard objects; this row is the merchant's source of truth.
 */
export const stock = pgTable(
  'stock',
  {
    variantId: text('variant_id')
      .notNull()
      .references(() => variants.id, { onDelete: 'cascade' }),
    regionCode: text('region_code')
      .notNull()
      .references(() => regions.code, { onDelete: 'restrict' }),
    received: integer('received').notNull().default(0),
    updatedAt: updatedAt(),
  },
  (t) => [
    primaryKey({ columns: [t.variantId, t.regionCode], name: 'stock_pkey' }),
    check('stock_received_non_negative', sql`${t.received} >= 0`),
  ],
);

export const users = pgTable(
  'users',
  {
    id: text('id').primaryKey(),
    /** Normalised (trimmed, lower-cased) so one mailbox is one account. */
    email: text('email').notNull().unique(),
    name: text('name').notNull(),
    passwordHash: text('password_hash').notNull(),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    check('users_email_normalised', sql`${t.email} = lower(btrim(${t.email}))`),
    check('users_email_shape', sql`${t.email} like '%_@_%'`),
  ],
);

export const apiTokenRoles = ['owner', 'catalog', 'fulfillment', 'readonly'] as const;
export type ApiTokenRole = (typeof apiTokenRoles)[number];

/** Admin API tokens. Only a hash is stored; the token is shown once. */
export const apiTokens = pgTable(
  'api_tokens',
  {
    id: text('id').primaryKey(),
    name: text('name').notNull(),
    tokenHash: text('token_hash').notNull().unique(),
    role: text('role', { enum: apiTokenRoles }).notNull(),
    createdAt: createdAt(),
    lastUsedAt: timestamp('last_used_at', { withTimezone: true, mode: 'date' }),
    revokedAt: timestamp('revoked_at', { withTimezone: true, mode: 'date' }),
  },
  (t) => [check('api_tokens_role_valid', sql`${t.role} in ('owner', 'catalog', 'fulfillment', 'readonly')`)],
);

export const orderStatus = ['confirmed', 'cancelled', 'fulfilled'] as const;
export type OrderStatus = (typeof orderStatus)[number];

/**
 * An accepted order. `checkout_id` is unique: the checkout saga may retry the
 * write any number of times and still produce exactly one order.
 */
export const orders = pgTable(
  'orders',
  {
    id: text('id').primaryKey(),
    /** Human-facing order number (region prefix + random digits), unique. */
    number: text('number').notNull().unique(),
    checkoutId: text('checkout_id').notNull().unique(),
    userId: text('user_id').references(() => users.id, { onDelete: 'set null' }),
    email: text('email').notNull(),
    regionCode: text('region_code').notNull(),
    currency: text('currency').notNull(),
    status: text('status', { enum: orderStatus }).notNull().default('confirmed'),
    subtotalAmount: amount('subtotal_amount').notNull(),
    shippingAmount: amount('shipping_amount').notNull().default(0),
    discountAmount: amount('discount_amount').notNull().default(0),
    /** Tax contained in (tax-inclusive regions) or added to the total. */
    taxAmount: amount('tax_amount').notNull().default(0),
    totalAmount: amount('total_amount').notNull(),
    shippingAddress: jsonb('shipping_address')
      .$type<{ name: string; line1: string; line2?: string; city: string; postalCode: string; country: string }>()
      .notNull(),
    /** SHA-256 of the order access token handed to a guest buyer. */
    accessTokenHash: text('access_token_hash').notNull(),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    foreignKey({
      columns: [t.regionCode, t.currency],
      foreignColumns: [regions.code, regions.currency],
      name: 'orders_region_currency_fk',
    }).onDelete('restrict'),
    index('orders_user_idx').on(t.userId, t.createdAt),
    index('orders_status_region_idx').on(t.status, t.regionCode, t.createdAt),
    check('orders_status_valid', sql`${t.status} in ('confirmed', 'cancelled', 'fulfilled')`),
    check(
      'orders_amounts_non_negative',
      sql`${t.subtotalAmount} >= 0 and ${t.shippingAmount} >= 0 and ${t.discountAmount} >= 0 and ${t.taxAmount} >= 0 and ${t.totalAmount} >= 0`,
    ),
    check('orders_discount_within_subtotal', sql`${t.discountAmount} <= ${t.subtotalAmount}`),
  ],
);

export const orderLines = pgTable(
  'order_lines',
  {
    id: text('id').primaryKey(),
    orderId: text('order_id')
      .notNull()
      .references(() => orders.id, { onDelete: 'cascade' }),
    variantId: text('variant_id')
      .notNull()
      .references(() => variants.id, { onDelete: 'restrict' }),
    /** SKU and title as sold: later catalog edits must not rewrite history. */
    sku: text('sku').notNull(),
    title: text('title').notNull(),
    quantity: integer('quantity').notNull(),
    unitAmount: amount('unit_amount').notNull(),
    lineAmount: amount('line_amount').notNull(),
  },
  (t) => [
    unique('order_lines_order_variant_key').on(t.orderId, t.variantId),
    check('order_lines_quantity_range', sql`${t.quantity} between 1 and 99`),
    check('order_lines_unit_non_negative', sql`${t.unitAmount} >= 0`),
    check('order_lines_total_matches', sql`${t.lineAmount} = ${t.unitAmount} * ${t.quantity}`),
  ],
);

export const paymentStatus = ['authorized', 'captured', 'voided', 'refunded', 'failed'] as const;
export type PaymentStatus = (typeof paymentStatus)[number];

/**
 * One payment per checkout attempt at a provider. The provider's idempotency
 * key is the checkout id, and (provider, checkout) is unique, so a retried
 * authorisation cannot create a second charge record.
 */
export const payments = pgTable(
  'payments',
  {
    id: text('id').primaryKey(),
    orderId: text('order_id').references(() => orders.id, { onDelete: 'restrict' }),
    checkoutId: text('checkout_id').notNull(),
    provider: text('provider').notNull(),
    providerRef: text('provider_ref'),
    status: text('status', { enum: paymentStatus }).notNull(),
    amount: amount('amount').notNull(),
    currency: text('currency').notNull(),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    unique('payments_provider_checkout_key').on(t.provider, t.checkoutId),
    uniqueIndex('payments_provider_ref_key').on(t.provider, t.providerRef),
    index('payments_order_idx').on(t.orderId),
    check('payments_status_valid', sql`${t.status} in ('authorized', 'captured', 'voided', 'refunded', 'failed')`),
    check('payments_amount_non_negative', sql`${t.amount} >= 0`),
    check('payments_currency_format', sql`${t.currency} ~ '^[A-Z]{3}$'`),
  ],
);

/**
 * The order's history (created, paid, cancelled, fulfilled, ...), also the
 * outbox that the queue consumer and merchant webhooks read from.
 */
export const orderEvents = pgTable(
  'order_events',
  {
    id: text('id').primaryKey(),
    orderId: text('order_id')
      .notNull()
      .references(() => orders.id, { onDelete: 'cascade' }),
    type: text('type').notNull(),
    payload: jsonb('payload').$type<Record<string, unknown>>().notNull().default({}),
    createdAt: createdAt(),
  },
  (t) => [
    index('order_events_order_idx').on(t.orderId, t.createdAt),
    check('order_events_type_format', sql`${t.type} ~ '^[a-z]+\\.[a-z_]+$'`),
  ],
);
