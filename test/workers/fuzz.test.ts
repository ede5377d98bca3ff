/**
 * Fuzz test (fast-check) of every write route the Worker documents.
 *
 * The routes come from the OpenAPI document the Worker serves (`GET
 * /api/openapi.json`): every POST, PUT, PATCH and DELETE, so a route added
 * later is fuzzed without touching this file. Each route gets random requests:
 * path parameters from real ids (a cart this file made, a seed product and
 * SKU, a real order, a minted token) and random strings; bodies built from
 * the route's own request schema (its field names, with valid, wrong-typed and
 * hostile values, plus mass-assignment fields such as `role` or `price`),
 * `fc.jsonValue()`s, malformed JSON, random content types, empty bodies and
 * bodies over the route's size limit; without and with credentials (the owner
 * admin token on /admin/api, a shopper session on /api, a valid signature on
 * the payment webhook), with and without an Idempotency-Key where the route
 * takes one.
 *
 * Every route also gets fixed edge cases (fast-check `examples`): empty and
 * missing bodies, truncated JSON, mass assignment, a minimal and a full valid
 * body, the same with a NUL in every free-text field, real ids with a NUL in
 * the path, oversized bodies with and without Content-Length, no credentials,
 * and where they apply a reused Idempotency-Key, a real image upload, a long
 * import with its bad line last, and signed webhook events with a NUL and deep
 * nesting.
 *
 * Every answer must be below 500, JSON, and for a refusal the error envelope
 * of shared/API.md. A refused request must change nothing: a row trigger on
 * every table (except the append-only `admin_audit`, which records refused
 * admin writes by design) logs each INSERT/UPDATE/DELETE into `fuzz_changes`,
 * counted before and after each request, and the Redis hashes of the carts
 * this file owns are compared. Where the contract names the answer it is
 * checked too: an unknown field is 400 `invalid_request`, malformed JSON 400
 * `invalid_json`, an oversized body 413 `payload_too_large`.
 *
 * Checkout fuzzing only ever names a cart that does not exist or one that
 * stays empty, so an accepted checkout fails in its saga without writing.
 * Accepted requests may change things; the baseline is taken again after
 * them, once the database has been quiet for a moment (queue consumers and
 * the checkout saga write after the answer). A summary line per route is
 * printed at the end.
 *
 * A failure names the route, the request (method, path, credentials, content
 * type, Idempotency-Key, body) and the answer (status and body); fast-check
 * prints the seed to replay it.
 */
import { Redis } from '@upstash/redis/cloudflare';
import { env, exports } from 'cloudflare:workers';
import { sql } from 'drizzle-orm';
import fc, { type Arbitrary, type WeightedArbitrary } from 'fast-check';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createDatabase, type DatabaseClients } from '../../db/client';
import { REGION_CODES } from '../../db/regions';
import { randomToken } from '../../workers/lib/ids';
import { admin, call, checkoutBody, json, settle, startCheckout } from './shop';

// ---- configuration -----------------------------------------------------------------

/** Random requests per route (the deterministic edge cases come on top). */
const NUM_RUNS = 12;
/** The document must list at least this many write routes, or the enumeration is broken. */
const MIN_WRITE_ROUTES = 20;
/** Largest body the storefront API takes (workers/app.ts); admin routes document theirs or take at most 1 MiB. */
const API_LIMIT = 64 * 1024;
const ADMIN_DEFAULT_LIMIT = 1024 * 1024;
const HOST = 'http://pasar.test';
const SESSION_COOKIE = '__Host-pasar_session';
const WRITE_METHODS = ['post', 'put', 'patch', 'delete'] as const;
/** Fields a client must never set; strict bodies refuse them (or, where real, validate them). */
const MASS_ASSIGNMENT = ['role', 'price', 'prices', 'status', 'userId', 'id', 'owner', 'isAdmin', 'createdBy', 'tokenHash', 'amount', 'subtotal', 'version', 'createdAt', '__proto__', 'constructor'];

const fx = inject('seedFixtures');
const webhookSecret = inject('paymentWebhookSecret');

// ---- the routes, from the served document --------------------------------------------

type Schema = Record<string, any>;
interface Param {
  name: string;
  in: 'path' | 'query' | 'header' | 'cookie';
  schema: Schema;
}
interface Route {
  method: string;
  path: string;
  label: string;
  params: Param[];
  /** Request body content types and schemas, as documented. */
  content: Record<string, Schema>;
  bodyRequired: boolean;
  /** The JSON body schema (resolved), if the route takes JSON. */
  jsonSchema?: Schema;
  /** For a line-oriented body (NDJSON): the schema of one line (the JSON body of the POST on the parent path). */
  lineSchema?: Schema;
  admin: boolean;
  webhook: boolean;
  limit: number;
}

const docRes = await exports.default.fetch(new Request(`${HOST}/api/openapi.json`));
const doc = (await docRes.json().catch(() => ({}))) as { paths?: Record<string, Record<string, any>>; components?: { schemas?: Record<string, Schema> } };

function deref(s: Schema | undefined): Schema {
  let out = s ?? {};
  for (let i = 0; out.$ref && i < 10; i++) out = doc.components?.schemas?.[String(out.$ref).split('/').pop()!] ?? {};
  return out;
}

/** `Body over 4 KiB` and similar, from a route's documented 413. */
function documentedLimit(op: any): number | undefined {
  const m = /(\d+(?:\.\d+)?)\s*(KiB|MiB|KB|MB|bytes)/i.exec(op.responses?.['413']?.description ?? '');
  if (!m) return undefined;
  const unit = m[2]!.toLowerCase();
  return Math.ceil(Number(m[1]) * (unit.startsWith('k') ? 1024 : unit.startsWith('m') ? 1024 * 1024 : 1));
}

const ROUTES: Route[] = [];
for (const [path, ops] of Object.entries(doc.paths ?? {})) {
  for (const method of WRITE_METHODS) {
    const op = ops[method];
    if (!op) continue;
    const content: Record<string, Schema> = {};
    for (const [type, entry] of Object.entries<any>(op.requestBody?.content ?? {})) content[type] = deref(entry.schema);
    const isAdmin = path.startsWith('/admin/api');
    ROUTES.push({
      method: method.toUpperCase(),
      path,
      label: `${method.toUpperCase()} ${path}`,
      params: ((op.parameters ?? []) as any[]).map((p) => ({ name: p.name, in: p.in, schema: deref(p.schema) })),
      content,
      bodyRequired: op.requestBody?.required === true,
      jsonSchema: content['application/json'],
      admin: isAdmin,
      webhook: path.includes('/webhooks/'),
      limit: documentedLimit(op) ?? (isAdmin ? ADMIN_DEFAULT_LIMIT : API_LIMIT),
    });
  }
}
for (const r of ROUTES) {
  const lineType = Object.keys(r.content).find((t) => /ndjson|jsonl/i.test(t));
  if (!lineType) continue;
  const parent = r.path.split('/').slice(0, -1).join('/');
  r.lineSchema = ROUTES.find((o) => o.method === 'POST' && o.path === parent)?.jsonSchema;
}

// ---- fixtures: the real things path params and fields name --------------------------

interface State {
  cartA: string; // fuzzed through the cart routes
  cartB: string; // stays empty: the only real cart that checkout fuzzing may name
  mine: { productId: string; sku: string; variantId: string; slug: string };
  seed: { productId: string; sku: string; variantId: string; slug: string };
  orderIds: string[];
  /** Provider references of real payments (webhook events may name them). */
  paymentRefs: string[];
  tokenId: string;
  user: { email: string; password: string; cookie: string | null };
  fakes: { cart: string; order: string; product: string; variant: string; token: string; checkout: string };
}
let state: State;

const stats = new Map<string, { requests: number; accepted: number; statuses: Record<number, number> }>();
const redis = new Redis({ url: env.UPSTASH_REDIS_REST_URL, token: env.UPSTASH_REDIS_REST_TOKEN });
const fakeId = (prefix: string, n = 26) => `${prefix}_${'0123456789abcdefghjkmnpqrstvwxyz'.repeat(2).slice(0, n)}`;

async function withDb<T>(work: (db: DatabaseClients) => Promise<T>): Promise<T> {
  const db = createDatabase(env);
  try {
    return await work(db);
  } finally {
    await db.close();
  }
}

async function rows<T>(db: DatabaseClients, query: ReturnType<typeof sql>): Promise<T[]> {
  return (await db.primary.execute(query)).rows as T[];
}

