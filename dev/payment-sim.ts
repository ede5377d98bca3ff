/**
 * Local payment provider simulator for development and tests.
 *
 * The Worker's checkout saga talks to a card processor over HTTP
 * (workers/payments/provider.ts); locally and in tests it talks to this one,
 * which behaves like a real processor's authorise/capture/void API with
 * idempotency keys and signed webhooks, and decides outcomes by card token
 * (shared/API.md, Payments):
 *
 * - `tok_ok`      authorised (201);
 * - `tok_decline` declined (402 `{ status: 'declined', declineCode: 'card_declined' }`),
 *                 still recorded, with a `payment.declined` webhook;
 * - `tok_slow`    authorised after `slowMs` (default 3 s). The authorisation
 *                 is made when the delay ends even if the caller gave up
 *                 waiting, as with a real processor: retrying with the same
 *                 Idempotency-Key (or listing by `reference`) finds it;
 * - `tok_flaky`   the first attempt for an Idempotency-Key answers 503 and
 *                 records nothing; later attempts with that key succeed;
 * - anything else 400 `invalid_token`.
 *
 * API (JSON; `Authorization: Bearer <apiKey>` on every `/v1` route, else 401):
 * - `POST /v1/authorizations` `{ amount, currency, token, reference }`, header
 *   `Idempotency-Key` (required, 1-255 chars) -> 201 / 402 / 503 as above;
 * - `GET  /v1/authorizations?reference=&status=` -> `{ items }`, oldest first;
 * - `GET  /v1/authorizations/:id` -> the authorisation;
 * - `POST /v1/authorizations/:id/capture` authorized -> captured;
 * - `POST /v1/authorizations/:id/void`    authorized -> voided;
 * - `POST /v1/authorizations/:id/refund`  captured   -> refunded;
 *   each answers 200 with the authorisation, also when it is already in the
 *   target state (no second webhook), and 409 `invalid_state` from any other
 *   state (void of a captured payment needs a refund instead). Body empty or `{}`.
 * - `GET  /v1/events?authorizationId=&reference=`, `GET /v1/events/:id`, and
 *   `POST /v1/events/:id/replay` (re-sends one webhook, answers `{ status }`);
 * - `GET  /health` (no auth) -> `{ ok: true }`;
 * - `POST /turnstile/v0/siteverify` (no auth): a stand-in for Cloudflare
 *   Turnstile's siteverify, for the flash-sale ticket check
 *   (workers/sales/turnstile.ts). Form fields (urlencoded or multipart, or a
 *   JSON body) `secret`, `response`, `remoteip`; answers 200
 *   `{ success, 'error-codes': [...] }` as siteverify does, deciding by
 *   Cloudflare's documented test secret keys: `1x0000000000000000000000000000000AA`
 *   always passes, `2x0000000000000000000000000000000AA` always fails
 *   (`invalid-input-response`), `3x0000000000000000000000000000000AA` answers
 *   a spent token (`timeout-or-duplicate`); a missing secret or response is
 *   `missing-input-secret` / `missing-input-response`, any other secret
 *   `invalid-input-secret`, and a `remoteip` that is not an IP address a
 *   malformed request (`bad-request`).
 * Errors are `{ error: '<code>', message }`: 400 `invalid_json` /
 * `invalid_request` / `invalid_token` / `invalid_idempotency_key`, 401
 * `unauthorized`, 404 `not_found`, 405 `method_not_allowed`, 409
 * `idempotency_conflict` / `invalid_state`, 413 `payload_too_large`, 503
 * `temporarily_unavailable`.
 *
 * Idempotency, as Stripe documents it: a key is scoped to the route it was
 * sent to (method and path), so the saga may use its checkout id as the key
 * of the authorisation and of the later capture or void alike. The same key
 * with the same body answers the stored status and body again (header
 * `idempotent-replayed: true`), without acting twice; a request that arrives
 * while the first is still running waits for it and gets its answer. The same
 * key with another body is 409 `idempotency_conflict`. Requests refused before
 * they ran (validation, unknown token) and 5xx answers are not stored, so a
 * corrected or retried request runs afresh.
 *
 * Webhooks: each state change (authorized, declined, captured, voided,
 * refunded) creates an event `{ id: 'evt_…', type: 'payment.<status>',
 * created, data: { authorizationId, reference, amount, currency, status } }`,
 * POSTed to `webhookUrl` after the API answer is on its way, signed in
 * `x-pasar-signature` (workers/payments/signature.ts; a fresh timestamp per
 * attempt, the body bytes always the same). A non-2xx answer or a network
 * error is retried with exponential backoff, `webhookAttempts` tries in all.
 * Events are delivered independently, so on retries they can arrive out of
 * order and can race the API answer; that is what receivers must tolerate.
 *
 * Webhook receiver (for the store's outbound webhooks, workers/webhooks/):
 * `POST /webhook-receiver/<name>?fail=<n>` records the request (headers
 * `x-pasar-event`, `x-pasar-delivery`, `x-pasar-signature` and the raw body)
 * and answers 500 to the first `n` requests of each `x-pasar-delivery`, 200
 * after; `fail=always` answers 500 every time (a subscriber that is down).
 * `GET /webhook-receiver/<name>` answers `{ requests: [...] }` in arrival
 * order. No API key: it stands in for a merchant's endpoint.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { isIP, type AddressInfo } from 'node:net';
import { REGIONS } from '../db/regions';
import { signPayload } from '../workers/payments/signature';
import { readBody } from './http-body';
import { closeOnSignals, runIfMain } from './processes';

/** Header the simulator signs its webhooks in. */
export const SIGNATURE_HEADER = 'x-pasar-signature';

