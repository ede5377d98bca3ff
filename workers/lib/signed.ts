/**
 * Signed, opaque tokens: a JSON payload plus an HMAC-SHA256 over it and a
 * scope, under SIGNING_SECRET. Cursors, queue tickets and admission checks
 * are all of this shape, so a token the server did not issue (edited,
 * truncated, made up, or issued for another scope) is refused before it is
 * trusted to steer anything.
 *
 * Signing always uses SIGNING_SECRET; verifying also accepts
 * SIGNING_SECRET_PREVIOUS while it is set, so a rotation does not throw
 * every shopper out of a queue or a listing at once.
 */
const encoder = new TextEncoder();
const keys = new Map<string, Promise<CryptoKey>>();

function hmacKey(secret: string): Promise<CryptoKey> {
  let key = keys.get(secret);
  if (!key) {
    key = crypto.subtle.importKey('raw', encoder.encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign', 'verify']);
    keys.set(secret, key);
  }
  return key;
}

function toBase64Url(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function fromBase64Url(text: string): Uint8Array {
  const b64 = text.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (text.length % 4)) % 4);
  const bin = atob(b64);
  return Uint8Array.from(bin, (ch) => ch.charCodeAt(0));
}

async function mac(secret: string, scope: string, payload: Uint8Array): Promise<Uint8Array> {
  const scoped = new Uint8Array([...encoder.encode(`${scope}\n`), ...payload]);
  return new Uint8Array(await crypto.subtle.sign('HMAC', await hmacKey(secret), scoped)).subarray(0, 16);
}

/** The secrets a token may be signed with: the current one first, then the previous one during a rotation. */
export function signingSecrets(env: Pick<Env, 'SIGNING_SECRET' | 'SIGNING_SECRET_PREVIOUS'>): string[] {
  return env.SIGNING_SECRET_PREVIOUS ? [env.SIGNING_SECRET, env.SIGNING_SECRET_PREVIOUS] : [env.SIGNING_SECRET];
}

/** Signs `value` for `scope`: `<base64url JSON>.<base64url 128-bit MAC>`. */
export async function signToken(value: unknown, scope: string, secret: string): Promise<string> {
  const payload = encoder.encode(JSON.stringify(value));
  return `${toBase64Url(payload)}.${toBase64Url(await mac(secret, scope, payload))}`;
}

/** The payload of a token this server signed for `scope` (under `secret`, or any of `secret`'s list), or null for anything else. */
export async function verifyToken<T>(token: string, scope: string, secret: string | readonly string[], maxLength = 1024): Promise<T | null> {
  const [p, m, extra] = token.split('.');
  if (!p || !m || extra !== undefined || token.length > maxLength) return null;
  let payload: Uint8Array;
  let given: Uint8Array;
  try {
    payload = fromBase64Url(p);
    given = fromBase64Url(m);
  } catch {
    return null;
  }
  let valid = false;
  for (const s of typeof secret === 'string' ? [secret] : secret) {
    const expected = await mac(s, scope, payload);
    // workerd's constant-time compare: a MAC check must not leak how much matched.
    if (given.length === expected.length && crypto.subtle.timingSafeEqual(given, expected)) valid = true;
  }
  if (!valid) return null;
  try {
    return JSON.parse(new TextDecoder().decode(payload)) as T;
  } catch {
    return null;
  }
}
