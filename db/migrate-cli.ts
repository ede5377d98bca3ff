/** `npm run db:migrate`: applies pending migrations to DATABASE_URL. */
import { runMigrations } from './migrate';

const url = process.env.DATABASE_URL;
if (!url) {
  console.error('DATABASE_URL is not set. Point it at the Postgres primary, e.g. postgres://postgres@127.0.0.1:5432/pasar');
  process.exit(2);
}
await runMigrations(url);
console.log(`migrations applied to ${new URL(url).host}${new URL(url).pathname}`);
