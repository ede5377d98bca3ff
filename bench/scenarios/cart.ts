/**
 * Cart scenarios, on the store and on the Node baseline, and the Redis
 * ceiling they are read against:
 *
 * - `ceiling-redis`: one Redis GET over Upstash REST from a bare Worker,
 *   through the same bridge and Redis as the store: the least a cart request
 *   can cost here;
 * - `cart-read` / `cart-add`: `GET /api/carts/:id` and `POST
 *   /api/carts/:id/items` on the store (edge), over many carts of a few
 *   lines each, priced on every answer;
 * - `baseline-product`, `baseline-cart-read`, `baseline-cart-add`: the same
 *   product page and cart requests served by a plain Node.js server (Hono on
 *   @hono/node-server, `pg`, `ioredis`, no edge caches: bench/baseline/).
 *
 * Cart ids cannot be known in advance: `prepareCartLines` makes the carts on
 * the target just before the scenario and builds its request list from them.
 */
import { buildSeed } from '../../db/seed';
import { SIZES, loadCatalog, spread, type RequestLine, type Scenario } from './catalog';

/** What a cart scenario makes before it runs, and what it then sends. */
export interface CartSpec {
  action: 'read' | 'add';
  /** Carts made first, one line each. */
  carts: number;
  /** Variants the lines and the adds draw from (active, priced in `region`). */
  variants: string[];
  region: string;
}

/** Carts per scenario: adds spread over carts × variants keep each cart small and each line far from 99. */
const CARTS = 1_000;
/** Variants the adds draw from: a cart ends with at most this many lines, as a shopper's would. */
const CART_VARIANTS = 8;

/** Active variants priced in `region`, spread over the seed catalog. */
function cartVariants(region: string): string[] {
  const data = buildSeed();
  const priced = new Set(data.prices.filter((p) => p.regionCode === region).map((p) => p.variantId));
  const activeProducts = new Set(data.products.filter((p) => p.status === 'active').map((p) => p.id));
  const variants = data.variants.filter((v) => v.status === 'active' && activeProducts.has(v.productId) && priced.has(v.id)).map((v) => v.id);
  return spread(variants, CART_VARIANTS);
}

/** The cart scenarios, the Redis ceiling and the baseline's. */
export function cartScenarios(): Scenario[] {
  const region = 'sg';
  const variants = cartVariants(region);
  const products = spread(loadCatalog().productPairs, SIZES.productCacheSet);
  const spec = (action: CartSpec['action']): CartSpec => ({ action, carts: CARTS, variants, region });
  return [
    {
      name: 'ceiling-redis',
      title: 'One Redis GET over Upstash REST from a bare Worker, through the store\'s bridge and Redis',
      target: 'ceiling',
      mode: 'random',
      measure: [{ path: '/redis', region: '' }],
      expect: 'redis',
    },
    {
      name: 'cart-read',
      title: `\`GET /api/carts/:id\` over ${CARTS.toLocaleString('en')} carts of 1-${CART_VARIANTS} lines, priced on each answer`,
      target: 'edge',
      mode: 'random',
      measure: [],
      expect: '-',
      carts: spec('read'),
    },
    {
      name: 'cart-add',
      title: `\`POST /api/carts/:id/items\` (1 unit of one of ${CART_VARIANTS} variants) over ${CARTS.toLocaleString('en')} carts; answers the priced cart`,
      target: 'edge',
      mode: 'random',
      measure: [],
      expect: '-',
      carts: spec('add'),
    },
    {
      name: 'baseline-product',
      title: `Node baseline: the product page, the same ${products.length} product x region URLs as \`product-cache\`, from Postgres each time`,
      target: 'baseline',
      mode: 'random',
      measure: products,
      expect: '-',
    },
    {
      name: 'baseline-cart-read',
      title: 'Node baseline: `GET /api/carts/:id`, as `cart-read`',
      target: 'baseline',
      mode: 'random',
      measure: [],
      expect: '-',
      carts: spec('read'),
    },
    {
      name: 'baseline-cart-add',
      title: 'Node baseline: `POST /api/carts/:id/items`, as `cart-add`',
      target: 'baseline',
      mode: 'random',
      measure: [],
      expect: '-',
      carts: spec('add'),
    },
  ];
}

/** Makes `spec.carts` carts on `baseUrl` (one line each) and returns the scenario's request list. */
export async function prepareCartLines(baseUrl: string, spec: CartSpec): Promise<RequestLine[]> {
  const headers = { 'content-type': 'application/json', 'x-region': spec.region };
  const ids: string[] = [];
  const makeOne = async (i: number) => {
    const res = await fetch(`${baseUrl}/api/carts`, { method: 'POST', headers, body: '{}' });
    if (res.status !== 201) throw new Error(`POST /api/carts answered ${res.status}: ${(await res.text()).slice(0, 200)}`);
    const { id } = (await res.json()) as { id: string };
    const add = await fetch(`${baseUrl}/api/carts/${id}/items`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ variantId: spec.variants[i % spec.variants.length], quantity: 1 }),
    });
    if (add.status !== 200) throw new Error(`adding to a cart answered ${add.status}: ${(await add.text()).slice(0, 200)}`);
    ids.push(id);
  };
  for (let i = 0; i < spec.carts; i += 32) {
    await Promise.all(Array.from({ length: Math.min(32, spec.carts - i) }, (_, k) => makeOne(i + k)));
  }
  if (spec.action === 'read') return ids.map((id) => ({ path: `/api/carts/${id}`, region: spec.region }));
  return ids.flatMap((id) =>
    spec.variants.map((variantId) => ({ path: `/api/carts/${id}/items`, region: spec.region, method: 'POST' as const, body: JSON.stringify({ variantId, quantity: 1 }) })),
  );
}
