/**
 * The seed against a real Postgres 15 (postgres://postgres@127.0.0.1:5432,
 * trust auth; override with SEED_TEST_POSTGRES_URL). Each run creates its own
 * throwaway database, migrates and seeds it, and drops it afterwards.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runMigrations } from './migrate';
import { REGION_CODES, REGIONS } from './regions';
import { buildSeed, deriveFixtures, seedChecksum, seedDatabase, seedFixtures, seedRegionCodes, type SeedData } from './seed';

const serverUrl = process.env.SEED_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const dbName = `pasar_seed_test_${randomBytes(6).toString('hex')}`;
const dbUrl = (() => {
  const u = new URL(serverUrl);
  u.pathname = `/${dbName}`;
  return u.toString();
})();

const TABLES = ['regions', 'categories', 'products', 'variants', 'prices', 'stock', 'media'] as const;

let data: SeedData;
let db: pg.Client;
let firstRun: Awaited<ReturnType<typeof seedDatabase>>;
let seedMs = 0;

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: serverUrl });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

async function count(sql: string, params: unknown[] = []): Promise<number> {
  const r = await db.query<{ n: string }>(sql, params);
  return Number(r.rows[0]?.n ?? NaN);
}

async function tableCounts(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const t of TABLES) out[t] = await count(`select count(*) as n from ${t}`);
  return out;
}

beforeAll(async () => {
  data = buildSeed();
  await admin((c) => c.query(`create database ${dbName}`));
  await runMigrations(dbUrl);
  const t0 = performance.now();
  firstRun = await seedDatabase(dbUrl);
  seedMs = performance.now() - t0;
  db = new pg.Client({ connectionString: dbUrl });
  await db.connect();
}, 120_000);

afterAll(async () => {
  await db?.end().catch(() => {});
  await admin(async (c) => {
    await c.query('select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()', [dbName]);
    await c.query(`drop database if exists ${dbName}`);
  });
}, 60_000);

describe('buildSeed (pure generator)', () => {
  it('produces byte-identical data on every call', () => {
    const again = buildSeed();
    expect(again).toEqual(data);
    expect(seedChecksum(again)).toBe(seedChecksum(data));
    expect(seedChecksum(data)).toMatch(/^[0-9a-f]{64}$/);
  });

  it('gives a different checksum when any value changes', () => {
    const tweaked = buildSeed();
    const first = tweaked.prices[0];
    if (!first) throw new Error('no prices');
    first.amount += 1;
    expect(seedChecksum(tweaked)).not.toBe(seedChecksum(data));
  });

  it('writes exactly the region facts the edge resolves regions from (db/regions.ts)', () => {
    expect(data.regions.map((r) => r.code)).toEqual([...REGION_CODES]);
    for (const r of data.regions) {
      const { createdAt: _createdAt, ...facts } = r;
      expect(facts).toEqual(REGIONS[r.code as keyof typeof REGIONS]);
    }
  });

  it('describes the seven APAC regions with their currency, exponent and time zone', () => {
    const byCode = Object.fromEntries(data.regions.map((r) => [r.code, r]));
    expect(byCode.sg).toMatchObject({ currency: 'SGD', currencyExponent: 2, locale: 'en-SG', timeZone: 'Asia/Singapore', taxRateBps: 900 });
    expect(byCode.id).toMatchObject({ currency: 'IDR', currencyExponent: 0, timeZone: 'Asia/Jakarta' });
    expect(byCode.vn).toMatchObject({ currency: 'VND', currencyExponent: 0, timeZone: 'Asia/Ho_Chi_Minh' });
    expect(byCode.tw).toMatchObject({ currency: 'TWD', currencyExponent: 0, timeZone: 'Asia/Taipei' });
    for (const r of data.regions) {
      expect(r.locationHint).toBe('apac');
      expect(r.taxInclusive).toBe(true);
      expect(r.countryCode).toBe(r.code.toUpperCase());
    }
  });

  it('builds a catalog of the promised size with unique, well-formed slugs, SKUs and ids', () => {
    expect(data.categories.length).toBeGreaterThanOrEqual(24);
    expect(data.products.length).toBeGreaterThanOrEqual(2000);
    const slug = /^[a-z0-9]+(-[a-z0-9]+)*$/;
    for (const c of data.categories) expect(c.slug).toMatch(slug);
    for (const p of data.products) expect(p.slug).toMatch(slug);
    for (const v of data.variants) expect(v.sku).toMatch(/^[A-Z0-9][A-Z0-9._-]{0,63}$/);
    expect(new Set(data.products.map((p) => p.slug)).size).toBe(data.products.length);
    expect(new Set(data.variants.map((v) => v.sku)).size).toBe(data.variants.length);
    const ids = [...data.categories, ...data.products, ...data.variants, ...data.media].map((r) => r.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) expect(id).toMatch(/^(cat|prod|var|med)_[0-9a-hjkmnp-tv-z]{16}$/);
  });

  it('puts products only on leaf categories and spreads them over every leaf', () => {
    const parents = new Set(data.categories.map((c) => c.parentId).filter((p): p is string => p !== null));
    const leaves = data.categories.filter((c) => !parents.has(c.id));
    const used = new Set(data.products.map((p) => p.categoryId));
    for (const id of used) expect(parents.has(id)).toBe(false);
    expect(used.size).toBe(leaves.length);
  });

  it('hides about 3 % of products (draft or archived) and limits about 5 % to some regions', () => {
    const hidden = data.products.filter((p) => p.status !== 'active').length / data.products.length;
    expect(hidden).toBeGreaterThan(0.015);
    expect(hidden).toBeLessThan(0.05);
    const pricedIn = new Map<string, Set<string>>();
    const productOf = new Map(data.variants.map((v) => [v.id, v.productId]));
    for (const p of data.prices) {
      const pid = productOf.get(p.variantId) ?? '';
      const set = pricedIn.get(pid) ?? new Set<string>();
      set.add(p.regionCode);
      pricedIn.set(pid, set);
    }
    const limited = data.products.filter((p) => (pricedIn.get(p.id)?.size ?? 0) < seedRegionCodes.length).length / data.products.length;
    expect(limited).toBeGreaterThan(0.03);
    expect(limited).toBeLessThan(0.08);
  });

  it('gives every product 1-4 variants and puts about 15 % on sale with a higher compare-at price', () => {
    const perProduct = new Map<string, number>();
    for (const v of data.variants) perProduct.set(v.productId, (perProduct.get(v.productId) ?? 0) + 1);
    for (const p of data.products) {
      const n = perProduct.get(p.id) ?? 0;
      expect(n).toBeGreaterThanOrEqual(1);
      expect(n).toBeLessThanOrEqual(4);
    }
    for (const p of data.prices) {
      expect(Number.isInteger(p.amount)).toBe(true);
      expect(p.amount).toBeGreaterThan(0);
      if (p.compareAtAmount !== null) expect(p.compareAtAmount).toBeGreaterThan(p.amount);
    }
    const onSale = data.prices.filter((p) => p.compareAtAmount !== null).length / data.prices.length;
    expect(onSale).toBeGreaterThan(0.1);
    expect(onSale).toBeLessThan(0.2);
  });

  it('rounds prices to local price points (whole thousands of IDR/VND, x.90 or whole SGD)', () => {
    for (const p of data.prices) {
      if (p.currency === 'IDR' || p.currency === 'VND') expect(p.amount % 1000).toBe(0);
      if (p.currency === 'SGD') expect([90, 0]).toContain(p.amount % 100);
      if (p.currency === 'THB' || p.currency === 'PHP') expect(p.amount % 100).toBe(0);
    }
  });

  it('derives fixtures that really have the properties their names promise', () => {
    const f = seedFixtures();
    expect(f).toEqual(deriveFixtures(data));
    const bySlug = new Map(data.products.map((p) => [p.slug, p]));
    const bySku = new Map(data.variants.map((v) => [v.sku, v]));
    const receivedOf = (variantId: string) => data.stock.filter((s) => s.variantId === variantId).map((s) => s.received);

    expect(f.productSlugs).toHaveLength(5);
    for (const s of f.productSlugs) expect(bySlug.get(s)?.status).toBe('active');
    expect(bySlug.get(f.draftSlug)?.status).toBe('draft');
    expect(bySlug.get(f.archivedSlug)?.status).toBe('archived');

    const hot = receivedOf(f.hotVariantId);
    expect(hot).toHaveLength(7);
    expect(Math.min(...hot)).toBe(f.hotVariantMinReceived);
    expect(f.hotVariantMinReceived).toBeGreaterThanOrEqual(1000);
    expect(bySku.get(f.hotVariantSku)?.id).toBe(f.hotVariantId);

    const soldOut = receivedOf(f.soldOutVariantId);
    expect(soldOut).toEqual([0, 0, 0, 0, 0, 0, 0]);
    expect(bySku.get(f.soldOutSku)?.status).toBe('active');
    expect(bySku.get(f.archivedVariantSku)?.status).toBe('archived');

    const limited = bySlug.get(f.regionLimitedSlug);
    const limitedVariant = data.variants.find((v) => v.productId === limited?.id);
    const regions = data.prices.filter((p) => p.variantId === limitedVariant?.id).map((p) => p.regionCode);
    expect(regions.sort()).toEqual([...f.regionLimitedSoldIn].sort());
    expect(f.regionLimitedNotSoldIn.length).toBeGreaterThan(0);
  });
});

describe('seedDatabase against Postgres 15', () => {
  it('loads the whole catalog in one run and reports the rows it inserted', async () => {
    expect(firstRun.inserted).toBe(true);
    for (const t of TABLES) expect(firstRun.counts[t]).toBe(data[t].length);
    expect(await tableCounts()).toEqual(firstRun.counts);
  });

  it('finishes well inside the 20 s budget', () => {
    expect(seedMs).toBeLessThan(20_000);
  });

  it('stores 7 regions, at least 20 categories and 2,000 products', async () => {
    expect(await count('select count(*) as n from regions')).toBe(7);
    expect(await count('select count(*) as n from categories')).toBeGreaterThanOrEqual(20);
    expect(await count('select count(*) as n from products')).toBeGreaterThanOrEqual(2000);
  });

  it('never stores a price in a currency other than its region’s', async () => {
    expect(await count('select count(*) as n from prices p join regions r on r.code = p.region_code where p.currency <> r.currency')).toBe(0);
  });

  it('gives every active product a variant', async () => {
    expect(
      await count(`select count(*) as n from products p
                   where p.status = 'active' and not exists (select 1 from variants v where v.product_id = p.id)`),
    ).toBe(0);
  });

  it('prices every variant in every region its product is sold in, and stocks exactly those', async () => {
    // A product is sold in a region when any of its variants is priced there.
    const soldIn = `select distinct v.product_id, p.region_code from prices p join variants v on v.id = p.variant_id`;
    expect(
      await count(`select count(*) as n from (${soldIn}) s
                   join variants v on v.product_id = s.product_id
                   where not exists (select 1 from prices p where p.variant_id = v.id and p.region_code = s.region_code)`),
    ).toBe(0);
    expect(
      await count(`select count(*) as n from prices p full join stock s using (variant_id, region_code)
                   where p.variant_id is null or s.variant_id is null`),
    ).toBe(0);
  });

  it('keeps the region-limited fixture out of the regions it is not sold in', async () => {
    const f = seedFixtures();
    const r = await db.query<{ region_code: string }>(
      `select distinct p.region_code from prices p join variants v on v.id = p.variant_id
       join products pr on pr.id = v.product_id where pr.slug = $1 order by 1`,
      [f.regionLimitedSlug],
    );
    expect(r.rows.map((x) => x.region_code)).toEqual([...f.regionLimitedSoldIn].sort());
  });

  it('leaves a seeded database untouched when asked to seed only if empty', async () => {
    const before = await tableCounts();
    const again = await seedDatabase(dbUrl, { ifEmpty: true });
    expect(again.inserted).toBe(false);
    for (const t of TABLES) expect(again.counts[t]).toBe(0);
    expect(await tableCounts()).toEqual(before);
  });

  it('rolls back completely when seeding a non-empty database without ifEmpty', async () => {
    const before = await tableCounts();
    await expect(seedDatabase(dbUrl)).rejects.toThrow();
    expect(await tableCounts()).toEqual(before);
  });

  it('gives full-text search real words to find', async () => {
    const hits = async (q: string) =>
      count(
        `select count(*) as n from products
         where to_tsvector('english', title || ' ' || description) @@ plainto_tsquery('english', $1)`,
        [q],
      );
    expect(await hits(seedFixtures().searchTerm)).toBeGreaterThan(50);
    for (const word of ['batik', 'durian', 'sambal', 'matcha', 'pandan', 'stainless steel']) {
      expect(await hits(word), word).toBeGreaterThan(0);
    }
    expect(await hits('zzzxqj')).toBe(0);
  });

  it('stores media rows for every product under seed/ keys', async () => {
    expect(await count(`select count(*) as n from products p where not exists (select 1 from media m where m.product_id = p.id)`)).toBe(0);
    expect(await count(`select count(*) as n from media where key not like 'seed/%.jpg' or content_type <> 'image/jpeg'`)).toBe(0);
  });
});
