/**
 * Storefront API of flash sales: the sale (for the countdown), a ticket for
 * the queue, and the ticket's place in it (poll, or a WebSocket the queue
 * object keeps open while hibernating).
 *
 * A ticket is bound to the device that took it (workers/sales/tickets.ts)
 * and is the shopper's pass at checkout once the queue has admitted it; the
 * cap on units per shopper is enforced by the inventory objects in the
 * checkout saga, not here.
 */
import { createRoute, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import type { QueueStatus } from '../../durable-objects/sale-queue';
import { afterResponse } from '../lib/context';
import { ApiError, notFound } from '../lib/errors';
import { createRouter, errorResponse } from '../lib/router';
import { signingSecrets } from '../lib/signed';
import { clientIp, enforceRateLimit } from '../middleware/rate-limit';
import type { AppEnv } from '../types';
import { countRejection, type SaleRejection } from './rejections';
import { SaleSchema } from './schemas';
import { effectiveEnd, saleForShoppers, type Sale } from './store';
import {
  ensureDevice,
  deviceOf,
  mintTicket,
  queueShardFor,
  queueStub,
  readTicket,
  TICKET_HEADER,
  TICKET_TTL_MS,
  ticketCookieName,
  type TicketClaims,
} from './tickets';
import { turnstileEnabled, verifyTurnstile } from './turnstile';

const IdParam = z.object({ id: z.string().min(1).max(64).openapi({ example: 'sale_5x2m…' }) });

const PublicSaleSchema = SaleSchema.pick({ id: true, name: true, state: true, startsAt: true, endsAt: true, perShopperCap: true, regions: true })
  .extend({
    variants: z.array(z.object({ variantId: z.string(), sku: z.string(), productSlug: z.string() })),
    serverTime: z.string().openapi({ description: 'The server\'s clock, so a countdown does not trust the device\'s' }),
    turnstileSiteKey: z.string().nullable().openapi({ description: 'Show the Turnstile widget with this key and send its token with the ticket request; null: no check' }),
  })
  .openapi('PublicSale');

const QueueStatusSchema = z
  .object({
    ticketId: z.string(),
    state: z.enum(['waiting', 'admitted', 'expired', 'sold_out', 'ended']),
    position: z.number().int(),
    ahead: z.number().int().openapi({ description: 'Tickets ahead still waiting' }),
    admittedThrough: z.number().int(),
    ratePerSecond: z.number(),
    estimatedWaitSeconds: z.number().int(),
    issuedAt: z.number().int(),
    admittedAt: z.number().int().optional(),
    admissionExpiresAt: z.number().int().optional().openapi({ description: 'An admitted ticket checks out until then (epoch ms)' }),
    soldOut: z.boolean(),
    soldOutAt: z.number().int().optional(),
    startsAt: z.number().int(),
    endsAt: z.number().int().nullable(),
    pollAfterMs: z.number().int().openapi({ description: 'When to ask again (or follow `GET …/queue/ws`)' }),
  })
  .openapi('QueueStatus');

const TicketSchema = QueueStatusSchema.extend({
  ticket: z.string().openapi({ description: `The signed ticket; browsers keep it in a cookie, API clients send it as \`${TICKET_HEADER}\` (also at checkout)` }),
  saleId: z.string(),
  region: z.string(),
}).openapi('QueueTicket');

const TicketBody = z
  .object({ turnstileToken: z.string().min(1).max(2048).optional().openapi({ description: 'Token from the Turnstile widget, when the sale asks for one' }) })
  .strict();

/** The sale `id` as shoppers in this request's region may see it; 404 otherwise. */
export async function shopperSale(c: Context<AppEnv>, id: string): Promise<Sale> {
  const sale = await saleForShoppers(c.var.services.db.read, c.env.CATALOG, id);
  if (!sale) throw notFound('No such sale.');
  if (!sale.regions.includes(c.var.region.code)) {
    await refused(c, sale.id, 'not_in_region');
    throw notFound(`This sale does not run in ${c.var.region.code}.`);
  }
  return sale;
}

/** Counts a refusal for the report after the answer has gone. */
async function refused(c: Context<AppEnv>, saleId: string, reason: SaleRejection): Promise<void> {
  await afterResponse(c, countRejection(c.var.services.redis, saleId, reason));
}

/** How soon a page should ask again: sooner as its turn nears. */
export function pollAfter(status: QueueStatus): number {
  if (status.state !== 'waiting') return status.state === 'sold_out' ? 2_000 : 5_000;
  return Math.min(5_000, Math.max(500, Math.round((status.estimatedWaitSeconds * 1000) / 4)));
}

/** Keeps the ticket in its cookie for browsers. */
function setTicketCookie(c: Context<AppEnv>, saleId: string, ticket: string): void {
  setCookie(c, ticketCookieName(saleId), ticket, { prefix: 'host', httpOnly: true, secure: true, sameSite: 'Lax', path: '/', maxAge: Math.floor(TICKET_TTL_MS / 1000) });
}

/**
 * The tickets this request presents (cookies of every sale, and the
 * `x-queue-ticket` header), checked: each must be one this server signed,
 * unexpired, for this device. A bad one is a 403 `invalid_ticket`: a forged
 * ticket, or one copied from another session, is refused outright. With
 * `staleCookies: 'skip'` (checkout), a bad ticket *cookie* is dropped
 * instead and cleared: a browser whose device cookie was lost, or that kept
 * an old sale's ticket past a secret rotation, must still be able to buy
 * anything else; without a valid ticket its sale lines fail `not_admitted`.
 */
export async function presentedTickets(c: Context<AppEnv>, saleId?: string, staleCookies: 'refuse' | 'skip' = 'refuse'): Promise<TicketClaims[]> {
  const header = (c.req.header(TICKET_HEADER) ?? '').split(',').map((t) => t.trim()).filter(Boolean).slice(0, 10);
  const cookies = Object.entries(getCookie(c))
    .filter(([name]) => name.startsWith('__Host-pasar_q_') && (!saleId || name === `__Host-${ticketCookieName(saleId)}`))
    .slice(0, 10);
  const device = deviceOf(c);
  const out: TicketClaims[] = [];
  const seen = new Set<string>();
  for (const [token, cookie] of [...header.map((t) => [t, undefined] as const), ...cookies.map(([name, t]) => [t, name] as const)]) {
    if (seen.has(token)) continue;
    seen.add(token);
    const claims = await readTicket(signingSecrets(c.env), token, device);
    if (typeof claims === 'string') {
      if (cookie && staleCookies === 'skip') {
        deleteCookie(c, cookie.slice('__Host-'.length), { prefix: 'host', secure: true, path: '/' });
        continue;
      }
      const messages = { invalid: 'This queue ticket was not issued by this store.', expired: 'This queue ticket has expired; join the queue again.', other_session: 'This queue ticket belongs to another session.' };
      throw new ApiError(403, 'invalid_ticket', messages[claims], { reason: claims });
    }
    if (!saleId || claims.s === saleId) out.push(claims);
  }
  return out;
}

/** The ticket of `sale` this request presents (for this region first), or null; 403 for a bad one, counted. */
async function ticketOf(c: Context<AppEnv>, sale: Sale): Promise<TicketClaims | null> {
  const tickets = await presentedTickets(c, sale.id).catch(async (err) => {
    if (err instanceof ApiError && err.code === 'invalid_ticket') await refused(c, sale.id, 'invalid_ticket');
    throw err;
  });
  return tickets.find((t) => t.r === c.var.region.code) ?? tickets[0] ?? null;
}

/** The ticket of `sale` this request presents, or 404 `no_ticket`. */
async function ticketFor(c: Context<AppEnv>, sale: Sale): Promise<TicketClaims> {
  const ticket = await ticketOf(c, sale);
  if (!ticket) throw new ApiError(404, 'no_ticket', 'No ticket for this sale here: take one with POST /api/sales/{id}/tickets.');
  return ticket;
}

/**
 * Puts this device in the queue of `sale` in the request's region (or finds
 * its place again): the rate limit per IP, the sale's window, Turnstile, then
 * the queue object; sets the device and ticket cookies. Shared by
 * `POST /api/sales/:id/tickets` and the sale page's "Join the queue".
 */
export async function joinQueue(c: Context<AppEnv>, sale: Sale, turnstileToken: string | undefined): Promise<{ status: QueueStatus; ticket: string; created: boolean }> {
  const region = c.var.region.code;
  try {
    await enforceRateLimit(c, 'sale_ticket', clientIp(c));
  } catch (err) {
    if (err instanceof ApiError && err.status === 429) await refused(c, sale.id, 'rate_limited');
    throw err;
  }
  if (sale.state === 'scheduled') {
    await refused(c, sale.id, 'not_started');
    throw new ApiError(422, 'sale_not_started', `The sale starts at ${sale.startsAt}.`, { startsAt: sale.startsAt });
  }
  if (sale.state === 'ended') {
    await refused(c, sale.id, 'ended');
    throw new ApiError(422, 'sale_ended', 'This sale has ended.');
  }
  // Siteverify takes the visitor's address as Cloudflare saw it, whole: not
  // clientIp(), which counts an IPv6 client by its /64 (not an address).
  const visitorIp = c.req.header('cf-connecting-ip')?.trim() || 'unknown';
  // A device asking again for the ticket it holds passed the check when it got it: a reload keeps its place without a new challenge.
  // Not once that ticket's admission has run out: the new place at the back is a new ticket.
  let holds = false;
  if (sale.turnstile && turnstileEnabled(c.env)) {
    const held = (await presentedTickets(c, sale.id, 'skip')).find((t) => t.r === region);
    const state = held && (await queueStub(c.env, sale.id, region, held.q).status(held.t))?.state;
    holds = state === 'waiting' || state === 'admitted' || state === 'sold_out';
  }
  if (sale.turnstile && turnstileEnabled(c.env) && !holds && !(await verifyTurnstile(c.env, turnstileToken, visitorIp))) {
    await refused(c, sale.id, 'turnstile_failed');
    throw new ApiError(403, 'turnstile_failed', 'The bot check did not pass. Reload the page and try again.');
  }
  const device = ensureDevice(c);
  const shard = queueShardFor(device, sale.id, sale.queueShards);
  const result = await queueStub(c.env, sale.id, region, shard).issue(device);
  if (!result.ok) {
    // The queue object's clock decides at the edges of the window.
    if (result.reason === 'not_started') throw new ApiError(422, 'sale_not_started', `The sale starts at ${sale.startsAt}.`, { startsAt: sale.startsAt });
    if (result.reason === 'ended') throw new ApiError(422, 'sale_ended', 'This sale has ended.');
    throw notFound('No such sale.');
  }
  const ticket = await mintTicket(c.env.SIGNING_SECRET, { s: sale.id, r: region, q: shard, t: result.status.ticketId, d: device });
  setTicketCookie(c, sale.id, ticket);
  return { status: result.status, ticket, created: result.created };
}

/** This device's place in the queue of `sale`, or null when it holds no ticket the queue still knows. 403 for a bad ticket. */
export async function queueStatus(c: Context<AppEnv>, sale: Sale): Promise<QueueStatus | null> {
  const ticket = await ticketOf(c, sale);
  return ticket ? queueStub(c.env, sale.id, ticket.r, ticket.q).status(ticket.t) : null;
}

export const saleRoutes = createRouter()
  .openapi(
    createRoute({
      method: 'get',
      path: '/sales/{id}',
      tags: ['Storefront'],
      summary: 'A flash sale: when it starts, what it sells, the cap per shopper',
      request: { params: IdParam },
      responses: { 200: { description: 'The sale', content: { 'application/json': { schema: PublicSaleSchema } } }, 404: errorResponse('Unknown sale, or not in this region') },
    }),
    async (c) => {
      const sale = await shopperSale(c, c.req.valid('param').id);
      c.header('cache-control', 'no-store');
      return c.json(
        {
          id: sale.id,
          name: sale.name,
          state: sale.state,
          startsAt: sale.startsAt,
          endsAt: effectiveEnd(sale) === null ? null : new Date(effectiveEnd(sale)!).toISOString(),
          perShopperCap: sale.perShopperCap,
          regions: sale.regions,
          variants: sale.variants.map(({ variantId, sku, productSlug }) => ({ variantId, sku, productSlug })),
          serverTime: new Date().toISOString(),
          turnstileSiteKey: sale.turnstile && turnstileEnabled(c.env) ? (c.env.TURNSTILE_SITE_KEY ?? null) : null,
        },
        200,
      );
    },
  )
  .openapi(
    createRoute({
      method: 'post',
      path: '/sales/{id}/tickets',
      tags: ['Storefront'],
      summary: 'Joins the queue of a live sale: a ticket bound to this device',
      description:
        'Asking again from the same device returns the same ticket (the same place). Rate limited per client IP (`sale_ticket`); with Turnstile configured, needs `turnstileToken`. The ticket is set as an HttpOnly cookie and returned for API clients.',
      request: { params: IdParam, body: { required: false, content: { 'application/json': { schema: TicketBody } } } },
      responses: {
        201: { description: 'A new ticket', content: { 'application/json': { schema: TicketSchema } } },
        200: { description: 'The ticket this device already holds', content: { 'application/json': { schema: TicketSchema } } },
        403: errorResponse('Turnstile refused the token (`turnstile_failed`)'),
        404: errorResponse('Unknown sale, or not in this region'),
        422: errorResponse('`sale_not_started` (details: startsAt) or `sale_ended`'),
        429: errorResponse('Too many tickets from this address (`rate_limited`)'),
      },
    }),
    async (c) => {
      const sale = await shopperSale(c, c.req.valid('param').id);
      const body = c.req.valid('json') as z.infer<typeof TicketBody> | undefined;
      const joined = await joinQueue(c, sale, body?.turnstileToken);
      c.header('cache-control', 'no-store');
      return c.json({ ...joined.status, pollAfterMs: pollAfter(joined.status), ticket: joined.ticket, saleId: sale.id, region: c.var.region.code }, joined.created ? 201 : 200);
    },
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/sales/{id}/queue',
      tags: ['Storefront'],
      summary: 'Where this device\'s ticket stands: position, estimate, admitted, sold out',
      description: `The ticket comes from its cookie or the \`${TICKET_HEADER}\` header. For live updates open \`GET /api/sales/{id}/queue/ws\` (WebSocket) instead of polling.`,
      request: { params: IdParam },
      responses: {
        200: { description: 'The ticket\'s status', content: { 'application/json': { schema: QueueStatusSchema } } },
        403: errorResponse('A ticket this store did not issue, expired, or issued to another session (`invalid_ticket`)'),
        404: errorResponse('Unknown sale, or no ticket (`no_ticket`)'),
      },
    }),
    async (c) => {
      const sale = await shopperSale(c, c.req.valid('param').id);
      const ticket = await ticketFor(c, sale);
      const status = await queueStub(c.env, sale.id, ticket.r, ticket.q).status(ticket.t);
      if (!status) throw new ApiError(404, 'no_ticket', 'This queue does not know the ticket any more: join it again.');
      c.header('cache-control', 'no-store');
      return c.json({ ...status, pollAfterMs: pollAfter(status) }, 200);
    },
  );

