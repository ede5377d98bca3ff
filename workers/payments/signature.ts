/**
 * Webhook signatures: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`.
 *
 * This is Stripe's scheme (header `Stripe-Signature`), which the local payment
 * simulator (dev/payment-sim.ts, header `x-pasar-signature`) copies, so one
 * verifier serves both providers. As in Stripe's libraries:
 * - the header may carry several `v1` values (during a secret rotation the
 *   sender signs with both secrets); the payload is genuine if any matches;
 * - other schemes (`v0=`, future `v2=`) are ignored, never trusted;
 * - the timestamp is signed together with the body, so a captured request
 *   cannot be replayed with a fresh `t`, and a request whose `t` is further
 *   than the tolerance from now, in either direction, is refused.
 *
 * Only WebCrypto (`crypto.subtle`) and TextEncoder are used, so this module
 * runs unchanged in workerd (the webhook handler) and in Node 22 (the
 * simulator that signs). The signature comparison is a constant-time loop
 * rather than `crypto.subtle.timingSafeEqual`, which exists only in workerd.
 *
 * Verify over the raw body bytes as received (`await request.text()`), never a
 * re-serialised JSON value: any change of whitespace or key order breaks it.
 */

/** Default tolerance between the signed timestamp and now, in seconds (5 minutes). */
export const DEFAULT_TOLERANCE_SECONDS = 300;

/** Why {@link verifySignature} refused a payload. */
export type SignatureFailure =
  /** No header, or an empty one. */
  | 'missing_header'
  /** The header is not a comma-separated list of `key=value`, or `t` is missing, repeated or not an integer. */
  | 'malformed_header'
  /** The header has no `v1` signature at all. */
  | 'no_signature'
  /** No `v1` value matches the body signed with this secret. */
  | 'signature_mismatch'
  /** Genuine, but signed too long ago (or too far in the future). */
  | 'timestamp_out_of_tolerance';

export type VerifyResult = { ok: true; timestamp: number } | { ok: false; reason: SignatureFailure };

const encoder = new TextEncoder();

/** HMAC-SHA256 of `"<timestamp>.<rawBody>"` under `secret`. */
async function hmac(secret: string, timestamp: number, rawBody: string): Promise<Uint8Array> {
  const key = await crypto.subtle.importKey(
    'raw',
    encoder.encode(secret),
    { name: 'HMAC', hash: 'SHA-256' },
    false,
    ['sign'],
  );
  const mac = await crypto.subtle.sign('HMAC', key, encoder.encode(`${timestamp}.${rawBody}`));
  return new Uint8Array(mac);
}

function toHex(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += b.toString(16).padStart(2, '0');
  return out;
}

/** Hex to bytes; undefined unless it is exactly `length` bytes of hex. */
function fromHex(hex: string, length: number): Uint8Array | undefined {
  if (hex.length !== length * 2 || !/^[0-9a-fA-F]*$/.test(hex)) return undefined;
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

/**
 * Compares equal-length byte strings in time that depends only on their
 * length. Callers compare fixed-size MACs, so the length is no secret.
 */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= (a[i] ?? 0) ^ (b[i] ?? 0);
  return diff === 0;
}

function checkTimestamp(timestamp: number): void {
  if (!Number.isSafeInteger(timestamp) || timestamp < 0) {
    throw new RangeError(`timestamp must be a non-negative integer of unix seconds, got ${timestamp}`);
  }
}

/**
 * Signs `rawBody` as sent at `timestamp` (unix seconds) and returns the whole
 * header value, `t=<timestamp>,v1=<hex>`.
 */
export async function signPayload(secret: string, timestamp: number, rawBody: string): Promise<string> {
  checkTimestamp(timestamp);
  return `t=${timestamp},v1=${toHex(await hmac(secret, timestamp, rawBody))}`;
}

/** The parts of a signature header; undefined when it is malformed. */
export function parseSignatureHeader(header: string): { timestamp: number; v1: string[] } | undefined {
  let timestamp: number | undefined;
  const v1: string[] = [];
  for (const part of header.split(',')) {
    const item = part.trim();
    if (item === '') continue;
    const eq = item.indexOf('=');
    if (eq <= 0) return undefined;
    const key = item.slice(0, eq).trim();
    const value = item.slice(eq + 1).trim();
    if (key === 't') {
      // Two timestamps would leave it unclear which one was signed.
      if (timestamp !== undefined || !/^\d{1,15}$/.test(value)) return undefined;
      timestamp = Number(value);
    } else if (key === 'v1') {
      v1.push(value);
    }
    // Any other scheme is ignored: it is not ours to trust.
  }
  if (timestamp === undefined) return undefined;
  return { timestamp, v1 };
}

/**
 * Checks a signature header against the raw body. `nowSeconds` is the current
 * unix time (a parameter so tests and callers control the clock); the signed
 * timestamp must lie within `toleranceSeconds` of it, in either direction.
 */
export async function verifySignature(
  secret: string,
  header: string | undefined,
  rawBody: string,
  nowSeconds: number,
  toleranceSeconds: number = DEFAULT_TOLERANCE_SECONDS,
): Promise<VerifyResult> {
  if (header === undefined || header.trim() === '') return { ok: false, reason: 'missing_header' };
  const parsed = parseSignatureHeader(header);
  if (!parsed) return { ok: false, reason: 'malformed_header' };
  if (parsed.v1.length === 0) return { ok: false, reason: 'no_signature' };

  const expected = await hmac(secret, parsed.timestamp, rawBody);
  // Every candidate is compared, whichever matches, so the time taken says
  // nothing about which one did.
  let matched = false;
  for (const candidate of parsed.v1) {
    const bytes = fromHex(candidate, expected.length);
    if (bytes && constantTimeEqual(bytes, expected)) matched = true;
  }
  if (!matched) return { ok: false, reason: 'signature_mismatch' };

  if (!Number.isFinite(nowSeconds) || Math.abs(nowSeconds - parsed.timestamp) > toleranceSeconds) {
    return { ok: false, reason: 'timestamp_out_of_tolerance' };
  }
  return { ok: true, timestamp: parsed.timestamp };
}
