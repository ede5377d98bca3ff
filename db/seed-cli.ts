/**
 * `npm run db:seed [-- --if-empty]`: loads the deterministic seed catalog into
 * DATABASE_URL (migrations must be applied first: `npm run db:migrate`).
 * `--if-empty` makes it a no-op on a database that already has regions, which
 * is what the local stack uses on every start.
 */
import { seedChecksum, buildSeed, seedDatabase } from './seed';

const url = process.env.DATABASE_URL;
if (!url) {
  console.error('DATABASE_URL is not set. Point it at the Postgres primary, e.g. postgres://postgres@127.0.0.1:5432/pasar');
  process.exit(2);
}
const ifEmpty = process.argv.includes('--if-empty');
const target = `${new URL(url).host}${new URL(url).pathname}`;

const started = performance.now();
try {
  const { inserted, counts } = await seedDatabase(url, { ifEmpty });
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  if (!inserted) {
    console.log(`${target} already has data (regions is not empty); nothing inserted`);
  } else {
    const summary = Object.entries(counts)
      .map(([table, n]) => `${table}=${n}`)
      .join(' ');
    console.log(`seeded ${target} in ${seconds}s: ${summary}`);
    console.log(`seed checksum ${seedChecksum(buildSeed())}`);
  }
} catch (err) {
  console.error(`seeding ${target} failed; nothing was inserted (one transaction).`);
  console.error(err instanceof Error ? err.message : err);
  if (!ifEmpty) console.error('If the database is already seeded, use --if-empty.');
  process.exit(1);
}
