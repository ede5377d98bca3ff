ALTER TABLE "stock" ADD COLUMN "shards" smallint DEFAULT 1 NOT NULL;--> statement-breakpoint
ALTER TABLE "stock" ADD COLUMN "borrow_from" text[] DEFAULT '{}'::text[] NOT NULL;--> statement-breakpoint
ALTER TABLE "stock" ADD CONSTRAINT "stock_shards_range" CHECK ("stock"."shards" between 1 and 16);--> statement-breakpoint
ALTER TABLE "stock" ADD CONSTRAINT "stock_not_borrowing_from_itself" CHECK (not ("stock"."region_code" = any("stock"."borrow_from")));