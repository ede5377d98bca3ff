-- Typo-tolerant search uses pg_trgm where the database has it (Neon, Debian's
-- Postgres with contrib, PGlite with its pg_trgm extension loaded). Where it
-- is missing, this migration still succeeds and search falls back to
-- full-text matching only (workers/catalog/search.ts checks pg_extension).
DO $$
BEGIN
  CREATE EXTENSION IF NOT EXISTS pg_trgm;
EXCEPTION WHEN OTHERS THEN
  RAISE NOTICE 'pg_trgm is not available (%); search runs without typo tolerance', SQLERRM;
END
$$;
--> statement-breakpoint
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
    CREATE INDEX IF NOT EXISTS products_title_trgm_idx ON products USING gin (title gin_trgm_ops);
  END IF;
END
$$;
