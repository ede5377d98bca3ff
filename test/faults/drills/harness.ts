/**
 * Steps of the failure drills, in workerd: a shopper with a cookie jar (as a
 * browser keeps the store's cookies), the control server of
 * test/faults/global-setup.ts, and the books that must balance after every
 * outage: one order per confirmed checkout, one captured charge per order,
 * stock received = available + held + sold.
 */
import { env, exports } from 'cloudflare:workers';
import { expect } from 'vitest';
import { regionLevels } from '../../../workers/inventory/shards';
import { randomToken } from '../../../workers/lib/ids';
import { checkoutBody, ordersFor, simAuthorizations } from '../../workers/shop';

/** A dependency the control server can take away. */
export type Target = 'primary' | 'replica' | 'redis' | 'payments';

/** POSTs `path` to the control server of test/faults/global-setup.ts; anything but 204 is an error. */
async function control(path: string): Promise<void> {
  const res = await fetch(`${env.TEST_CONTROL_URL}${path}`, { method: 'POST' });
  if (res.status !== 204) throw new Error(`control ${path}: ${res.status} ${await res.text()}`);
}

/** Tells the harness to do `action` to `target` (stop, start, pass, cut, drop, latency). */
export const fault = (target: Target, action: 'stop' | 'start' | 'pass' | 'cut' | 'drop' | 'latency', ms?: number) =>
  control(`/faults/${target}/${action}${ms ? `?ms=${ms}` : ''}`);

/** Every server started and every proxy passing traffic. */
export const healAll = () => control('/faults/heal');

/** Standby controls: hold or release its replay, or wait until it has replayed everything committed so far. */
export const replica = (action: 'pause' | 'resume' | 'caught-up') => control(action === 'caught-up' ? '/replica/caught-up' : `/replica/replay/${action}`);

/** Which database server answered a response's reads, from its `Server-Timing` (`db;desc="…"`). */
export function dbServer(res: Response): string | undefined {
  return /db;desc="([^"]*)"/.exec(res.headers.get('server-timing') ?? '')?.[1];
}

/** Calls `fn` until `ok(result)` holds or `ms` pass; returns the last result. */
export async function until<T>(fn: () => Promise<T>, ok: (value: T) => boolean, ms = 15_000, everyMs = 200): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await fn();
    if (ok(value) || Date.now() > deadline) return value;
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** A shopper in Singapore whose client keeps the store's cookies between requests, as a browser does. */
export class Shopper {
  private readonly jar = new Map<string, string>();

  /** Calls the Worker with the jar's cookies; keeps what it sets. */
  async call(path: string, init: { method?: string; body?: unknown; headers?: Record<string, string> } = {}): Promise<Response> {
    const headers: Record<string, string> = { 'x-region': 'sg', ...init.headers };
    if (init.body !== undefined) headers['content-type'] = 'application/json';
    if (this.jar.size) headers.cookie = [...this.jar].map(([k, v]) => `${k}=${v}`).join('; ');
    const res = await exports.default.fetch(
      new Request(`http://pasar.test${path}`, { method: init.method ?? 'GET', headers, ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }) }),
    );
    for (const set of res.headers.getSetCookie()) {
      const [pair, ...attrs] = set.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq);
      if (attrs.some((a) => /^\s*max-age=0\s*$/i.test(a))) this.jar.delete(name);
      else this.jar.set(name, pair!.slice(eq + 1));
    }
    return res;
  }

  /** Whether the jar holds cookie `name` (with its `__Host-` prefix). */
  has(name: string): boolean {
    return this.jar.has(name);
  }

  /** Registers and signs in a new account. */
  async signUp(): Promise<void> {
    const tag = randomToken(8);
    const creds = { email: `drill.${tag}@example.com`, password: `pw-${tag}-kopi-o`, name: `Drill ${tag}` };
    expect((await this.call('/api/auth/register', { method: 'POST', body: creds })).status).toBe(201);
    expect((await this.call('/api/auth/login', { method: 'POST', body: { email: creds.email, password: creds.password } })).status).toBe(200);
  }

  /** A new cart holding `quantity` of `variantId`; its id. */
  async cartWith(variantId: string, quantity: number): Promise<string> {
    const cart = await (await this.call('/api/carts', { method: 'POST', body: {} })).json<{ id: string }>();
    const add = await this.call(`/api/carts/${cart.id}/items`, { method: 'POST', body: { variantId, quantity } });
    expect(add.status).toBe(200);
    return cart.id;
  }

  /** Starts a checkout of `cartId` paying with the simulator's `token`; its id. */
  async checkout(cartId: string, token = 'tok_ok'): Promise<string> {
    const res = await this.call('/api/checkout', {
      method: 'POST',
      headers: { 'idempotency-key': `drill-${randomToken()}` },
      body: checkoutBody(cartId, token),
    });
    expect(res.status).toBe(202);
    return (await res.json<{ checkoutId: string }>()).checkoutId;
  }

  /** Follows a checkout until it is confirmed or failed. */
  async settle(checkoutId: string, ms = 30_000): Promise<{ status: string; reason?: string; orderId?: string; orderToken?: string }> {
    return until(
      async () => (await this.call(`/api/checkout/${checkoutId}`)).json<any>(),
      (s) => s.status === 'confirmed' || s.status === 'failed',
      ms,
      100,
    );
  }
}

/**
 * The books of one checkout after the dust settled: a confirmed checkout has
 * exactly one order and one captured charge; a failed one has no order and
 * no charge standing (nothing authorised left, nothing captured).
 */
export async function expectBooksBalance(checkoutId: string, outcome: 'confirmed' | 'failed'): Promise<void> {
  const orders = await ordersFor(checkoutId);
  const auths = await simAuthorizations(checkoutId);
  if (outcome === 'confirmed') {
    expect(orders).toHaveLength(1);
    expect(auths.filter((a) => a.status === 'captured')).toHaveLength(1);
    expect(auths.filter((a) => a.status === 'authorized')).toHaveLength(0);
  } else {
    expect(orders.filter((o) => o.status !== 'cancelled')).toHaveLength(0);
    expect(auths.filter((a) => a.status === 'captured' || a.status === 'authorized')).toHaveLength(0);
  }
}

/** Asserts the stock of `variantId` in Singapore: nothing held, `sold` sold, the rest available. */
export async function expectStock(variantId: string, received: number, sold: number): Promise<void> {
  const level = (await regionLevels(env, 'sg', [variantId])).get(variantId)!;
  expect(level).toMatchObject({ received, sold, held: 0, available: received - sold });
}
