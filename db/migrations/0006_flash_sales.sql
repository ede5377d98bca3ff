CREATE TABLE "sale_regions" (
	"sale_id" text NOT NULL,
	"region_code" text NOT NULL,
	CONSTRAINT "sale_regions_pkey" PRIMARY KEY("sale_id","region_code")
);
--> statement-breakpoint
CREATE TABLE "sale_variants" (
	"sale_id" text NOT NULL,
	"variant_id" text NOT NULL,
	CONSTRAINT "sale_variants_pkey" PRIMARY KEY("sale_id","variant_id")
);
--> statement-breakpoint
CREATE TABLE "sales" (
	"id" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"starts_at" timestamp with time zone NOT NULL,
	"ends_at" timestamp with time zone,
	"ended_at" timestamp with time zone,
	"per_shopper_cap" smallint NOT NULL,
	"admission_rate" integer NOT NULL,
	"queue_shards" smallint DEFAULT 1 NOT NULL,
	"admission_ttl_seconds" integer DEFAULT 600 NOT NULL,
	"turnstile" boolean DEFAULT true NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "sales_name_length" CHECK (char_length("sales"."name") between 1 and 200),
	CONSTRAINT "sales_cap_range" CHECK ("sales"."per_shopper_cap" between 1 and 99),
	CONSTRAINT "sales_rate_range" CHECK ("sales"."admission_rate" between 1 and 100000),
	CONSTRAINT "sales_queue_shards_range" CHECK ("sales"."queue_shards" between 1 and 16),
	CONSTRAINT "sales_admission_ttl_range" CHECK ("sales"."admission_ttl_seconds" between 60 and 7200),
	CONSTRAINT "sales_ends_after_start" CHECK ("sales"."ends_at" is null or "sales"."ends_at" > "sales"."starts_at")
);
--> statement-breakpoint
ALTER TABLE "sale_regions" ADD CONSTRAINT "sale_regions_sale_id_sales_id_fk" FOREIGN KEY ("sale_id") REFERENCES "public"."sales"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "sale_regions" ADD CONSTRAINT "sale_regions_region_code_regions_code_fk" FOREIGN KEY ("region_code") REFERENCES "public"."regions"("code") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "sale_variants" ADD CONSTRAINT "sale_variants_sale_id_sales_id_fk" FOREIGN KEY ("sale_id") REFERENCES "public"."sales"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "sale_variants" ADD CONSTRAINT "sale_variants_variant_id_variants_id_fk" FOREIGN KEY ("variant_id") REFERENCES "public"."variants"("id") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "sale_variants_variant_idx" ON "sale_variants" USING btree ("variant_id");--> statement-breakpoint
CREATE INDEX "sales_starts_idx" ON "sales" USING btree ("starts_at");