/** Card tokens the simulator understands. */
export const SIM_TOKENS = ['tok_ok', 'tok_decline', 'tok_slow', 'tok_flaky'] as const;
export type SimToken = (typeof SIM_TOKENS)[number];

/** Currencies accepted: the store's regional currencies. */
export const SIM_CURRENCIES: readonly string[] = [...new Set(Object.values(REGIONS).map((r) => r.currency))];

export type AuthorizationStatus = 'authorized' | 'declined' | 'captured' | 'voided' | 'refunded';

export type PaymentEventType =
  | 'payment.authorized'
  | 'payment.declined'
  | 'payment.captured'
  | 'payment.voided'
  | 'payment.refunded';

/** One authorisation as the simulator keeps it (the API shows all but `token` and `idempotencyKey`). */
export interface SimAuthorization {
  id: string;
  status: AuthorizationStatus;
  amount: number;
  currency: string;
  reference: string;
  /** Set when declined. */
  declineCode?: string;
  /** Unix seconds. */
  created: number;
  /** Unix seconds of the last state change. */
  updated: number;
  token: SimToken;
  /** The Idempotency-Key of the request that created it. */
  idempotencyKey: string;
}

/** A webhook event; `JSON.stringify` of it is the body that is signed and sent. */
export interface PaymentEvent {
  id: string;
  type: PaymentEventType;
  /** Unix seconds. */
  created: number;
  data: {
    authorizationId: string;
    reference: string;
    amount: number;
    currency: string;
    status: AuthorizationStatus;
  };
}

/** One POST of an event to the webhook URL. */
export interface DeliveryAttempt {
  /** Unix milliseconds when it was sent. */
  at: number;
  /** The receiver's HTTP status; absent on a network error or timeout. */
  status?: number;
  error?: string;
  /** The signature header sent with it (its `t` is the attempt's own time). */
  signature: string;
}

/** The delivery of one event: the original send with its retries, or one replay. */
export interface WebhookDelivery {
  eventId: string;
  type: PaymentEventType;
  url: string;
  /** Exactly the bytes sent (and signed). */
  body: string;
  /** True for a delivery started by `replay()`. */
  replay: boolean;
  state: 'pending' | 'delivered' | 'failed';
  attempts: DeliveryAttempt[];
}

/** One request a `/webhook-receiver/<name>` endpoint received. */
export interface ReceivedWebhook {
  at: string;
  event: string | null;
  delivery: string | null;
  signature: string | null;
  /** The raw body, as received. */
  body: string;
  /** What the receiver answered. */
  status: number;
}

/** Options for {@link startPaymentSim}. */
export interface PaymentSimOptions {
  /** Key clients must present as `Authorization: Bearer <apiKey>`. */
  apiKey: string;
  /** Secret the webhooks are signed with (the Worker's `PAYMENT_WEBHOOK_SECRET`). */
  webhookSecret: string;
  /** Where to POST events; unset, events are recorded but not sent. */
  webhookUrl?: string;
  /** Port to listen on; 0 (the default) picks a free one. */
  port?: number;
  /** Interface to listen on; defaults to `127.0.0.1`. */
  host?: string;
  /** How long `tok_slow` takes to answer, in ms. Defaults to 3000. */
  slowMs?: number;
  /** Tries per webhook delivery, the first included. Defaults to 3. */
  webhookAttempts?: number;
  /** Wait before the first retry, doubled for each later one, in ms. Defaults to 500. */
  webhookRetryDelayMs?: number;
  /** Time one delivery attempt may take before it counts as failed, in ms. Defaults to 5000. */
  webhookTimeoutMs?: number;
  /** Receives one line per request and per webhook attempt. Defaults to silence. */
  log?: (line: string) => void;
}

