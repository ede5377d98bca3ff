/**
 * Drives the payment simulator over real HTTP, the way the Worker's checkout
 * saga will, with a local HTTP receiver standing in for the Worker's webhook
 * endpoint. Signatures are checked with the same verifier the Worker uses.
 */
import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { verifySignature } from '../workers/payments/signature';
import { startPaymentSim, TURNSTILE_TEST_SECRETS, type PaymentEvent, type PaymentSim, type PaymentSimOptions } from './payment-sim';

const API_KEY = 'sk_test_sim';
const SECRET = 'whsec_test_sim';
const SLOW_MS = 400;

// ---- a webhook receiver ------------------------------------------------------

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
  event: PaymentEvent;
}

interface Receiver {
  url: string;
  received: Received[];
  /** Statuses to answer with, in order; 200 once it runs out. */
  plan: number[];
  /** Delay before answering, in ms. */
  delayMs: number;
  close(): Promise<void>;
}

async function startReceiver(): Promise<Receiver> {
  const receiver: Omit<Receiver, 'url' | 'close'> = { received: [], plan: [], delayMs: 0 };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      receiver.received.push({ headers: req.headers, body, event: JSON.parse(body) as PaymentEvent });
      const status = receiver.plan.shift() ?? 200;
      setTimeout(() => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ received: status < 300 }));
      }, receiver.delayMs);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return Object.assign(receiver, {
    url: `http://127.0.0.1:${port}/api/webhooks/payments/sim`,
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  });
}

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

// ---- fixtures ---------------------------------------------------------------

let sim: PaymentSim;
let receiver: Receiver;
const extraSims: PaymentSim[] = [];

async function startSim(overrides: Partial<PaymentSimOptions> = {}): Promise<PaymentSim> {
  const s = await startPaymentSim({
    apiKey: API_KEY,
    webhookSecret: SECRET,
    webhookUrl: receiver.url,
    slowMs: SLOW_MS,
    webhookRetryDelayMs: 50,
    ...overrides,
  });
  extraSims.push(s);
  return s;
}

beforeEach(async () => {
  receiver = await startReceiver();
  sim = await startSim();
});

afterEach(async () => {
  await Promise.all(extraSims.splice(0).map((s) => s.close()));
  await receiver.close();
});

interface Res {
  status: number;
  json: Record<string, unknown>;
  headers: Headers;
  ms: number;
}

async function call(
  method: string,
  path: string,
  opts: { body?: unknown; raw?: string; key?: string; auth?: string | null; signal?: AbortSignal; base?: string } = {},
): Promise<Res> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (opts.auth !== null) headers.authorization = opts.auth ?? `Bearer ${API_KEY}`;
  if (opts.key !== undefined) headers['idempotency-key'] = opts.key;
  const started = Date.now();
  const res = await fetch(`${opts.base ?? sim.url}${path}`, {
    method,
    headers,
    body: opts.raw ?? (opts.body === undefined ? undefined : JSON.stringify(opts.body)),
    signal: opts.signal,
  });
  const text = await res.text();
  return { status: res.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : {}, headers: res.headers, ms: Date.now() - started };
}

let seq = 0;
function uniqueKey(label = 'key'): string {
  seq += 1;
  return `${label}-${Date.now()}-${seq}`;
}

function authBody(token: string, overrides: Record<string, unknown> = {}) {
  return { amount: 12_990, currency: 'SGD', token, reference: 'chk_123', ...overrides };
}

function authorize(token: string, key = uniqueKey(), overrides: Record<string, unknown> = {}): Promise<Res> {
  return call('POST', '/v1/authorizations', { body: authBody(token, overrides), key });
}

async function authorizedId(): Promise<string> {
  const res = await authorize('tok_ok');
  expect(res.status).toBe(201);
  return res.json.id as string;
}

const op = (id: string, action: 'capture' | 'void' | 'refund', key?: string) =>
  call('POST', `/v1/authorizations/${id}/${action}`, { body: {}, key });

const now = () => Math.floor(Date.now() / 1000);

// ---- tokens -----------------------------------------------------------------

