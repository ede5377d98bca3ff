/**
 * Read-your-writes across read replicas. After a shopper's write (an order
 * confirmed, a password change) the answer carries a signed cookie with the
 * primary's WAL position after that write; the shopper's next reads are
 * served by a replica only once it has replayed that far (db/client.ts),
 * else by the primary. The cookie lives as long as the lag bound: a replica
 * further behind than that is not used at all.
 *
 * Signed (HMAC under SIGNING_SECRET, Hono's signed cookies) and carrying its
 * own expiry, so a client cannot pin its reads to the primary for ever by
 * forging or replaying one.
 */
import type { Context } from 'hono';
import { getSignedCookie, setSignedCookie } from 'hono/cookie';
import { currentLsn, type Database } from '../../db/client';
import { isLsn, parseReplicas, replicaPolicy } from '../../db/replicas';
import type { AppEnv } from '../types';
import { signingSecrets } from './signed';

/** Name of the cookie, without the `__Host-` prefix Hono adds. */
export const READ_AFTER_COOKIE = 'pasar_rw';

/** Whether reads can be served by replicas at all; without any there is nothing to pin. */
function replicated(c: Context<AppEnv>): boolean {
  return parseReplicas(c.env.DATABASE_REPLICA_URLS).length > 0;
}

/** Pins the shopper's reads to data at least as new as WAL position `lsn`. */
export async function rememberWrite(c: Context<AppEnv>, lsn: string): Promise<void> {
  if (!isLsn(lsn) || !replicated(c)) return;
  const { maxLagMs } = replicaPolicy(c.env);
  await setSignedCookie(c, READ_AFTER_COOKIE, `${lsn}~${Date.now() + maxLagMs}`, c.env.SIGNING_SECRET, {
    prefix: 'host',
    httpOnly: true,
    secure: true,
    sameSite: 'Lax',
    path: '/',
    maxAge: Math.ceil(maxLagMs / 1000),
  });
}

/**
 * Reads the primary's position after a write this request just committed
 * and pins the shopper's reads to it. The write stands whatever happens
 * here: when the position cannot be read, the shopper may see the old data
 * for up to the lag bound, which is logged, not an error.
 */
export async function rememberWriteOn(c: Context<AppEnv>, primary: Database): Promise<void> {
  if (!replicated(c)) return;
  try {
    await rememberWrite(c, await currentLsn(primary));
  } catch (err) {
    console.warn(JSON.stringify({ level: 'warn', requestId: c.get('requestId'), event: 'read_your_writes.lsn_unavailable', error: String(err).slice(0, 200) }));
  }
}

/** The WAL position this request's reads must see, from a valid, unexpired cookie. */
export async function readAfter(c: Context<AppEnv>): Promise<string | undefined> {
  let value: string | false | undefined;
  for (const secret of signingSecrets(c.env)) {
    value = await getSignedCookie(c, secret, READ_AFTER_COOKIE, 'host');
    if (value) break;
  }
  if (!value) return undefined;
  const [lsn, expires] = value.split('~');
  return lsn && isLsn(lsn) && Number(expires) > Date.now() ? lsn : undefined;
}