async function login(): Promise<void> {
  const res = await call('/api/auth/login', json('POST', { email: state.user.email, password: state.user.password }));
  state.user.cookie = sessionFrom(res) ?? null;
}

function sessionFrom(res: Response): string | undefined {
  for (const c of res.headers.getSetCookie()) {
    const m = new RegExp(`^${SESSION_COOKIE}=([^;]*)`).exec(c);
    if (m) return m[1]!;
  }
  return undefined;
}

beforeAll(async () => {
  const tag = randomToken(5).toUpperCase();
  // A product of our own with stock in sg.
  const sku = `FUZZ-${tag}`;
  const created = await admin('/admin/api/products', 'POST', {
    title: `Fuzz sambal ${tag}`,
    category: fx.busiestCategorySlug,
    variants: [{ sku, title: '200 g jar', prices: { sg: { amount: 1500 } } }],
  });
  expect(created.status).toBe(201);
  const product = await created.json<any>();
  expect((await admin(`/admin/api/inventory/${sku}`, 'PUT', { region: 'sg', quantity: 500 })).status).toBe(200);
  const mine = { productId: product.id, sku, variantId: product.variants[0].id, slug: product.slug };

  const fixtureSkus = new Set([fx.hotVariantSku, fx.soldOutSku, fx.onSaleSku, fx.archivedVariantSku]);
  const fixtureSlugs = new Set([...fx.productSlugs, fx.regionLimitedSlug, fx.draftSlug, fx.archivedSlug]);
  const { seed, orders } = await withDb(async (db) => {
    const candidates = await rows<{ product_id: string; slug: string; variant_id: string; sku: string }>(
      db,
      sql`select p.id as product_id, p.slug, v.id as variant_id, v.sku from products p
          join variants v on v.product_id = p.id
          join prices pr on pr.variant_id = v.id and pr.region_code = 'sg'
          where p.status = 'active' and v.status = 'active' order by p.id limit 50`,
    );
    // A seed product no other test names, so fuzzing may change it freely.
    const pick = candidates.find((c) => !fixtureSkus.has(c.sku) && !fixtureSlugs.has(c.slug) && !c.sku.startsWith('FUZZ-'))!;
    const existing = await rows<{ id: string }>(db, sql`select id from orders order by created_at desc limit 3`);
    return { seed: { productId: pick.product_id, slug: pick.slug, variantId: pick.variant_id, sku: pick.sku }, orders: existing.map((o) => o.id) };
  });

  // Cart A holds two lines; cart B stays empty (checkout fuzzing); two more are bought, for real orders.
  const newCart = async () => (await (await call('/api/carts', json('POST', {}))).json<{ id: string }>()).id;
  const cartA = await newCart();
  for (const variantId of [mine.variantId, seed.variantId]) {
    expect((await call(`/api/carts/${cartA}/items`, json('POST', { variantId, quantity: 2 }))).status).toBe(200);
  }
  const cartB = await newCart();
  const bought = await Promise.all(
    [1, 2].map(async (n) => {
      const cart = await newCart();
      expect((await call(`/api/carts/${cart}/items`, json('POST', { variantId: mine.variantId, quantity: 1 }))).status).toBe(200);
      const started = await startCheckout(checkoutBody(cart), `fuzz-setup-${tag}-${n}`);
      expect(started.status).toBe(202);
      const done = await settle((await started.json<any>()).checkoutId, 30_000);
      expect(done.status).toBe('confirmed');
      return done.orderId as string;
    }),
  );

  const paymentRefs = await withDb(async (db) =>
    (await rows<{ ref: string }>(db, sql`select provider_ref as ref from payments where provider_ref is not null order by created_at desc limit 3`)).map((r) => r.ref),
  );
  const minted = await admin('/admin/api/tokens', 'POST', { name: `fuzz ${tag}`, role: 'readonly' });
  expect(minted.status).toBe(201);

  const user = { email: `fuzz-${tag.toLowerCase()}@example.com`, password: `fuzz-password-${tag}`, cookie: null as string | null };
  expect((await call('/api/auth/register', json('POST', { email: user.email, password: user.password, name: 'Fuzz Shopper' }))).status).toBe(201);

  state = {
    cartA,
    cartB,
    mine,
    seed,
    orderIds: [...new Set([...bought, ...orders])],
    paymentRefs,
    tokenId: (await minted.json<any>()).id,
    user,
    fakes: {
      cart: fakeId('cart', 32),
      order: fakeId('ord'),
      product: fakeId('prod'),
      variant: fakeId('var'),
      token: fakeId('tok'),
      checkout: fakeId('chk'),
    },
  };
  await login();
  expect(state.user.cookie).toBeTruthy();

  // The change log: one row per row written, in every table but admin_audit.
  await withDb(async (db) => {
    await db.primary.execute(sql.raw(`create table if not exists fuzz_changes (id bigserial primary key, tbl text not null, op text not null, at timestamptz not null default clock_timestamp())`));
    await db.primary.execute(
      sql.raw(`create or replace function fuzz_log_change() returns trigger language plpgsql as $$
        begin insert into fuzz_changes (tbl, op) values (TG_TABLE_NAME, TG_OP); return null; end $$`),
    );
    const tables = await rows<{ tablename: string }>(
      db,
      sql`select tablename from pg_tables where schemaname = 'public' and tablename not in ('admin_audit', 'fuzz_changes') and tablename not like '%drizzle%'`,
    );
    expect(tables.length).toBeGreaterThan(5);
    for (const { tablename } of tables) {
      await db.primary.execute(sql.raw(`drop trigger if exists fuzz_log on "${tablename}"`));
      await db.primary.execute(sql.raw(`create trigger fuzz_log after insert or update or delete on "${tablename}" for each row execute function fuzz_log_change()`));
    }
    // The setup checkout's queue consumer writes a little later: start from a quiet database.
    await quiet(db, 1_500);
  });
}, 120_000);

afterAll(async () => {
  if (!state) return;
  await withDb(async (db) => {
    const tables = await rows<{ tablename: string }>(db, sql`select distinct event_object_table as tablename from information_schema.triggers where trigger_name = 'fuzz_log'`);
    for (const { tablename } of tables) await db.primary.execute(sql.raw(`drop trigger if exists fuzz_log on "${tablename}"`));
    await db.primary.execute(sql.raw(`drop function if exists fuzz_log_change() cascade`));
    await db.primary.execute(sql.raw(`drop table if exists fuzz_changes`));
  });
  let requests = 0;
  let accepted = 0;
  const lines: string[] = [];
  for (const [label, s] of stats) {
    requests += s.requests;
    accepted += s.accepted;
    lines.push(`  ${label}: ${s.requests} requests, ${s.accepted} accepted, ${JSON.stringify(s.statuses)}`);
  }
  console.log(`fuzz: ${stats.size} write routes, ${requests} requests, ${accepted} accepted (2xx)\n${lines.join('\n')}`);
});

// ---- observing state ------------------------------------------------------------------

async function changeMark(db: DatabaseClients): Promise<number> {
  const [r] = await rows<{ n: string }>(db, sql`select coalesce(max(id), 0)::text as n from fuzz_changes`);
  return Number(r!.n);
}

/** Waits until nothing has been written for `quietMs` (at most 15 s). */
async function quiet(db: DatabaseClients, quietMs: number): Promise<void> {
  const deadline = Date.now() + 15_000;
  let mark = await changeMark(db);
  let since = Date.now();
  while (Date.now() - since < quietMs && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    const now = await changeMark(db);
    if (now !== mark) {
      mark = now;
      since = Date.now();
    }
  }
}

interface Snapshot {
  mark: number;
  carts: string;
}

async function snapshot(db: DatabaseClients): Promise<Snapshot> {
  const [mark, a, b] = await Promise.all([changeMark(db), redis.hgetall(`cart:${state.cartA}`), redis.hgetall(`cart:${state.cartB}`)]);
  const sorted = (h: Record<string, unknown> | null) => (h ? Object.fromEntries(Object.entries(h).sort(([x], [y]) => (x < y ? -1 : 1))) : null);
  return { mark, carts: JSON.stringify({ cartA: sorted(a), cartB: sorted(b) }) };
}

async function changesSince(db: DatabaseClients, mark: number): Promise<string> {
  const changed = await rows<{ tbl: string; op: string; n: string }>(
    db,
    sql`select tbl, op, count(*)::text as n from fuzz_changes where id > ${mark} group by tbl, op order by tbl, op`,
  );
  return changed.map((c) => `${c.op} ${c.tbl} x${c.n}`).join(', ');
}

