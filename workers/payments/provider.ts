/**
 * The payment provider as the checkout saga sees it: authorise, capture,
 * void, refund, each with the checkout id as the provider's idempotency key,
 * so a retried call after a timeout or a restart can never charge twice.
 *
 * `sim` is the local simulator (dev/payment-sim.ts), which speaks a small
 * authorise/capture API modelled on real card processors. Deployed stores
 * point `PAYMENT_API_URL` at a provider speaking the same API, or set
 * `PAYMENT_PROVIDER=stripe` (with `STRIPE_SECRET_KEY`) to use Stripe's
 * PaymentIntents through the adapter in ./stripe.ts.
 */
import { stripeProvider } from './stripe';

/** What an authorisation attempt came to. */
export type AuthorizeOutcome =
  | { kind: 'authorized'; authorizationId: string }
  | { kind: 'declined'; authorizationId?: string; code: string }
  /** Worth retrying: 5xx, 429, timeouts, network errors. */
  | { kind: 'retry'; detail: string }
  /** Not worth retrying: the request itself was refused. */
  | { kind: 'failed'; detail: string };

/** What a capture / void / refund came to. */
export type SettleOutcome = { kind: 'done'; status: string } | { kind: 'retry'; detail: string } | { kind: 'failed'; detail: string };

/** What a lookup by reference found: the authorisation that stands, none, or no answer. */
export type FindOutcome = { kind: 'found'; authorizationId: string } | { kind: 'none' } | { kind: 'retry'; detail: string };

/** The payment operations the saga needs. */
export interface PaymentProvider {
  readonly name: string;
  /**
   * The authorisation still standing (authorised, not captured, voided or
   * declined) for `reference`, without creating one: what compensation asks
   * when an authorise call's answer never arrived. Providers without such a
   * lookup leave it out, and the saga replays the authorise call under its
   * idempotency key instead.
   */
  find?(reference: string): Promise<FindOutcome>;
  authorize(input: { amount: number; currency: string; token: string; reference: string }, idempotencyKey: string): Promise<AuthorizeOutcome>;
  capture(authorizationId: string, idempotencyKey: string): Promise<SettleOutcome>;
  void(authorizationId: string, idempotencyKey: string): Promise<SettleOutcome>;
  refund(authorizationId: string, idempotencyKey: string): Promise<SettleOutcome>;
}

/** How long one provider call may take before it counts as a timeout (retried). */
const DEFAULT_CALL_TIMEOUT_MS = 15_000;

/**
 * The bindings {@link paymentProvider} reads. `Env` satisfies it; spelling it
 * out keeps this module free of the Workers-only global `Env`, so Node-side
 * code and tests (the Stripe adapter's, which import this module's types)
 * type-check too.
 */
export interface PaymentEnv {
  PAYMENT_PROVIDER?: string;
  PAYMENT_API_URL?: string;
  PAYMENT_API_KEY?: string;
  STRIPE_SECRET_KEY?: string;
  STRIPE_API_BASE?: string;
  /** How long one provider call may take before it counts as timed out and is retried (default 15 s). */
  PAYMENT_TIMEOUT_MS?: string;
}

/** How long one provider call may take in this environment (`PAYMENT_TIMEOUT_MS`, default 15 s). */
export function paymentCallTimeoutMs(env: PaymentEnv): number {
  return Number(env.PAYMENT_TIMEOUT_MS) > 0 ? Number(env.PAYMENT_TIMEOUT_MS) : DEFAULT_CALL_TIMEOUT_MS;
}

/** The provider configured for this environment. */
export function paymentProvider(env: PaymentEnv): PaymentProvider {
  const timeoutMs = paymentCallTimeoutMs(env);
  if (env.PAYMENT_PROVIDER === 'stripe') {
    return stripeProvider({ secretKey: env.STRIPE_SECRET_KEY ?? '', apiBase: env.STRIPE_API_BASE || undefined, timeoutMs });
  }
  const url = env.PAYMENT_API_URL;
  const key = env.PAYMENT_API_KEY;
  if (!url || !key) throw new Error('PAYMENT_API_URL and PAYMENT_API_KEY must be set');
  return httpProvider('sim', url.replace(/\/+$/, ''), key, timeoutMs);
}

