/**
 * Stripe in workerd: webhook signatures made by the official `stripe`
 * package's test-header helper, checked by our verifier (./signature.ts) and
 * by the real webhook route; and the provider switch in ./provider.ts.
 *
 * The `stripe` package loads in workerd (its `workerd` export condition picks
 * the WebCrypto build), but there its synchronous
 * `webhooks.generateTestHeaderString` refuses to run ("SubtleCryptoProvider
 * cannot be used in a synchronous context"), so these tests use the async
 * twin, `generateTestHeaderStringAsync`, which builds the same header
 * (`t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<payload>">`).
 * ./stripe.node.test.ts also runs the synchronous helper in Node. The package
 * is a devDependency only: the Worker never imports it.
 *
 * Every verdict of ours is also compared with the package's own verifier,
 * `webhooks.constructEventAsync`, so the two agree on what is genuine.
 */
import { createExecutionContext, waitOnExecutionContext } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { sql } from 'drizzle-orm';
import Stripe from 'stripe';
import { describe, expect, it } from 'vitest';
import { createDatabase } from '../../db/client';
import worker from '../index';
import { randomToken } from '../lib/ids';
import { paymentProvider } from './provider';
import { DEFAULT_TOLERANCE_SECONDS, verifySignature, type VerifyResult } from './signature';

const SECRET = 'whsec_test_5Fq2sZ3kQm8Yv1Lr9Nw4Tb7Hc0Xd6Pe';
const OLD_SECRET = 'whsec_test_rotated_out_0Aa1Bb2Cc3Dd4Ee5Ff';
const helper = Stripe.webhooks;

/** A Stripe-shaped event body, with multi-byte UTF-8 so an encoding slip shows. */
const eventBody = (id = `evt_${randomToken()}`) =>
  JSON.stringify({
    id,
    object: 'event',
    type: 'payment_intent.amount_capturable_updated',
    api_version: '2026-10-28',
    created: Math.floor(Date.now() / 1000),
    data: { object: { id: `pi_${randomToken()}`, object: 'payment_intent', status: 'requires_capture', metadata: { reference: 'chk_x' }, description: 'Sambal ijo 200 g — 辣椒醬 🌶' } },
    livemode: false,
  });

const nowSeconds = () => Math.floor(Date.now() / 1000);

/** Ours and Stripe's verdicts on one header, with the clock at `now`. */
async function verdicts(secret: string, header: string, payload: string, now: number): Promise<{ ours: VerifyResult; stripe: boolean }> {
  const ours = await verifySignature(secret, header, payload, now);
  let stripe = true;
  try {
    // receivedAt (the last argument, in milliseconds) pins Stripe's clock to ours.
    await helper.constructEventAsync(payload, header, secret, DEFAULT_TOLERANCE_SECONDS, undefined, now * 1000);
  } catch {
    stripe = false;
  }
  return { ours, stripe };
}