describe('authorize, by card token', () => {
  it('tok_ok authorizes: 201 with the id, amount, currency and reference', async () => {
    const key = uniqueKey();
    const res = await authorize('tok_ok', key);
    expect(res.status).toBe(201);
    expect(res.json).toMatchObject({ status: 'authorized', amount: 12_990, currency: 'SGD', reference: 'chk_123' });
    expect(res.json.id).toMatch(/^auth_[0-9a-f]{24}$/);
    expect(res.headers.get('idempotent-replayed')).toBeNull();

    const got = await call('GET', `/v1/authorizations/${res.json.id as string}`);
    expect(got).toMatchObject({ status: 200, json: res.json });
    expect(sim.authorizations()).toEqual([
      expect.objectContaining({ id: res.json.id, status: 'authorized', token: 'tok_ok', idempotencyKey: key }),
    ]);
  });

  it('tok_decline answers 402 card_declined and still records the attempt', async () => {
    const res = await authorize('tok_decline');
    expect(res.status).toBe(402);
    expect(res.json).toMatchObject({ status: 'declined', declineCode: 'card_declined', reference: 'chk_123' });
    expect(res.json.id).toMatch(/^auth_/);
    expect(sim.authorizations()).toEqual([expect.objectContaining({ id: res.json.id, status: 'declined' })]);
    expect((await call('GET', `/v1/authorizations/${res.json.id as string}`)).json.status).toBe('declined');
  });

  it('tok_slow authorizes after the configured delay', async () => {
    const res = await authorize('tok_slow');
    expect(res.status).toBe(201);
    expect(res.json.status).toBe('authorized');
    expect(res.ms).toBeGreaterThanOrEqual(SLOW_MS - 20);
    expect(res.ms).toBeLessThan(3000);
  });

  it('tok_slow completes even when the caller gave up; a retry with the key finds it', async () => {
    const key = uniqueKey();
    await expect(
      call('POST', '/v1/authorizations', { body: authBody('tok_slow'), key, signal: AbortSignal.timeout(50) }),
    ).rejects.toThrow();
    expect(sim.authorizations()).toHaveLength(0);
    // The retry joins the authorisation still in progress and gets its answer.
    const retry = await authorize('tok_slow', key);
    expect(retry.status).toBe(201);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(sim.authorizations()).toHaveLength(1);
    const listed = await call('GET', '/v1/authorizations?reference=chk_123');
    expect(listed.json.items).toEqual([retry.json]);
  });

  it('tok_flaky fails the first attempt per key with 503 and records nothing, then succeeds', async () => {
    const key = uniqueKey();
    const first = await authorize('tok_flaky', key);
    expect(first.status).toBe(503);
    expect(first.json).toMatchObject({ error: 'temporarily_unavailable' });
    expect(sim.authorizations()).toHaveLength(0);
    expect(sim.events()).toHaveLength(0);

    const second = await authorize('tok_flaky', key);
    expect(second.status).toBe(201);
    expect(second.json.status).toBe('authorized');
    const third = await authorize('tok_flaky', key);
    expect(third).toMatchObject({ status: 201, json: second.json });
    expect(sim.authorizations()).toHaveLength(1);

    // Another key has its own first attempt.
    expect((await authorize('tok_flaky', uniqueKey())).status).toBe(503);
  });

  it('refuses an unknown token with 400 invalid_token, recording nothing and keeping the key free', async () => {
    const key = uniqueKey();
    const res = await authorize('tok_nope', key);
    expect(res).toMatchObject({ status: 400, json: { error: 'invalid_token' } });
    expect(sim.authorizations()).toHaveLength(0);
    // The refused request was not stored: the corrected one runs.
    expect((await authorize('tok_ok', key)).status).toBe(201);
  });

  it('validates the body strictly', async () => {
    const bad: [string, unknown][] = [
      ['zero amount', authBody('tok_ok', { amount: 0 })],
      ['negative amount', authBody('tok_ok', { amount: -100 })],
      ['fractional amount', authBody('tok_ok', { amount: 10.5 })],
      ['string amount', authBody('tok_ok', { amount: '100' })],
      ['unsafe amount', authBody('tok_ok', { amount: 2 ** 60 })],
      ['unknown currency', authBody('tok_ok', { currency: 'USD' })],
      ['lowercase currency', authBody('tok_ok', { currency: 'sgd' })],
      ['empty reference', authBody('tok_ok', { reference: '' })],
      ['missing token', { amount: 100, currency: 'SGD', reference: 'r' }],
      ['unknown field', authBody('tok_ok', { price: 1 })],
      ['an array', [authBody('tok_ok')]],
      ['null', null],
    ];
    for (const [label, body] of bad) {
      const res = await call('POST', '/v1/authorizations', { body, key: uniqueKey() });
      expect({ label, status: res.status, error: res.json.error }).toEqual({ label, status: 400, error: 'invalid_request' });
    }
    const unknown = await call('POST', '/v1/authorizations', { body: authBody('tok_ok', { price: 1 }), key: uniqueKey() });
    expect(unknown.json.details).toEqual({ price: 'unknown field' });
    const malformed = await call('POST', '/v1/authorizations', { raw: '{"amount":', key: uniqueKey() });
    expect(malformed).toMatchObject({ status: 400, json: { error: 'invalid_json' } });
    // Every region's currency is accepted.
    for (const currency of ['SGD', 'MYR', 'THB', 'IDR', 'VND', 'PHP', 'TWD']) {
      expect((await authorize('tok_ok', uniqueKey(), { currency })).status).toBe(201);
    }
    expect(sim.authorizations()).toHaveLength(7);
  });

  it('requires an Idempotency-Key of 1-255 characters', async () => {
    const none = await call('POST', '/v1/authorizations', { body: authBody('tok_ok') });
    expect(none).toMatchObject({ status: 400, json: { error: 'invalid_idempotency_key' } });
    const empty = await call('POST', '/v1/authorizations', { body: authBody('tok_ok'), key: '' });
    expect(empty).toMatchObject({ status: 400, json: { error: 'invalid_idempotency_key' } });
    expect((await authorize('tok_ok', 'k'.repeat(256))).status).toBe(400);
    expect((await authorize('tok_ok', 'k'.repeat(255))).status).toBe(201);
    expect(sim.authorizations()).toHaveLength(1);
  });
});

