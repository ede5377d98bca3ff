/**
 * `Checkout`: one object per checkout id, running that checkout's saga and
 * persisting every transition so a restart resumes where it stopped.
 *
 * This is the foundation's shape of the object: its storage schema and the
 * status read. The saga steps (price, reserve, pay, write order, commit) are
 * built on it by the checkout issue.
 */
import { DurableObject } from 'cloudflare:workers';
import { migrateSql } from './sql-migrations';

/** Where a checkout is in its saga. */
export type CheckoutStatus = 'pending' | 'reserved' | 'paid' | 'confirmed' | 'failed';

/** What `status()` reports. */
export interface CheckoutState {
  checkoutId: string;
  status: CheckoutStatus;
  reason?: string;
  orderId?: string;
}

const MIGRATIONS = [
  `create table checkout (
     id text primary key,
     status text not null check (status in ('pending', 'reserved', 'paid', 'confirmed', 'failed')),
     reason text,
     order_id text,
     request_hash text not null,
     request_json text not null,
     attempts integer not null default 0,
     created_at integer not null,
     updated_at integer not null
   );
   create table transitions (
     seq integer primary key autoincrement,
     status text not null,
     detail text,
     at integer not null
   );`,
] as const;

export class Checkout extends DurableObject<Env> {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    void ctx.blockConcurrencyWhile(async () => migrateSql(ctx.storage.sql, MIGRATIONS));
  }

  /** The checkout's state, or null when this object has never been started. */
  status(): CheckoutState | null {
    const row = this.ctx.storage.sql
      .exec<{ id: string; status: CheckoutStatus; reason: string | null; order_id: string | null }>(
        'select id, status, reason, order_id from checkout limit 1',
      )
      .toArray()[0];
    if (!row) return null;
    return {
      checkoutId: row.id,
      status: row.status,
      ...(row.reason ? { reason: row.reason } : {}),
      ...(row.order_id ? { orderId: row.order_id } : {}),
    };
  }
}
