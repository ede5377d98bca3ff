/**
 * Newest-first keyset pagination over `(created_at, id)` with signed
 * cursors (./cursor.ts): the order lists of the admin API and of a
 * shopper's account. Keyset rather than offset, so a page stays correct
 * while new orders arrive at the front.
 */
import { and, or, sql, type SQL } from 'drizzle-orm';
import type { AnyPgColumn } from 'drizzle-orm/pg-core';
import { decodeCursor, encodeCursor } from './cursor';
import { invalidRequest } from './errors';

/** Where a page ended: the last row's creation time (microseconds, UTC) and id. */
export interface NewestFirstPosition {
  t: string;
  id: string;
}

/** The position a `?cursor=` names, or undefined without one; 400 for a cursor this server did not issue for `scope`. */
export async function readNewestFirstCursor(cursor: string | undefined, scope: string, secret: string | readonly string[]): Promise<NewestFirstPosition | undefined> {
  if (!cursor) return undefined;
  const after = await decodeCursor<NewestFirstPosition>(cursor, scope, secret);
  if (typeof after !== 'object' || after === null || typeof after.t !== 'string' || typeof after.id !== 'string' || Number.isNaN(Date.parse(after.t))) {
    throw invalidRequest('The cursor is not one this server issued for this query.', [{ in: 'query', field: 'cursor', message: 'Invalid cursor.' }]);
  }
  return after;
}

/** `created_at` as the cursor keeps it: full microsecond precision, which a JS Date would round away. */
export function cursorKey(createdAt: AnyPgColumn): SQL<string> {
  return sql<string>`to_char(${createdAt} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;
}

/** Rows after `after` in `(created_at desc, id desc)` order; undefined (no condition) for the first page. */
export function olderThan(createdAt: AnyPgColumn, id: AnyPgColumn, after: NewestFirstPosition | undefined): SQL | undefined {
  if (!after) return undefined;
  return or(sql`${createdAt} < ${after.t}::timestamptz`, and(sql`${createdAt} = ${after.t}::timestamptz`, sql`${id} < ${after.id}`));
}

/**
 * The `nextCursor` of a page fetched with `limit + 1` rows: null when there
 * was no extra row, else a signed cursor at the page's last row.
 */
export async function nextNewestFirstCursor(
  fetched: number,
  limit: number,
  last: NewestFirstPosition | undefined,
  scope: string,
  secret: string,
): Promise<string | null> {
  return fetched > limit && last ? encodeCursor(last, scope, secret) : null;
}
