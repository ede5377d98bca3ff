/**
 * The Stripe adapter of {@link PaymentProvider}: PaymentIntents over plain
 * `fetch`, form-encoded as Stripe's v1 API expects, with the saga's
 * idempotency key in `Idempotency-Key` on every POST. No SDK at run time:
 * the official `stripe` package is a devDependency used only by the tests
 * (its webhook test-header helper); this module uses nothing but `fetch`,
 * `URLSearchParams` and `AbortSignal`, so it runs unchanged in workerd and in
 * Node 22 (where its tests run against a local stand-in for api.stripe.com).
 *
 * Mapping (Stripe docs: "Create a PaymentIntent", "Capture a PaymentIntent",
 * "Cancel a PaymentIntent", "Create a refund", "Errors", "Advanced error
 * handling", "Idempotent requests", "Supported currencies"):
 * - authorize = `POST /v1/payment_intents` with `amount`, `currency`
 *   (lower case), `payment_method`, `confirm=true`, `capture_method=manual`,
 *   `metadata[reference]`, and `automatic_payment_methods[enabled]=true`,
 *   `automatic_payment_methods[allow_redirects]=never`: a server-side confirm
 *   has nowhere to send a shopper, and without these Stripe refuses a confirm
 *   that has no `return_url` on accounts with redirect-based methods enabled.
 *   `requires_capture` is authorised (the PaymentIntent id is the
 *   authorisation id); a 402 `card_error`, `requires_payment_method`,
 *   `requires_action` (3-D Secure wanted: this flow cannot show it) or
 *   `canceled` is declined; `processing` is re-read once and otherwise retried.
 * - capture = `POST /v1/payment_intents/:id/capture` (the full amount);
 *   void = `POST /v1/payment_intents/:id/cancel` (an authorised intent's
 *   hold is released); refund = `POST /v1/refunds` with `payment_intent`.
 *   Stripe keeps idempotency keys for about a day only, so a step retried
 *   after that (a long Postgres outage) must not turn "already done" into a
 *   failure: a capture of an intent that already `succeeded`, a cancel of one
 *   already `canceled`, and a refund answered `charge_already_refunded` count
 *   as done.
 * - 429, 409 (the same key still in flight), 5xx, timeouts and network errors
 *   are worth retrying; any other 4xx is not. Stripe's `Stripe-Should-Retry`
 *   header, when present, overrides that guess: Stripe replays a stored 500 to
 *   every retry with the same key, and says so with `false`.
 *
 * Amounts: the store keeps integers in units of 10^-exponent with its own
 * exponent per currency (db/regions.ts: IDR, VND and TWD whole units);
 * Stripe wants the currency's minor unit as *Stripe* defines it, which is
 * not always ISO's or ours. VND is zero-decimal in Stripe; IDR is a
 * two-decimal currency there, and TWD is charged as two-decimal too (only
 * its payouts are zero-decimal), so IDR 149000 goes out as 14900000 and TWD
 * 990 as 99000. See {@link toStripeAmount}.
 */
import { REGIONS } from '../../db/regions';
import type { AuthorizeOutcome, PaymentProvider, SettleOutcome } from './provider';

/** Where Stripe's API lives unless `STRIPE_API_BASE` says otherwise. */
export const STRIPE_API_BASE = 'https://api.stripe.com';

/** How long one Stripe call may take before it counts as a timeout (retried). */
const CALL_TIMEOUT_MS = 15_000;

/**
 * Stripe's zero-decimal currencies ("Supported currencies", Zero-decimal).
 * UGX is on Stripe's list but under "Special cases" must still be sent as a
 * two-decimal value ending in `00`, so it is left out here and gets 2.
 */
const STRIPE_ZERO_DECIMAL = new Set(['BIF', 'CLP', 'DJF', 'GNF', 'JPY', 'KMF', 'KRW', 'MGA', 'PYG', 'RWF', 'VND', 'VUV', 'XAF', 'XOF', 'XPF']);
/** Three-decimal currencies Stripe supports (their last digit must be 0). */
const STRIPE_THREE_DECIMAL = new Set(['BHD', 'JOD', 'KWD', 'OMR', 'TND']);

/** Decimals of `currency` in Stripe's API amounts. */
export function stripeExponent(currency: string): number {
  const code = currency.toUpperCase();
  if (STRIPE_ZERO_DECIMAL.has(code)) return 0;
  if (STRIPE_THREE_DECIMAL.has(code)) return 3;
  return 2;
}

/** Decimals this store uses for `currency` (db/regions.ts), if it sells in it. */
export function storeExponent(currency: string): number | undefined {
  const code = currency.toUpperCase();
  return Object.values(REGIONS).find((r) => r.currency === code)?.currencyExponent;
}

