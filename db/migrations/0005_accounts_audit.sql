CREATE TABLE "admin_audit" (
	"id" text PRIMARY KEY NOT NULL,
	"token_id" text NOT NULL,
	"role" text NOT NULL,
	"method" text NOT NULL,
	"route" text NOT NULL,
	"path" text NOT NULL,
	"status" smallint NOT NULL,
	"request_id" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "admin_audit_method_valid" CHECK ("admin_audit"."method" in ('POST', 'PUT', 'PATCH', 'DELETE')),
	CONSTRAINT "admin_audit_role_valid" CHECK ("admin_audit"."role" in ('owner', 'catalog', 'fulfillment', 'readonly')),
	CONSTRAINT "admin_audit_status_range" CHECK ("admin_audit"."status" between 100 and 599)
);
--> statement-breakpoint
ALTER TABLE "api_tokens" ADD COLUMN "created_by" text DEFAULT 'cli' NOT NULL;--> statement-breakpoint
CREATE INDEX "admin_audit_created_idx" ON "admin_audit" USING btree ("created_at");--> statement-breakpoint
CREATE INDEX "admin_audit_token_idx" ON "admin_audit" USING btree ("token_id","created_at");--> statement-breakpoint
ALTER TABLE "api_tokens" ADD CONSTRAINT "api_tokens_name_not_blank" CHECK (length(btrim("api_tokens"."name")) between 1 and 100);--> statement-breakpoint
ALTER TABLE "api_tokens" ADD CONSTRAINT "api_tokens_hash_shape" CHECK ("api_tokens"."token_hash" ~ '^[0-9a-f]{64}$');--> statement-breakpoint
ALTER TABLE "users" ADD CONSTRAINT "users_name_not_blank" CHECK (length(btrim("users"."name")) > 0);--> statement-breakpoint
ALTER TABLE "users" ADD CONSTRAINT "users_password_hash_phc" CHECK ("users"."password_hash" like '$argon2id$%');--> statement-breakpoint
-- The audit trail is append-only: no application path may rewrite or erase it.
CREATE FUNCTION "admin_audit_append_only"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'admin_audit is append-only' USING ERRCODE = 'insufficient_privilege';
END;
$$;--> statement-breakpoint
CREATE TRIGGER "admin_audit_no_rewrite" BEFORE UPDATE OR DELETE ON "admin_audit"
  FOR EACH ROW EXECUTE FUNCTION "admin_audit_append_only"();