// ---- idempotency --------------------------------------------------------------

describe('idempotency keys', () => {
  it('answers a repeated request with the stored status and body, acting once', async () => {
    const key = uniqueKey();
    const first = await authorize('tok_ok', key);
    const again = await authorize('tok_ok', key);
    expect(again.status).toBe(first.status);
    expect(again.json).toEqual(first.json);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(sim.authorizations()).toHaveLength(1);
    expect(sim.events()).toHaveLength(1);
  });

  it('replays a decline as the same 402', async () => {
    const key = uniqueKey();
    const first = await authorize('tok_decline', key);
    const again = await authorize('tok_decline', key);
    expect(again).toMatchObject({ status: 402, json: first.json });
    expect(sim.authorizations()).toHaveLength(1);
  });

  it('compares parameters, not bytes: key order and whitespace do not matter', async () => {
    const key = uniqueKey();
    const first = await authorize('tok_ok', key);
    const raw = '{ "reference": "chk_123", "token": "tok_ok",\n "currency": "SGD", "amount": 12990 }';
    const again = await call('POST', '/v1/authorizations', { raw, key });
    expect(again).toMatchObject({ status: 201, json: first.json });
  });

  it('makes one authorization for 10 concurrent requests with one key', async () => {
    const key = uniqueKey();
    const results = await Promise.all(Array.from({ length: 10 }, () => authorize('tok_ok', key)));
    expect(new Set(results.map((r) => r.status))).toEqual(new Set([201]));
    expect(new Set(results.map((r) => r.json.id)).size).toBe(1);
    expect(sim.authorizations()).toHaveLength(1);
    await sim.webhooksIdle();
    expect(receiver.received.map((r) => r.event.type)).toEqual(['payment.authorized']);
  });

  it('makes concurrent requests wait for the first one in progress (tok_slow)', async () => {
    const key = uniqueKey();
    const results = await Promise.all(Array.from({ length: 10 }, () => authorize('tok_slow', key)));
    expect(results.every((r) => r.status === 201 && r.json.id === results[0]!.json.id)).toBe(true);
    expect(results.filter((r) => r.headers.get('idempotent-replayed') === 'true')).toHaveLength(9);
    expect(sim.authorizations()).toHaveLength(1);
  });

  it('charges once for concurrent tok_flaky attempts with one key, whichever of them failed', async () => {
    const key = uniqueKey();
    // Attempts that overlap the failing first one share its 503; later ones
    // run afresh and succeed. Which is which depends on timing; the charge
    // count does not.
    const burst = await Promise.all(Array.from({ length: 5 }, () => authorize('tok_flaky', key)));
    expect(burst.some((r) => r.status === 503)).toBe(true);
    expect(burst.every((r) => r.status === 503 || r.status === 201)).toBe(true);
    const retry = await Promise.all(Array.from({ length: 5 }, () => authorize('tok_flaky', key)));
    expect(retry.map((r) => r.status)).toEqual([201, 201, 201, 201, 201]);
    const ids = new Set([...burst, ...retry].filter((r) => r.status === 201).map((r) => r.json.id));
    expect(ids.size).toBe(1);
    expect(sim.authorizations()).toHaveLength(1);
  });

  it('answers 409 idempotency_conflict for the same key with other parameters', async () => {
    const key = uniqueKey();
    expect((await authorize('tok_ok', key)).status).toBe(201);
    for (const overrides of [{ amount: 1 }, { currency: 'MYR' }, { reference: 'chk_other' }, { token: 'tok_decline' }]) {
      const res = await authorize('tok_ok', key, overrides);
      expect(res).toMatchObject({ status: 409, json: { error: 'idempotency_conflict' } });
    }
    expect(sim.authorizations()).toHaveLength(1);
  });

  it('answers 409 at once while the first request with the key is still running', async () => {
    const key = uniqueKey();
    const slow = authorize('tok_slow', key);
    await new Promise((r) => setTimeout(r, 50));
    const conflict = await authorize('tok_slow', key, { amount: 1 });
    expect(conflict).toMatchObject({ status: 409, json: { error: 'idempotency_conflict' } });
    expect(conflict.ms).toBeLessThan(SLOW_MS / 2);
    expect((await slow).status).toBe(201);
    expect(sim.authorizations()).toHaveLength(1);
  });

  it('scopes a key to its route, so one checkout id can key authorize and capture', async () => {
    const key = uniqueKey('chk');
    const auth = await authorize('tok_ok', key);
    const capture = await op(auth.json.id as string, 'capture', key);
    expect(capture).toMatchObject({ status: 200, json: { status: 'captured' } });
    // And the authorisation answer under that key is unchanged.
    expect((await authorize('tok_ok', key)).json).toEqual(auth.json);
  });
});