describe('Stripe-Signature headers from the stripe package, verified by verifySignature', () => {
  it('accepts a genuine header, as Stripe does', async () => {
    const payload = eventBody();
    const now = nowSeconds();
    const header = await helper.generateTestHeaderStringAsync({ payload, secret: SECRET });
    expect(header).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    const v = await verdicts(SECRET, header, payload, now);
    expect(v.ours).toMatchObject({ ok: true });
    expect(v.stripe).toBe(true);
  });

  it('refuses a tampered payload: one character, added whitespace, re-serialised JSON', async () => {
    const payload = eventBody();
    const now = nowSeconds();
    const header = await helper.generateTestHeaderStringAsync({ payload, secret: SECRET, timestamp: now });
    for (const tampered of [payload.replace('requires_capture', 'requires_captur3'), `${payload} `, JSON.stringify(JSON.parse(payload), null, 2)]) {
      const v = await verdicts(SECRET, header, tampered, now);
      expect(v.ours).toEqual({ ok: false, reason: 'signature_mismatch' });
      expect(v.stripe).toBe(false);
    }
  });

  it('refuses a header signed with another secret', async () => {
    const payload = eventBody();
    const now = nowSeconds();
    const header = await helper.generateTestHeaderStringAsync({ payload, secret: 'whsec_someone_else', timestamp: now });
    const v = await verdicts(SECRET, header, payload, now);
    expect(v.ours).toEqual({ ok: false, reason: 'signature_mismatch' });
    expect(v.stripe).toBe(false);
  });

  it('refuses a timestamp beyond the 5 minute tolerance, and takes one just inside it', async () => {
    const payload = eventBody();
    const now = nowSeconds();
    const stale = await helper.generateTestHeaderStringAsync({ payload, secret: SECRET, timestamp: now - DEFAULT_TOLERANCE_SECONDS - 1 });
    const old = await verdicts(SECRET, stale, payload, now);
    expect(old.ours).toEqual({ ok: false, reason: 'timestamp_out_of_tolerance' });
    expect(old.stripe).toBe(false);

    const edge = await helper.generateTestHeaderStringAsync({ payload, secret: SECRET, timestamp: now - DEFAULT_TOLERANCE_SECONDS + 1 });
    const ok = await verdicts(SECRET, edge, payload, now);
    expect(ok.ours).toMatchObject({ ok: true });
    expect(ok.stripe).toBe(true);

    // A replay cannot refresh the timestamp: t is inside the signed string.
    const refreshed = stale.replace(/^t=\d+/, `t=${now}`);
    expect((await verdicts(SECRET, refreshed, payload, now)).ours).toEqual({ ok: false, reason: 'signature_mismatch' });
  });

  it('accepts either v1 of a header signed with two secrets (rotation), not a third', async () => {
    const payload = eventBody();
    const now = nowSeconds();
    const withNew = await helper.generateTestHeaderStringAsync({ payload, secret: SECRET, timestamp: now });
    const withOld = await helper.generateTestHeaderStringAsync({ payload, secret: OLD_SECRET, timestamp: now });
    // What Stripe sends while an endpoint secret is being rolled: one t, a v1 per secret.
    const both = `${withOld},v1=${withNew.split('v1=')[1]}`;
    expect(both).toMatch(/^t=\d+,v1=[0-9a-f]{64},v1=[0-9a-f]{64}$/);
    for (const secret of [SECRET, OLD_SECRET]) {
      const v = await verdicts(secret, both, payload, now);
      expect(v.ours).toMatchObject({ ok: true });
      expect(v.stripe).toBe(true);
    }
    const third = await verdicts('whsec_neither', both, payload, now);
    expect(third.ours).toEqual({ ok: false, reason: 'signature_mismatch' });
    expect(third.stripe).toBe(false);
  });

  it('trusts no other scheme: a v0 signature alone is refused', async () => {
    const payload = eventBody();
    const now = nowSeconds();
    const v0 = await helper.generateTestHeaderStringAsync({ payload, secret: SECRET, timestamp: now, scheme: 'v0' });
    expect(v0).toMatch(/^t=\d+,v0=/);
    const v = await verdicts(SECRET, v0, payload, now);
    expect(v.ours).toEqual({ ok: false, reason: 'no_signature' });
    expect(v.stripe).toBe(false);
  });
});

