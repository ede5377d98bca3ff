import { env } from 'cloudflare:workers';
import { eq, sql } from 'drizzle-orm';
import { afterEach, describe, expect, it } from 'vitest';
import { createDatabase, type DatabaseClients } from './client';
import { categories } from './schema';

let clients: DatabaseClients | undefined;
afterEach(async () => {
  await clients?.close();
  clients = undefined;
});

const suffix = () => crypto.randomUUID().slice(0, 8);

describe('database client in workerd (Neon driver through the local bridge)', () => {
  it('commits a transaction on the primary and reads it back', async () => {
    clients = createDatabase(env);
    const slug = `tx-commit-${suffix()}`;
    await clients.primary.transaction(async (tx) => {
      await tx.insert(categories).values({ id: `cat_${suffix()}`, slug, name: 'Committed' });
      await tx.execute(sql`select pg_sleep(0)`);
    });
    const rows = await clients.read.select().from(categories).where(eq(categories.slug, slug));
    expect(rows).toHaveLength(1);
    expect(rows[0]!.name).toBe('Committed');
  });

  it('rolls a failed transaction back completely', async () => {
    clients = createDatabase(env);
    const slug = `tx-rollback-${suffix()}`;
    await expect(
      clients.primary.transaction(async (tx) => {
        await tx.insert(categories).values({ id: `cat_${suffix()}`, slug, name: 'Rolled back' });
        // Violates categories_slug_format: the whole transaction must go.
        await tx.insert(categories).values({ id: `cat_${suffix()}`, slug: 'Not A Slug', name: 'Bad' });
      }),
    ).rejects.toThrow();
    const rows = await clients.primary.select().from(categories).where(eq(categories.slug, slug));
    expect(rows).toHaveLength(0);
  });

  it('reports the server as PostgreSQL with the schema migrated', async () => {
    clients = createDatabase(env);
    const result = await clients.primary.execute<{ tables: number }>(
      sql`select count(*)::int as tables from information_schema.tables where table_schema = 'public'`,
    );
    expect(result.rows[0]!.tables).toBeGreaterThanOrEqual(13);
  });

  it('refuses a target the bridge was not told about', async () => {
    clients = createDatabase({ ...env, DATABASE_URL: 'postgres://postgres@10.255.255.1:5432/elsewhere' });
    await expect(clients.primary.execute(sql`select 1`)).rejects.toThrow();
  });
});