/** A running simulator. */
export interface PaymentSim {
  /** Base URL for `PAYMENT_API_URL`, e.g. `http://127.0.0.1:8790`. */
  url: string;
  port: number;
  /** Stops serving, drops open connections, abandons pending delays and webhook retries. */
  close(): Promise<void>;
  /** Every authorisation made (declined ones included), oldest first; copies. */
  authorizations(): SimAuthorization[];
  /** Every event created, oldest first; copies. */
  events(): PaymentEvent[];
  /** Every webhook delivery, replays included, in the order they started; copies. */
  deliveries(): WebhookDelivery[];
  /**
   * Sends a past event again, same id and body, freshly signed (or signed at
   * `opts.timestamp`, to exercise a receiver's tolerance), in one attempt
   * without retries. Resolves with the receiver's status; rejects when no
   * webhook URL is set, the event is unknown, or the receiver is unreachable.
   */
  replay(eventId: string, opts?: { timestamp?: number }): Promise<number>;
  /** Resolves once no webhook delivery is pending (retries included). */
  webhooksIdle(): Promise<void>;
  /** Changes (or, with undefined, turns off) the webhook URL for later deliveries. */
  setWebhookUrl(url: string | undefined): void;
}

const MAX_BODY_BYTES = 64 * 1024;
const AUTHORIZE_FIELDS = ['amount', 'currency', 'token', 'reference'] as const;

