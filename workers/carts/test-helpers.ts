/**
 * Shared by the cart tests (workerd): requests against the Worker, and
 * products of their own made through the admin API, so the tests can
 * reprice and archive without touching the seed catalog other tests read.
 *
 * Test files run in parallel against one Postgres, so the products made here
 * are priced only in Taiwan and Thailand by default: the Singapore listings
 * and pages that other tests inspect (newest products, images) never see them.
 */
import { env, exports } from 'cloudflare:workers';
import { Redis } from '@upstash/redis/cloudflare';
import { inject } from 'vitest';
import { randomToken } from '../lib/ids';

export const fx = inject('seedFixtures');

export const call = (path: string, init?: RequestInit) => exports.default.fetch(new Request(`http://pasar.test${path}`, init));

/** A JSON request to the storefront API (region `tw` unless named). */
export function api(path: string, method = 'GET', body?: unknown, region = 'tw'): Promise<Response> {
  return call(path, {
    method,
    headers: { 'content-type': 'application/json', 'x-region': region },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
}

/** A JSON request to the admin API with the owner token. */
export function admin(path: string, method: string, body?: unknown): Promise<Response> {
  return call(path, {
    method,
    headers: { authorization: `Bearer ${env.ADMIN_BOOTSTRAP_TOKEN}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

export interface TestProduct {
  id: string;
  slug: string;
  variants: { id: string; sku: string; status: string }[];
}

type Prices = Record<string, { amount: number } | null>;

/** Default test prices: whole New Taiwan dollars, and satang. */
export const TW_PRICE = 590;
export const TH_PRICE = 25900;

const created: string[] = [];

/** Archives every product this test file created (call from `afterAll`). */
export async function archiveCreatedProducts(): Promise<void> {
  await Promise.all(created.splice(0).map((id) => admin(`/admin/api/products/${id}`, 'DELETE')));
}

/**
 * Creates an active product with `count` variants priced `prices` (default:
 * {@link TW_PRICE} in tw, {@link TH_PRICE} in th; nothing elsewhere).
 * `variantStatus` applies to all. {@link archiveCreatedProducts} archives them.
 */
export async function createProduct(
  options: { count?: number; prices?: Prices; status?: 'active' | 'draft'; variantStatus?: 'active' | 'archived' } = {},
): Promise<TestProduct> {
  const tag = randomToken(6).toUpperCase();
  const prices = options.prices ?? { tw: { amount: TW_PRICE }, th: { amount: TH_PRICE } };
  const res = await admin('/admin/api/products', 'POST', {
    title: `Cart Test Kopi ${tag}`,
    category: fx.busiestCategorySlug,
    ...(options.status ? { status: options.status } : {}),
    variants: Array.from({ length: options.count ?? 1 }, (_, i) => ({
      sku: `CART-${tag}-${i + 1}`,
      title: `Size ${i + 1}`,
      ...(options.variantStatus ? { status: options.variantStatus } : {}),
      prices,
    })),
  });
  if (res.status !== 201) throw new Error(`product create failed: ${res.status} ${await res.text()}`);
  const body = await res.json<TestProduct>();
  created.push(body.id);
  return { id: body.id, slug: body.slug, variants: body.variants.map((v) => ({ id: v.id, sku: v.sku, status: v.status })) };
}

/** Creates a cart through the API and returns its body. */
export async function newCart(region = 'tw'): Promise<{ id: string; region: string; items: any[]; subtotal: { amount: number; currency: string } }> {
  const res = await api('/api/carts', 'POST', {}, region);
  if (res.status !== 201) throw new Error(`cart create failed: ${res.status} ${await res.text()}`);
  return res.json();
}

/** A Redis client straight to the test Redis (not through the Worker). */
export function testRedis(url = env.UPSTASH_REDIS_REST_URL): Redis {
  return new Redis({ url, token: env.UPSTASH_REDIS_REST_TOKEN, retry: { retries: 0, backoff: () => 0 }, enableTelemetry: false });
}