describe('POST /api/webhooks/payments/stripe with a Stripe-Signature from the helper', () => {
  // The test project sets no STRIPE_WEBHOOK_SECRET; the Worker is called with one added.
  const withStripe = { ...env, STRIPE_WEBHOOK_SECRET: SECRET } as Env;
  const post = async (body: string, headers: Record<string, string>) => {
    const ctx = createExecutionContext();
    const res = await worker.fetch(
      new Request('http://pasar.test/api/webhooks/payments/stripe', { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body }),
      withStripe,
      ctx,
    );
    await waitOnExecutionContext(ctx);
    return res;
  };

  it('records a signed event once; a replay is a duplicate; a tampered or mis-headed one is 400', async () => {
    const eventId = `evt_${randomToken()}`;
    const body = eventBody(eventId);
    const header = await helper.generateTestHeaderStringAsync({ payload: body, secret: SECRET });

    const first = await post(body, { 'stripe-signature': header });
    expect(first.status).toBe(200);
    expect(await first.json()).toEqual({ received: true, duplicate: false });
    const replay = await post(body, { 'stripe-signature': header });
    expect(await replay.json()).toEqual({ received: true, duplicate: true });

    const tampered = await post(body.replace('requires_capture', 'succeeded'), { 'stripe-signature': header });
    expect(tampered.status).toBe(400);
    expect((await tampered.json<any>()).error.code).toBe('invalid_signature');
    // The simulator's header is not Stripe's: the stripe route reads only Stripe-Signature.
    const wrongHeader = await post(body, { 'x-pasar-signature': header });
    expect(wrongHeader.status).toBe(400);

    const db = createDatabase(env);
    try {
      const { rows } = await db.primary.execute<{ n: number; provider: string }>(
        sql`select count(*)::int as n, min(provider) as provider from webhook_events where event_id = ${eventId}`,
      );
      expect(rows[0]).toEqual({ n: 1, provider: 'stripe' });
    } finally {
      await db.close();
    }
  });
});

describe('Stripe events move the payment they are about, forward only', () => {
  const withStripe = { ...env, STRIPE_WEBHOOK_SECRET: SECRET } as Env;
  const send = async (type: string, object: Record<string, unknown>) => {
    const body = JSON.stringify({ id: `evt_${randomToken()}`, object: 'event', type, created: Math.floor(Date.now() / 1000), data: { object } });
    const ctx = createExecutionContext();
    const res = await worker.fetch(
      new Request('http://pasar.test/api/webhooks/payments/stripe', {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'stripe-signature': await helper.generateTestHeaderStringAsync({ payload: body, secret: SECRET }) },
        body,
      }),
      withStripe,
      ctx,
    );
    await waitOnExecutionContext(ctx);
    expect(res.status).toBe(200);
  };

  it('captured on payment_intent.succeeded, refunded on charge.refunded, and a late cancel changes nothing', async () => {
    const pi = `pi_${randomToken()}`;
    const db = createDatabase(env);
    const status = async () =>
      (await db.primary.execute<{ status: string }>(sql`select status from payments where provider = 'stripe' and provider_ref = ${pi}`)).rows[0]!.status;
    try {
      await db.primary.execute(sql`insert into payments (id, checkout_id, provider, provider_ref, status, amount, currency)
        values (${`pay_${randomToken()}`}, ${`chk_${randomToken()}`}, 'stripe', ${pi}, 'authorized', 1990, 'SGD')`);
      await send('payment_intent.succeeded', { id: pi, object: 'payment_intent', status: 'succeeded' });
      expect(await status()).toBe('captured');
      await send('payment_intent.canceled', { id: pi, object: 'payment_intent', status: 'canceled' });
      expect(await status()).toBe('captured');
      await send('charge.refunded', { id: `ch_${randomToken()}`, object: 'charge', payment_intent: pi, refunded: true });
      expect(await status()).toBe('refunded');
    } finally {
      await db.close();
    }
  });
});

describe('paymentProvider(env)', () => {
  it('is the Stripe adapter when PAYMENT_PROVIDER is stripe, else the simulator', () => {
    expect(paymentProvider({ ...env, PAYMENT_PROVIDER: 'stripe', STRIPE_SECRET_KEY: 'sk_test_x' } as Env).name).toBe('stripe');
    expect(paymentProvider(env).name).toBe('sim');
    expect(paymentProvider({ ...env, PAYMENT_PROVIDER: '' } as Env).name).toBe('sim');
    expect(() => paymentProvider({ ...env, PAYMENT_PROVIDER: 'stripe', STRIPE_SECRET_KEY: '' } as Env)).toThrow(/STRIPE_SECRET_KEY/);
  });
});