// ---- capture, void, refund ---------------------------------------------------

describe('capture, void and refund', () => {
  it('captures an authorization, and a second capture answers the same 200', async () => {
    const id = await authorizedId();
    const first = await op(id, 'capture');
    expect(first).toMatchObject({ status: 200, json: { id, status: 'captured', amount: 12_990 } });
    const again = await op(id, 'capture');
    expect(again).toMatchObject({ status: 200, json: { id, status: 'captured' } });
    expect((await call('GET', `/v1/authorizations/${id}`)).json.status).toBe('captured');
    expect(sim.events().map((e) => e.type)).toEqual(['payment.authorized', 'payment.captured']);
  });

  it('voids an authorization (idempotently), after which capture and refund are 409', async () => {
    const id = await authorizedId();
    expect(await op(id, 'void')).toMatchObject({ status: 200, json: { id, status: 'voided' } });
    expect(await op(id, 'void')).toMatchObject({ status: 200, json: { status: 'voided' } });
    expect(await op(id, 'capture')).toMatchObject({ status: 409, json: { error: 'invalid_state', status: 'voided' } });
    expect(await op(id, 'refund')).toMatchObject({ status: 409, json: { error: 'invalid_state' } });
    expect(sim.authorizations()[0]!.status).toBe('voided');
    expect(sim.events().map((e) => e.type)).toEqual(['payment.authorized', 'payment.voided']);
  });

  it('refuses to void a captured payment (409, refund instead) and refunds it', async () => {
    const id = await authorizedId();
    await op(id, 'capture');
    const voided = await op(id, 'void');
    expect(voided).toMatchObject({ status: 409, json: { error: 'invalid_state', status: 'captured' } });
    expect(voided.json.message).toMatch(/refund/);
    expect(await op(id, 'refund')).toMatchObject({ status: 200, json: { id, status: 'refunded' } });
    expect(await op(id, 'refund')).toMatchObject({ status: 200, json: { status: 'refunded' } });
    expect((await op(id, 'capture')).status).toBe(409);
    expect((await op(id, 'void')).status).toBe(409);
    expect(sim.events().map((e) => e.type)).toEqual(['payment.authorized', 'payment.captured', 'payment.refunded']);
  });

  it('refuses to refund an uncaptured authorization (void it instead)', async () => {
    const id = await authorizedId();
    const res = await op(id, 'refund');
    expect(res).toMatchObject({ status: 409, json: { error: 'invalid_state', status: 'authorized' } });
    expect(res.json.message).toMatch(/voided/);
  });

  it('refuses every transition of a declined authorization', async () => {
    const id = (await authorize('tok_decline')).json.id as string;
    for (const action of ['capture', 'void', 'refund'] as const) {
      expect(await op(id, action)).toMatchObject({ status: 409, json: { error: 'invalid_state', status: 'declined' } });
    }
  });

  it('answers 404 for an unknown authorization', async () => {
    for (const action of ['capture', 'void', 'refund'] as const) {
      expect(await op('auth_missing', action)).toMatchObject({ status: 404, json: { error: 'not_found' } });
    }
    expect((await call('GET', '/v1/authorizations/auth_missing')).status).toBe(404);
    expect((await call('GET', '/v1/authorizations/%E0%A4%A')).status).toBe(404);
  });

  it('replays a keyed capture with its stored answer and takes an empty body or {}', async () => {
    const id = await authorizedId();
    const key = uniqueKey();
    const first = await op(id, 'capture', key);
    const again = await op(id, 'capture', key);
    expect(again).toMatchObject({ status: 200, json: first.json });
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    const noBody = await call('POST', `/v1/authorizations/${id}/capture`, {});
    expect(noBody.status).toBe(200);
    const withParams = await call('POST', `/v1/authorizations/${id}/capture`, { body: { amount: 1 } });
    expect(withParams).toMatchObject({ status: 400, json: { error: 'invalid_request' } });
  });

  it('lists authorizations by reference and status', async () => {
    await authorize('tok_ok', uniqueKey(), { reference: 'chk_a' });
    await authorize('tok_decline', uniqueKey(), { reference: 'chk_a' });
    await authorize('tok_ok', uniqueKey(), { reference: 'chk_b' });
    const a = await call('GET', '/v1/authorizations?reference=chk_a');
    expect((a.json.items as { status: string }[]).map((i) => i.status)).toEqual(['authorized', 'declined']);
    const authorized = await call('GET', '/v1/authorizations?status=authorized');
    expect(authorized.json.items).toHaveLength(2);
  });
});

