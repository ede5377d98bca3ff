/**
 * Opaque pagination cursors. A cursor is the position to resume from plus an
 * HMAC over it, so a cursor the server did not issue (edited, truncated,
 * made up, or issued for another query) is rejected as a bad request instead
 * of being trusted to steer a database query.
 */
import { invalidRequest } from './errors';

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

/**
 * Signs `position` for the query identified by `scope` (e.g. the listing's
 * filters), so a cursor from one listing cannot be replayed against another.
 */
export async function encodeCursor(position: unknown, scope: string, secret: string): Promise<string> {
  const payload = encoder.encode(JSON.stringify(position));
  const mac = new Uint8Array(await crypto.subtle.sign('HMAC', await hmacKey(secret), concat(encoder.encode(`${scope}\n`), payload)));
  return `${toBase64Url(payload)}.${toBase64Url(mac.subarray(0, 16))}`;
}

/** Verifies and decodes a cursor; throws 400 `invalid_request` for anything else. */
export async function decodeCursor<T>(cursor: string, scope: string, secret: string): Promise<T> {
  const bad = () => invalidRequest('The cursor is not one this server issued for this query.', [{ in: 'query', field: 'cursor', message: 'Invalid cursor.' }]);
  const [p, m, extra] = cursor.split('.');
  if (!p || !m || extra !== undefined || cursor.length > 512) throw bad();
  let payload: Uint8Array;
  let mac: Uint8Array;
  try {
    payload = fromBase64Url(p);
    mac = fromBase64Url(m);
  } catch {
    throw bad();
  }
  const expected = new Uint8Array(await crypto.subtle.sign('HMAC', await hmacKey(secret), concat(encoder.encode(`${scope}\n`), payload)));
  // workerd's constant-time compare: a MAC check must not leak how much matched.
  if (mac.length !== 16 || !crypto.subtle.timingSafeEqual(mac, expected.subarray(0, 16))) throw bad();
  try {
    return JSON.parse(new TextDecoder().decode(payload)) as T;
  } catch {
    throw bad();
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

