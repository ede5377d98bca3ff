/**
 * The Stripe adapter (./stripe.ts) against a local HTTP server standing in
 * for api.stripe.com, in Node.
 *
 * Why a stand-in: the real API is unreachable from this sandbox (and a test
 * against it would need live credentials). Why Node: workerd tests cannot
 * listen on a port, and the adapter uses only fetch, URLSearchParams and
 * AbortSignal, so it runs here unchanged.
 *
 * The stand-in records every request and answers what each test scripts. It
 * implements no Stripe logic: what is asserted is the requests the adapter
 * sends and how it reads Stripe's answers, using only fields, paths, headers
 * and status codes Stripe documents, from these Stripe doc pages:
 * - "Create a PaymentIntent" / "Capture a PaymentIntent" / "Cancel a
 *   PaymentIntent" (API reference, docs.stripe.com/api/payment_intents):
 *   POST /v1/payment_intents with amount, currency, payment_method,
 *   confirm, capture_method=manual, metadata; the statuses requires_capture,
 *   requires_payment_method, requires_action, processing, canceled;
 *   POST /v1/payment_intents/:id/capture and /cancel;
 * - "Create a refund" (docs.stripe.com/api/refunds/create): POST /v1/refunds
 *   with payment_intent;
 * - "Idempotent requests" (docs.stripe.com/api/idempotent_requests): the
 *   Idempotency-Key header on POSTs; stored results, 500s included, replay;
 * - "Errors" (docs.stripe.com/api/errors): 402 Request Failed, 409, 429,
 *   5xx; the error object's type (card_error, invalid_request_error), code,
 *   decline_code, payment_intent; "Error codes" (payment_intent_unexpected_state,
 *   charge_already_refunded) and "Advanced error handling"
 *   (docs.stripe.com/error-low-level: 429 runs before idempotency, retries);
 * - "Supported currencies" (docs.stripe.com/currencies): amounts in the
 *   currency's minor unit as Stripe defines it; VND zero-decimal; IDR and
 *   TWD two-decimal for charges (TWD is zero-decimal only for payouts).
 * Requests are form-encoded with `Authorization: Bearer <secret key>`, as in
 * every curl example of the API reference.
 *
 * The last block uses the official `stripe` package's test-header helper in
 * its synchronous form, which needs Node's crypto; the workerd suite
 * (./stripe.test.ts) covers signatures with its async twin.
 */
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Stripe from 'stripe';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { verifySignature } from './signature';
import { stripeExponent, stripeProvider, toStripeAmount } from './stripe';

interface Recorded {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  raw: string;
  form: Record<string, string>;
}

interface Scripted {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
  /** Never answer (a hung connection). */
  hang?: boolean;
}

const SECRET_KEY = 'sk_test_standin_4eC39HqLyjWDarjtT1zdp7dc';

let server: Server;
let base: string;
let requests: Recorded[] = [];
let respond: (req: Recorded) => Scripted = () => ({ status: 404, body: { error: { type: 'invalid_request_error', message: 'not scripted' } } });