// ---- arbitraries ------------------------------------------------------------------------

const printable = fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c));
/** Strings that may go in a header value. */
const headerSafe = (minLength: number, maxLength: number) => fc.string({ unit: printable, minLength, maxLength });

/** Strings meant to hurt: control characters, NUL, lone surrogates, RTL, long, SQL, markup. */
const nastyString: Arbitrary<string> = fc.oneof(
  { weight: 2, arbitrary: fc.string({ maxLength: 20 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 12 }) },
  { weight: 1, arbitrary: fc.string({ unit: fc.integer({ min: 0, max: 0x1f }).map((c) => String.fromCharCode(c)), minLength: 1, maxLength: 4 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 8 }) },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      '',
      ' ',
      '\u0000',
      'a\u0000b',
      'Siti\u0000Rahman',
      '\u0000\u0001\u001f\u007f',
      '\ud800',
      '\udfff\ud800',
      '\uffff',
      '\u202eevil',
      '\r\n',
      '\t',
      '🙂🙂',
      'İstanbul',
      'ＳＧ',
      'null',
      'true',
      '0',
      '-1',
      '1e309',
      "' or 1=1 --",
      '"; drop table users; --',
      '<script>alert(1)</script>',
      '../../etc/passwd',
      '%00',
      '%2e%2e%2f',
      '${7*7}',
      '__proto__',
    ),
  },
  { weight: 1, arbitrary: fc.integer({ min: 65, max: 400 }).map((n) => 'x'.repeat(n)) },
  { weight: 1, arbitrary: fc.constantFrom('y'.repeat(20_001), 'z'.repeat(5_000)) },
);

/** A real value made hostile: NUL or other control characters, a lone surrogate, padding, case. */
function hostile(value: string): Arbitrary<string> {
  const mid = Math.floor(value.length / 2);
  return fc.constantFrom(
    `${value}\u0000`,
    `\u0000${value}`,
    `${value.slice(0, mid)}\u0000${value.slice(mid)}`,
    `${value}\u0007`,
    `${value}\ud800`,
    `${value}\u202e`,
    ` ${value} `,
    value.toUpperCase(),
    value.repeat(8),
    `${value}%00`,
  );
}

/** A value of any type, mostly of a wrong one. */
const wrongValue: Arbitrary<unknown> = fc.oneof(
  nastyString,
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.constantFrom(-1, 0, 1.5, -0, 2 ** 31, 2 ** 53, -(2 ** 53), 1e21, 1e308, Number.MAX_SAFE_INTEGER + 2, 10_000_001, 100),
  fc.array(fc.jsonValue({ maxDepth: 1 }), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 3 }),
);

/**
 * Realistic values by field name: real ids and values that pass the first
 * check (`valid`), near misses (`invalid`), values nobody has taken yet
 * (`fresh`, for the minimal bodies), and whether the schema's own values
 * should be left out (`exclusive`: they would break a rule it cannot state).
 */
function realistic(name: string): { valid: Arbitrary<unknown>; invalid?: Arbitrary<unknown>; fresh?: Arbitrary<unknown>; exclusive?: boolean } | undefined {
  const s = state;
  const live = <T>(f: () => T) => fc.constant(0).map(f);
  const plain = (valid: Arbitrary<unknown>, invalid?: Arbitrary<unknown>) => ({ valid, ...(invalid ? { invalid } : {}) });
  switch (name) {
    case 'cartId':
      // Never cart A (it has lines): a checkout of it would really run.
      return plain(fc.constantFrom(s.cartB, s.fakes.cart), fc.constantFrom('cart_short', s.fakes.checkout));
    case 'variantId':
    case 'itemId':
      return plain(fc.constantFrom(s.mine.variantId, s.seed.variantId, fx.soldOutVariantId, fx.hotVariantId), fc.constantFrom(s.fakes.variant, 'var-../x'));
    case 'sku':
      return {
        valid: fc.oneof(
          { weight: 3, arbitrary: fc.stringMatching(/^[A-Z0-9]{3,8}$/).map((x) => `FZ-${x}`) },
          { weight: 1, arbitrary: fc.constantFrom(s.mine.sku, s.seed.sku, fx.archivedVariantSku) },
        ),
        invalid: fc.constantFrom('lower-case', '-LEADING', 'A'.repeat(65)),
        fresh: fc.stringMatching(/^[A-Z0-9]{8}$/).map((x) => `FZ-${x}`),
        exclusive: true,
      };
    case 'skus':
      return plain(fc.array(fc.constantFrom(s.mine.sku, s.seed.sku, 'NOPE'), { maxLength: 3 }));
    case 'productId':
      return plain(fc.constantFrom(s.mine.productId, s.seed.productId), fc.constantFrom(s.fakes.product, ''));
    case 'authorizationId':
      return plain(fc.constantFrom(...s.paymentRefs, 'auth_fuzz'));
    case 'category':
      return { valid: fc.constant(fx.busiestCategorySlug), invalid: fc.constantFrom('no-such-category', 'Upper'), exclusive: true };
    case 'slug':
      return { ...plain(fc.stringMatching(/^[a-z0-9]{1,8}(-[a-z0-9]{1,8}){0,2}$/).map((x) => `fz-${x}`), fc.constantFrom(s.seed.slug, s.mine.slug, fx.draftSlug, '-x', 'A')), fresh: fc.stringMatching(/^[a-z0-9]{10}$/).map((x) => `fz-${x}`) };
    case 'email':
      return {
        fresh: live(() => s.user.email),
        ...plain(fc.oneof(live(() => s.user.email), fc.constantFrom('Siti@Example.com', ' MixedCase@Example.COM '), fc.emailAddress()), fc.constantFrom('no-at-sign', 'a@b', '@example.com')),
      };
    case 'password':
    case 'currentPassword':
    case 'newPassword':
      return {
        fresh: name === 'newPassword' ? fc.constant('kopi-kaya-toast-2026') : live(() => s.user.password),
        ...plain(fc.oneof(live(() => s.user.password), fc.constantFrom('kopi-kaya-toast-2026'), fc.string({ minLength: 8, maxLength: 24 })), fc.constantFrom('short', '        ', 'p'.repeat(257))),
      };
    case 'name':
    case 'title':
    case 'line1':
    case 'city':
      return plain(fc.constantFrom('Siti Rahman', 'warehouse integration', 'Nguyễn Văn A', '1 Orchard Road', 'Singapore'), fc.constantFrom(' ', '\t'));
    case 'postalCode':
      return plain(fc.constantFrom('238823', '10110'), fc.constant('1'.repeat(21)));
    case 'region':
      return plain(fc.constantFrom(...REGION_CODES), fc.constantFrom('xx', 'SG'));
    case 'borrowFrom':
      return plain(fc.subarray([...REGION_CODES], { maxLength: 3 }), fc.array(fc.constantFrom(...REGION_CODES, 'xx'), { maxLength: 7 }));
    case 'country':
      return plain(fc.constantFrom('SG', 'MY'), fc.constantFrom('sg', 'XX1', 'SGP'));
    case 'token':
      return plain(fc.constantFrom('tok_ok', 'tok_decline', 'tok_flaky', 'tok_unknown'));
    case 'quantity':
      return plain(fc.constantFrom(1, 2, 98, 99), fc.constantFrom(0, 100, -1, 1.5));
    case 'shards':
      return plain(fc.constantFrom(1, 2, 4, 16), fc.constantFrom(17, 0));
    case 'amount':
      // compareAtAmount must be above amount (a rule the schema cannot say): keep valid ones valid.
      return { valid: fc.constantFrom(0, 100, 2500, 999_999), invalid: fc.constantFrom(-1, 1e12 + 1, 0.5), exclusive: true };
    case 'compareAtAmount':
      return { valid: fc.constantFrom(null, 1_000_000, 1e12), invalid: fc.constantFrom(-1, 0, 1e12 + 1), exclusive: true };
    default:
      return undefined;
  }
}

/** An integer in [min, max], bounds beyond 32 bits included. */
function intIn(min: number, max: number): Arbitrary<number> {
  const edges = fc.constantFrom(min, max, Math.min(max, min + 1), Math.max(min, max - 1));
  if (min >= -(2 ** 31) && max <= 2 ** 31 - 1) return fc.oneof(edges, fc.integer({ min, max }));
  return fc.oneof(edges, fc.maxSafeNat().map((n) => min + (n % (max - min + 1))));
}

