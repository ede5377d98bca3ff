/**
 * Verifies a Pasar webhook: copy this file into your receiver. No
 * dependencies: WebCrypto only (`globalThis.crypto.subtle`), so it runs in
 * Node >= 18, Deno, Bun, browsers and Cloudflare Workers.
 *
 * Every delivery carries `x-pasar-signature: t=<unix seconds>,v1=<hex>`,
 * where `<hex>` is HMAC-SHA256, under your subscription's secret, of
 * `"<t>.<raw body>"`. Verify the raw body exactly as received (read it as
 * text before any JSON parsing), then parse it. A request is genuine when a
 * `v1` value matches and `t` is within the tolerance of now (5 minutes by
 * default), which stops a captured request being replayed later. Events can
 * still arrive more than once (retries, replays from the admin API):
 * deduplicate on the body's `id`.
 *
 * ```ts
 * import { verifyPasarWebhook } from './webhook-verify';
 * const raw = await request.text();
 * const result = await verifyPasarWebhook(raw, request.headers.get('x-pasar-signature'), process.env.PASAR_WEBHOOK_SECRET!);
 * if (!result.ok) return new Response(result.reason, { status: 400 });
 * const event = JSON.parse(raw); // { id, type, createdAt, data }
 * ```
 */

export interface VerifyOptions {
  /** Largest allowed distance between the signed time and now, in seconds (default 300). */
  toleranceSeconds?: number;
  /** The current time, in unix seconds (default: the clock). */
  now?: number;
}

export type VerifyFailure = 'missing_header' | 'malformed_header' | 'signature_mismatch' | 'timestamp_out_of_tolerance';

export type PasarVerifyResult = { ok: true; timestamp: number } | { ok: false; reason: VerifyFailure };

const utf8 = new TextEncoder();

/** Checks `signatureHeader` against `rawBody` signed with `secret`. Never throws for bad input. */
export async function verifyPasarWebhook(
  rawBody: string,
  signatureHeader: string | null | undefined,
  secret: string,
  { toleranceSeconds = 300, now = Math.floor(Date.now() / 1000) }: VerifyOptions = {},
): Promise<PasarVerifyResult> {
  if (!signatureHeader) return { ok: false, reason: 'missing_header' };
  let t: number | undefined;
  const candidates: string[] = [];
  for (const piece of signatureHeader.split(',')) {
    const [key, value = ''] = piece.trim().split(/=(.*)/s, 2).map((s) => s.trim());
    if (key === 't') {
      if (t !== undefined || !/^\d{1,15}$/.test(value)) return { ok: false, reason: 'malformed_header' };
      t = Number(value);
    } else if (key === 'v1' && /^[0-9a-f]{64}$/i.test(value)) {
      candidates.push(value.toLowerCase());
    }
  }
  if (t === undefined) return { ok: false, reason: 'malformed_header' };
  if (candidates.length === 0) return { ok: false, reason: 'signature_mismatch' };

  const key = await crypto.subtle.importKey('raw', utf8.encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const mac = new Uint8Array(await crypto.subtle.sign('HMAC', key, utf8.encode(`${t}.${rawBody}`)));
  const expected = Array.from(mac, (b) => b.toString(16).padStart(2, '0')).join('');
  // Constant-time: every character of every candidate is compared.
  let matched = false;
  for (const candidate of candidates) {
    let diff = 0;
    for (let i = 0; i < expected.length; i++) diff |= expected.charCodeAt(i) ^ candidate.charCodeAt(i);
    if (diff === 0) matched = true;
  }
  if (!matched) return { ok: false, reason: 'signature_mismatch' };
  if (Math.abs(now - t) > toleranceSeconds) return { ok: false, reason: 'timestamp_out_of_tolerance' };
  return { ok: true, timestamp: t };
}
