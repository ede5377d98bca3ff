/**
 * Turnstile before a flash-sale ticket, against dev/payment-sim.ts's
 * siteverify stand-in (Cloudflare's test secret keys): the verifier on its
 * own (pass, fail, spent, missing token, siteverify down), then the ticket
 * route of an app whose environment has Turnstile configured.
 */
import { createExecutionContext, waitOnExecutionContext } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { admin, stockedVariant } from '../../test/workers/shop';
import { scheduledSale, until } from '../../test/workers/sale';
import { createApp } from '../app';
import { ApiError } from '../lib/errors';
import { turnstileEnabled, verifyTurnstile } from './turnstile';

const SECRETS = {
  pass: '1x0000000000000000000000000000000AA',
  fail: '2x0000000000000000000000000000000AA',
  spent: '3x0000000000000000000000000000000AA',
} as const;
const SITE_KEY = '1x00000000000000000000AA';
const DUMMY_TOKEN = 'XXXX.DUMMY.TOKEN.XXXX';
const VERIFY_URL = `${env.TEST_PAYMENT_SIM_URL}/turnstile/v0/siteverify`;

const verifier = (secret: string, url = VERIFY_URL) => ({ TURNSTILE_SECRET_KEY: secret, TURNSTILE_VERIFY_URL: url });
const errorOf = async (res: Response) => (await res.json<{ error: { code: string; message: string; details?: any } }>()).error;

describe('verifyTurnstile', () => {
  it('is on only where a secret is configured', () => {
    expect(turnstileEnabled({ TURNSTILE_SECRET_KEY: SECRETS.pass })).toBe(true);
    expect(turnstileEnabled({ TURNSTILE_SECRET_KEY: '' })).toBe(false);
    expect(turnstileEnabled({})).toBe(false);
  });

  it('accepts a token siteverify passes', async () => {
    expect(await verifyTurnstile(verifier(SECRETS.pass), DUMMY_TOKEN, '203.0.113.9')).toBe(true);
    expect(await verifyTurnstile(verifier(SECRETS.pass), DUMMY_TOKEN, 'unknown')).toBe(true);
  });

  it('refuses a token siteverify fails, and one already spent', async () => {
    expect(await verifyTurnstile(verifier(SECRETS.fail), DUMMY_TOKEN, '203.0.113.9')).toBe(false);
    expect(await verifyTurnstile(verifier(SECRETS.spent), DUMMY_TOKEN, '203.0.113.9')).toBe(false);
  });

  it('refuses a missing or empty token without asking siteverify', async () => {
    // An unreachable siteverify would be a 503: false means it was never asked.
    const down = verifier(SECRETS.pass, 'http://127.0.0.1:1/turnstile/v0/siteverify');
    expect(await verifyTurnstile(down, undefined, '203.0.113.9')).toBe(false);
    expect(await verifyTurnstile(down, '', '203.0.113.9')).toBe(false);
  });

  it('answers 503 unavailable (never a pass) when siteverify is unreachable or erroring', async () => {
    for (const url of ['http://127.0.0.1:1/turnstile/v0/siteverify', `${env.TEST_PAYMENT_SIM_URL}/turnstile/v0/nowhere`]) {
      const outcome = verifyTurnstile(verifier(SECRETS.pass, url), DUMMY_TOKEN, '203.0.113.9');
      await expect(outcome).rejects.toBeInstanceOf(ApiError);
      await expect(outcome).rejects.toMatchObject({ status: 503, code: 'unavailable', headers: { 'Retry-After': '5' } });
    }
  });
});