const regexCache = new Map<string, Arbitrary<string> | null>();
/** Strings matching a documented pattern, when the pattern is usable; null otherwise. */
function matching(pattern: string): Arbitrary<string> | null {
  if (!regexCache.has(pattern)) {
    let arb: Arbitrary<string> | null = null;
    try {
      const re = new RegExp(pattern, 'u');
      const candidate = fc.stringMatching(re);
      if (fc.sample(candidate, { numRuns: 5, seed: 1 }).every((v) => re.test(v))) arb = candidate;
    } catch {
      arb = null;
    }
    regexCache.set(pattern, arb);
  }
  return regexCache.get(pattern)!;
}

function stringFor(s: Schema): Arbitrary<string> {
  const max = s.maxLength ?? 60;
  const min = s.minLength ?? 0;
  if (s.format === 'email') return fc.emailAddress();
  const byPattern = typeof s.pattern === 'string' ? matching(s.pattern) : null;
  if (byPattern) return byPattern.map((v) => v.slice(0, max));
  return fc.string({ minLength: Math.min(min, 40), maxLength: Math.max(Math.min(max, 40), Math.min(min, 40)) });
}

interface GenOptions {
  /** Weight of a wrong value against 4 for a conforming one (0: always conforming). */
  wrong: number;
  /** Add a mass-assignment field to objects. */
  extras: boolean;
  /** Only the required fields. */
  requiredOnly?: boolean;
}
const FUZZY: GenOptions = { wrong: 1, extras: true };
const STRICT: GenOptions = { wrong: 0, extras: false };
const MINIMAL: GenOptions = { wrong: 0, extras: false, requiredOnly: true };

function valueFor(schema: Schema | undefined, name: string, depth: number, o: GenOptions): Arbitrary<unknown> {
  const own = conforming(deref(schema), name, depth, o);
  const real = realistic(name);
  if (o.requiredOnly && real?.fresh) return real.fresh;
  const good = real ? (real.exclusive ? real.valid : fc.oneof({ weight: 3, arbitrary: real.valid }, { weight: 2, arbitrary: own })) : own;
  if (o.wrong === 0) return good;
  return fc.oneof({ weight: 4, arbitrary: good }, { weight: o.wrong, arbitrary: real?.invalid ? fc.oneof(real.invalid, wrongValue) : wrongValue });
}

function conforming(s: Schema, name: string, depth: number, o: GenOptions): Arbitrary<unknown> {
  if (Array.isArray(s.enum)) return fc.constantFrom(...(s.enum as unknown[]));
  if (s.const !== undefined) return fc.constant(s.const);
  const alternatives = (s.anyOf ?? s.oneOf) as Schema[] | undefined;
  if (alternatives?.length) return fc.oneof(...alternatives.map((a) => valueFor(a, name, depth, o)));
  const types: string[] = Array.isArray(s.type) ? s.type : s.type ? [s.type] : [];
  if (types.length > 1) return fc.oneof(...types.map((t) => conforming({ ...s, type: t }, name, depth, o)));
  switch (types[0]) {
    case 'null':
      return fc.constant(null);
    case 'boolean':
      return fc.boolean();
    case 'integer':
      return intIn(s.minimum ?? -1_000_000, s.maximum ?? 1_000_000);
    case 'number':
      return fc.double({ min: s.minimum ?? -1e6, max: s.maximum ?? 1e6, noNaN: true });
    case 'string':
      return stringFor(s);
    case 'array':
      return depth > 4
        ? fc.constant([])
        : fc.array(valueFor(s.items, name, depth + 1, o), { minLength: Math.min(s.minItems ?? 0, 2), maxLength: Math.min(s.maxItems ?? 3, 3) });
    default:
      if (s.properties || s.additionalProperties) return objectFor(s, depth, o);
      return fc.jsonValue({ maxDepth: 2 });
  }
}

/** Defines a key even when it is `__proto__`, so JSON.stringify sends it. */
function withKey(obj: Record<string, unknown>, key: string, value: unknown): Record<string, unknown> {
  const out = { ...obj };
  Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
  return out;
}

function objectFor(s: Schema, depth: number, o: GenOptions): Arbitrary<Record<string, unknown>> {
  if (depth > 5) return fc.constant({});
  const props = Object.entries<Schema>(s.properties ?? {});
  const required: string[] = ((s.required ?? []) as string[]).filter((k) => k in (s.properties ?? {}));
  const model = Object.fromEntries(props.filter(([k]) => !o.requiredOnly || required.includes(k)).map(([k, v]) => [k, valueFor(v, k, depth + 1, o)]));
  let arb: Arbitrary<Record<string, unknown>> = o.wrong > 0
    ? fc.oneof({ weight: 4, arbitrary: fc.record(model, { requiredKeys: required }) }, { weight: 1, arbitrary: fc.record(model, { requiredKeys: [] }) })
    : fc.record(model, { requiredKeys: required });
  if (s.additionalProperties && typeof s.additionalProperties === 'object' && !o.requiredOnly) {
    const extra = fc.dictionary(fc.string({ maxLength: 10 }), conforming(deref(s.additionalProperties), '', depth + 1, o), { maxKeys: 3 });
    arb = fc.tuple(arb, extra).map(([a, b]) => ({ ...b, ...a }));
  }
  if ('email' in model && 'password' in model) {
    // Now and then the real shopper's credentials, so a sign-in can succeed.
    arb = fc.tuple(arb, fc.nat(3)).map(([a, n]) => (n === 0 ? { ...a, email: state.user.email, password: state.user.password } : a));
  }
  if ('currentPassword' in model) {
    arb = fc.tuple(arb, fc.nat(2)).map(([a, n]) => (n === 0 ? { ...a, currentPassword: state.user.password } : a));
  }
  if (o.extras) {
    const extraKey = fc.option(fc.tuple(fc.constantFrom(...MASS_ASSIGNMENT), fc.oneof(fc.constantFrom('owner', 'admin', 'paid', 0, 1, true), wrongValue)), {
      freq: depth === 0 ? 3 : 8,
      nil: null,
    });
    arb = fc.tuple(arb, extraKey).map(([a, kv]) => (kv ? withKey(a, kv[0], kv[1]) : a));
  }
  return arb;
}

/** Every path to a value inside `v` (the root excluded). */
function leafPaths(v: unknown, at: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  if (v && typeof v === 'object') {
    for (const [k, child] of Object.entries(v)) {
      const here = [...at, Array.isArray(v) ? Number(k) : k];
      out.push(here);
      leafPaths(child, here, out);
    }
  }
  return out;
}

function replaceAt(v: unknown, path: (string | number)[], value: unknown): unknown {
  if (path.length === 0) return value;
  const [head, ...rest] = path;
  if (Array.isArray(v)) return v.map((x, i) => (i === head ? replaceAt(x, rest, value) : x));
  const obj = v as Record<string, unknown>;
  return withKey(obj, String(head), replaceAt(obj[String(head)], rest, value));
}

/** A conforming body with exactly one value (anywhere inside it) replaced by a hostile or wrong one. */
function mutatedArb(schema: Schema): Arbitrary<unknown> {
  return objectFor(schema, 0, STRICT).chain((valid) => {
    const paths = leafPaths(valid);
    if (paths.length === 0) return fc.constant(valid);
    return fc.nat(paths.length - 1).chain((i) => {
      const path = paths[i]!;
      const current = path.reduce<any>((v, k) => v?.[k], valid);
      const parentPath = path.slice(0, -1);
      const parent = parentPath.reduce<any>((v, k) => v?.[k], valid);
      const replacements: WeightedArbitrary<unknown>[] = [
        { weight: 3, arbitrary: nastyString },
        { weight: 2, arbitrary: wrongValue },
      ];
      if (typeof current === 'string') replacements.push({ weight: 4, arbitrary: hostile(current || 'x') });
      const replaced = fc.oneof(...replacements).map((bad) => replaceAt(valid, path, bad));
      if (!parent || typeof parent !== 'object' || Array.isArray(parent)) return replaced;
      // Or a hostile key next to it (records such as `options` take any key).
      const key = hostile(String(path.at(-1))).map((k) => replaceAt(valid, parentPath, withKey(parent, k, current)));
      return fc.oneof({ weight: 4, arbitrary: replaced }, { weight: 1, arbitrary: key });
    });
  });
}

// ---- request specs --------------------------------------------------------------------