beforeAll(async () => {
  server = createServer((req, res) => {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (raw += chunk));
    req.on('end', () => {
      const rec: Recorded = {
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        raw,
        form: Object.fromEntries(new URLSearchParams(raw)),
      };
      requests.push(rec);
      const answer = respond(rec);
      if (answer.hang) return;
      res.writeHead(answer.status, { 'content-type': 'application/json', ...answer.headers });
      res.end(answer.body === undefined ? '' : JSON.stringify(answer.body));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  server.close();
});

beforeEach(() => {
  requests = [];
});

const provider = (timeoutMs?: number) => stripeProvider({ secretKey: SECRET_KEY, apiBase: `${base}/`, timeoutMs });
const intent = (id: string, status: string, extra: Record<string, unknown> = {}) => ({ id, object: 'payment_intent', status, ...extra });
const only = () => {
  expect(requests).toHaveLength(1);
  return requests[0]!;
};

describe('authorize: POST /v1/payment_intents', () => {
  it('sends the documented form fields, bearer auth and the Idempotency-Key', async () => {
    respond = () => ({ status: 200, body: intent('pi_sg', 'requires_capture', { amount: 1990, currency: 'sgd', capture_method: 'manual' }) });
    const outcome = await provider().authorize({ amount: 1990, currency: 'SGD', token: 'pm_card_visa', reference: 'chk_123' }, 'chk_123:authorize');
    expect(outcome).toEqual({ kind: 'authorized', authorizationId: 'pi_sg' });

    const req = only();
    expect(req.method).toBe('POST');
    expect(req.path).toBe('/v1/payment_intents');
    expect(req.headers.authorization).toBe(`Bearer ${SECRET_KEY}`);
    expect(req.headers['idempotency-key']).toBe('chk_123:authorize');
    expect(req.headers['content-type']).toBe('application/x-www-form-urlencoded');
    expect(req.form).toEqual({
      amount: '1990',
      currency: 'sgd',
      payment_method: 'pm_card_visa',
      confirm: 'true',
      capture_method: 'manual',
      'automatic_payment_methods[enabled]': 'true',
      'automatic_payment_methods[allow_redirects]': 'never',
      'metadata[reference]': 'chk_123',
    });
    // Stripe's bracket notation for nested fields, percent-encoded on the wire.
    expect(req.raw).toContain('metadata%5Breference%5D=chk_123');
  });

  // Store amounts are integers with db/regions.ts's exponent (IDR, VND, TWD: 0).
  it.each([
    { currency: 'SGD', amount: 1990, stripe: 1990 },
    { currency: 'MYR', amount: 4990, stripe: 4990 },
    { currency: 'THB', amount: 12900, stripe: 12900 },
    { currency: 'PHP', amount: 49900, stripe: 49900 },
    // IDR is not zero-decimal in Stripe: 149,000 rupiah is 14900000.
    { currency: 'IDR', amount: 149000, stripe: 14900000 },
    // TWD charges are two-decimal in Stripe (zero-decimal only for payouts).
    { currency: 'TWD', amount: 990, stripe: 99000 },
    // VND is on Stripe's zero-decimal list: sent as is.
    { currency: 'VND', amount: 1290000, stripe: 1290000 },
  ])('sends $currency $amount as amount=$stripe', async ({ currency, amount, stripe }) => {
    respond = () => ({ status: 200, body: intent('pi_x', 'requires_capture') });
    await provider().authorize({ amount, currency, token: 'pm_card_visa', reference: 'chk_amt' }, 'chk_amt:authorize');
    const req = only();
    expect(req.form.amount).toBe(String(stripe));
    expect(req.form.currency).toBe(currency.toLowerCase());
    expect(toStripeAmount(amount, currency)).toBe(stripe);
  });

  it('refuses, without calling Stripe, an amount it cannot express', async () => {
    for (const input of [
      { amount: 1000, currency: 'USD' }, // not a currency this store sells in
      { amount: -1, currency: 'SGD' },
      { amount: 19.9, currency: 'SGD' },
    ]) {
      const outcome = await provider().authorize({ ...input, token: 'pm_card_visa', reference: 'chk_bad' }, 'chk_bad:authorize');
      expect(outcome.kind).toBe('failed');
    }
    expect(requests).toHaveLength(0);
    expect(stripeExponent('jpy')).toBe(0);
    expect(stripeExponent('KWD')).toBe(3);
    expect(stripeExponent('UGX')).toBe(2);
  });

  it('maps a 402 card_error to declined with the decline code and the intent id', async () => {
    respond = () => ({
      status: 402,
      body: {
        error: {
          type: 'card_error',
          code: 'card_declined',
          decline_code: 'insufficient_funds',
          message: 'Your card has insufficient funds.',
          payment_intent: intent('pi_declined', 'requires_payment_method'),
        },
      },
    });
    const outcome = await provider().authorize({ amount: 1990, currency: 'SGD', token: 'pm_card_chargeDeclinedInsufficientFunds', reference: 'chk_d' }, 'chk_d:authorize');
    expect(outcome).toEqual({ kind: 'declined', authorizationId: 'pi_declined', code: 'insufficient_funds' });
  });

  it('uses the error code when a 402 has no decline_code', async () => {
    respond = () => ({ status: 402, body: { error: { type: 'card_error', code: 'expired_card', message: 'Your card has expired.' } } });
    const outcome = await provider().authorize({ amount: 1990, currency: 'SGD', token: 'pm_card_chargeDeclinedExpiredCard', reference: 'chk_e' }, 'chk_e:authorize');
    expect(outcome).toEqual({ kind: 'declined', authorizationId: undefined, code: 'expired_card' });
  });

  it('maps the intent statuses requires_payment_method, requires_action and canceled to declined', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [intent('pi_rpm', 'requires_payment_method', { last_payment_error: { type: 'card_error', code: 'card_declined', decline_code: 'do_not_honor' } }), 'do_not_honor'],
      [intent('pi_rpm2', 'requires_payment_method'), 'requires_payment_method'],
      [intent('pi_3ds', 'requires_action', { next_action: { type: 'use_stripe_sdk' } }), 'authentication_required'],
      [intent('pi_can', 'canceled'), 'canceled'],
    ];
    for (const [body, code] of cases) {
      respond = () => ({ status: 200, body });
      const outcome = await provider().authorize({ amount: 1990, currency: 'SGD', token: 'pm_x', reference: 'chk_s' }, 'chk_s:authorize');
      expect(outcome).toEqual({ kind: 'declined', authorizationId: body.id, code });
    }
  });

  it('re-reads a processing intent with GET (no idempotency key) and retries while it stays processing', async () => {
    respond = (req) => (req.method === 'POST' ? { status: 200, body: intent('pi_proc', 'processing') } : { status: 200, body: intent('pi_proc', 'requires_capture') });
    expect(await provider().authorize({ amount: 1990, currency: 'SGD', token: 'pm_x', reference: 'chk_p' }, 'chk_p:authorize')).toEqual({
      kind: 'authorized',
      authorizationId: 'pi_proc',
    });
    expect(requests.map((r) => `${r.method} ${r.path}`)).toEqual(['POST /v1/payment_intents', 'GET /v1/payment_intents/pi_proc']);
    expect(requests[1]!.headers['idempotency-key']).toBeUndefined();
    expect(requests[1]!.headers.authorization).toBe(`Bearer ${SECRET_KEY}`);

    respond = () => ({ status: 200, body: intent('pi_proc', 'processing') });
    expect((await provider().authorize({ amount: 1990, currency: 'SGD', token: 'pm_x', reference: 'chk_p' }, 'chk_p:authorize')).kind).toBe('retry');
  });

  it('retries 500, 503, 429 and 409 (same key in flight); fails 400 and 401', async () => {
    const cases: [Scripted, string][] = [
      [{ status: 500, body: { error: { type: 'api_error', message: 'Something went wrong on our end.' } } }, 'retry'],
      [{ status: 503, body: {} }, 'retry'],
      [{ status: 429, body: { error: { type: 'invalid_request_error', code: 'rate_limit', message: 'Too many requests.' } } }, 'retry'],
      [{ status: 409, body: { error: { type: 'idempotency_error', code: 'idempotency_key_in_use' } } }, 'retry'],
      [{ status: 400, body: { error: { type: 'invalid_request_error', code: 'parameter_missing', param: 'amount' } } }, 'failed'],
      [{ status: 401, body: { error: { type: 'invalid_request_error', message: 'Invalid API Key provided.' } } }, 'failed'],
    ];
    for (const [answer, kind] of cases) {
      respond = () => answer;
      const outcome = await provider().authorize({ amount: 1990, currency: 'SGD', token: 'pm_x', reference: 'chk_r' }, 'chk_r:authorize');
      expect(outcome.kind, `HTTP ${answer.status}`).toBe(kind);
      if (outcome.kind !== 'authorized' && outcome.kind !== 'declined') expect(outcome.detail).toContain(String(answer.status));
    }
  });

  it('follows Stripe-Should-Retry over the status code', async () => {
    respond = () => ({ status: 500, body: { error: { type: 'api_error' } }, headers: { 'stripe-should-retry': 'false' } });
    expect((await provider().authorize({ amount: 1990, currency: 'SGD', token: 'pm_x', reference: 'chk_h' }, 'chk_h:authorize')).kind).toBe('failed');
    respond = () => ({ status: 400, body: { error: { type: 'invalid_request_error' } }, headers: { 'stripe-should-retry': 'true' } });
    expect((await provider().authorize({ amount: 1990, currency: 'SGD', token: 'pm_x', reference: 'chk_h' }, 'chk_h:authorize')).kind).toBe('retry');
  });

  it('retries a network error and a timeout', async () => {
    const closed = createServer();
    closed.listen(0, '127.0.0.1');
    await once(closed, 'listening');
    const port = (closed.address() as AddressInfo).port;
    closed.close();
    await once(closed, 'close');
    const unreachable = stripeProvider({ secretKey: SECRET_KEY, apiBase: `http://127.0.0.1:${port}` });
    expect((await unreachable.authorize({ amount: 1990, currency: 'SGD', token: 'pm_x', reference: 'chk_n' }, 'chk_n:authorize')).kind).toBe('retry');

    respond = () => ({ status: 200, hang: true });
    expect((await provider(200).authorize({ amount: 1990, currency: 'SGD', token: 'pm_x', reference: 'chk_t' }, 'chk_t:authorize')).kind).toBe('retry');
  });
});

describe('capture, void, refund', () => {
  it('capture: POST /v1/payment_intents/:id/capture with the key', async () => {
    respond = () => ({ status: 200, body: intent('pi_1', 'succeeded', { amount_received: 1990 }) });
    expect(await provider().capture('pi_1', 'chk_1:capture')).toEqual({ kind: 'done', status: 'succeeded' });
    const req = only();
    expect(req.method).toBe('POST');
    expect(req.path).toBe('/v1/payment_intents/pi_1/capture');
    expect(req.headers['idempotency-key']).toBe('chk_1:capture');
    expect(req.headers.authorization).toBe(`Bearer ${SECRET_KEY}`);
    expect(req.raw).toBe('');
  });

  it('void: POST /v1/payment_intents/:id/cancel with the key', async () => {
    respond = () => ({ status: 200, body: intent('pi_1', 'canceled') });
    expect(await provider().void('pi_1', 'chk_1:void')).toEqual({ kind: 'done', status: 'canceled' });
    const req = only();
    expect(`${req.method} ${req.path}`).toBe('POST /v1/payment_intents/pi_1/cancel');
    expect(req.headers['idempotency-key']).toBe('chk_1:void');
  });

  it('refund: POST /v1/refunds payment_intent=:id with the key', async () => {
    respond = () => ({ status: 200, body: { id: 're_1', object: 'refund', payment_intent: 'pi_1', status: 'succeeded' } });
    expect(await provider().refund('pi_1', 'chk_1:refund')).toEqual({ kind: 'done', status: 'succeeded' });
    const req = only();
    expect(`${req.method} ${req.path}`).toBe('POST /v1/refunds');
    expect(req.form).toEqual({ payment_intent: 'pi_1' });
    expect(req.headers['idempotency-key']).toBe('chk_1:refund');
    expect(req.headers['content-type']).toBe('application/x-www-form-urlencoded');
  });

  it('counts a step Stripe says is already done as done (keys expire after a day)', async () => {
    const unexpected = (status: string) => ({
      status: 400,
      body: { error: { type: 'invalid_request_error', code: 'payment_intent_unexpected_state', payment_intent: intent('pi_1', status) } },
    });
    respond = () => unexpected('succeeded');
    expect(await provider().capture('pi_1', 'k')).toEqual({ kind: 'done', status: 'succeeded' });
    respond = () => unexpected('canceled');
    expect(await provider().void('pi_1', 'k')).toEqual({ kind: 'done', status: 'canceled' });
    respond = () => ({ status: 400, body: { error: { type: 'invalid_request_error', code: 'charge_already_refunded' } } });
    expect(await provider().refund('pi_1', 'k')).toEqual({ kind: 'done', status: 'refunded' });

    // The other way round is a real refusal: capturing a canceled intent.
    respond = () => unexpected('canceled');
    expect((await provider().capture('pi_1', 'k')).kind).toBe('failed');
    respond = () => unexpected('succeeded');
    expect((await provider().void('pi_1', 'k')).kind).toBe('failed');
  });

  it('retries 5xx, 429 and network errors; fails other 4xx', async () => {
    for (const [status, kind] of [
      [500, 'retry'],
      [429, 'retry'],
      [404, 'failed'],
    ] as const) {
      respond = () => ({ status, body: { error: { type: status === 404 ? 'invalid_request_error' : 'api_error', code: status === 404 ? 'resource_missing' : undefined } } });
      expect((await provider().capture('pi_1', 'k')).kind).toBe(kind);
      expect((await provider().void('pi_1', 'k')).kind).toBe(kind);
      expect((await provider().refund('pi_1', 'k')).kind).toBe(kind);
    }
    const unreachable = stripeProvider({ secretKey: SECRET_KEY, apiBase: 'http://127.0.0.1:1' });
    expect((await unreachable.capture('pi_1', 'k')).kind).toBe('retry');
  });

  it('escapes the intent id in the path', async () => {
    respond = () => ({ status: 200, body: intent('x', 'succeeded') });
    await provider().capture('pi_1/../../v1/refunds', 'k');
    expect(only().path).toBe('/v1/payment_intents/pi_1%2F..%2F..%2Fv1%2Frefunds/capture');
  });
});

describe('configuration', () => {
  it('needs a secret key', () => {
    expect(() => stripeProvider({ secretKey: '' })).toThrow(/STRIPE_SECRET_KEY/);
    expect(stripeProvider({ secretKey: SECRET_KEY }).name).toBe('stripe');
  });
});

describe("the stripe package's generateTestHeaderString (sync, Node crypto)", () => {
  it('makes headers verifySignature accepts, and refuses tampering', async () => {
    const secret = 'whsec_node_test_secret';
    const payload = JSON.stringify({ id: 'evt_node_1', object: 'event', type: 'payment_intent.succeeded', data: { object: { id: 'pi_1', note: 'héllo 日本' } } });
    const now = Math.floor(Date.now() / 1000);
    const header = Stripe.webhooks.generateTestHeaderString({ payload, secret });
    expect(await verifySignature(secret, header, payload, now)).toMatchObject({ ok: true });
    expect(await verifySignature(secret, header, payload.replace('pi_1', 'pi_2'), now)).toEqual({ ok: false, reason: 'signature_mismatch' });
    expect(await verifySignature('whsec_other', header, payload, now)).toEqual({ ok: false, reason: 'signature_mismatch' });
    // The helper's sync and async forms sign alike.
    const fixed = { payload, secret, timestamp: 1_700_000_000 };
    expect(Stripe.webhooks.generateTestHeaderString(fixed)).toBe(await Stripe.webhooks.generateTestHeaderStringAsync(fixed));
  });
});
