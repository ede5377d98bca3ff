import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDatabaseOn, dropDatabaseOn, startPglite, type LocalPostgres } from '../dev/postgres';
import { migrationsFolder, runMigrations } from './migrate';

const adminUrl = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const journal = JSON.parse(readFileSync(join(migrationsFolder, 'meta', '_journal.json'), 'utf8')) as { entries: { tag: string }[] };

async function query<T extends pg.QueryResultRow>(url: string, text: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(text)).rows;
  } finally {
    await client.end();
  }
}

const expectedTables = [
  'admin_audit', 'api_tokens', 'categories', 'media', 'order_discounts', 'order_events', 'order_lines', 'orders',
  'payments', 'price_list_prices', 'price_lists', 'prices', 'products', 'promotion_categories', 'promotion_redemptions', 'promotion_variants', 'promotions',
  'regions', 'sale_regions', 'sale_variants', 'sales', 'shipping_rates', 'stock', 'users', 'variants', 'webhook_attempts', 'webhook_deliveries', 'webhook_events', 'webhook_subscriptions',
];

/** Runs the same assertions against any Postgres. */
function describeMigrations(name: string, open: () => Promise<{ url: string; close(): Promise<void> }>) {
  describe(`migrations on ${name}`, () => {
    let db: { url: string; close(): Promise<void> };
    beforeAll(async () => {
      db = await open();
    });
    afterAll(async () => {
      await db?.close();
    });

    it('apply cleanly to an empty database', async () => {
      await runMigrations(db.url);
      const tables = await query<{ table_name: string }>(
        db.url,
        `select table_name from information_schema.tables where table_schema = 'public' order by 1`,
      );
      expect(tables.map((t) => t.table_name)).toEqual(expectedTables);
      const applied = await query<{ n: number }>(db.url, 'select count(*)::int as n from drizzle.__drizzle_migrations');
      expect(applied[0]!.n).toBe(journal.entries.length);
    });

    it('give search its full-text index and, with pg_trgm, its typo-tolerance index', async () => {
      const indexes = await query<{ indexname: string }>(db.url, `select indexname from pg_indexes where tablename = 'products'`);
      const names = indexes.map((i) => i.indexname);
      expect(names).toContain('products_search_idx');
      expect(names).toContain('products_title_trgm_idx');
    });

    it('are a no-op when run again', async () => {
      await runMigrations(db.url);
      const applied = await query<{ n: number }>(db.url, 'select count(*)::int as n from drizzle.__drizzle_migrations');
      expect(applied[0]!.n).toBe(journal.entries.length);
    });

    it('enforce the money and identity constraints in the database itself', async () => {
      const client = new pg.Client({ connectionString: db.url });
      await client.connect();
      try {
        await client.query(`insert into regions (code, name, country_code, currency, currency_exponent, locale, time_zone, tax_rate_bps, location_hint)
                            values ('sg', 'Singapore', 'SG', 'SGD', 2, 'en-SG', 'Asia/Singapore', 900, 'apac')`);
        await client.query(`insert into categories (id, slug, name) values ('cat_x', 'things', 'Things')`);
        await client.query(`insert into products (id, slug, title, category_id) values ('prod_x', 'thing', 'Thing', 'cat_x')`);
        await client.query(`insert into variants (id, product_id, sku, title) values ('var_x', 'prod_x', 'THING-1', 'Default')`);
        // A price in the wrong currency for its region.
        await expect(client.query(`insert into prices (variant_id, region_code, currency, amount) values ('var_x', 'sg', 'MYR', 100)`)).rejects.toThrow(/prices_region_currency_fk/);
        // A negative price.
        await expect(client.query(`insert into prices (variant_id, region_code, currency, amount) values ('var_x', 'sg', 'SGD', -1)`)).rejects.toThrow(/prices_amount_non_negative/);
        // A duplicate SKU.
        await expect(client.query(`insert into variants (id, product_id, sku, title) values ('var_y', 'prod_x', 'THING-1', 'Copy')`)).rejects.toThrow(/unique/i);
        // Negative stock.
        await expect(client.query(`insert into stock (variant_id, region_code, received) values ('var_x', 'sg', -5)`)).rejects.toThrow(/stock_received_non_negative/);
        // An email that is not normalised.
        await expect(client.query(`insert into users (id, email, name, password_hash) values ('usr_x', 'Ann@Example.com', 'Ann', 'h')`)).rejects.toThrow(/users_email_normalised/);
        // Two orders for one checkout.
        const order = (id: string, number: string) =>
          client.query(`insert into orders (id, number, checkout_id, email, region_code, currency, subtotal_amount, total_amount, shipping_address, access_token_hash)
                        values ('${id}', '${number}', 'chk_1', 'a@b.c', 'sg', 'SGD', 100, 100, '{}', 'h')`);
        await order('ord_1', 'SG-1');
        await expect(order('ord_2', 'SG-2')).rejects.toThrow(/checkout_id/);
        // A line whose total disagrees with unit price × quantity.
        await expect(
          client.query(`insert into order_lines (id, order_id, variant_id, sku, title, quantity, unit_amount, line_amount)
                        values ('ol_1', 'ord_1', 'var_x', 'THING-1', 'Thing', 2, 100, 150)`),
        ).rejects.toThrow(/order_lines_total_matches/);
      } finally {
        await client.end();
      }
    });
  });
}

describeMigrations('PostgreSQL 15 (the machine server)', async () => {
  const name = `pasar_migrate_${randomBytes(5).toString('hex')}`;
  const url = await createDatabaseOn(adminUrl, name);
  const [{ server_version } = { server_version: '' }] = await query<{ server_version: string }>(url, 'show server_version');
  expect(server_version).toMatch(/^\d+/);
  return { url, close: () => dropDatabaseOn(adminUrl, name) };
});

describeMigrations('PGlite (embedded, through pglite-socket)', async () => {
  const pglite: LocalPostgres = await startPglite('memory://', 0, 4);
  return { url: pglite.url, close: pglite.stop };
});

describe('migrations on PGlite without pg_trgm', () => {
  it('still apply, leaving search to full-text matching', async () => {
    const pglite = await startPglite('memory://', 0, 4, false);
    try {
      await runMigrations(pglite.url);
      const ext = await query<{ n: number }>(pglite.url, `select count(*)::int as n from pg_extension where extname = 'pg_trgm'`);
      expect(ext[0]!.n).toBe(0);
      const indexes = await query<{ indexname: string }>(pglite.url, `select indexname from pg_indexes where tablename = 'products'`);
      expect(indexes.map((i) => i.indexname)).toContain('products_search_idx');
      expect(indexes.map((i) => i.indexname)).not.toContain('products_title_trgm_idx');
    } finally {
      await pglite.stop();
    }
  });
});
