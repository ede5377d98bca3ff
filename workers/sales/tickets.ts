/**
 * Queue tickets and the shopper's device: how a ticket is bound to the
 * session that took it, and which queue object holds it.
 *
 * A ticket is a signed token (workers/lib/signed.ts) naming the sale, the
 * region, the queue shard, the ticket id and the device it was issued to,
 * with an expiry. The device is an HttpOnly `__Host-pasar_device` cookie of
 * 128 random bits, set on the first ticket; a ticket presented with another
 * device (copied to another browser, shared by a bot farm) is refused, and
 * an edited or made-up one fails its MAC. Whether the ticket is admitted is
 * the queue object's answer, never the token's.
 */
import type { Context } from 'hono';
import { getCookie, setCookie } from 'hono/cookie';
import { REGIONS, type RegionCode } from '../../db/regions';
import type { SaleQueue, SaleQueueConfig } from '../../durable-objects/sale-queue';
import { stableHash } from '../inventory/shards';
import { randomToken } from '../lib/ids';
import { signToken, verifyToken } from '../lib/signed';
import type { AppEnv } from '../types';

/** Device cookie name (without the `__Host-` prefix Hono adds). */
export const DEVICE_COOKIE = 'pasar_device';
/** How long a ticket token stays valid: long enough to wait out a big sale's queue. */
export const TICKET_TTL_MS = 2 * 3_600_000;
/** Header API clients send their ticket(s) in (comma-separated); browsers use the cookie. */
export const TICKET_HEADER = 'x-queue-ticket';

const DEVICE_FORMAT = /^[0-9a-hjkmnp-tv-z]{26}$/;
const TICKET_SCOPE = 'sale-ticket';

/** The cookie a sale's ticket travels in. */
export function ticketCookieName(saleId: string): string {
  return `pasar_q_${saleId}`;
}

/** The device id of this request, if it has a well-formed one. */
export function deviceOf(c: Context<AppEnv>): string | undefined {
  const id = getCookie(c, DEVICE_COOKIE, 'host');
  return id && DEVICE_FORMAT.test(id) ? id : undefined;
}

/** The device id of this request, minting one (and its cookie) when it has none. */
export function ensureDevice(c: Context<AppEnv>): string {
  const existing = deviceOf(c);
  if (existing) return existing;
  const id = randomToken(16);
  setCookie(c, DEVICE_COOKIE, id, { prefix: 'host', httpOnly: true, secure: true, sameSite: 'Lax', path: '/', maxAge: 365 * 86_400 });
  return id;
}

/** What a ticket token says. */
export interface TicketClaims {
  /** Sale id. */
  s: string;
  r: RegionCode;
  /** Queue shard. */
  q: number;
  /** Ticket id at that shard. */
  t: string;
  /** Device it was issued to. */
  d: string;
  /** Expiry, epoch ms. */
  x: number;
}

/** Signs a ticket for the device that took it. */
export function mintTicket(secret: string, claims: Omit<TicketClaims, 'x'>, now = Date.now()): Promise<string> {
  return signToken({ ...claims, x: now + TICKET_TTL_MS }, TICKET_SCOPE, secret);
}

/** Why a presented ticket was refused. */
export type TicketRefusal = 'invalid' | 'expired' | 'other_session';

/** The claims of `token` if it is a ticket this server issued to `device` and still valid. */
export async function readTicket(secret: string | readonly string[], token: string, device: string | undefined, now = Date.now()): Promise<TicketClaims | TicketRefusal> {
  const claims = await verifyToken<TicketClaims>(token, TICKET_SCOPE, secret, 512);
  if (!claims || typeof claims.s !== 'string' || typeof claims.t !== 'string' || typeof claims.d !== 'string' || !(claims.r in REGIONS)) return 'invalid';
  if (!(claims.x > now)) return 'expired';
  if (!device || claims.d !== device) return 'other_session';
  return claims;
}

/** Object name of queue shard `shard` of a sale in a region. */
export function queueName(saleId: string, region: RegionCode, shard: number): string {
  return `sale:${saleId}:${region}:${shard}`;
}

/** The stub of a sale's queue shard, placed near its region. */
export function queueStub(env: Env, saleId: string, region: RegionCode, shard: number): DurableObjectStub<SaleQueue> {
  const ns = env.SALE_QUEUE;
  return ns.get(ns.idFromName(queueName(saleId, region, shard)), { locationHint: REGIONS[region].locationHint });
}

/** The queue shard a device waits in: fixed per device, so pressing "buy" again finds the same ticket. */
export function queueShardFor(device: string, saleId: string, shards: number): number {
  return stableHash(`${saleId}:${device}`) % Math.max(1, shards);
}

/** Pushes a sale's settings to every queue object of every region it runs in. */
export async function configureQueues(env: Env, sale: Omit<SaleQueueConfig, 'region' | 'shard'> & { regions: RegionCode[] }): Promise<void> {
  const { regions, ...config } = sale;
  await Promise.all(
    regions.flatMap((region) => Array.from({ length: config.shards }, (_, shard) => queueStub(env, config.saleId, region, shard).configure({ ...config, region, shard }))),
  );
}
