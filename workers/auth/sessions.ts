/**
 * Shopper sessions in Redis.
 *
 * The browser holds an opaque random id (`ses_` + 256 random bits) in an
 * HttpOnly, Secure, SameSite=Lax `__Host-` cookie; Redis holds
 * `session:<sha256(id)>`, so a copy of Redis (a backup, a debug dump) holds no
 * usable session ids. Each record slides an idle lifetime and also carries an
 * absolute expiry: a stolen cookie stops working after
 * {@link SESSION_ABSOLUTE_SECONDS} however busy it is kept.
 *
 * `user-sessions:<userId>` lists a user's live session keys, so logging out
 * everywhere (a password change) is one atomic script.
 */
import type { Redis } from '@upstash/redis/cloudflare';
import { sha256Hex } from '../lib/hash';
import { randomToken } from '../lib/ids';
import { withTimeout } from '../lib/timeout';

/** Name of the session cookie, without the `__Host-` prefix Hono adds. */
export const SESSION_COOKIE = 'pasar_session';
/** A session unused for this long ends. */
export const SESSION_IDLE_SECONDS = 7 * 24 * 3600;
/** No session lives longer than this, used or not. */
export const SESSION_ABSOLUTE_SECONDS = 30 * 24 * 3600;
const REDIS_TIMEOUT_MS = 3_000;

const SESSION_ID = /^ses_[0-9a-hjkmnp-tv-z]{52}$/;

/** A signed-in shopper, as a request sees it. */
export interface Session {
  userId: string;
  /** The Redis key of this session (hash of the cookie value): what logout revokes. */
  key: string;
  createdAt: string;
}

/** Redis failed or did not answer. */
export class SessionStoreUnavailableError extends Error {
  override name = 'SessionStoreUnavailableError';
  constructor(cause: unknown) {
    super(`Session store unavailable: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

async function keyOf(sessionId: string): Promise<string> {
  return `session:${await sha256Hex(sessionId)}`;
}

const userSetKey = (userId: string) => `user-sessions:${userId}`;

async function guard<T>(work: Promise<T>): Promise<T> {
  try {
    return await withTimeout(work, REDIS_TIMEOUT_MS, 'Redis');
  } catch (err) {
    throw new SessionStoreUnavailableError(err);
  }
}

// KEYS: session key, user set key. ARGV: userId, createdAt, absolute expiry (unix s), idle ttl, absolute ttl.
// Sessions that expired on their own are pruned from the user's set here,
// so the set stays as small as the user's live sessions.
const CREATE = `
for _, key in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  if redis.call('EXISTS', key) == 0 then redis.call('SREM', KEYS[2], key) end
end
redis.call('HSET', KEYS[1], 'userId', ARGV[1], 'createdAt', ARGV[2], 'expiresAt', ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('SADD', KEYS[2], KEYS[1])
redis.call('EXPIRE', KEYS[2], ARGV[5])
return 'ok'`;

// KEYS: session key. ARGV: now (unix s), idle ttl. Slides the idle TTL, never past the absolute expiry.
const TOUCH = `
local s = redis.call('HMGET', KEYS[1], 'userId', 'createdAt', 'expiresAt')
if not s[1] then return false end
local left = tonumber(s[3]) - tonumber(ARGV[1])
if left <= 0 then
  redis.call('DEL', KEYS[1])
  return false
end
redis.call('EXPIRE', KEYS[1], math.min(tonumber(ARGV[2]), left))
return {s[1], s[2]}`;

// KEYS: session key, user set key. Removes the record and its entry in the user's set.
const REVOKE = `
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], KEYS[1])
return 'ok'`;

// KEYS: user set key. Ends every session of the user.
const REVOKE_ALL = `
local ended = 0
for _, key in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  ended = ended + redis.call('DEL', key)
end
redis.call('DEL', KEYS[1])
return ended`;

/** Starts a session for `userId`; returns the id to put in the cookie (never stored as such). */
export async function createSession(redis: Redis, userId: string): Promise<{ id: string; session: Session }> {
  const id = `ses_${randomToken(32)}`;
  const key = await keyOf(id);
  const now = new Date();
  const expiresAt = Math.floor(now.getTime() / 1000) + SESSION_ABSOLUTE_SECONDS;
  await guard(
    redis
      .createScript<string>(CREATE)
      .exec([key, userSetKey(userId)], [userId, now.toISOString(), String(expiresAt), String(SESSION_IDLE_SECONDS), String(SESSION_ABSOLUTE_SECONDS)]),
  );
  return { id, session: { userId, key, createdAt: now.toISOString() } };
}

/** The live session behind a cookie value, sliding its idle lifetime; null when there is none. */
export async function readSession(redis: Redis, sessionId: string): Promise<Session | null> {
  if (!SESSION_ID.test(sessionId)) return null;
  const key = await keyOf(sessionId);
  const reply = await guard(
    redis.createScript<[string, string] | null>(TOUCH).exec([key], [String(Math.floor(Date.now() / 1000)), String(SESSION_IDLE_SECONDS)]),
  );
  if (!Array.isArray(reply)) return null;
  return { userId: String(reply[0]), createdAt: String(reply[1]), key };
}

/** Ends one session (logout). Ending one that is gone is not an error. */
export async function revokeSession(redis: Redis, session: Pick<Session, 'key' | 'userId'>): Promise<void> {
  await guard(redis.createScript<string>(REVOKE).exec([session.key, userSetKey(session.userId)], []));
}

/** Ends every session of a user (a password change; the caller then starts a fresh one); returns how many were live. */
export async function revokeAllSessions(redis: Redis, userId: string): Promise<number> {
  return Number(await guard(redis.createScript<number>(REVOKE_ALL).exec([userSetKey(userId)], [])));
}