interface ImageSpec {
  format: 'png' | 'gif' | 'jpeg' | 'random';
  width: number;
  height: number;
  tail: number[];
  type: string;
}
type Payload =
  | { kind: 'none' }
  | { kind: 'json'; value: unknown }
  | { kind: 'text'; text: string }
  | { kind: 'multipart'; parts: [string, string | ImageSpec][] }
  | { kind: 'image'; image: ImageSpec }
  | { kind: 'oversized'; bytes: number; declareLength: boolean };
type Auth = 'none' | 'owner' | 'session' | 'signed' | { bearer: string } | { cookie: string } | { signature: string };

interface Spec {
  params: Record<string, string>;
  query: Record<string, string>;
  auth: Auth;
  /** `undefined`: the route takes none; `null`: not sent. */
  idempotencyKey?: string | null;
  /** `null`: no Content-Type header. */
  contentType: string | null;
  payload: Payload;
}

const JSON_TYPE = /^application\/([\w.-]+\+)?json$/i;
const mediaType = (ct: string | null) => (ct ?? '').split(';')[0]!.trim().toLowerCase();
const imageTypes = (r: Route) => Object.keys(r.content).filter((t) => t.startsWith('image/'));
const defaultType = (r: Route) => Object.keys(r.content)[0] ?? 'application/json';

/** Real ids for a path parameter: where the path names a resource this file holds, its id and a well-formed fake. */
function realIds(route: Route, name: string): string[] {
  const s = state;
  const p = route.path;
  let real: string[];
  if (p.includes('/carts') && name === 'id') real = [s.cartA, s.fakes.cart];
  else if (name === 'itemId') real = [s.mine.variantId, s.seed.variantId, s.fakes.variant];
  else if (p.includes('/products') && name === 'id') real = [s.mine.productId, s.seed.productId, s.fakes.product];
  else if (p.includes('/orders') && name === 'id') {
    // Each order route gets a real order of its own, so one route's change (a cancel) does not decide another's answers.
    const siblings = ROUTES.filter((r) => r.path.includes('/orders') && r.params.some((q) => q.name === 'id')).map((r) => r.label);
    real = [s.orderIds[Math.max(0, siblings.indexOf(route.label)) % s.orderIds.length]!, s.fakes.order];
  }
  else if (p.includes('/tokens') && name === 'id') real = [s.tokenId, s.fakes.token, 'bootstrap'];
  else if (name === 'sku') real = [s.mine.sku, s.seed.sku, 'NO-SUCH-SKU'];
  else if (name === 'provider') real = ['sim', 'stripe', 'paypal'];
  else if (name === 'checkoutId') real = [s.fakes.checkout];
  else real = [s.cartA, s.mine.productId, s.mine.sku, s.fakes.order, s.tokenId];
  return real;
}

/** Path parameter values: real ids, and random strings. */
function paramArb(route: Route, name: string): Arbitrary<string> {
  const real = realIds(route, name);
  return fc.oneof(
    { weight: 4, arbitrary: fc.constant(real[0]!) },
    { weight: 3, arbitrary: fc.constantFrom(...real) },
    { weight: 2, arbitrary: hostile(real[0]!) },
    { weight: 2, arbitrary: nastyString },
  );
}

function authArb(route: Route): Arbitrary<Auth> {
  if (route.admin) {
    return fc.oneof(
      { weight: 6, arbitrary: fc.constant<Auth>('owner') },
      { weight: 2, arbitrary: fc.constant<Auth>('none') },
      {
        weight: 1,
        arbitrary: fc.oneof(headerSafe(0, 40).map((t) => `Bearer ${t}`), headerSafe(32, 32).map((t) => `Bearer pasar_o_${t}`), fc.constantFrom('Basic YWRtaW46YWRtaW4=', 'Bearer', 'bearer  x')).map((bearer): Auth => ({ bearer })),
      },
    );
  }
  if (route.webhook) {
    return fc.oneof(
      { weight: 4, arbitrary: fc.constant<Auth>('signed') },
      { weight: 1, arbitrary: fc.constant<Auth>('none') },
      { weight: 1, arbitrary: fc.oneof(headerSafe(0, 60), fc.constant(`t=${Math.floor(Date.now() / 1000) - 3600},v1=${'0'.repeat(64)}`)).map((signature): Auth => ({ signature })) },
    );
  }
  return fc.oneof(
    { weight: 3, arbitrary: fc.constant<Auth>('none') },
    { weight: 2, arbitrary: fc.constant<Auth>('session') },
    { weight: 1, arbitrary: headerSafe(0, 40).map((cookie): Auth => ({ cookie: cookie.replace(/[;,]/g, '') })) },
  );
}

function contentTypeArb(preferred: string): Arbitrary<string | null> {
  return fc.oneof(
    { weight: 8, arbitrary: fc.constant(preferred) },
    {
      weight: 4,
      arbitrary: fc.constantFrom(
        'application/json; charset=utf-8',
        'application/vnd.api+json',
        'APPLICATION/JSON',
        'text/plain',
        'application/x-www-form-urlencoded',
        'multipart/form-data; boundary=fuzz',
        'application/x-ndjson',
        'image/png',
        'application/xml',
        null,
      ),
    },
    { weight: 1, arbitrary: headerSafe(0, 30) },
  );
}

const imageArb: Arbitrary<ImageSpec> = fc.record({
  format: fc.constantFrom('png', 'gif', 'jpeg', 'random'),
  width: fc.oneof(fc.nat(4000), fc.constantFrom(0, 1, 0x7fffffff, 0x80000000, 0xffffffff)),
  height: fc.oneof(fc.nat(4000), fc.constantFrom(0, 1, 0x7fffffff, 0x80000000, 0xffffffff)),
  tail: fc.array(fc.nat(255), { maxLength: 48 }),
  type: fc.constantFrom('image/png', 'image/gif', 'image/jpeg', 'image/webp', 'image/avif', 'image/svg+xml', 'application/octet-stream', 'IMAGE/PNG', ''),
});

/** Images whose bytes are what they claim, so uploads get past the sniffing. */
const validImageArb: Arbitrary<ImageSpec> = fc
  .record({ format: fc.constantFrom('png' as const, 'gif' as const, 'jpeg' as const), width: fc.integer({ min: 1, max: 4000 }), height: fc.integer({ min: 1, max: 4000 }), tail: fc.array(fc.nat(255), { maxLength: 32 }) })
  .map((i) => ({ ...i, type: `image/${i.format}` }));
const someImageArb = fc.oneof(validImageArb, imageArb);

/** Unparsable (or barely parsable) JSON text. */
function malformedArb(route: Route): Arbitrary<string> {
  const truncated = route.jsonSchema
    ? objectFor(route.jsonSchema, 0, STRICT).chain((v) => {
        const text = JSON.stringify(v);
        return fc.nat(Math.max(0, text.length - 1)).map((n) => text.slice(0, n));
      })
    : fc.constant('{"a":');
  return fc.oneof(
    fc.string({ maxLength: 30 }),
    fc.string({ unit: 'binary', maxLength: 30 }),
    truncated,
    fc.constantFrom(
      '{',
      '}',
      '{"a":1,}',
      "{'a':1}",
      'NaN',
      'undefined',
      '\ufeff{}',
      '{"a":1}{"b":2}',
      '{"__proto__":{"polluted":1}}',
      '[' .repeat(20_000) + ']'.repeat(20_000),
      '{"a":'.repeat(5_000) + '1' + '}'.repeat(5_000),
      '{"quantity":1e999}',
      '"\\ud800"',
      '\u0000',
    ),
  );
}

