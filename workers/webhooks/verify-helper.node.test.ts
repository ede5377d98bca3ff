/**
 * The verify helper shipped to merchants (clients/webhook-verify.ts), in
 * Node, against the store's own signer (workers/payments/signature.ts, which
 * signs every outbound delivery): genuine requests pass; a tampered body or
 * signature, the wrong secret and a stale timestamp are refused.
 */
import { describe, expect, it } from 'vitest';
import { verifyPasarWebhook } from '../../clients/webhook-verify';
import { signPayload } from '../payments/signature';

const SECRET = 'whsec_0123456789abcdefghjkmnpqrstvwxyz0123456789abcd';
const BODY = JSON.stringify({ id: 'evt_1', type: 'order.paid', createdAt: '2026-12-01T00:00:00.000Z', data: { order: { id: 'ord_1', total: { amount: 1200, currency: 'SGD' } } } });
const NOW = 1_764_547_200;

describe('verifyPasarWebhook (clients/webhook-verify.ts)', () => {
  it('accepts a body signed by the store, within the tolerance', async () => {
    const header = await signPayload(SECRET, NOW - 60, BODY);
    expect(await verifyPasarWebhook(BODY, header, SECRET, { now: NOW })).toEqual({ ok: true, timestamp: NOW - 60 });
  });

  it('accepts any matching v1 (secret rotation) and ignores other schemes', async () => {
    const good = (await signPayload(SECRET, NOW, BODY)).split(',')[1]!;
    expect(await verifyPasarWebhook(BODY, `t=${NOW},v0=abc,v1=${'0'.repeat(64)},${good}`, SECRET, { now: NOW })).toMatchObject({ ok: true });
  });

  it('refuses a tampered body', async () => {
    const header = await signPayload(SECRET, NOW, BODY);
    expect(await verifyPasarWebhook(BODY.replace('1200', '12'), header, SECRET, { now: NOW })).toEqual({ ok: false, reason: 'signature_mismatch' });
  });

  it('refuses a tampered signature', async () => {
    const header = await signPayload(SECRET, NOW, BODY);
    const flipped = header.slice(0, -1) + (header.endsWith('0') ? '1' : '0');
    expect(await verifyPasarWebhook(BODY, flipped, SECRET, { now: NOW })).toEqual({ ok: false, reason: 'signature_mismatch' });
  });

  it('refuses a re-dated signature (the timestamp is signed too)', async () => {
    const v1 = (await signPayload(SECRET, NOW - 3600, BODY)).split(',')[1]!;
    expect(await verifyPasarWebhook(BODY, `t=${NOW},${v1}`, SECRET, { now: NOW })).toEqual({ ok: false, reason: 'signature_mismatch' });
  });

  it('refuses the wrong secret', async () => {
    const header = await signPayload('whsec_another_subscription_secret_000000000000', NOW, BODY);
    expect(await verifyPasarWebhook(BODY, header, SECRET, { now: NOW })).toEqual({ ok: false, reason: 'signature_mismatch' });
  });

  it('refuses a stale or future timestamp, past toleranceSeconds', async () => {
    expect(await verifyPasarWebhook(BODY, await signPayload(SECRET, NOW - 301, BODY), SECRET, { now: NOW })).toEqual({ ok: false, reason: 'timestamp_out_of_tolerance' });
    expect(await verifyPasarWebhook(BODY, await signPayload(SECRET, NOW + 301, BODY), SECRET, { now: NOW })).toEqual({ ok: false, reason: 'timestamp_out_of_tolerance' });
    expect(await verifyPasarWebhook(BODY, await signPayload(SECRET, NOW - 301, BODY), SECRET, { now: NOW, toleranceSeconds: 600 })).toMatchObject({ ok: true });
  });

  it('refuses a missing or malformed header without throwing', async () => {
    expect(await verifyPasarWebhook(BODY, undefined, SECRET)).toEqual({ ok: false, reason: 'missing_header' });
    expect(await verifyPasarWebhook(BODY, '', SECRET)).toEqual({ ok: false, reason: 'missing_header' });
    expect(await verifyPasarWebhook(BODY, 'v1=abc', SECRET)).toEqual({ ok: false, reason: 'malformed_header' });
    expect(await verifyPasarWebhook(BODY, 't=1,t=2,v1=abc', SECRET)).toEqual({ ok: false, reason: 'malformed_header' });
    expect(await verifyPasarWebhook(BODY, `t=${NOW}`, SECRET, { now: NOW })).toEqual({ ok: false, reason: 'signature_mismatch' });
  });
});
