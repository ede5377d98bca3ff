/**
 * `InventoryShard`: live stock for a slice of variants in one region
 * (object name `inv:<region>:<shard>`). It keeps, per variant, available /
 * held / sold, and the holds with their expiry.
 *
 * This is the foundation's shape of the object: its storage schema and the
 * read of stock levels. Reservations, holds, expiry alarms and sharding are
 * built on it by the inventory issue.
 */
import { DurableObject } from 'cloudflare:workers';
import { migrateSql } from './sql-migrations';

/** Stock levels of one variant in this shard. */
export interface StockLevel {
  variantId: string;
  available: number;
  held: number;
  sold: number;
}

const MIGRATIONS = [
  `create table stock (
     variant_id text primary key,
     available integer not null default 0 check (available >= 0),
     held integer not null default 0 check (held >= 0),
     sold integer not null default 0 check (sold >= 0)
   );
   create table holds (
     hold_id text not null,
     checkout_id text not null,
     variant_id text not null references stock (variant_id),
     quantity integer not null check (quantity > 0),
     expires_at integer not null,
     primary key (hold_id, variant_id)
   );
   create index holds_expiry on holds (expires_at);`,
] as const;

export class InventoryShard extends DurableObject<Env> {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    void ctx.blockConcurrencyWhile(async () => migrateSql(ctx.storage.sql, MIGRATIONS));
  }

  /** Current levels for the given variants; unknown variants read as all zero. */
  levels(variantIds: string[]): StockLevel[] {
    const sql = this.ctx.storage.sql;
    return variantIds.map((variantId) => {
      const row = sql
        .exec<{ available: number; held: number; sold: number }>('select available, held, sold from stock where variant_id = ?', variantId)
        .toArray()[0];
      return { variantId, available: row?.available ?? 0, held: row?.held ?? 0, sold: row?.sold ?? 0 };
    });
  }
}