function bodyArb(route: Route): Arbitrary<{ contentType: string | null; payload: Payload }> {
  const ct = defaultType(route);
  const withType = (payload: Arbitrary<Payload>, preferred = ct) => fc.record({ contentType: contentTypeArb(preferred), payload });
  const options: WeightedArbitrary<{ contentType: string | null; payload: Payload }>[] = [
    { weight: 1, arbitrary: withType(fc.constant<Payload>({ kind: 'none' })) },
    { weight: 1, arbitrary: withType(fc.constantFrom('', ' ', '\n').map((text): Payload => ({ kind: 'text', text }))) },
    { weight: 2, arbitrary: withType(malformedArb(route).map((text): Payload => ({ kind: 'text', text })), 'application/json') },
    { weight: 2, arbitrary: withType(fc.jsonValue({ maxDepth: 3 }).map((value): Payload => ({ kind: 'json', value })), 'application/json') },
    { weight: 1, arbitrary: withType(fc.dictionary(fc.string({ maxLength: 12 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 5 }).map((value): Payload => ({ kind: 'json', value })), 'application/json') },
  ];
  if (route.jsonSchema) {
    options.push({ weight: 5, arbitrary: withType(objectFor(route.jsonSchema, 0, FUZZY).map((value): Payload => ({ kind: 'json', value })), 'application/json') });
    const asJson = fc.constantFrom('application/json', 'application/json; charset=utf-8');
    options.push({ weight: 4, arbitrary: fc.record({ contentType: asJson, payload: objectFor(route.jsonSchema, 0, STRICT).map((value): Payload => ({ kind: 'json', value })) }) });
    options.push({ weight: 6, arbitrary: fc.record({ contentType: asJson, payload: mutatedArb(route.jsonSchema).map((value): Payload => ({ kind: 'json', value })) }) });
  }
  if (route.lineSchema) {
    const line = fc.oneof(
      { weight: 3, arbitrary: objectFor(route.lineSchema, 0, FUZZY).map((v) => JSON.stringify(v)) },
      { weight: 3, arbitrary: objectFor(route.lineSchema, 0, STRICT).map((v) => JSON.stringify(v)) },
      { weight: 3, arbitrary: mutatedArb(route.lineSchema).map((v) => JSON.stringify(v)) },
      { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.stringify(v)) },
      { weight: 1, arbitrary: fc.oneof(nastyString, malformedArb(route)) },
    );
    const ndjson = fc.tuple(fc.array(line, { maxLength: 5 }), fc.constantFrom('\n', '\r\n', '\n\n')).map(([ls, sep]): Payload => ({ kind: 'text', text: ls.join(sep) }));
    options.push({ weight: 8, arbitrary: withType(ndjson) });
  }
  const form = route.content['multipart/form-data'];
  if (form?.properties) {
    const part = fc.oneof(
      ...Object.entries<Schema>(form.properties).map(([name, s]) =>
        s.format === 'binary' ? someImageArb.map((img): [string, string | ImageSpec] => [name, img]) : valueFor(s, name, 1, FUZZY).map((v): [string, string | ImageSpec] => [name, typeof v === 'string' ? v : JSON.stringify(v) ?? '']),
      ),
    );
    const partOrExtra = fc.oneof({ weight: 5, arbitrary: part }, { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...MASS_ASSIGNMENT), nastyString) });
    const parts = fc.tuple(someImageArb, fc.array(partOrExtra, { maxLength: 3 }), fc.nat(4).map((n) => n > 0)).map(([file, rest, withFile]): Payload => ({
      kind: 'multipart',
      parts: withFile ? [['file', file], ...rest] : rest,
    }));
    options.push({ weight: 6, arbitrary: fc.record({ contentType: fc.constant(null), payload: parts }) });
  }
  const images = imageTypes(route);
  if (images.length) {
    options.push({ weight: 4, arbitrary: fc.oneof(validImageArb.map((image) => ({ contentType: image.type as string | null, payload: { kind: 'image', image } as Payload })), withType(imageArb.map((image): Payload => ({ kind: 'image', image })), images[0]!)) });
  }
  if (route.webhook) {
    const event = fc.record(
      {
        id: fc.oneof(fc.constant(0).map(() => `evt_fuzz_${randomToken(6)}`), nastyString),
        type: fc.oneof(fc.constantFrom('payment.captured', 'payment.voided', 'payment.refunded', 'payment_intent.succeeded', 'charge.refunded'), nastyString),
        data: fc.oneof(fc.record({ authorizationId: fc.oneof(realistic('authorizationId')!.valid, nastyString), note: nastyString }), fc.dictionary(nastyString, fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 }), wrongValue),
      },
      { requiredKeys: [] },
    );
    options.push({ weight: 8, arbitrary: withType(fc.oneof(event, objectFor({ type: 'object', properties: {} }, 0, FUZZY)).map((value): Payload => ({ kind: 'json', value })), 'application/json') });
  }
  return fc.oneof(...options);
}

function specArb(route: Route): Arbitrary<Spec> {
  const path = route.params.filter((p) => p.in === 'path');
  const query = route.params.filter((p) => p.in === 'query');
  const takesKey = route.params.some((p) => p.in === 'header' && p.name.toLowerCase() === 'idempotency-key');
  const queryArb = fc.record(
    Object.fromEntries(query.map((p) => [p.name, fc.oneof(valueFor(p.schema, p.name, 1, FUZZY), nastyString, hostile(p.name)).map((v) => (typeof v === 'string' ? v : JSON.stringify(v) ?? ''))])),
    { requiredKeys: [] },
  ) as Arbitrary<Record<string, string>>;
  const queryOrNone = query.length ? fc.oneof(fc.constant({}), queryArb) : fc.constant({});
  return fc
    .record({
      params: fc.record(Object.fromEntries(path.map((p) => [p.name, paramArb(route, p.name)]))) as Arbitrary<Record<string, string>>,
      query: queryOrNone,
      auth: authArb(route),
      idempotencyKey: takesKey
        ? fc.option(fc.oneof(fc.constantFrom('fuzz-key-1', 'fuzz-key-2', '', ' ', 'k'.repeat(256), 'k'.repeat(255)), headerSafe(1, 40)), { nil: null, freq: 3 })
        : fc.constant(undefined),
      body: bodyArb(route),
    })
    .map(({ body, ...rest }) => ({ ...rest, ...body }));
}

/**
 * `value` with a NUL appended to every free-text string (no pattern, format or
 * enum in the schema, and not an email): what a validator lets through to the
 * handler and the database.
 */
function withNul(value: unknown, schema: Schema | undefined, name = ''): unknown {
  const s = deref(schema);
  if (typeof value === 'string') {
    const free = !s.pattern && !s.format && !s.enum && !/email/i.test(name);
    return free ? `${value}\u0000` : value;
  }
  if (Array.isArray(value)) return value.map((v) => withNul(v, s.items, name));
  if (value && typeof value === 'object') {
    const alts = ((s.anyOf ?? s.oneOf) as Schema[] | undefined)?.map(deref).find((a) => a.properties || a.additionalProperties);
    const o = alts ?? s;
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, withNul(v, o.properties?.[k] ?? (typeof o.additionalProperties === 'object' ? o.additionalProperties : undefined), k)]),
    );
  }
  return value;
}

