/**
 * Applies the committed drizzle-kit migrations (db/migrations) to a Postgres
 * reached over TCP: the real server, Neon's primary, or PGlite behind
 * pglite-socket. Safe to re-run: drizzle records applied migrations in
 * `drizzle.__drizzle_migrations` and skips them.
 */
import { fileURLToPath } from 'node:url';
import { drizzle } from 'drizzle-orm/node-postgres';
import { migrate } from 'drizzle-orm/node-postgres/migrator';
import pg from 'pg';

/** Where the committed SQL migrations live. */
export const migrationsFolder = fileURLToPath(new URL('./migrations', import.meta.url));

/** Runs every pending migration against `databaseUrl`, in order, each in a transaction. */
export async function runMigrations(databaseUrl: string): Promise<void> {
  // One connection: PGlite serves one session at a time, and migrations are
  // sequential anyway.
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await migrate(drizzle(client), { migrationsFolder });
  } finally {
    await client.end();
  }
}
