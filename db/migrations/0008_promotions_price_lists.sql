CREATE TABLE "order_discounts" (
	"id" text PRIMARY KEY NOT NULL,
	"order_id" text NOT NULL,
	"promotion_id" text,
	"code" text,
	"title" text NOT NULL,
	"kind" text NOT NULL,
	"amount" bigint NOT NULL,
	CONSTRAINT "order_discounts_order_promotion_key" UNIQUE("order_id","promotion_id"),
	CONSTRAINT "order_discounts_amount_positive" CHECK ("order_discounts"."amount" > 0)
);
--> statement-breakpoint
CREATE TABLE "price_list_prices" (
	"price_list_id" text NOT NULL,
	"variant_id" text NOT NULL,
	"amount" bigint NOT NULL,
	CONSTRAINT "price_list_prices_pkey" PRIMARY KEY("price_list_id","variant_id"),
	CONSTRAINT "price_list_prices_amount_non_negative" CHECK ("price_list_prices"."amount" >= 0)
);
--> statement-breakpoint
CREATE TABLE "price_lists" (
	"id" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"region_code" text NOT NULL,
	"currency" text NOT NULL,
	"starts_at" timestamp with time zone NOT NULL,
	"ends_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "price_lists_name_length" CHECK (char_length("price_lists"."name") between 1 and 200),
	CONSTRAINT "price_lists_ends_after_start" CHECK ("price_lists"."ends_at" is null or "price_lists"."ends_at" > "price_lists"."starts_at")
);
--> statement-breakpoint
CREATE TABLE "promotion_categories" (
	"promotion_id" text NOT NULL,
	"category_id" text NOT NULL,
	CONSTRAINT "promotion_categories_pkey" PRIMARY KEY("promotion_id","category_id")
);
--> statement-breakpoint
CREATE TABLE "promotion_redemptions" (
	"id" text PRIMARY KEY NOT NULL,
	"promotion_id" text NOT NULL,
	"checkout_id" text NOT NULL,
	"order_id" text,
	"email" text NOT NULL,
	"user_id" text,
	"status" text DEFAULT 'held' NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "promotion_redemptions_promotion_checkout_key" UNIQUE("promotion_id","checkout_id"),
	CONSTRAINT "promotion_redemptions_status_valid" CHECK ("promotion_redemptions"."status" in ('held', 'redeemed', 'released')),
	CONSTRAINT "promotion_redemptions_redeemed_has_order" CHECK ("promotion_redemptions"."status" <> 'redeemed' or "promotion_redemptions"."order_id" is not null)
);
--> statement-breakpoint
CREATE TABLE "promotion_variants" (
	"promotion_id" text NOT NULL,
	"variant_id" text NOT NULL,
	CONSTRAINT "promotion_variants_pkey" PRIMARY KEY("promotion_id","variant_id")
);
--> statement-breakpoint
CREATE TABLE "promotions" (
	"id" text PRIMARY KEY NOT NULL,
	"title" text NOT NULL,
	"code" text,
	"kind" text NOT NULL,
	"percent_bps" integer,
	"amount" bigint,
	"region_code" text,
	"currency" text,
	"min_subtotal_amount" bigint,
	"applies_to" text DEFAULT 'cart' NOT NULL,
	"buy_quantity" smallint,
	"get_quantity" smallint,
	"starts_at" timestamp with time zone NOT NULL,
	"ends_at" timestamp with time zone,
	"usage_limit" integer,
	"usage_limit_per_customer" integer,
	"active" boolean DEFAULT true NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "promotions_code_unique" UNIQUE("code"),
	CONSTRAINT "promotions_kind_valid" CHECK ("promotions"."kind" in ('percentage', 'fixed', 'free_shipping', 'buy_x_get_y')),
	CONSTRAINT "promotions_applies_to_valid" CHECK ("promotions"."applies_to" in ('cart', 'categories', 'variants')),
	CONSTRAINT "promotions_title_length" CHECK (char_length("promotions"."title") between 1 and 200),
	CONSTRAINT "promotions_code_format" CHECK ("promotions"."code" is null or "promotions"."code" ~ '^[A-Z0-9][A-Z0-9_-]{2,39}$'),
	CONSTRAINT "promotions_region_with_currency" CHECK (("promotions"."region_code" is null) = ("promotions"."currency" is null)),
	CONSTRAINT "promotions_percentage_shape" CHECK ("promotions"."kind" <> 'percentage' or ("promotions"."percent_bps" between 1 and 10000 and "promotions"."amount" is null)),
	CONSTRAINT "promotions_fixed_shape" CHECK ("promotions"."kind" <> 'fixed' or ("promotions"."amount" > 0 and "promotions"."currency" is not null and "promotions"."percent_bps" is null)),
	CONSTRAINT "promotions_free_shipping_shape" CHECK ("promotions"."kind" <> 'free_shipping' or ("promotions"."amount" is null and "promotions"."percent_bps" is null and "promotions"."applies_to" = 'cart')),
	CONSTRAINT "promotions_buy_x_get_y_shape" CHECK (("promotions"."kind" = 'buy_x_get_y') = ("promotions"."buy_quantity" is not null and "promotions"."get_quantity" is not null) and ("promotions"."kind" <> 'buy_x_get_y' or ("promotions"."buy_quantity" between 1 and 99 and "promotions"."get_quantity" between 1 and 99 and "promotions"."percent_bps" between 1 and 10000 and "promotions"."applies_to" <> 'cart'))),
	CONSTRAINT "promotions_min_subtotal_needs_currency" CHECK ("promotions"."min_subtotal_amount" is null or ("promotions"."min_subtotal_amount" > 0 and "promotions"."currency" is not null)),
	CONSTRAINT "promotions_ends_after_start" CHECK ("promotions"."ends_at" is null or "promotions"."ends_at" > "promotions"."starts_at"),
	CONSTRAINT "promotions_usage_limit_positive" CHECK ("promotions"."usage_limit" is null or "promotions"."usage_limit" > 0),
	CONSTRAINT "promotions_usage_limit_per_customer_positive" CHECK ("promotions"."usage_limit_per_customer" is null or "promotions"."usage_limit_per_customer" > 0)
);
--> statement-breakpoint
CREATE TABLE "shipping_rates" (
	"region_code" text PRIMARY KEY NOT NULL,
	"currency" text NOT NULL,
	"amount" bigint NOT NULL,
	"free_over_amount" bigint,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "shipping_rates_amount_non_negative" CHECK ("shipping_rates"."amount" >= 0),
	CONSTRAINT "shipping_rates_free_over_positive" CHECK ("shipping_rates"."free_over_amount" is null or "shipping_rates"."free_over_amount" > 0)
);
--> statement-breakpoint
ALTER TABLE "orders" DROP CONSTRAINT "orders_discount_within_subtotal";--> statement-breakpoint
ALTER TABLE "order_lines" ADD COLUMN "discount_amount" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "order_discounts" ADD CONSTRAINT "order_discounts_order_id_orders_id_fk" FOREIGN KEY ("order_id") REFERENCES "public"."orders"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "order_discounts" ADD CONSTRAINT "order_discounts_promotion_id_promotions_id_fk" FOREIGN KEY ("promotion_id") REFERENCES "public"."promotions"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "price_list_prices" ADD CONSTRAINT "price_list_prices_price_list_id_price_lists_id_fk" FOREIGN KEY ("price_list_id") REFERENCES "public"."price_lists"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "price_list_prices" ADD CONSTRAINT "price_list_prices_variant_id_variants_id_fk" FOREIGN KEY ("variant_id") REFERENCES "public"."variants"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "price_lists" ADD CONSTRAINT "price_lists_region_currency_fk" FOREIGN KEY ("region_code","currency") REFERENCES "public"."regions"("code","currency") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "promotion_categories" ADD CONSTRAINT "promotion_categories_promotion_id_promotions_id_fk" FOREIGN KEY ("promotion_id") REFERENCES "public"."promotions"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "promotion_categories" ADD CONSTRAINT "promotion_categories_category_id_categories_id_fk" FOREIGN KEY ("category_id") REFERENCES "public"."categories"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "promotion_redemptions" ADD CONSTRAINT "promotion_redemptions_promotion_id_promotions_id_fk" FOREIGN KEY ("promotion_id") REFERENCES "public"."promotions"("id") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "promotion_redemptions" ADD CONSTRAINT "promotion_redemptions_order_id_orders_id_fk" FOREIGN KEY ("order_id") REFERENCES "public"."orders"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "promotion_variants" ADD CONSTRAINT "promotion_variants_promotion_id_promotions_id_fk" FOREIGN KEY ("promotion_id") REFERENCES "public"."promotions"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "promotion_variants" ADD CONSTRAINT "promotion_variants_variant_id_variants_id_fk" FOREIGN KEY ("variant_id") REFERENCES "public"."variants"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "promotions" ADD CONSTRAINT "promotions_region_currency_fk" FOREIGN KEY ("region_code","currency") REFERENCES "public"."regions"("code","currency") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "shipping_rates" ADD CONSTRAINT "shipping_rates_region_currency_fk" FOREIGN KEY ("region_code","currency") REFERENCES "public"."regions"("code","currency") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "price_list_prices_variant_idx" ON "price_list_prices" USING btree ("variant_id");--> statement-breakpoint
CREATE INDEX "price_lists_region_idx" ON "price_lists" USING btree ("region_code","starts_at");--> statement-breakpoint
CREATE INDEX "promotion_redemptions_promotion_idx" ON "promotion_redemptions" USING btree ("promotion_id","status");--> statement-breakpoint
CREATE INDEX "promotion_redemptions_email_idx" ON "promotion_redemptions" USING btree ("promotion_id","email");--> statement-breakpoint
CREATE INDEX "promotion_redemptions_user_idx" ON "promotion_redemptions" USING btree ("promotion_id","user_id");--> statement-breakpoint
CREATE INDEX "promotions_automatic_idx" ON "promotions" USING btree ("starts_at") WHERE "promotions"."code" is null and "promotions"."active";--> statement-breakpoint
ALTER TABLE "order_lines" ADD CONSTRAINT "order_lines_discount_within_line" CHECK ("order_lines"."discount_amount" >= 0 and "order_lines"."discount_amount" <= "order_lines"."line_amount");--> statement-breakpoint
ALTER TABLE "orders" ADD CONSTRAINT "orders_discount_within_charges" CHECK ("orders"."discount_amount" <= "orders"."subtotal_amount" + "orders"."shipping_amount");--> statement-breakpoint
ALTER TABLE "orders" ADD CONSTRAINT "orders_total_adds_up" CHECK ("orders"."total_amount" = "orders"."subtotal_amount" + "orders"."shipping_amount" - "orders"."discount_amount");