/** A JSON answer, as sent and as stored for idempotent replays. */
interface Answer {
  status: number;
  body: unknown;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

/** Thrown into pending work when the simulator closes. */
class ClosedError extends Error {
  constructor() {
    super('payment simulator closed');
  }
}

interface IdempotencyEntry {
  fingerprint: string;
  answer: Promise<Answer>;
}

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

function randomId(prefix: string): string {
  return `${prefix}_${randomBytes(12).toString('hex')}`;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Digests first so the comparison is constant-time whatever the lengths. */
function keyMatches(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

function isSimToken(token: string): token is SimToken {
  return (SIM_TOKENS as readonly string[]).includes(token);
}


/** Cloudflare's documented Turnstile test secret keys, and what siteverify answers for each. */
export const TURNSTILE_TEST_SECRETS = {
  pass: '1x0000000000000000000000000000000AA',
  fail: '2x0000000000000000000000000000000AA',
  spent: '3x0000000000000000000000000000000AA',
} as const;

/** The fields of a siteverify request: urlencoded or multipart form, or JSON, as siteverify takes them. */
async function siteverifyFields(req: IncomingMessage, body: Buffer): Promise<Record<string, string>> {
  const type = String(req.headers['content-type'] ?? '');
  if (/^application\/json/i.test(type)) {
    const parsed = parseJsonBody(body);
    if (!isPlainObject(parsed)) return {};
    return Object.fromEntries(Object.entries(parsed).filter((e): e is [string, string] => typeof e[1] === 'string'));
  }
  if (!/^(application\/x-www-form-urlencoded|multipart\/form-data)/i.test(type)) return {};
  try {
    const form = await new Request('http://sim/', { method: 'POST', headers: { 'content-type': type }, body }).formData();
    const out: Record<string, string> = {};
    for (const [k, v] of form) if (typeof v === 'string') out[k] = v;
    return out;
  } catch {
    return {};
  }
}

/** What siteverify answers for these fields. */
function siteverify(fields: Record<string, string>): { success: boolean; 'error-codes': string[]; challenge_ts?: string; hostname?: string } {
  const secret = fields.secret ?? '';
  const response = fields.response ?? '';
  const errors: string[] = [];
  if (!secret) errors.push('missing-input-secret');
  else if (!(Object.values(TURNSTILE_TEST_SECRETS) as string[]).includes(secret)) errors.push('invalid-input-secret');
  if (!response) errors.push('missing-input-response');
  if (errors.length) return { success: false, 'error-codes': errors };
  // remoteip is optional, but when given it must be an address: a malformed request.
  if (fields.remoteip !== undefined && isIP(fields.remoteip) === 0) return { success: false, 'error-codes': ['bad-request'] };
  if (secret === TURNSTILE_TEST_SECRETS.fail) return { success: false, 'error-codes': ['invalid-input-response'] };
  if (secret === TURNSTILE_TEST_SECRETS.spent) return { success: false, 'error-codes': ['timeout-or-duplicate'] };
  return { success: true, 'error-codes': [], challenge_ts: new Date().toISOString(), hostname: 'example.com' };
}

/** A request body of at most MAX_BODY_BYTES; larger is 413 `payload_too_large`. */
function readSimBody(req: IncomingMessage): Promise<Buffer> {
  return readBody(req, MAX_BODY_BYTES, () => new HttpError(413, 'payload_too_large', `request body exceeds ${MAX_BODY_BYTES} bytes`));
}

function parseJsonBody(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new HttpError(400, 'invalid_json', `malformed JSON request body: ${errorMessage(err)}`);
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

interface AuthorizeRequest {
  amount: number;
  currency: string;
  token: string;
  reference: string;
}

/** Strict validation: every field checked, unknown fields refused. */
function parseAuthorizeRequest(body: Buffer): AuthorizeRequest {
  const json = parseJsonBody(body);
  if (!isPlainObject(json)) throw new HttpError(400, 'invalid_request', 'the body must be a JSON object');
  const problems: Record<string, string> = {};
  for (const field of Object.keys(json)) {
    if (!(AUTHORIZE_FIELDS as readonly string[]).includes(field)) problems[field] = 'unknown field';
  }
  const { amount, currency, token, reference } = json;
  if (typeof amount !== 'number' || !Number.isSafeInteger(amount) || amount <= 0) {
    problems.amount = 'must be a positive integer of minor units';
  }
  if (typeof currency !== 'string' || !SIM_CURRENCIES.includes(currency)) {
    problems.currency = `must be one of ${SIM_CURRENCIES.join(', ')}`;
  }
  if (typeof token !== 'string' || token === '') problems.token = 'must be a non-empty string';
  if (typeof reference !== 'string' || reference === '' || reference.length > 255) {
    problems.reference = 'must be a string of 1-255 characters';
  }
  if (Object.keys(problems).length > 0) {
    throw new HttpError(400, 'invalid_request', 'invalid authorization request', { details: problems });
  }
  return { amount, currency, token, reference } as AuthorizeRequest;
}

/** Capture, void and refund take no parameters: an empty body or `{}`. */
function checkEmptyBody(body: Buffer): void {
  if (body.toString('utf8').trim() === '') return;
  const json = parseJsonBody(body);
  if (!isPlainObject(json)) throw new HttpError(400, 'invalid_request', 'the body must be a JSON object');
  const fields = Object.keys(json);
  if (fields.length > 0) {
    throw new HttpError(400, 'invalid_request', 'this operation takes no parameters', {
      details: Object.fromEntries(fields.map((f) => [f, 'unknown field'])),
    });
  }
}

/** Idempotency-Key: undefined when absent; 400 when present but empty or too long. */
function idempotencyKeyOf(req: IncomingMessage): string | undefined {
  const raw = req.headers['idempotency-key'];
  if (raw === undefined) return undefined;
  const key = Array.isArray(raw) ? raw.join(', ') : raw;
  if (key.length < 1 || key.length > 255) {
    throw new HttpError(400, 'invalid_idempotency_key', 'Idempotency-Key must be 1-255 characters');
  }
  return key;
}

/** A path segment, decoded; a malformed escape cannot name anything, so 404. */
function segment(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new HttpError(404, 'not_found', `no such resource ${raw}`);
  }
}

function publicView(a: SimAuthorization): Record<string, unknown> {
  const view: Record<string, unknown> = {
    id: a.id,
    object: 'authorization',
    status: a.status,
    amount: a.amount,
    currency: a.currency,
    reference: a.reference,
    created: a.created,
    updated: a.updated,
  };
  if (a.declineCode) view.declineCode = a.declineCode;
  return view;
}

function formatHost(host: string): string {
  if (host === '0.0.0.0' || host === '::') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}

function sendJson(res: ServerResponse, status: number, payload: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  const text = JSON.stringify(payload);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

const TRANSITIONS = {
  capture: { from: 'authorized', to: 'captured', event: 'payment.captured' },
  void: { from: 'authorized', to: 'voided', event: 'payment.voided' },
  refund: { from: 'captured', to: 'refunded', event: 'payment.refunded' },
} as const satisfies Record<string, { from: AuthorizationStatus; to: AuthorizationStatus; event: PaymentEventType }>;
type Operation = keyof typeof TRANSITIONS;

function refusal(op: Operation, status: AuthorizationStatus): HttpError {
  const hint =
    op === 'void' && (status === 'captured' || status === 'refunded')
      ? '; a captured payment is refunded, not voided'
      : op === 'refund' && status === 'authorized'
        ? '; an uncaptured authorization is voided, not refunded'
        : '';
  return new HttpError(409, 'invalid_state', `cannot ${op} an authorization that is ${status}${hint}`, { status });
}

/**
 * Starts the simulator. Resolves once it listens.
 */
export async function startPaymentSim(opts: PaymentSimOptions): Promise<PaymentSim> {
  if (!opts.apiKey) throw new Error('startPaymentSim: apiKey must be a non-empty string');
  if (!opts.webhookSecret) throw new Error('startPaymentSim: webhookSecret must be a non-empty string');
  const slowMs = opts.slowMs ?? 3000;
  const maxAttempts = Math.max(1, opts.webhookAttempts ?? 3);
  const retryDelayMs = opts.webhookRetryDelayMs ?? 500;
  const webhookTimeoutMs = opts.webhookTimeoutMs ?? 5000;
  const log = opts.log ?? (() => {});
  let webhookUrl = opts.webhookUrl || undefined;
  /** Outbound-webhook receivers by name: what arrived, and requests seen per delivery id. */
  const receivers = new Map<string, { requests: ReceivedWebhook[]; seen: Map<string, number> }>();

  const authorizations = new Map<string, SimAuthorization>();
  /** Keyed by `<method> <path>\n<Idempotency-Key>`. */
  const idempotency = new Map<string, IdempotencyEntry>();
  /** `tok_flaky` keys whose first attempt already failed. */
  const flakyTried = new Set<string>();
  const events = new Map<string, { event: PaymentEvent; body: string }>();
  const deliveries: WebhookDelivery[] = [];
  const pendingDeliveries = new Set<Promise<void>>();
  let closed = false;
  const closing = new AbortController();

  /** Resolves after `ms`, or rejects with ClosedError when the simulator closes first. */
  function sleep(ms: number): Promise<void> {
    if (closed) return Promise.reject(new ClosedError());
    return new Promise((resolve, reject) => {
      const onClose = () => {
        clearTimeout(timer);
        reject(new ClosedError());
      };
      const timer = setTimeout(() => {
        closing.signal.removeEventListener('abort', onClose);
        resolve();
      }, ms);
      closing.signal.addEventListener('abort', onClose, { once: true });
    });
  }

  // ---- webhooks ----------------------------------------------------------

  function emit(type: PaymentEventType, a: SimAuthorization): void {
    const event: PaymentEvent = {
      id: randomId('evt'),
      type,
      created: nowSeconds(),
      data: { authorizationId: a.id, reference: a.reference, amount: a.amount, currency: a.currency, status: a.status },
    };
    const body = JSON.stringify(event);
    events.set(event.id, { event, body });
    const url = webhookUrl;
    if (!url) return;
    const delivery: WebhookDelivery = { eventId: event.id, type, url, body, replay: false, state: 'pending', attempts: [] };
    deliveries.push(delivery);
    // Started on the next turn, so the API answer is written first.
    track(
      new Promise<void>((resolve) => setImmediate(resolve)).then(() => deliverWithRetries(delivery)),
    );
  }

  function track(p: Promise<void>): void {
    const settled = p.catch(() => {}).finally(() => pendingDeliveries.delete(settled));
    pendingDeliveries.add(settled);
  }

  /** One POST; records the attempt and returns the status, or throws on a network error. */
  async function attempt(delivery: WebhookDelivery, timestamp = nowSeconds()): Promise<number> {
    const signature = await signPayload(opts.webhookSecret, timestamp, delivery.body);
    const record: DeliveryAttempt = { at: Date.now(), signature };
    delivery.attempts.push(record);
    try {
      const res = await fetch(delivery.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', [SIGNATURE_HEADER]: signature, 'user-agent': 'pasar-payment-sim' },
        body: delivery.body,
        signal: AbortSignal.any([closing.signal, AbortSignal.timeout(webhookTimeoutMs)]),
      });
      record.status = res.status;
      // Drain the body so the connection can be reused.
      await res.arrayBuffer().catch(() => undefined);
      log(`webhook ${delivery.type} ${delivery.eventId} -> ${res.status}`);
      return res.status;
    } catch (err) {
      record.error = errorMessage(err);
      log(`webhook ${delivery.type} ${delivery.eventId} failed: ${record.error}`);
      throw err;
    }
  }

  async function deliverWithRetries(delivery: WebhookDelivery): Promise<void> {
    try {
      for (let n = 0; n < maxAttempts; n++) {
        if (n > 0) await sleep(retryDelayMs * 2 ** (n - 1));
        if (closed) break;
        const status = await attempt(delivery).catch(() => undefined);
        if (status !== undefined && status >= 200 && status < 300) {
          delivery.state = 'delivered';
          return;
        }
      }
    } catch (err) {
      if (!(err instanceof ClosedError)) throw err;
    }
    delivery.state = 'failed';
    log(`webhook ${delivery.type} ${delivery.eventId} gave up after ${delivery.attempts.length} attempt(s)`);
  }

  async function replay(eventId: string, replayOpts: { timestamp?: number } = {}): Promise<number> {
    const stored = events.get(eventId);
    if (!stored) throw new Error(`replay: no event ${eventId}`);
    if (!webhookUrl) throw new Error('replay: no webhook URL is set');
    const delivery: WebhookDelivery = {
      eventId,
      type: stored.event.type,
      url: webhookUrl,
      body: stored.body,
      replay: true,
      state: 'pending',
      attempts: [],
    };
    deliveries.push(delivery);
    const result = attempt(delivery, replayOpts.timestamp).then(
      (status) => {
        delivery.state = status >= 200 && status < 300 ? 'delivered' : 'failed';
        return status;
      },
      (err: unknown) => {
        delivery.state = 'failed';
        throw err;
      },
    );
    track(result.then(() => {}));
    return result;
  }

  // ---- payments ------------------------------------------------------------

  function create(req: AuthorizeRequest, token: SimToken, key: string, declined: boolean): SimAuthorization {
    const now = nowSeconds();
    const a: SimAuthorization = {
      id: randomId('auth'),
      status: declined ? 'declined' : 'authorized',
      amount: req.amount,
      currency: req.currency,
      reference: req.reference,
      created: now,
      updated: now,
      token,
      idempotencyKey: key,
    };
    if (declined) a.declineCode = 'card_declined';
    authorizations.set(a.id, a);
    emit(declined ? 'payment.declined' : 'payment.authorized', a);
    return a;
  }

  async function authorize(req: AuthorizeRequest, token: SimToken, key: string): Promise<Answer> {
    switch (token) {
      case 'tok_decline': {
        const a = create(req, token, key, true);
        return { status: 402, body: publicView(a) };
      }
      case 'tok_flaky':
        if (!flakyTried.has(key)) {
          flakyTried.add(key);
          return {
            status: 503,
            body: { error: 'temporarily_unavailable', message: 'simulated outage (tok_flaky): retry with the same Idempotency-Key' },
          };
        }
        break;
      case 'tok_slow':
        await sleep(slowMs);
        break;
      case 'tok_ok':
        break;
    }
    return { status: 201, body: publicView(create(req, token, key, false)) };
  }

  function settle(op: Operation, id: string): Answer {
    const a = authorizations.get(id);
    if (!a) throw new HttpError(404, 'not_found', `no authorization ${id}`);
    const t = TRANSITIONS[op];
    if (a.status === t.from) {
      a.status = t.to;
      a.updated = nowSeconds();
      emit(t.event, a);
    } else if (a.status !== t.to) {
      throw refusal(op, a.status);
    }
    return { status: 200, body: publicView(a) };
  }

  /**
   * Runs `run` at most once per key and route; a stored answer (or the one in
   * progress) is returned for the same fingerprint, 409 for another.
   */
  async function idempotent(
    scope: string,
    key: string | undefined,
    fingerprint: string,
    run: () => Promise<Answer>,
  ): Promise<Answer & { replayed: boolean }> {
    if (key === undefined) return { ...(await run()), replayed: false };
    const slot = `${scope}\n${key}`;
    const existing = idempotency.get(slot);
    if (existing) {
      if (existing.fingerprint !== fingerprint) {
        throw new HttpError(
          409,
          'idempotency_conflict',
          'this Idempotency-Key was already used with different parameters',
        );
      }
      return { ...(await existing.answer), replayed: true };
    }
    const answer = (async () => {
      try {
        return await run();
      } catch (err) {
        if (err instanceof HttpError) return { status: err.status, body: { error: err.code, message: err.message, ...err.extra } };
        throw err;
      }
    })();
    const entry: IdempotencyEntry = { fingerprint, answer };
    idempotency.set(slot, entry);
    // Failures that did not act (5xx, a crash, the sim closing) are not kept,
    // so a retry with the same key runs again.
    const forget = () => {
      if (idempotency.get(slot) === entry) idempotency.delete(slot);
    };
    answer.then((a) => {
      if (a.status >= 500) forget();
    }, forget);
    return { ...(await answer), replayed: false };
  }

  // ---- routing -----------------------------------------------------------

  function authenticate(req: IncomingMessage): void {
    const match = /^Bearer\s+(.+)$/i.exec(req.headers.authorization?.trim() ?? '');
    if (!match?.[1] || !keyMatches(match[1], opts.apiKey)) {
      throw new HttpError(401, 'unauthorized', 'missing or invalid API key (Authorization: Bearer <key>)');
    }
  }

  function allow(method: string, allowed: string[], res: ServerResponse): void {
    if (!allowed.includes(method)) {
      res.setHeader('allow', allowed.join(', '));
      throw new HttpError(405, 'method_not_allowed', `${method} is not allowed here`);
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://sim');
    const method = req.method ?? 'GET';
    const path = url.pathname.replace(/\/+$/, '') || '/';
    log(`${method} ${url.pathname}${url.search}`);

    if (path === '/health') {
      allow(method, ['GET'], res);
      return sendJson(res, 200, { ok: true });
    }
    if (path === '/turnstile/v0/siteverify') {
      allow(method, ['POST'], res);
      return sendJson(res, 200, siteverify(await siteverifyFields(req, await readSimBody(req))));
    }
    const receiver = /^\/webhook-receiver\/([A-Za-z0-9_-]{1,64})$/.exec(path);
    if (receiver) {
      allow(method, ['GET', 'POST'], res);
      const name = receiver[1]!;
      const state = receivers.get(name) ?? { requests: [], seen: new Map<string, number>() };
      receivers.set(name, state);
      if (method === 'GET') return sendJson(res, 200, { requests: state.requests });
      const header = (h: string) => (typeof req.headers[h] === 'string' ? (req.headers[h] as string) : null);
      const delivery = header('x-pasar-delivery') ?? '';
      const count = (state.seen.get(delivery) ?? 0) + 1;
      state.seen.set(delivery, count);
      const fail = url.searchParams.get('fail');
      const failing = fail === 'always' || count <= Number(fail ?? 0);
      const status = failing ? 500 : 200;
      const body = (await readSimBody(req)).toString('utf8');
      state.requests.push({ at: new Date().toISOString(), event: header('x-pasar-event'), delivery: header('x-pasar-delivery'), signature: header('x-pasar-signature'), body, status });
      return sendJson(res, status, failing ? { error: 'receiver_failing', attempt: count } : { ok: true, attempt: count });
    }
    if (path !== '/v1' && !path.startsWith('/v1/')) throw new HttpError(404, 'not_found', `no route ${path}`);
    authenticate(req);

    if (path === '/v1/authorizations') {
      allow(method, ['GET', 'POST'], res);
      if (method === 'GET') {
        const reference = url.searchParams.get('reference');
        const status = url.searchParams.get('status');
        const items = [...authorizations.values()]
          .filter((a) => (reference === null || a.reference === reference) && (status === null || a.status === status))
          .map(publicView);
        return sendJson(res, 200, { items });
      }
      const key = idempotencyKeyOf(req);
      if (key === undefined) {
        throw new HttpError(400, 'invalid_idempotency_key', 'the Idempotency-Key header is required');
      }
      const body = parseAuthorizeRequest(await readSimBody(req));
      const token = body.token;
      if (!isSimToken(token)) {
        throw new HttpError(400, 'invalid_token', `unknown card token; use one of ${SIM_TOKENS.join(', ')}`);
      }
      const fingerprint = JSON.stringify(AUTHORIZE_FIELDS.map((f) => body[f]));
      const answer = await idempotent(`POST ${path}`, key, fingerprint, () => authorize(body, token, key));
      return sendJson(res, answer.status, answer.body, answer.replayed ? { 'idempotent-replayed': 'true' } : {});
    }

    const one = /^\/v1\/authorizations\/([^/]+)$/.exec(path);
    if (one) {
      allow(method, ['GET'], res);
      const a = authorizations.get(segment(one[1]!));
      if (!a) throw new HttpError(404, 'not_found', `no authorization ${one[1]}`);
      return sendJson(res, 200, publicView(a));
    }

    const op = /^\/v1\/authorizations\/([^/]+)\/(capture|void|refund)$/.exec(path);
    if (op) {
      allow(method, ['POST'], res);
      const key = idempotencyKeyOf(req);
      checkEmptyBody(await readSimBody(req));
      const id = segment(op[1]!);
      const operation = op[2] as Operation;
      // Unknown ids are not stored under the key: the id might exist later.
      if (!authorizations.has(id)) throw new HttpError(404, 'not_found', `no authorization ${id}`);
      const answer = await idempotent(`POST ${path}`, key, '', async () => settle(operation, id));
      return sendJson(res, answer.status, answer.body, answer.replayed ? { 'idempotent-replayed': 'true' } : {});
    }

    if (path === '/v1/events') {
      allow(method, ['GET'], res);
      const authorizationId = url.searchParams.get('authorizationId');
      const reference = url.searchParams.get('reference');
      const items = [...events.values()]
        .map((e) => e.event)
        .filter(
          (e) =>
            (authorizationId === null || e.data.authorizationId === authorizationId) &&
            (reference === null || e.data.reference === reference),
        );
      return sendJson(res, 200, { items });
    }

    const event = /^\/v1\/events\/([^/]+)(\/replay)?$/.exec(path);
    if (event) {
      const id = segment(event[1]!);
      const stored = events.get(id);
      if (event[2]) {
        allow(method, ['POST'], res);
        if (!stored) throw new HttpError(404, 'not_found', `no event ${id}`);
        if (!webhookUrl) throw new HttpError(409, 'no_webhook_url', 'the simulator has no webhook URL');
        try {
          return sendJson(res, 200, { status: await replay(id) });
        } catch (err) {
          throw new HttpError(502, 'webhook_unreachable', errorMessage(err));
        }
      }
      allow(method, ['GET'], res);
      if (!stored) throw new HttpError(404, 'not_found', `no event ${id}`);
      return sendJson(res, 200, stored.event);
    }

    throw new HttpError(404, 'not_found', `no route ${path}`);
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (err instanceof HttpError) {
        if (err.status === 413) res.setHeader('connection', 'close');
        sendJson(res, err.status, { error: err.code, message: err.message, ...err.extra });
      } else if (err instanceof ClosedError) {
        res.destroy();
      } else {
        log(`internal error: ${errorMessage(err)}`);
        sendJson(res, 500, { error: 'internal_error', message: errorMessage(err) });
      }
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;

  const copy = <T>(value: T): T => structuredClone(value);

  return {
    url: `http://${formatHost(opts.host ?? '127.0.0.1')}:${port}`,
    port,
    close: async () => {
      if (closed) return;
      closed = true;
      closing.abort(new ClosedError());
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await stopped;
      await Promise.allSettled([...pendingDeliveries]);
    },
    authorizations: () => [...authorizations.values()].map(copy),
    events: () => [...events.values()].map((e) => copy(e.event)),
    deliveries: () => deliveries.map(copy),
    replay,
    webhooksIdle: async () => {
      while (pendingDeliveries.size > 0) await Promise.allSettled([...pendingDeliveries]);
    },
    setWebhookUrl: (url) => {
      webhookUrl = url || undefined;
    },
  };
}

async function main(): Promise<void> {
  const env = process.env;
  const port = Number(env.PAYMENT_SIM_PORT ?? 8790);
  const apiKey = env.PAYMENT_SIM_API_KEY || env.PAYMENT_API_KEY;
  const webhookSecret = env.PAYMENT_WEBHOOK_SECRET;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`PAYMENT_SIM_PORT must be a port number, got "${env.PAYMENT_SIM_PORT}"`);
    process.exitCode = 1;
    return;
  }
  if (!apiKey || !webhookSecret) {
    console.error(
      'PAYMENT_SIM_API_KEY (the Worker\'s PAYMENT_API_KEY) and PAYMENT_WEBHOOK_SECRET must be set.',
    );
    process.exitCode = 1;
    return;
  }
  const slowMs = env.PAYMENT_SIM_SLOW_MS ? Number(env.PAYMENT_SIM_SLOW_MS) : undefined;
  const sim = await startPaymentSim({
    apiKey,
    webhookSecret,
    webhookUrl: env.PAYMENT_WEBHOOK_URL || undefined,
    port,
    host: env.PAYMENT_SIM_HOST || '127.0.0.1',
    slowMs: slowMs !== undefined && Number.isFinite(slowMs) ? slowMs : undefined,
    log: (line) => console.log(`[payment-sim] ${line}`),
  });
  console.log(
    `Payment simulator on ${sim.url}; webhooks ${env.PAYMENT_WEBHOOK_URL ? `to ${env.PAYMENT_WEBHOOK_URL}` : 'off (PAYMENT_WEBHOOK_URL unset)'}`,
  );
  closeOnSignals(sim.close);
}

runIfMain(import.meta.url, main);