// ---- auth and routing ---------------------------------------------------------

describe('authentication and routing', () => {
  it('answers 401 without the API key, with a wrong one, or another scheme', async () => {
    for (const auth of [null, 'Bearer wrong', `Basic ${API_KEY}`, 'Bearer ', API_KEY]) {
      const res = await call('POST', '/v1/authorizations', { body: authBody('tok_ok'), key: uniqueKey(), auth });
      expect(res).toMatchObject({ status: 401, json: { error: 'unauthorized' } });
    }
    expect((await call('GET', '/v1/authorizations/auth_x', { auth: null })).status).toBe(401);
    expect(sim.authorizations()).toHaveLength(0);
  });

  it('serves /health without a key, 404 for unknown routes and 405 for wrong methods', async () => {
    expect(await call('GET', '/health', { auth: null })).toMatchObject({ status: 200, json: { ok: true } });
    expect((await call('GET', '/nope', { auth: null })).status).toBe(404);
    expect((await call('GET', '/v1/nope')).status).toBe(404);
    const wrong = await call('DELETE', '/v1/authorizations');
    expect(wrong).toMatchObject({ status: 405, json: { error: 'method_not_allowed' } });
    expect(wrong.headers.get('allow')).toBe('GET, POST');
  });

  it('answers 413 for an oversized body', async () => {
    const res = await call('POST', '/v1/authorizations', {
      body: authBody('tok_ok', { reference: 'x'.repeat(100_000) }),
      key: uniqueKey(),
    });
    expect(res).toMatchObject({ status: 413, json: { error: 'payload_too_large' } });
  });
});

// ---- Turnstile siteverify stand-in --------------------------------------------

