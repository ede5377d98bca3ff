/**
 * Cloudflare Turnstile before a flash-sale ticket: the shopper's page gets a
 * token from the widget (site key `TURNSTILE_SITE_KEY`) and sends it with
 * the ticket request; the Worker asks siteverify with the secret
 * (`TURNSTILE_SECRET_KEY`) whether the token is good, single-use and fresh.
 * Configured per environment: without a secret the check is off (local
 * development), and a sale may switch it off for itself (`turnstile: false`).
 */
import { unavailable } from '../lib/errors';
import { withTimeout } from '../lib/timeout';

const SITEVERIFY = 'https://challenges.cloudflare.com/turnstile/v0/siteverify';
const VERIFY_TIMEOUT_MS = 3_000;

/** Whether this environment asks for Turnstile tokens at all. */
export function turnstileEnabled(env: Pick<Env, 'TURNSTILE_SECRET_KEY'>): boolean {
  return Boolean(env.TURNSTILE_SECRET_KEY);
}

/**
 * Whether siteverify accepts `token` from `ip`. A missing token is false
 * without a call. Siteverify unreachable or erroring: 503, because letting
 * tickets through unchecked is exactly what a bot would wait for.
 */
export async function verifyTurnstile(env: Pick<Env, 'TURNSTILE_SECRET_KEY' | 'TURNSTILE_VERIFY_URL'>, token: string | undefined, ip: string): Promise<boolean> {
  if (!token) return false;
  const form = new FormData();
  form.set('secret', env.TURNSTILE_SECRET_KEY!);
  form.set('response', token);
  if (ip !== 'unknown') form.set('remoteip', ip);
  let outcome: { success?: boolean };
  try {
    const res = await withTimeout(fetch(env.TURNSTILE_VERIFY_URL || SITEVERIFY, { method: 'POST', body: form }), VERIFY_TIMEOUT_MS, 'Turnstile');
    if (!res.ok) throw new Error(`siteverify answered ${res.status}`);
    outcome = (await res.json<{ success?: boolean } | null>()) ?? {};
  } catch (err) {
    console.warn(JSON.stringify({ level: 'warn', dependency: 'Turnstile', error: String(err).slice(0, 200) }));
    throw unavailable('The bot check is temporarily unavailable. Try again shortly.');
  }
  return outcome.success === true;
}