/**
 * Converts a store amount (integer, store exponent) into Stripe's `amount`
 * for the currency. Throws a RangeError when the currency is not one this
 * store sells in, the amount is not a non-negative safe integer, or it cannot
 * be expressed exactly in Stripe's unit.
 */
export function toStripeAmount(amount: number, currency: string): number {
  const from = storeExponent(currency);
  if (from === undefined) throw new RangeError(`no store exponent for currency ${currency}`);
  if (!Number.isSafeInteger(amount) || amount < 0) throw new RangeError(`amount must be a non-negative integer, got ${amount}`);
  const shift = stripeExponent(currency) - from;
  if (shift >= 0) {
    const out = amount * 10 ** shift;
    if (!Number.isSafeInteger(out)) throw new RangeError(`amount ${amount} ${currency} is too large`);
    return out;
  }
  const div = 10 ** -shift;
  if (amount % div !== 0) throw new RangeError(`amount ${amount} ${currency} has decimals Stripe cannot take`);
  return amount / div;
}

/** Stripe's error object (the `error` member of a 4xx/5xx body). */
interface StripeError {
  type?: string;
  code?: string;
  decline_code?: string;
  message?: string;
  payment_intent?: { id?: string; status?: string };
}

interface StripeAnswer {
  status: number;
  body: Record<string, unknown>;
  /** The `Stripe-Should-Retry` header: true, false, or undefined when absent. */
  shouldRetry: boolean | undefined;
}

export interface StripeProviderOptions {
  /** Secret API key (`sk_live_…` / `sk_test_…` or a restricted `rk_…`). */
  secretKey: string;
  /** Base URL of the API; {@link STRIPE_API_BASE} by default. */
  apiBase?: string;
  /** Per-call timeout in milliseconds. */
  timeoutMs?: number;
}

const isString = (v: unknown): v is string => typeof v === 'string' && v.length > 0;

function errorOf(body: Record<string, unknown>): StripeError {
  const e = body.error;
  return e && typeof e === 'object' ? (e as StripeError) : {};
}

function summarize(answer: StripeAnswer): string {
  const e = errorOf(answer.body);
  const what = [e.type, e.code, e.decline_code].filter(isString).join('/');
  return `stripe answered ${answer.status}${what ? ` ${what}` : ''}${isString(e.message) ? `: ${e.message.slice(0, 200)}` : ''}`;
}

/** Whether an answer that was not a success is worth retrying with the same key. */
function transient(answer: StripeAnswer): boolean {
  if (answer.shouldRetry !== undefined) return answer.shouldRetry;
  const s = answer.status;
  return s === 429 || s === 409 || s >= 500;
}

