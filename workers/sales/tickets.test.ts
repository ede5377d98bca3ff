/**
 * Queue tickets as tokens: what a ticket says survives the round trip, and
 * anything the server did not sign, an old ticket or one presented by another
 * device is refused with its reason. Which shard a device waits in is a pure
 * function of the device and the sale.
 */
import { describe, expect, it } from 'vitest';
import { signToken } from '../lib/signed';
import { randomToken } from '../lib/ids';
import { mintTicket, queueName, queueShardFor, readTicket, TICKET_TTL_MS, ticketCookieName, type TicketClaims } from './tickets';

const SECRET = 'tickets-test-secret';
const device = () => randomToken(16);
const claimsFor = (d: string): Omit<TicketClaims, 'x'> => ({ s: `sale_${randomToken(8)}`, r: 'sg', q: 2, t: `tkt_${randomToken(8)}`, d });

/** Re-encodes one part of a `<payload>.<mac>` token. */
const b64url = (text: string) => btoa(text).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
const payloadOf = (token: string) => JSON.parse(atob(token.split('.')[0]!.replace(/-/g, '+').replace(/_/g, '/'))) as TicketClaims;

describe('mintTicket / readTicket', () => {
  it('reads back exactly what was minted, with an expiry TICKET_TTL_MS after issue', async () => {
    const d = device();
    const claims = claimsFor(d);
    const now = Date.now();
    const token = await mintTicket(SECRET, claims, now);
    expect(token).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    expect(await readTicket(SECRET, token, d, now + 1)).toEqual({ ...claims, x: now + TICKET_TTL_MS });
  });

  it("refuses an edited payload as 'invalid' (the MAC no longer matches)", async () => {
    const d = device();
    const token = await mintTicket(SECRET, claimsFor(d));
    const [, mac] = token.split('.');
    // Another ticket id, shard or a later expiry: each edit keeps the old MAC.
    for (const edit of [{ t: 'tkt_someone_admitted' }, { q: 0 }, { x: Date.now() + 100 * TICKET_TTL_MS }]) {
      const forged = `${b64url(JSON.stringify({ ...payloadOf(token), ...edit }))}.${mac}`;
      expect(await readTicket(SECRET, forged, d)).toBe('invalid');
    }
  });

  it("refuses an edited or missing MAC, a made-up token and another secret's ticket as 'invalid'", async () => {
    const d = device();
    const token = await mintTicket(SECRET, claimsFor(d));
    const [payload, mac] = token.split('.') as [string, string];
    const flipped = `${payload}.${mac[0] === 'A' ? 'B' : 'A'}${mac.slice(1)}`;
    for (const bad of [flipped, `${payload}.`, payload, `${token}.extra`, 'not-a-ticket', '', 'x'.repeat(600)]) {
      expect(await readTicket(SECRET, bad, d), bad.slice(0, 40)).toBe('invalid');
    }
    expect(await readTicket('another-secret', token, d)).toBe('invalid');
  });

  it("refuses a token of the right secret but another scope, or without ticket fields, as 'invalid'", async () => {
    const d = device();
    const claims = { ...claimsFor(d), x: Date.now() + 60_000 };
    // Signed by this server, but as a cursor, not a ticket.
    expect(await readTicket(SECRET, await signToken(claims, 'cursor', SECRET), d)).toBe('invalid');
    expect(await readTicket(SECRET, await signToken({ ...claims, r: 'xx' }, 'sale-ticket', SECRET), d)).toBe('invalid');
    expect(await readTicket(SECRET, await signToken({ x: claims.x, d }, 'sale-ticket', SECRET), d)).toBe('invalid');
  });

  it("refuses a ticket past its expiry as 'expired'", async () => {
    const d = device();
    const issued = Date.now() - TICKET_TTL_MS - 1;
    const token = await mintTicket(SECRET, claimsFor(d), issued);
    expect(await readTicket(SECRET, token, d)).toBe('expired');
    // At the expiry instant itself it is already over.
    expect(await readTicket(SECRET, token, d, issued + TICKET_TTL_MS)).toBe('expired');
    expect(await readTicket(SECRET, token, d, issued + TICKET_TTL_MS - 1)).toMatchObject({ d });
  });

  it("refuses a ticket presented by another device, or by none, as 'other_session'", async () => {
    const owner = device();
    const token = await mintTicket(SECRET, claimsFor(owner));
    expect(await readTicket(SECRET, token, device())).toBe('other_session');
    expect(await readTicket(SECRET, token, undefined)).toBe('other_session');
    expect(await readTicket(SECRET, token, owner)).toMatchObject({ d: owner });
  });
});

describe('queueShardFor', () => {
  it('puts a device in the same shard every time, within 0..shards-1', () => {
    const sale = `sale_${randomToken(8)}`;
    for (const shards of [1, 2, 3, 7, 16]) {
      for (let i = 0; i < 50; i++) {
        const d = device();
        const shard = queueShardFor(d, sale, shards);
        expect(Number.isInteger(shard)).toBe(true);
        expect(shard).toBeGreaterThanOrEqual(0);
        expect(shard).toBeLessThan(shards);
        expect(queueShardFor(d, sale, shards)).toBe(shard);
      }
    }
  });

  it('spreads devices over all shards, and treats 0 or fewer shards as one', () => {
    const sale = `sale_${randomToken(8)}`;
    const seen = new Set(Array.from({ length: 400 }, () => queueShardFor(device(), sale, 4)));
    expect([...seen].sort()).toEqual([0, 1, 2, 3]);
    expect(queueShardFor(device(), sale, 0)).toBe(0);
    expect(queueShardFor(device(), sale, -3)).toBe(0);
  });

  it('names queue objects and ticket cookies per sale, region and shard', () => {
    expect(queueName('sale_a', 'sg', 0)).toBe('sale:sale_a:sg:0');
    expect(queueName('sale_a', 'my', 3)).not.toBe(queueName('sale_a', 'sg', 3));
    expect(ticketCookieName('sale_a')).toBe('pasar_q_sale_a');
  });
});