/** The deterministic edge cases every route gets, whatever the random runs draw. */
function examples(route: Route): Spec[] {
  const path = Object.fromEntries(route.params.filter((p) => p.in === 'path').map((p) => [p.name, realIds(route, p.name)[0]!]));
  const best: Auth = route.admin ? 'owner' : route.webhook ? 'signed' : route.path.includes('/me/') ? 'session' : 'none';
  const takesKey = route.params.some((p) => p.in === 'header' && p.name.toLowerCase() === 'idempotency-key');
  const key = takesKey ? `fuzz-example-${randomToken(6)}` : undefined;
  const ct = route.jsonSchema ? 'application/json' : defaultType(route);
  const base = { params: path, query: {}, auth: best, idempotencyKey: key, contentType: ct };
  const valid = route.jsonSchema ? fc.sample(objectFor(route.jsonSchema, 0, STRICT), { numRuns: 1, seed: 42 })[0]! : {};
  const out: Spec[] = [
    { ...base, payload: { kind: 'text', text: '' } },
    { ...base, contentType: null, payload: { kind: 'none' } },
    { ...base, payload: { kind: 'text', text: '{"a":' } },
    { ...base, payload: { kind: 'json', value: withKey({ ...valid, role: 'owner', price: 1, status: 'paid', userId: 'usr_fuzz' }, '__proto__', { isAdmin: true }) } },
    { ...base, payload: { kind: 'json', value: valid } },
    { ...base, payload: { kind: 'oversized', bytes: route.limit + 1024, declareLength: true } },
    { ...base, payload: { kind: 'oversized', bytes: route.limit + 1024, declareLength: false } },
  ];
  if (route.admin) out.push({ ...base, auth: 'none', payload: { kind: 'json', value: valid } });
  if (takesKey) {
    // No key; then one key with two different bodies (409 the second time).
    out.push({ ...base, idempotencyKey: null, payload: { kind: 'json', value: valid } });
    const reused = `fuzz-reused-${randomToken(6)}`;
    out.push({ ...base, idempotencyKey: reused, payload: { kind: 'json', value: valid } });
    out.push({ ...base, idempotencyKey: reused, payload: { kind: 'json', value: { ...valid, email: 'other@example.com' } } });
  }
  // A minimal valid body, and NULs in free text where validators let them through.
  const minimal = route.jsonSchema ? fc.sample(objectFor(route.jsonSchema, 0, MINIMAL), { numRuns: 1, seed: 42 })[0]! : {};
  if (route.jsonSchema) {
    out.push({ ...base, payload: { kind: 'json', value: minimal } });
    // Another seed: the minimal body above may have taken its SKUs or slug.
    out.push({ ...base, payload: { kind: 'json', value: withNul(fc.sample(objectFor(route.jsonSchema, 0, MINIMAL), { numRuns: 1, seed: 43 })[0], route.jsonSchema) } });
    out.push({ ...base, payload: { kind: 'json', value: withNul(valid, route.jsonSchema) } });
  }
  if (route.lineSchema) {
    const line = fc.sample(objectFor(route.lineSchema, 0, MINIMAL), { numRuns: 1, seed: 42 })[0]!;
    out.push({ ...base, payload: { kind: 'text', text: JSON.stringify(line) } });
    out.push({ ...base, payload: { kind: 'text', text: JSON.stringify(withNul(line, route.lineSchema)) } });
    // Long enough to span several write batches, with the bad line last: all or nothing.
    const many = fc.sample(objectFor(route.lineSchema, 0, MINIMAL), { numRuns: 300, seed: 44 }).map((l) => JSON.stringify(l));
    out.push({ ...base, payload: { kind: 'text', text: [...many, JSON.stringify(withNul(line, route.lineSchema))].join('\n') } });
  }
  // Real ids with a NUL in the path.
  if (Object.keys(path).length) {
    const nul = Object.fromEntries(Object.entries(path).map(([k, v]) => [k, `${v}\u0000`]));
    out.push({ ...base, params: nul, payload: route.jsonSchema ? { kind: 'json', value: minimal } : { kind: 'none' } });
  }
  // Uploads: a real image, with and without NULs in its metadata.
  const query = route.params.filter((p) => p.in === 'query');
  const nulQuery = Object.fromEntries(query.filter((p) => !p.schema.pattern).map((p) => [p.name, p.name === 'productId' ? `${state.mine.productId}\u0000` : 'a\u0000b']));
  const png = (): ImageSpec => ({ format: 'png', width: 2, height: 3, tail: [...crypto.getRandomValues(new Uint8Array(16))], type: 'image/png' });
  if (imageTypes(route).length) {
    out.push({ ...base, contentType: 'image/png', payload: { kind: 'image', image: png() } });
    if (query.length) out.push({ ...base, query: nulQuery, contentType: 'image/png', payload: { kind: 'image', image: png() } });
  }
  if (route.content['multipart/form-data']) {
    const textParts = Object.entries(nulQuery).map(([k, v]): [string, string | ImageSpec] => [k, v]);
    out.push({ ...base, contentType: null, payload: { kind: 'multipart', parts: [['file', png()], ...textParts] } });
  }
  if (route.webhook) {
    out.push({ ...base, payload: { kind: 'json', value: { id: `evt_nul_${randomToken(4)}`, type: 'payment.captured', data: { note: 'a\u0000b' } } } });
    out.push({ ...base, payload: { kind: 'text', text: `{"id":"evt_deep_${randomToken(4)}","type":"x","data":{"a":${'['.repeat(10_000)}${']'.repeat(10_000)}}}` } });
  }
  return out;
}

// ---- building and sending ----------------------------------------------------------------

const encoder = new TextEncoder();
/** Replaces lone surrogates (encodeURIComponent refuses them). */
const wellFormed = (s: string) => s.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd');
const segment = (s: string) => {
  const e = encodeURIComponent(wellFormed(s));
  // `.` and `..` (also percent-encoded) are dot segments the URL parser resolves away: keep them literal.
  return /^(\.|%2e){1,2}$/i.test(e) ? e.replace(/\./g, '%252E') : e;
};

function imageBytes(img: ImageSpec): Uint8Array {
  const u32 = (n: number) => [(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
  const u16le = (n: number) => [n & 255, (n >>> 8) & 255];
  const u16 = (n: number) => [(n >>> 8) & 255, n & 255];
  let head: number[] = [];
  if (img.format === 'png') head = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52, ...u32(img.width), ...u32(img.height), 8, 6, 0, 0, 0];
  if (img.format === 'gif') head = [...encoder.encode('GIF89a'), ...u16le(img.width), ...u16le(img.height)];
  if (img.format === 'jpeg') head = [0xff, 0xd8, 0xff, 0xc0, 0x00, 0x11, 0x08, ...u16(img.height), ...u16(img.width), 3];
  return new Uint8Array([...head, ...img.tail]);
}

/** A body of `bytes` bytes of JSON-looking filler, as a stream when large (never held whole). */
function oversized(bytes: number, kind: 'json' | 'ndjson' | 'binary'): ReadableStream<Uint8Array> | Uint8Array {
  const head = encoder.encode(kind === 'ndjson' ? '{"title":"' : '{"pad":"');
  const tail = encoder.encode('"}');
  if (bytes <= 2 * 1024 * 1024) {
    const out = new Uint8Array(bytes).fill(0x61);
    out.set(head, 0);
    out.set(tail, bytes - tail.length);
    return out;
  }
  const chunk = new Uint8Array(1024 * 1024).fill(0x61);
  let sent = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent >= bytes) return controller.close();
      const n = Math.min(chunk.length, bytes - sent);
      controller.enqueue(sent === 0 ? new Uint8Array([...head, ...chunk.subarray(head.length, n)]) : chunk.slice(0, n));
      sent += n;
    },
  });
}

