/**
 * Password hashing: argon2id at the OWASP Password Storage Cheat Sheet
 * minimum (m = 19 MiB, t = 2, p = 1), stored in the PHC string format
 * (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`) so parameters can be
 * raised later without breaking stored hashes.
 *
 * Why @noble/hashes: audited, dependency-free, widely used, and plain
 * JavaScript, so it runs in workerd as it is. WASM builds of argon2 compile
 * their module from bytes at run time, which workerd forbids, and WebCrypto's
 * PBKDF2 is capped at 100,000 iterations in workerd, below OWASP's figure for
 * PBKDF2-SHA256. The cost is CPU: one hash takes a couple of hundred
 * milliseconds of CPU time (measured in `bench/`, see docs/ARCHITECTURE.md),
 * which needs the Workers Standard usage model (not the free plan's 10 ms).
 *
 * The synchronous variant is used on purpose: workerd freezes `Date.now()`
 * during synchronous work, so the async variant's time-sliced yielding never
 * triggers there and would only add overhead.
 */
import { argon2id } from '@noble/hashes/argon2.js';

/** The parameters new hashes are made with (OWASP minimum for argon2id). */
export const ARGON2_PARAMS = { m: 19_456, t: 2, p: 1 } as const;
const SALT_BYTES = 16;
const HASH_BYTES = 32;
/** Hashes whose parameters exceed these are refused, so a forged row cannot make a login burn unbounded memory or CPU. */
const LIMITS = { m: 65_536, t: 10, p: 4 } as const;

const encoder = new TextEncoder();

function b64(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/=+$/, '');
}

function unb64(text: string): Uint8Array {
  const s = atob(text);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

function derive(password: string, salt: Uint8Array, params: { m: number; t: number; p: number }, dkLen: number): Uint8Array {
  // NFC so the same password typed on two keyboards (composed or decomposed accents) is one password.
  return argon2id(encoder.encode(password.normalize('NFC')), salt, { ...params, dkLen, maxmem: LIMITS.m * 1024 + (1 << 20) });
}

/** A new PHC-format argon2id hash of `password` with a random salt. */
export function hashPassword(password: string): string {
  const salt = crypto.getRandomValues(new Uint8Array(SALT_BYTES));
  const { m, t, p } = ARGON2_PARAMS;
  return `$argon2id$v=19$m=${m},t=${t},p=${p}$${b64(salt)}$${b64(derive(password, salt, ARGON2_PARAMS, HASH_BYTES))}`;
}

interface Parsed {
  params: { m: number; t: number; p: number };
  salt: Uint8Array;
  hash: Uint8Array;
}

const PHC = /^\$argon2id\$v=19\$m=(\d{1,6}),t=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9+/]{16,88})\$([A-Za-z0-9+/]{16,88})$/;

function parse(stored: string): Parsed | null {
  const m = PHC.exec(stored);
  if (!m) return null;
  const params = { m: Number(m[1]), t: Number(m[2]), p: Number(m[3]) };
  if (params.m > LIMITS.m || params.t > LIMITS.t || params.p > LIMITS.p || params.t < 1 || params.p < 1 || params.m < 8 * params.p) return null;
  try {
    return { params, salt: unb64(m[4]!), hash: unb64(m[5]!) };
  } catch {
    return null;
  }
}

/**
 * Whether `password` matches `stored`. Constant-time in the comparison; a
 * malformed stored hash never matches (and still costs one derivation, so a
 * bad row is not a timing signal).
 */
export function verifyPassword(password: string, stored: string): boolean {
  const parsed = parse(stored);
  const target = parsed ?? parse(DUMMY_HASH)!;
  const candidate = derive(password, target.salt, target.params, target.hash.length);
  return parsed !== null && crypto.subtle.timingSafeEqual(candidate, target.hash);
}

/** Whether a stored hash was made with weaker parameters than today's (rehash it at the next login). */
export function needsRehash(stored: string): boolean {
  const parsed = parse(stored);
  if (!parsed) return true;
  return parsed.params.m < ARGON2_PARAMS.m || parsed.params.t < ARGON2_PARAMS.t || parsed.hash.length < HASH_BYTES;
}

/**
 * A hash of no one's password with today's parameters. Logins for an email
 * with no account verify against it, so they cost the same CPU time as a
 * real one and the answer's timing does not tell which emails exist.
 */
export const DUMMY_HASH = '$argon2id$v=19$m=19456,t=2,p=1$cGFzYXItbm8tc3VjaC11c2Vy$2Y7yPO4lM1o3nPq3v6S0m0a8Jm7mQpXkq2m4gW3bQyE';