describe('Turnstile siteverify stand-in', () => {
  const DUMMY = 'XXXX.DUMMY.TOKEN.XXXX';
  async function verify(body: URLSearchParams | FormData | string, contentType?: string) {
    const res = await fetch(`${sim.url}/turnstile/v0/siteverify`, { method: 'POST', body, ...(contentType ? { headers: { 'content-type': contentType } } : {}) });
    return { status: res.status, json: (await res.json()) as { success: boolean; 'error-codes': string[] } };
  }
  const form = (fields: Record<string, string>) => new URLSearchParams(fields);

  it('passes any token with the always-pass test secret, without the payment API key', async () => {
    const res = await verify(form({ secret: TURNSTILE_TEST_SECRETS.pass, response: DUMMY, remoteip: '203.0.113.7' }));
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ success: true, 'error-codes': [] });
  });

  it('reads multipart form data as the Worker sends it (FormData)', async () => {
    const fd = new FormData();
    fd.set('secret', TURNSTILE_TEST_SECRETS.pass);
    fd.set('response', DUMMY);
    expect((await verify(fd)).json).toMatchObject({ success: true });
    fd.set('secret', TURNSTILE_TEST_SECRETS.fail);
    expect((await verify(fd)).json).toEqual({ success: false, 'error-codes': ['invalid-input-response'] });
  });

  it('fails with the always-fail secret and answers a spent token with the duplicate secret', async () => {
    expect(await verify(form({ secret: TURNSTILE_TEST_SECRETS.fail, response: DUMMY }))).toEqual({ status: 200, json: { success: false, 'error-codes': ['invalid-input-response'] } });
    expect(await verify(form({ secret: TURNSTILE_TEST_SECRETS.spent, response: DUMMY }))).toEqual({ status: 200, json: { success: false, 'error-codes': ['timeout-or-duplicate'] } });
  });

  it('fails a missing response or secret and an unknown secret, naming each problem', async () => {
    expect((await verify(form({ secret: TURNSTILE_TEST_SECRETS.pass }))).json).toEqual({ success: false, 'error-codes': ['missing-input-response'] });
    expect((await verify(form({ secret: TURNSTILE_TEST_SECRETS.pass, response: '' }))).json).toEqual({ success: false, 'error-codes': ['missing-input-response'] });
    expect((await verify(form({ response: DUMMY }))).json).toEqual({ success: false, 'error-codes': ['missing-input-secret'] });
    expect((await verify(form({ secret: 'not-a-test-secret', response: DUMMY }))).json).toEqual({ success: false, 'error-codes': ['invalid-input-secret'] });
    expect((await verify('', 'text/plain')).json).toEqual({ success: false, 'error-codes': ['missing-input-secret', 'missing-input-response'] });
  });

  it('refuses a remoteip that is not an IP address as a malformed request', async () => {
    for (const remoteip of ['203.0.113.7', '2001:db8::1']) {
      expect((await verify(form({ secret: TURNSTILE_TEST_SECRETS.pass, response: DUMMY, remoteip }))).json, remoteip).toMatchObject({ success: true });
    }
    for (const remoteip of ['2001:db8:0:0::/64', 'unknown', '']) {
      expect((await verify(form({ secret: TURNSTILE_TEST_SECRETS.pass, response: DUMMY, remoteip }))).json, remoteip).toEqual({ success: false, 'error-codes': ['bad-request'] });
    }
  });

  it('takes a JSON body too, and refuses other methods with 405', async () => {
    const res = await verify(JSON.stringify({ secret: TURNSTILE_TEST_SECRETS.pass, response: DUMMY }), 'application/json');
    expect(res.json).toMatchObject({ success: true });
    const get = await fetch(`${sim.url}/turnstile/v0/siteverify`);
    expect(get.status).toBe(405);
    expect(get.headers.get('allow')).toBe('POST');
  });
});

// ---- webhooks ---------------------------------------------------------------