function httpProvider(name: string, base: string, apiKey: string, timeoutMs: number): PaymentProvider {
  const call = async (path: string, body: unknown, idempotencyKey: string) => {
    const res = await fetch(`${base}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json', 'idempotency-key': idempotencyKey },
      body: JSON.stringify(body ?? {}),
      signal: AbortSignal.timeout(timeoutMs),
    });
    // Read the whole body under the same deadline. A body that cannot be read
    // or parsed throws: the caller retries, since the outcome is unknown (a
    // success whose body was cut off must never be taken for a decline).
    const text = await res.text();
    let json: Record<string, unknown> = {};
    if (text) {
      try {
        json = JSON.parse(text) as Record<string, unknown>;
      } catch {
        if (res.ok) throw new Error(`provider answered ${res.status} with a body that is not JSON`);
      }
    }
    return { status: res.status, json };
  };
  const transient = (status: number) => status >= 500 || status === 429 || status === 408;

  const settle = async (path: string, idempotencyKey: string): Promise<SettleOutcome> => {
    try {
      const { status, json } = await call(path, {}, idempotencyKey);
      if (status >= 200 && status < 300) return { kind: 'done', status: String(json.status) };
      if (transient(status)) return { kind: 'retry', detail: `provider answered ${status}` };
      return { kind: 'failed', detail: `provider answered ${status}: ${JSON.stringify(json).slice(0, 200)}` };
    } catch (err) {
      return { kind: 'retry', detail: String(err) };
    }
  };

  return {
    name,
    async authorize(input, idempotencyKey) {
      try {
        const { status, json } = await call('/v1/authorizations', input, idempotencyKey);
        if (status === 201 || status === 200) {
          if (json.status === 'authorized' && typeof json.id === 'string') return { kind: 'authorized', authorizationId: json.id };
          if (json.status === 'declined') return { kind: 'declined', authorizationId: String(json.id), code: String(json.declineCode ?? 'declined') };
          // Only an explicit answer counts; anything else is asked again.
          return { kind: 'retry', detail: `provider answered ${status} without a known status` };
        }
        if (status === 402) return { kind: 'declined', authorizationId: json.id ? String(json.id) : undefined, code: String(json.declineCode ?? 'declined') } as AuthorizeOutcome;
        if (transient(status)) return { kind: 'retry', detail: `provider answered ${status}` };
        return { kind: 'failed', detail: `provider answered ${status}: ${JSON.stringify(json).slice(0, 200)}` };
      } catch (err) {
        return { kind: 'retry', detail: String(err) };
      }
    },
    async find(reference) {
      try {
        const res = await fetch(`${base}/v1/authorizations?reference=${encodeURIComponent(reference)}&status=authorized`, {
          headers: { authorization: `Bearer ${apiKey}` },
          signal: AbortSignal.timeout(timeoutMs),
        });
        if (!res.ok) return { kind: 'retry', detail: `provider answered ${res.status}` };
        const body = (await res.json()) as { items?: { id?: unknown; status?: unknown }[] };
        const standing = (body.items ?? []).find((a) => a.status === 'authorized' && typeof a.id === 'string');
        return standing ? { kind: 'found', authorizationId: standing.id as string } : { kind: 'none' };
      } catch (err) {
        return { kind: 'retry', detail: String(err) };
      }
    },
    capture: (id, key) => settle(`/v1/authorizations/${encodeURIComponent(id)}/capture`, key),
    void: (id, key) => settle(`/v1/authorizations/${encodeURIComponent(id)}/void`, key),
    refund: (id, key) => settle(`/v1/authorizations/${encodeURIComponent(id)}/refund`, key),
  };
}
