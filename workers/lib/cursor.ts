/**
 * Opaque pagination cursors. A cursor is the position to resume from plus an
 * HMAC over it, so a cursor the server did not issue (edited, truncated,
 * made up, or issued for another query) is rejected as a bad request instead
 * of being trusted to steer a database query.
 */
import { invalidRequest } from './errors';
import { signToken, verifyToken } from './signed';

/**
 * Signs `position` for the query identified by `scope` (e.g. the listing's
 * filters), so a cursor from one listing cannot be replayed against another.
 */
export function encodeCursor(position: unknown, scope: string, secret: string): Promise<string> {
  return signToken(position, scope, secret);
}

/** Verifies and decodes a cursor; throws 400 `invalid_request` for anything else. */
export async function decodeCursor<T>(cursor: string, scope: string, secret: string | readonly string[]): Promise<T> {
  const position = await verifyToken<T>(cursor, scope, secret, 512);
  if (position === null) throw invalidRequest('The cursor is not one this server issued for this query.', [{ in: 'query', field: 'cursor', message: 'Invalid cursor.' }]);
  return position;
}