/** A Stripe adapter speaking to `options.apiBase` with `options.secretKey`. */
export function stripeProvider(options: StripeProviderOptions): PaymentProvider {
  if (!options.secretKey) throw new Error('STRIPE_SECRET_KEY must be set to use the Stripe provider');
  const base = (options.apiBase || STRIPE_API_BASE).replace(/\/+$/, '');
  const timeoutMs = options.timeoutMs ?? CALL_TIMEOUT_MS;

  const call = async (method: 'GET' | 'POST', path: string, form?: URLSearchParams, idempotencyKey?: string): Promise<StripeAnswer> => {
    const headers: Record<string, string> = { authorization: `Bearer ${options.secretKey}` };
    if (method === 'POST') headers['content-type'] = 'application/x-www-form-urlencoded';
    if (idempotencyKey) headers['idempotency-key'] = idempotencyKey;
    const res = await fetch(`${base}${path}`, {
      method,
      headers,
      body: method === 'POST' ? (form ?? new URLSearchParams()).toString() : undefined,
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    let body: Record<string, unknown> = {};
    try {
      const parsed: unknown = JSON.parse(text);
      if (parsed && typeof parsed === 'object') body = parsed as Record<string, unknown>;
    } catch {
      // A proxy's HTML error page: the status says enough.
    }
    const header = res.headers.get('stripe-should-retry');
    return { status: res.status, body, shouldRetry: header === 'true' ? true : header === 'false' ? false : undefined };
  };

  /** Maps a PaymentIntent (as returned on 200) to an authorisation outcome. */
  const fromIntent = (intent: Record<string, unknown>): AuthorizeOutcome | 'processing' => {
    const id = isString(intent.id) ? intent.id : undefined;
    const status = intent.status;
    switch (status) {
      case 'requires_capture':
      // Captured already (an account-level override of capture_method?):
      // the money is held either way; the later capture then finds it done.
      case 'succeeded':
        return id ? { kind: 'authorized', authorizationId: id } : { kind: 'failed', detail: 'stripe returned a PaymentIntent without an id' };
      case 'requires_payment_method': {
        const last = (intent.last_payment_error ?? {}) as StripeError;
        return { kind: 'declined', authorizationId: id, code: [last.decline_code, last.code].find(isString) ?? 'requires_payment_method' };
      }
      case 'requires_action':
        // 3-D Secure or another customer step: a server-side confirm cannot show it.
        return { kind: 'declined', authorizationId: id, code: 'authentication_required' };
      case 'canceled':
        return { kind: 'declined', authorizationId: id, code: 'canceled' };
      case 'processing':
        return 'processing';
      default:
        return { kind: 'failed', detail: `unexpected PaymentIntent status ${String(status)}` };
    }
  };

  const settle = async (
    path: string,
    form: URLSearchParams,
    idempotencyKey: string,
    alreadyDone: (e: StripeError) => string | undefined,
  ): Promise<SettleOutcome> => {
    let answer: StripeAnswer;
    try {
      answer = await call('POST', path, form, idempotencyKey);
    } catch (err) {
      return { kind: 'retry', detail: `stripe unreachable: ${String(err)}` };
    }
    if (answer.status >= 200 && answer.status < 300) return { kind: 'done', status: String(answer.body.status ?? 'ok') };
    const done = answer.status === 400 ? alreadyDone(errorOf(answer.body)) : undefined;
    if (done) return { kind: 'done', status: done };
    if (transient(answer)) return { kind: 'retry', detail: summarize(answer) };
    return { kind: 'failed', detail: summarize(answer) };
  };

  /** The intent's status when Stripe refused a transition because of it. */
  const unexpectedState = (e: StripeError) => (e.code === 'payment_intent_unexpected_state' ? e.payment_intent?.status : undefined);

  return {
    name: 'stripe',

    async authorize(input, idempotencyKey) {
      let amount: number;
      try {
        amount = toStripeAmount(input.amount, input.currency);
      } catch (err) {
        return { kind: 'failed', detail: String(err) };
      }
      const form = new URLSearchParams();
      form.set('amount', String(amount));
      form.set('currency', input.currency.toLowerCase());
      form.set('payment_method', input.token);
      form.set('confirm', 'true');
      form.set('capture_method', 'manual');
      form.set('automatic_payment_methods[enabled]', 'true');
      form.set('automatic_payment_methods[allow_redirects]', 'never');
      form.set('metadata[reference]', input.reference);

      let answer: StripeAnswer;
      try {
        answer = await call('POST', '/v1/payment_intents', form, idempotencyKey);
      } catch (err) {
        return { kind: 'retry', detail: `stripe unreachable: ${String(err)}` };
      }
      if (answer.status >= 200 && answer.status < 300) {
        const outcome = fromIntent(answer.body);
        if (outcome !== 'processing') return outcome;
        // A replay of the same key answers the stored (stale) body: read the
        // intent itself to see where it got to.
        const id = answer.body.id;
        if (!isString(id)) return { kind: 'retry', detail: 'PaymentIntent processing' };
        try {
          const fresh = await call('GET', `/v1/payment_intents/${encodeURIComponent(id)}`);
          if (fresh.status === 200) {
            const again = fromIntent(fresh.body);
            if (again !== 'processing') return again;
          }
        } catch {
          // Fall through: ask again on the next attempt.
        }
        return { kind: 'retry', detail: `PaymentIntent ${id} still processing` };
      }
      const error = errorOf(answer.body);
      if (answer.status === 402 || error.type === 'card_error') {
        return {
          kind: 'declined',
          authorizationId: isString(error.payment_intent?.id) ? error.payment_intent.id : undefined,
          code: [error.decline_code, error.code].find(isString) ?? 'card_declined',
        };
      }
      if (transient(answer)) return { kind: 'retry', detail: summarize(answer) };
      return { kind: 'failed', detail: summarize(answer) };
    },

    capture: (id, key) =>
      settle(`/v1/payment_intents/${encodeURIComponent(id)}/capture`, new URLSearchParams(), key, (e) =>
        unexpectedState(e) === 'succeeded' ? 'succeeded' : undefined,
      ),

    void: (id, key) =>
      settle(`/v1/payment_intents/${encodeURIComponent(id)}/cancel`, new URLSearchParams(), key, (e) =>
        unexpectedState(e) === 'canceled' ? 'canceled' : undefined,
      ),

    refund: (id, key) =>
      settle('/v1/refunds', new URLSearchParams({ payment_intent: id }), key, (e) =>
        e.code === 'charge_already_refunded' ? 'refunded' : undefined,
      ),
  };
}
