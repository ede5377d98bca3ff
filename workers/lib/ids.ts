/**
 * Random identifiers. Ids are minted at the edge, so they must be unique
 * without coordination and must not reveal order volume: 128 random bits,
 * Crockford base32, with a short type prefix that makes logs readable.
 */
const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';

/** `bytes` random bytes as lower-case Crockford base32 (no padding). */
export function randomToken(bytes = 16): string {
  return base32(crypto.getRandomValues(new Uint8Array(bytes)));
}

/** Lower-case Crockford base32 of `buf`, no padding. */
export function base32(buf: Uint8Array): string {
  let out = '';
  let acc = 0;
  let bits = 0;
  for (const b of buf) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += ALPHABET[(acc >>> bits) & 31];
    }
  }
  if (bits > 0) out += ALPHABET[(acc << (5 - bits)) & 31];
  return out;
}

/** A new id such as `ord_5x2m...`: prefix, underscore, 26 characters (128 bits). */
export function newId(prefix: string): string {
  return `${prefix}_${randomToken(16)}`;
}
