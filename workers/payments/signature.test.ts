/**
 * Webhook signatures, in workerd where the webhook handler verifies them. The
 * simulator signs with the same module in Node; dev/payment-sim.test.ts checks
 * that side end to end.
 */
import { describe, expect, it } from 'vitest';
import { constantTimeEqual, parseSignatureHeader, signPayload, verifySignature } from './signature';

const SECRET = 'whsec_test';
const NOW = 1_700_000_000;
/** Multi-byte UTF-8, so an encoding slip between signer and verifier shows. */
const BODY = JSON.stringify({ id: 'evt_1', type: 'payment.captured', note: 'héllo 日本 🌏' });
/** Computed independently with Node: createHmac('sha256', SECRET).update(`${NOW}.${BODY}`). */
const KNOWN_V1 = 'db9ce1c9681ea4aee0c10f488f090fbc42e8622a80deb8800f6386d4bd60740d';

describe('signPayload', () => {
  it('produces the Stripe-style header with the known HMAC-SHA256', async () => {
    expect(await signPayload(SECRET, NOW, BODY)).toBe(`t=${NOW},v1=${KNOWN_V1}`);
  });

  it('refuses a timestamp that is not whole unix seconds', async () => {
    await expect(signPayload(SECRET, 1.5, BODY)).rejects.toThrow(RangeError);
    await expect(signPayload(SECRET, -1, BODY)).rejects.toThrow(RangeError);
    await expect(signPayload(SECRET, Date.now() / 1000, BODY)).rejects.toThrow(RangeError);
  });
});

