import { defineConfig } from 'drizzle-kit';

/** drizzle-kit reads the schema and writes SQL migrations to db/migrations (committed). */
export default defineConfig({
  dialect: 'postgresql',
  schema: './db/schema.ts',
  out: './db/migrations',
  dbCredentials: { url: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/pasar' },
  strict: true,
});