/**
 * `GET /api/sales/:id/queue/ws`: the page's live view of its ticket. The
 * Worker checks the ticket and hands the upgrade to the queue object, which
 * sends the status at once, `{ type: "progress", admittedThrough, soldOut }`
 * as the queue moves, and the ticket's own status when it is admitted.
 * Outside OpenAPI: a 101 switch has no JSON body to describe.
 */
saleRoutes.get('/sales/:id/queue/ws', async (c) => {
  if (c.req.header('upgrade')?.toLowerCase() !== 'websocket') throw new ApiError(426, 'upgrade_required', 'Open this URL as a WebSocket.', undefined, { Upgrade: 'websocket' });
  const sale = await shopperSale(c, c.req.param('id'));
  const ticket = await ticketFor(c, sale);
  const url = new URL(c.req.url);
  url.search = `?ticket=${encodeURIComponent(ticket.t)}`;
  const res = await queueStub(c.env, sale.id, ticket.r, ticket.q).fetch(new Request(url, c.req.raw));
  // A response from a stub has immutable headers, and the app's middleware
  // (security headers, the region echo) adds some on the way out: hand on a
  // copy, the socket with it.
  if (!res.webSocket) throw new ApiError(404, 'no_ticket', 'This queue does not know the ticket any more: join it again.');
  return new Response(null, { status: res.status, headers: res.headers, webSocket: res.webSocket });
});