describe('verifySignature', () => {
  it('accepts what signPayload produced and returns the signed timestamp', async () => {
    const header = await signPayload(SECRET, NOW, BODY);
    expect(await verifySignature(SECRET, header, BODY, NOW)).toEqual({ ok: true, timestamp: NOW });
  });

  it('accepts a header written by another implementation (the known vector)', async () => {
    expect(await verifySignature(SECRET, `t=${NOW},v1=${KNOWN_V1}`, BODY, NOW + 10)).toEqual({ ok: true, timestamp: NOW });
    // Whitespace around the parts and an uppercase hex digest are tolerated.
    expect(await verifySignature(SECRET, ` t=${NOW} , v1=${KNOWN_V1.toUpperCase()} `, BODY, NOW)).toMatchObject({ ok: true });
  });

  it('refuses a tampered body, one byte or one space', async () => {
    const header = await signPayload(SECRET, NOW, BODY);
    const tampered = [BODY.replace('captured', 'refunded'), `${BODY} `, BODY.replace('é', 'e'), '', JSON.stringify(JSON.parse(BODY), null, 1)];
    for (const body of tampered) {
      expect(await verifySignature(SECRET, header, body, NOW)).toEqual({ ok: false, reason: 'signature_mismatch' });
    }
  });

  it('refuses a signature made with another secret', async () => {
    const header = await signPayload('whsec_other', NOW, BODY);
    expect(await verifySignature(SECRET, header, BODY, NOW)).toEqual({ ok: false, reason: 'signature_mismatch' });
  });

  it('refuses a timestamp that was changed after signing', async () => {
    const header = await signPayload(SECRET, NOW - 3600, BODY);
    const moved = header.replace(`t=${NOW - 3600}`, `t=${NOW}`);
    expect(await verifySignature(SECRET, moved, BODY, NOW)).toEqual({ ok: false, reason: 'signature_mismatch' });
  });

  it('enforces the tolerance in both directions, inclusive at the edge', async () => {
    const header = await signPayload(SECRET, NOW, BODY);
    expect(await verifySignature(SECRET, header, BODY, NOW + 300)).toMatchObject({ ok: true });
    expect(await verifySignature(SECRET, header, BODY, NOW - 300)).toMatchObject({ ok: true });
    expect(await verifySignature(SECRET, header, BODY, NOW + 301)).toEqual({ ok: false, reason: 'timestamp_out_of_tolerance' });
    // Signed "in the future": the sender's clock is off, or t was forged.
    expect(await verifySignature(SECRET, header, BODY, NOW - 301)).toEqual({ ok: false, reason: 'timestamp_out_of_tolerance' });
    expect(await verifySignature(SECRET, header, BODY, NOW + 86_400)).toEqual({ ok: false, reason: 'timestamp_out_of_tolerance' });
    // A custom tolerance.
    expect(await verifySignature(SECRET, header, BODY, NOW + 30, 10)).toEqual({ ok: false, reason: 'timestamp_out_of_tolerance' });
    expect(await verifySignature(SECRET, header, BODY, NOW + 10, 10)).toMatchObject({ ok: true });
  });

  it('refuses a missing or empty header', async () => {
    expect(await verifySignature(SECRET, undefined, BODY, NOW)).toEqual({ ok: false, reason: 'missing_header' });
    expect(await verifySignature(SECRET, '', BODY, NOW)).toEqual({ ok: false, reason: 'missing_header' });
    expect(await verifySignature(SECRET, '   ', BODY, NOW)).toEqual({ ok: false, reason: 'missing_header' });
  });

  it.each([
    ['no timestamp', `v1=${KNOWN_V1}`],
    ['a non-numeric timestamp', `t=abc,v1=${KNOWN_V1}`],
    ['a fractional timestamp', `t=${NOW}.5,v1=${KNOWN_V1}`],
    ['a negative timestamp', `t=-${NOW},v1=${KNOWN_V1}`],
    ['an empty timestamp', `t=,v1=${KNOWN_V1}`],
    ['two timestamps', `t=${NOW},t=${NOW + 1},v1=${KNOWN_V1}`],
    ['a part without "="', `t=${NOW},${KNOWN_V1}`],
    ['a part with an empty key', `t=${NOW},=${KNOWN_V1}`],
    ['not a header at all', 'garbage'],
  ])('calls %s malformed', async (_label, header) => {
    expect(await verifySignature(SECRET, header, BODY, NOW)).toEqual({ ok: false, reason: 'malformed_header' });
  });

  it('refuses a header with a timestamp but no v1 signature, ignoring other schemes', async () => {
    expect(await verifySignature(SECRET, `t=${NOW}`, BODY, NOW)).toEqual({ ok: false, reason: 'no_signature' });
    // Stripe's test-mode v0 (or any unknown scheme) is never trusted, even if it is the right MAC.
    expect(await verifySignature(SECRET, `t=${NOW},v0=${KNOWN_V1}`, BODY, NOW)).toEqual({ ok: false, reason: 'no_signature' });
  });

  it('refuses v1 values that are not a 32-byte hex digest', async () => {
    for (const v1 of ['', 'zz', KNOWN_V1.slice(0, 62), `${KNOWN_V1}00`, `${KNOWN_V1.slice(0, 63)}g`]) {
      expect(await verifySignature(SECRET, `t=${NOW},v1=${v1}`, BODY, NOW)).toEqual({ ok: false, reason: 'signature_mismatch' });
    }
  });

  it('accepts any one of several v1 values, as during a secret rotation', async () => {
    const other = (await signPayload('whsec_old', NOW, BODY)).split('v1=')[1];
    const bogus = '0'.repeat(64);
    for (const header of [
      `t=${NOW},v1=${other},v1=${KNOWN_V1}`,
      `t=${NOW},v1=${KNOWN_V1},v1=${bogus}`,
      `v1=${bogus},v0=${bogus},t=${NOW},v1=${KNOWN_V1}`,
    ]) {
      expect(await verifySignature(SECRET, header, BODY, NOW)).toEqual({ ok: true, timestamp: NOW });
    }
    // Both old and new secrets verify a header signed with both.
    const rotated = `t=${NOW},v1=${other},v1=${KNOWN_V1}`;
    expect(await verifySignature('whsec_old', rotated, BODY, NOW)).toMatchObject({ ok: true });
    expect(await verifySignature(SECRET, `t=${NOW},v1=${other},v1=${bogus}`, BODY, NOW)).toEqual({ ok: false, reason: 'signature_mismatch' });
  });
});

describe('parseSignatureHeader', () => {
  it('collects the timestamp and every v1 value in order', () => {
    expect(parseSignatureHeader('t=12,v1=aa,v0=bb,v1=cc')).toEqual({ timestamp: 12, v1: ['aa', 'cc'] });
    expect(parseSignatureHeader('v1=aa')).toBeUndefined();
  });
});

describe('constantTimeEqual', () => {
  it('compares bytes, including different lengths', () => {
    expect(constantTimeEqual(new Uint8Array([1, 2, 3]), new Uint8Array([1, 2, 3]))).toBe(true);
    expect(constantTimeEqual(new Uint8Array([1, 2, 3]), new Uint8Array([1, 2, 4]))).toBe(false);
    expect(constantTimeEqual(new Uint8Array([1, 2]), new Uint8Array([1, 2, 3]))).toBe(false);
    expect(constantTimeEqual(new Uint8Array([]), new Uint8Array([]))).toBe(true);
  });
});
