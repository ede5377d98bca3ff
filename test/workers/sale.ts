/**
 * Flash-sale steps for tests in workerd: schedule a sale through the admin
 * API, and shoppers with their own cookie jar (device, queue ticket) and
 * client address who join the queue, follow it, fill a cart and check out.
 */
import { expect } from 'vitest';
import { randomToken } from '../../workers/lib/ids';
import { admin, call, checkoutBody, stockedVariant } from './shop';

/** Settings of a test sale; it starts `startsInMs` from now. */
export interface TestSaleOptions {
  units: number;
  cap: number;
  rate: number;
  shards?: number;
  queueShards?: number;
  startsInMs?: number;
  admissionTtlSeconds?: number;
}

/** A product with `units` in sg, and a sale of it starting soon. */
export async function scheduledSale(opts: TestSaleOptions): Promise<{ saleId: string; sku: string; variantId: string; startsAt: number }> {
  const { sku, variantId } = await stockedVariant(opts.units, 990, opts.shards ?? 1);
  const startsAt = Date.now() + (opts.startsInMs ?? 1_500);
  const res = await admin('/admin/api/sales', 'POST', {
    name: `Test drop ${sku}`,
    skus: [sku],
    regions: ['sg'],
    startsAt: new Date(startsAt).toISOString(),
    perShopperCap: opts.cap,
    admissionRate: opts.rate,
    ...(opts.queueShards ? { queueShards: opts.queueShards } : {}),
    ...(opts.admissionTtlSeconds ? { admissionTtlSeconds: opts.admissionTtlSeconds } : {}),
  });
  expect(res.status).toBe(201);
  const sale = await res.json<{ id: string }>();
  return { saleId: sale.id, sku, variantId, startsAt };
}

/** Waits until `at` (epoch ms). */
export const until = (at: number) => new Promise((r) => setTimeout(r, Math.max(0, at - Date.now())));

/** A shopper in Singapore with a cookie jar and an address of its own. */
export class SaleShopper {
  readonly cookies = new Map<string, string>();
  ticket?: string;

  constructor(readonly ip = `10.${(Math.random() * 255) | 0}.${(Math.random() * 255) | 0}.${(Math.random() * 255) | 0}`) {}

  /** Calls the Worker with this shopper's cookies and address; keeps the cookies it sets. */
  async call(path: string, init: RequestInit = {}, extra: Record<string, string> = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    headers.set('x-region', 'sg');
    headers.set('cf-connecting-ip', this.ip);
    if (init.body !== undefined) headers.set('content-type', 'application/json');
    if (this.cookies.size) headers.set('cookie', [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '));
    for (const [k, v] of Object.entries(extra)) headers.set(k, v);
    const res = await call(path, { ...init, headers });
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const i = pair!.indexOf('=');
      this.cookies.set(pair!.slice(0, i), pair!.slice(i + 1));
    }
    return res;
  }

  /** `POST /api/sales/:id/tickets`. */
  async join(saleId: string, body: unknown = {}): Promise<Response> {
    const res = await this.call(`/api/sales/${saleId}/tickets`, { method: 'POST', body: JSON.stringify(body) });
    if (res.ok) this.ticket = (await res.clone().json<{ ticket: string }>()).ticket;
    return res;
  }

  /** `GET /api/sales/:id/queue` (the ticket from the cookie). */
  async status(saleId: string): Promise<any> {
    const res = await this.call(`/api/sales/${saleId}/queue`);
    expect(res.status).toBe(200);
    return res.json<any>();
  }

  /** Polls until the ticket is no longer waiting. */
  async waitTurn(saleId: string, ms = 30_000): Promise<any> {
    const deadline = Date.now() + ms;
    for (;;) {
      const s = await this.status(saleId);
      if (s.state !== 'waiting') return s;
      if (Date.now() > deadline) throw new Error(`still waiting after ${ms} ms: ${JSON.stringify(s)}`);
      await new Promise((r) => setTimeout(r, Math.min(s.pollAfterMs, 250)));
    }
  }

  /** A new cart holding `quantity` of `variantId`. */
  async cart(variantId: string, quantity: number): Promise<string> {
    const cart = await (await this.call('/api/carts', { method: 'POST', body: '{}' })).json<{ id: string }>();
    const add = await this.call(`/api/carts/${cart.id}/items`, { method: 'POST', body: JSON.stringify({ variantId, quantity }) });
    expect(add.status).toBe(200);
    return cart.id;
  }

  /** `POST /api/checkout` of `cartId` with this shopper's cookies (device, ticket). */
  checkout(cartId: string, extra: Record<string, string> = {}): Promise<Response> {
    return this.call('/api/checkout', { method: 'POST', body: JSON.stringify(checkoutBody(cartId)) }, { 'idempotency-key': `key-${randomToken()}`, ...extra });
  }
}

/** A message the queue's WebSocket sent, with when this side received it (epoch ms). */
export interface QueueMessage {
  at: number;
  message: any;
}

/** An open `GET /api/sales/:id/queue/ws` of one shopper: every message kept in order of arrival. */
export interface QueueSocket {
  ws: WebSocket;
  openedAt: number;
  messages: QueueMessage[];
  close(): void;
}

/** Opens the shopper's live queue view (cookies: device, ticket) through `retry`; `onMessage` sees each message as it arrives. */
export async function openQueueSocket(
  retry: (attempt: () => Promise<Response>) => Promise<Response>,
  shopper: SaleShopper,
  saleId: string,
  onMessage: (m: QueueMessage) => void = () => {},
): Promise<QueueSocket> {
  const res = await retry(() => shopper.call(`/api/sales/${saleId}/queue/ws`, { headers: { upgrade: 'websocket' } }));
  if (res.status !== 101 || !res.webSocket) throw new Error(`queue socket refused: ${res.status} ${await res.text()}`);
  const ws = res.webSocket;
  const messages: QueueMessage[] = [];
  ws.addEventListener('message', (event) => {
    const m = { at: Date.now(), message: JSON.parse(String(event.data)) };
    messages.push(m);
    onMessage(m);
  });
  ws.accept();
  return {
    ws,
    openedAt: Date.now(),
    messages,
    close: () => {
      try {
        ws.close(1000, 'done');
      } catch {
        // Already closed.
      }
    },
  };
}

/** Runs `fn` over `items` with at most `limit` in flight; results in input order. */
export async function inPool<T, R>(items: T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      for (let i = next++; i < items.length; i = next++) out[i] = await fn(items[i]!, i);
    }),
  );
  return out;
}