describe('POST /api/sales/:id/tickets with Turnstile configured', () => {
  const app = createApp();
  const withTurnstile = (secret: string, url = VERIFY_URL): Env => ({ ...env, TURNSTILE_SITE_KEY: SITE_KEY, TURNSTILE_SECRET_KEY: secret, TURNSTILE_VERIFY_URL: url });

  /** Calls the app with `bindings`, as a shopper in Singapore from an address of its own, and waits for its background work. */
  async function ask(bindings: Env, path: string, init: { method?: string; body?: unknown } = {}, ip = `198.51.100.${(Math.random() * 250) | 1}`): Promise<Response> {
    const headers: Record<string, string> = { 'x-region': 'sg', 'cf-connecting-ip': ip };
    if (init.body !== undefined) headers['content-type'] = 'application/json';
    const ctx = createExecutionContext();
    const res = await app.fetch(
      new Request(`http://pasar.test${path}`, { method: init.method ?? 'GET', headers, ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}) }),
      bindings,
      ctx,
    );
    await waitOnExecutionContext(ctx);
    return res;
  }
  const join = (bindings: Env, saleId: string, body?: unknown) => ask(bindings, `/api/sales/${saleId}/tickets`, { method: 'POST', body });

  it('shows the site key on the sale, so the page can render the widget', async () => {
    const sale = await scheduledSale({ units: 3, cap: 1, rate: 100, startsInMs: 60_000 });
    const res = await ask(withTurnstile(SECRETS.pass), `/api/sales/${sale.saleId}`);
    expect(res.status).toBe(200);
    expect((await res.json<any>()).turnstileSiteKey).toBe(SITE_KEY);
    // Where Turnstile is not configured the page shows no widget.
    expect((await (await ask(env, `/api/sales/${sale.saleId}`)).json<any>()).turnstileSiteKey).toBeNull();
  });

  it('refuses a ticket without a token, or with one siteverify fails, with 403 turnstile_failed and no ticket', async () => {
    const sale = await scheduledSale({ units: 3, cap: 1, rate: 100 });
    await until(sale.startsAt + 50);
    for (const [bindings, body] of [
      [withTurnstile(SECRETS.pass), undefined],
      [withTurnstile(SECRETS.pass), {}],
      [withTurnstile(SECRETS.fail), { turnstileToken: DUMMY_TOKEN }],
      [withTurnstile(SECRETS.spent), { turnstileToken: DUMMY_TOKEN }],
    ] as const) {
      const res = await join(bindings, sale.saleId, body);
      expect(res.status, JSON.stringify(body)).toBe(403);
      expect((await errorOf(res)).code).toBe('turnstile_failed');
      expect(res.headers.getSetCookie().some((c) => c.startsWith('__Host-pasar_q_'))).toBe(false);
    }
    const report = await (await admin(`/admin/api/sales/${sale.saleId}/report`, 'GET')).json<any>();
    expect(report.rejected.turnstile_failed).toBe(4);
    expect(report.totals.ticketsIssued).toBe(0);
  });

  it('issues a ticket (201) for a token siteverify passes', async () => {
    const sale = await scheduledSale({ units: 3, cap: 1, rate: 100 });
    await until(sale.startsAt + 50);
    const res = await join(withTurnstile(SECRETS.pass), sale.saleId, { turnstileToken: DUMMY_TOKEN });
    expect(res.status).toBe(201);
    const ticket = await res.json<any>();
    expect(ticket).toMatchObject({ saleId: sale.saleId, region: 'sg', position: expect.any(Number), ticket: expect.any(String) });
    expect(res.headers.getSetCookie().some((c) => c.startsWith(`__Host-pasar_q_${sale.saleId}=`))).toBe(true);
  });

  it('keeps the place of a device that asks again for the ticket it holds, without a new challenge; another device still needs one', async () => {
    const sale = await scheduledSale({ units: 3, cap: 1, rate: 100 });
    await until(sale.startsAt + 50);
    const first = await join(withTurnstile(SECRETS.pass), sale.saleId, { turnstileToken: DUMMY_TOKEN });
    expect(first.status).toBe(201);
    const cookie = first.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
    const ctx = createExecutionContext();
    const again = await app.fetch(
      new Request(`http://pasar.test/api/sales/${sale.saleId}/tickets`, { method: 'POST', headers: { 'x-region': 'sg', 'content-type': 'application/json', cookie }, body: '{}' }),
      withTurnstile(SECRETS.fail),
      ctx,
    );
    await waitOnExecutionContext(ctx);
    expect(again.status).toBe(200);
    expect((await again.json<any>()).ticketId).toBe((await first.json<any>()).ticketId);
    expect((await join(withTurnstile(SECRETS.fail), sale.saleId, {})).status).toBe(403);
  });

  it('sends siteverify the visitor address itself, also for an IPv6 shopper (not the /64 the rate limit counts)', async () => {
    const sale = await scheduledSale({ units: 3, cap: 1, rate: 100 });
    await until(sale.startsAt + 50);
    // The stand-in refuses a remoteip that is not an address (bad-request), as a malformed request.
    const res = await ask(withTurnstile(SECRETS.pass), `/api/sales/${sale.saleId}/tickets`, { method: 'POST', body: { turnstileToken: DUMMY_TOKEN } }, '2001:db8:85a3:1::7');
    expect(res.status, await res.clone().text()).toBe(201);
  });

  it('answers 503 rather than a ticket when siteverify is down', async () => {
    const sale = await scheduledSale({ units: 3, cap: 1, rate: 100 });
    await until(sale.startsAt + 50);
    const res = await join(withTurnstile(SECRETS.pass, 'http://127.0.0.1:1/siteverify'), sale.saleId, { turnstileToken: DUMMY_TOKEN });
    expect(res.status).toBe(503);
    expect((await errorOf(res)).code).toBe('unavailable');
  });

  it('skips the check for a sale created with turnstile: false, even with a failing secret', async () => {
    const { sku } = await stockedVariant(3, 990);
    const startsAt = Date.now() + 1_500;
    const created = await admin('/admin/api/sales', 'POST', {
      name: `No bot check ${sku}`,
      skus: [sku],
      regions: ['sg'],
      startsAt: new Date(startsAt).toISOString(),
      perShopperCap: 1,
      admissionRate: 100,
      turnstile: false,
    });
    expect(created.status).toBe(201);
    const sale = await created.json<any>();
    expect(sale.turnstile).toBe(false);
    expect((await (await ask(withTurnstile(SECRETS.fail), `/api/sales/${sale.id}`)).json<any>()).turnstileSiteKey).toBeNull();
    await until(startsAt + 50);
    const res = await join(withTurnstile(SECRETS.fail), sale.id, {});
    expect(res.status).toBe(201);
  });
});