describe('webhooks', () => {
  it('delivers signed events for each state change', async () => {
    const id = await authorizedId();
    await op(id, 'capture');
    await op(id, 'refund');
    const declined = (await authorize('tok_decline', uniqueKey(), { reference: 'chk_d' })).json.id as string;
    const voidedId = await authorizedId();
    await op(voidedId, 'void');
    await sim.webhooksIdle();

    expect(receiver.received).toHaveLength(6);
    for (const r of receiver.received) {
      expect(r.headers['content-type']).toBe('application/json');
      const header = r.headers['x-pasar-signature'] as string;
      expect(header).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
      expect(await verifySignature(SECRET, header, r.body, now())).toMatchObject({ ok: true });
      expect(await verifySignature('whsec_wrong', header, r.body, now())).toEqual({ ok: false, reason: 'signature_mismatch' });
      expect(r.event.id).toMatch(/^evt_[0-9a-f]{24}$/);
      expect(Math.abs(r.event.created - now())).toBeLessThan(5);
    }
    const byAuth = (authId: string) =>
      receiver.received.filter((r) => r.event.data.authorizationId === authId).map((r) => r.event.type).sort();
    expect(byAuth(id)).toEqual(['payment.authorized', 'payment.captured', 'payment.refunded']);
    expect(byAuth(declined)).toEqual(['payment.declined']);
    expect(byAuth(voidedId)).toEqual(['payment.authorized', 'payment.voided']);
    const refunded = receiver.received.find((r) => r.event.type === 'payment.refunded')!;
    expect(refunded.event.data).toEqual({ authorizationId: id, reference: 'chk_123', amount: 12_990, currency: 'SGD', status: 'refunded' });
    const decline = receiver.received.find((r) => r.event.type === 'payment.declined')!;
    expect(decline.event.data).toMatchObject({ authorizationId: declined, reference: 'chk_d', status: 'declined' });

    expect(sim.deliveries()).toHaveLength(6);
    expect(sim.deliveries().every((d) => d.state === 'delivered' && d.attempts.length === 1 && !d.replay)).toBe(true);
    expect(sim.deliveries().map((d) => d.body).sort()).toEqual(receiver.received.map((r) => r.body).sort());
  });

  it('does not hold the API answer for the webhook', async () => {
    receiver.delayMs = 1000;
    const res = await authorize('tok_ok');
    expect(res.status).toBe(201);
    expect(res.ms).toBeLessThan(500);
    expect(sim.deliveries()[0]!.state).toBe('pending');
    await sim.webhooksIdle();
    expect(sim.deliveries()[0]!.state).toBe('delivered');
  });

  it('retries with backoff when the receiver answers 500, resending the same event', async () => {
    receiver.plan = [500, 503];
    await authorizedId();
    await sim.webhooksIdle();
    expect(receiver.received).toHaveLength(3);
    const [a, b, c] = receiver.received as [Received, Received, Received];
    expect(b.body).toBe(a.body);
    expect(c.body).toBe(a.body);
    for (const r of receiver.received) {
      expect(await verifySignature(SECRET, r.headers['x-pasar-signature'] as string, r.body, now())).toMatchObject({ ok: true });
    }
    const [delivery] = sim.deliveries();
    expect(delivery).toMatchObject({ state: 'delivered', replay: false });
    expect(delivery!.attempts.map((x) => x.status)).toEqual([500, 503, 200]);
    // Backoff: 50 ms, then 100 ms.
    const [t0, t1, t2] = delivery!.attempts.map((x) => x.at) as [number, number, number];
    expect(t1 - t0).toBeGreaterThanOrEqual(45);
    expect(t2 - t1).toBeGreaterThanOrEqual(95);
  });

  it('gives up after the configured number of attempts', async () => {
    receiver.plan = [500, 500, 500, 500];
    await authorizedId();
    await sim.webhooksIdle();
    expect(receiver.received).toHaveLength(3);
    expect(sim.deliveries()[0]).toMatchObject({ state: 'failed' });
    expect(sim.deliveries()[0]!.attempts.map((a) => a.status)).toEqual([500, 500, 500]);
  });

  it('retries an unreachable receiver, recording the network error', async () => {
    const dead = await startSim({ webhookUrl: `http://127.0.0.1:${await freePort()}/hook`, webhookAttempts: 2 });
    await call('POST', '/v1/authorizations', { body: authBody('tok_ok'), key: uniqueKey(), base: dead.url });
    await dead.webhooksIdle();
    const [delivery] = dead.deliveries();
    expect(delivery).toMatchObject({ state: 'failed' });
    expect(delivery!.attempts).toHaveLength(2);
    expect(delivery!.attempts.every((a) => a.status === undefined && typeof a.error === 'string')).toBe(true);
  });

  it('records events but sends nothing without a webhook URL', async () => {
    const quiet = await startSim({ webhookUrl: undefined });
    await call('POST', '/v1/authorizations', { body: authBody('tok_ok'), key: uniqueKey(), base: quiet.url });
    await quiet.webhooksIdle();
    expect(quiet.events()).toHaveLength(1);
    expect(quiet.deliveries()).toEqual([]);
    await expect(quiet.replay(quiet.events()[0]!.id)).rejects.toThrow(/no webhook URL/);
  });

  it('replays a past event with the same id and body, freshly signed', async () => {
    await authorizedId();
    await sim.webhooksIdle();
    const [original] = receiver.received as [Received];
    receiver.plan = [409];
    const status = await sim.replay(original.event.id);
    expect(status).toBe(409);
    expect(receiver.received).toHaveLength(2);
    const replayed = receiver.received[1]!;
    expect(replayed.body).toBe(original.body);
    expect(replayed.event.id).toBe(original.event.id);
    expect(await verifySignature(SECRET, replayed.headers['x-pasar-signature'] as string, replayed.body, now())).toMatchObject({ ok: true });
    expect(sim.deliveries().map((d) => [d.replay, d.state])).toEqual([
      [false, 'delivered'],
      [true, 'failed'],
    ]);
    // One attempt only: a replay is not retried.
    await sim.webhooksIdle();
    expect(receiver.received).toHaveLength(2);
  });

  it('replays with an old timestamp, which the verifier then refuses as stale', async () => {
    await authorizedId();
    await sim.webhooksIdle();
    const eventId = sim.events()[0]!.id;
    const stale = now() - 3600;
    expect(await sim.replay(eventId, { timestamp: stale })).toBe(200);
    const replayed = receiver.received[1]!;
    const header = replayed.headers['x-pasar-signature'] as string;
    expect(header.startsWith(`t=${stale},`)).toBe(true);
    expect(await verifySignature(SECRET, header, replayed.body, now())).toEqual({ ok: false, reason: 'timestamp_out_of_tolerance' });
    expect(await verifySignature(SECRET, header, replayed.body, stale)).toMatchObject({ ok: true });
    await expect(sim.replay('evt_unknown')).rejects.toThrow(/no event/);
  });

  it('lists events over HTTP and replays one through the API', async () => {
    const id = await authorizedId();
    await op(id, 'capture');
    await sim.webhooksIdle();
    const listed = await call('GET', `/v1/events?authorizationId=${id}`);
    const items = listed.json.items as PaymentEvent[];
    expect(items.map((e) => e.type)).toEqual(['payment.authorized', 'payment.captured']);
    // The listed event serialises to the exact bytes that were signed.
    expect(JSON.stringify(items[1])).toBe(sim.deliveries()[1]!.body);
    expect((await call('GET', `/v1/events/${items[0]!.id}`)).json).toEqual(items[0]);
    const replay = await call('POST', `/v1/events/${items[1]!.id}/replay`);
    expect(replay).toMatchObject({ status: 200, json: { status: 200 } });
    expect(receiver.received.at(-1)!.event.id).toBe(items[1]!.id);
    expect((await call('POST', '/v1/events/evt_nope/replay')).status).toBe(404);
  });

  it('sends later events to a new URL after setWebhookUrl', async () => {
    const other = await startReceiver();
    try {
      sim.setWebhookUrl(other.url);
      await authorizedId();
      await sim.webhooksIdle();
      expect(other.received).toHaveLength(1);
      expect(receiver.received).toHaveLength(0);
    } finally {
      await other.close();
    }
  });
});

