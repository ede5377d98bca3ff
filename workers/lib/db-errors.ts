/**
 * The Postgres error behind a failure. Drizzle wraps the driver's error in
 * `cause` (sometimes twice), so callers that must tell "the database refused
 * this data" from "the database did not answer" look down the chain.
 */

/** A Postgres error's SQLSTATE and, for constraint violations, the constraint's name. */
export interface PgError {
  code: string;
  constraint?: string;
}

/** The first error in `err`'s cause chain that carries a SQLSTATE, or undefined (outages, timeouts, our own errors). */
export function pgError(err: unknown): PgError | undefined {
  for (let e: unknown = err, depth = 0; e && typeof e === 'object' && depth < 6; e = (e as { cause?: unknown }).cause, depth++) {
    const { code, constraint } = e as { code?: unknown; constraint?: unknown };
    if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return { code, ...(typeof constraint === 'string' ? { constraint } : {}) };
  }
  return undefined;
}