async function sign(raw: string): Promise<string> {
  const t = Math.floor(Date.now() / 1000);
  const key = await crypto.subtle.importKey('raw', encoder.encode(webhookSecret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const mac = new Uint8Array(await crypto.subtle.sign('HMAC', key, encoder.encode(`${t}.${raw}`)));
  return `t=${t},v1=${[...mac].map((b) => b.toString(16).padStart(2, '0')).join('')}`;
}

interface Built {
  request: Request;
  /** The body as text, when it is text (for messages and the oracles). */
  text?: string;
  bytes: number;
}

async function build(route: Route, spec: Spec): Promise<Built> {
  let path = route.path;
  for (const [name, value] of Object.entries(spec.params)) path = path.replace(`{${name}}`, segment(value));
  const qs = new URLSearchParams(Object.entries(spec.query).map(([k, v]) => [k, wellFormed(v)])).toString();
  const headers = new Headers({ 'x-region': 'sg' });
  if (spec.contentType !== null) headers.set('content-type', spec.contentType);
  if (spec.idempotencyKey != null) headers.set('idempotency-key', spec.idempotencyKey);

  let body: BodyInit | undefined;
  let text: string | undefined;
  let bytes = 0;
  const p = spec.payload;
  if (p.kind === 'json' || p.kind === 'text') {
    text = p.kind === 'json' ? (JSON.stringify(p.value) ?? 'null') : p.text;
    const encoded = encoder.encode(text);
    body = encoded;
    bytes = encoded.byteLength;
  } else if (p.kind === 'image') {
    const encoded = imageBytes(p.image);
    body = encoded;
    bytes = encoded.byteLength;
  } else if (p.kind === 'multipart') {
    const form = new FormData();
    for (const [name, value] of p.parts) {
      if (typeof value === 'string') form.append(name, wellFormed(value));
      else form.append(name, new File([imageBytes(value)], `fuzz.${value.format}`, { type: value.type }));
    }
    body = form;
    // FormData sets its own multipart Content-Type with the boundary.
    headers.delete('content-type');
  } else if (p.kind === 'oversized') {
    const kind = /ndjson/.test(spec.contentType ?? '') ? 'ndjson' : /image/.test(spec.contentType ?? '') ? 'binary' : 'json';
    body = oversized(p.bytes, kind);
    bytes = p.bytes;
    if (p.declareLength) headers.set('content-length', String(p.bytes));
  }

  const auth = spec.auth;
  if (auth === 'owner') headers.set('authorization', `Bearer ${env.ADMIN_BOOTSTRAP_TOKEN}`);
  else if (auth === 'session') {
    if (!state.user.cookie) await login();
    if (state.user.cookie) headers.set('cookie', `${SESSION_COOKIE}=${state.user.cookie}`);
  } else if (auth === 'signed') headers.set('x-pasar-signature', await sign(text ?? ''));
  else if (typeof auth === 'object' && 'bearer' in auth) headers.set('authorization', auth.bearer);
  else if (typeof auth === 'object' && 'cookie' in auth) headers.set('cookie', `${SESSION_COOKIE}=${auth.cookie}`);
  else if (typeof auth === 'object' && 'signature' in auth) headers.set('x-pasar-signature', auth.signature);

  const request = new Request(`${HOST}${path}${qs ? `?${qs}` : ''}`, { method: route.method, headers, ...(body === undefined ? {} : { body }) });
  return { request, ...(text === undefined ? {} : { text }), bytes };
}

/** Keys of `value` (recursively) that `schema` does not allow (`additionalProperties: false`). */
function unknownKeys(value: unknown, schema: Schema | undefined, at = ''): string[] {
  const s = deref(schema);
  if (!value || typeof value !== 'object' || Array.isArray(value)) {
    if (Array.isArray(value) && s.type === 'array') return value.flatMap((v, i) => unknownKeys(v, s.items, `${at}${i}.`));
    return [];
  }
  const alts = (s.anyOf ?? s.oneOf) as Schema[] | undefined;
  const objectSchema = alts ? alts.map(deref).find((a) => a.properties) : s;
  if (!objectSchema?.properties) return [];
  const out: string[] = [];
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (k in objectSchema.properties) out.push(...unknownKeys(v, objectSchema.properties[k], `${at}${k}.`));
    else if (objectSchema.additionalProperties === false) out.push(`${at}${k}`);
  }
  return out;
}

const short = (s: string | undefined, n = 400) => (s === undefined ? '(binary or none)' : s.length > n ? `${s.slice(0, n)}... (${s.length} chars)` : s);

function describeSpec(route: Route, built: Built, spec: Spec): string {
  const u = new URL(built.request.url);
  const auth = typeof spec.auth === 'string' ? spec.auth : JSON.stringify(spec.auth);
  const body = spec.payload.kind === 'oversized' ? `(${spec.payload.bytes} bytes, content-length ${spec.payload.declareLength ? 'declared' : 'not declared'})` : spec.payload.kind === 'multipart' ? `multipart ${JSON.stringify(spec.payload.parts.map(([n, v]) => [n, typeof v === 'string' ? short(v, 80) : v]))}` : spec.payload.kind === 'image' ? `image ${JSON.stringify(spec.payload.image)}` : short(built.text);
  return `${route.method} ${u.pathname}${u.search} [auth=${auth}, content-type=${JSON.stringify(spec.contentType)}${spec.idempotencyKey !== undefined ? `, idempotency-key=${JSON.stringify(spec.idempotencyKey)}` : ''}] body=${body}`;
}

async function runOne(db: DatabaseClients, route: Route, spec: Spec): Promise<void> {
  if (route.path.startsWith('/api/carts/')) await refillCartA();
  const built = await build(route, spec);
  const before = await snapshot(db);
  const res = await exports.default.fetch(built.request);
  const text = await res.text();
  const status = res.status;

  const st = stats.get(route.label)!;
  st.requests++;
  st.statuses[status] = (st.statuses[status] ?? 0) + 1;

  const problems: string[] = [];
  if (status >= 500) problems.push(`status ${status} (never 5xx: every dependency is up)`);
  let answer: any;
  try {
    answer = JSON.parse(text);
  } catch {
    problems.push(`the answer is not JSON (content-type ${res.headers.get('content-type')})`);
  }
  if (!/application\/json/i.test(res.headers.get('content-type') ?? '')) problems.push(`content-type ${res.headers.get('content-type')}, not JSON`);
  if (status >= 400) {
    const e = answer?.error;
    if (typeof e?.code !== 'string' || !/^[a-z][a-z0-9]*(_[a-z0-9]+)*$/.test(e.code)) problems.push('error.code is not a snake_case string');
    if (typeof e?.message !== 'string' || e.message.trim() === '') problems.push('error.message is not a non-empty string');
  }

  // What the contract says the answer must be, where this request makes it certain: it reached
  // the route (no empty path segment), authenticated where the route needs it. A bad path
  // parameter or header may be reported first (400 invalid_request), and a route may take
  // less than the storefront's 64 KiB without documenting it (413).
  const reachedRoute = Object.values(spec.params).every((v) => v !== '');
  const authOk = reachedRoute && (!route.admin || spec.auth === 'owner');
  const code = answer?.error?.code;
  const notInBody = status === 400 && code === 'invalid_request' && Array.isArray(answer?.error?.details) && answer.error.details.length > 0 && answer.error.details.every((d: any) => d?.in !== 'body');
  const tooLarge = status === 413 && code === 'payload_too_large' && built.bytes > 1024;
  const declaredJson = JSON_TYPE.test(mediaType(spec.contentType));
  if (spec.payload.kind === 'oversized' && authOk && (!route.admin || Object.keys(route.content).length > 0)) {
    if (status !== 413 || code !== 'payload_too_large') problems.push(`a body of ${spec.payload.bytes} bytes (limit ${route.limit}) must be 413 payload_too_large`);
  }
  if (route.jsonSchema && authOk && declaredJson && built.text !== undefined && built.bytes <= route.limit) {
    const decoded = new TextDecoder().decode(encoder.encode(built.text)); // what the server reads (BOM stripped, surrogates replaced)
    let parsed: unknown;
    let ok = true;
    try {
      parsed = JSON.parse(decoded);
    } catch {
      ok = false;
    }
    const emptyAllowed = !route.bodyRequired && decoded.trim() === '';
    if (!ok && !emptyAllowed && !(status === 400 && code === 'invalid_json') && !notInBody && !tooLarge) problems.push('malformed JSON must be 400 invalid_json');
    if (ok) {
      const extra = unknownKeys(parsed, route.jsonSchema);
      if (extra.length && !(status === 400 && code === 'invalid_request') && !tooLarge) problems.push(`unknown field(s) ${extra.join(', ')} must be 400 invalid_request`);
    }
  }

  const after = await snapshot(db);
  if (status >= 400 || status < 200) {
    if (after.mark !== before.mark) problems.push(`refused, yet rows changed: ${await changesSince(db, before.mark)}`);
    if (after.carts !== before.carts) problems.push(`refused, yet a cart changed in Redis: ${short(before.carts, 300)} -> ${short(after.carts, 300)}`);
  } else {
    st.accepted++;
    // Accepted writes may go on a little after the answer (checkout saga, queue consumers):
    // wait for the database to settle, longer where an order event may have been queued.
    const wrote = after.mark !== before.mark;
    await quiet(db, /\/checkout/.test(route.path) || (wrote && /\/orders\//.test(route.path)) ? 1_500 : wrote ? 300 : 100);
  }

  // Keep the shopper session alive: a logout or password change ends it, a password change sets a new one.
  if (spec.auth === 'session') {
    const fresh = sessionFrom(res);
    if (fresh !== undefined) state.user.cookie = fresh || null;
    if (status < 300 && typeof answer?.changed === 'boolean' && built.text) state.user.password = JSON.parse(built.text).newPassword;
  }

  if (problems.length) {
    throw new Error(`${problems.join('; ')}\n  request: ${describeSpec(route, built, spec)}\n  answer: ${status} ${short(text, 600)}`);
  }
}

/** Puts both lines back into cart A (earlier routes may have removed them), outside the fuzzing. */
async function refillCartA(): Promise<void> {
  const cart = await (await call(`/api/carts/${state.cartA}`)).json<any>();
  const held = new Set<string>((cart.items ?? []).map((i: any) => i.variantId));
  for (const variantId of [state.mine.variantId, state.seed.variantId]) {
    if (!held.has(variantId)) await call(`/api/carts/${state.cartA}/items`, json('POST', { variantId, quantity: 1 }));
  }
}

// ---- the tests ---------------------------------------------------------------------------

describe('fuzzing every write route of the OpenAPI document', () => {
  it(`the document lists the write routes (at least ${MIN_WRITE_ROUTES})`, () => {
    expect(docRes.status).toBe(200);
    expect(ROUTES.length, ROUTES.map((r) => r.label).join('\n')).toBeGreaterThanOrEqual(MIN_WRITE_ROUTES);
  });

  for (const route of ROUTES) {
    it(route.label, async () => {
      stats.set(route.label, { requests: 0, accepted: 0, statuses: {} });
      const db = createDatabase(env);
      try {
        await refillCartA();
        await quiet(db, 250);
        const cases = examples(route);
        await fc.assert(
          fc.asyncProperty(specArb(route), (spec) => runOne(db, route, spec)),
          { numRuns: NUM_RUNS + cases.length, examples: cases.map((s) => [s] as [Spec]), plugins: [fc.interruptAfterTimeLimit(45_000)] },
        );
      } finally {
        await db.close();
      }
    }, 120_000);
  }
});