describe('lifecycle', () => {
  it('closes promptly with a tok_slow request and webhook retries pending', async () => {
    const s = await startPaymentSim({
      apiKey: API_KEY,
      webhookSecret: SECRET,
      webhookUrl: receiver.url,
      slowMs: 60_000,
      webhookRetryDelayMs: 60_000,
    });
    receiver.plan = [500];
    await call('POST', '/v1/authorizations', { body: authBody('tok_ok'), key: uniqueKey(), base: s.url });
    const slow = call('POST', '/v1/authorizations', { body: authBody('tok_slow'), key: uniqueKey(), base: s.url });
    await new Promise((r) => setTimeout(r, 100));
    const started = Date.now();
    await s.close();
    expect(Date.now() - started).toBeLessThan(2000);
    await expect(slow).rejects.toThrow();
    expect(s.deliveries()[0]).toMatchObject({ state: 'failed' });
    expect(s.authorizations()).toHaveLength(1);
  });

  it('refuses to start without an API key or webhook secret', async () => {
    await expect(startPaymentSim({ apiKey: '', webhookSecret: SECRET })).rejects.toThrow(/apiKey/);
    await expect(startPaymentSim({ apiKey: API_KEY, webhookSecret: '' })).rejects.toThrow(/webhookSecret/);
  });
});

describe('webhook receiver (stand-in for a merchant endpoint)', () => {
  it('fails the first n requests of each delivery with 500, then answers 200, and lists what arrived', async () => {

    const post = (delivery: string) =>
      fetch(`${sim.url}/webhook-receiver/erp?fail=2`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-pasar-event': 'order.created', 'x-pasar-delivery': delivery, 'x-pasar-signature': 't=1,v1=00' },
        body: '{"id":"evt_1"}',
      });
    expect([(await post('whd_a')).status, (await post('whd_a')).status, (await post('whd_b')).status, (await post('whd_a')).status]).toEqual([500, 500, 500, 200]);
    const { requests } = (await (await fetch(`${sim.url}/webhook-receiver/erp`)).json()) as { requests: { delivery: string; status: number; body: string; event: string }[] };
    expect(requests.map((r) => [r.delivery, r.status])).toEqual([['whd_a', 500], ['whd_a', 500], ['whd_b', 500], ['whd_a', 200]]);
    expect(requests[0]).toMatchObject({ body: '{"id":"evt_1"}', event: 'order.created' });
    expect(((await (await fetch(`${sim.url}/webhook-receiver/other`)).json()) as { requests: unknown[] }).requests).toEqual([]);
  });

  it('fail=always answers 500 every time (a subscriber that is down)', async () => {

    for (let i = 0; i < 3; i++) expect((await fetch(`${sim.url}/webhook-receiver/down?fail=always`, { method: 'POST', body: '{}' })).status).toBe(500);
  });
});
