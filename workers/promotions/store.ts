/**
 * Promotions in the origin: loading what a cart's evaluation needs, and the
 * redemptions that make usage limits hold under any concurrency.
 *
 * Why Postgres and not a Durable Object for redemptions: a code is valid in
 * every region, so its counter has no home location; uses are rare next to
 * catalog reads (one per order at most); and the redemption must end up in
 * the same database, and the same transaction, as the order that uses it.
 * A Durable Object would need its own saga with the order write to keep the
 * two agreeing. Here the limit is checked and the hold written in one
 * transaction under the promotion's row lock (`select … for update`), so 50
 * checkouts racing for a single-use code queue on that lock and exactly one
 * finds room. Unlimited promotions take no lock (a hot automatic promotion
 * must not serialise every checkout); their uses are still recorded.
 */
import { and, eq, inArray, sql } from 'drizzle-orm';
import type { Database } from '../../db/client';
import type { Region } from '../../db/regions';
import { promotionRedemptions } from '../../db/schema';
import { newId } from '../lib/ids';
import type { Promotion, ShippingRate } from './engine';

/** What an evaluation needs from the origin for one region. */
export interface PromotionContext {
  promotions: Promotion[];
  shipping: ShippingRate | null;
}

/** How long a checkout's hold on a use lasts if the checkout never finishes or fails (the saga releases it sooner). */
export const REDEMPTION_HOLD_MS = 2 * 60 * 60 * 1000;

type PromotionRow = {
  id: string;
  title: string;
  code: string | null;
  kind: Promotion['kind'];
  percent_bps: number | null;
  amount: string | number | null;
  region_code: string | null;
  currency: string | null;
  min_subtotal_amount: string | number | null;
  applies_to: Promotion['appliesTo'];
  buy_quantity: number | null;
  get_quantity: number | null;
  starts_at: string;
  ends_at: string | null;
  usage_limit: number | null;
  usage_limit_per_customer: number | null;
  active: boolean;
  created_at: string;
  category_ids: string[] | null;
  variant_ids: string[] | null;
  used: number | string | null;
};

const num = (v: string | number | null) => (v === null ? null : Number(v));

/** A promotion row (with its targets and use count) as the engine's {@link Promotion}. */
export function toPromotion(r: PromotionRow): Promotion {
  return {
    id: r.id,
    title: r.title,
    code: r.code,
    kind: r.kind,
    percentBps: r.percent_bps,
    amount: num(r.amount),
    regionCode: r.region_code,
    currency: r.currency,
    minSubtotalAmount: num(r.min_subtotal_amount),
    appliesTo: r.applies_to,
    categoryIds: r.category_ids ?? [],
    variantIds: r.variant_ids ?? [],
    buyQuantity: r.buy_quantity,
    getQuantity: r.get_quantity,
    startsAt: new Date(r.starts_at),
    endsAt: r.ends_at === null ? null : new Date(r.ends_at),
    usageLimit: r.usage_limit,
    usageLimitPerCustomer: r.usage_limit_per_customer,
    ...(r.usage_limit !== null ? { used: Number(r.used ?? 0) } : {}),
    active: r.active,
    createdAt: new Date(r.created_at),
  };
}

/**
 * The select of promotions with their targets and (for limited ones) live
 * use counts, leaving out the uses of `ownCheckout` (a checkout pricing
 * again must not count the hold it took the first time).
 */
export const promotionSelect = (ownCheckout = '') => sql`
  select p.id, p.title, p.code, p.kind, p.percent_bps, p.amount, p.region_code, p.currency, p.min_subtotal_amount,
         p.applies_to, p.buy_quantity, p.get_quantity, p.starts_at, p.ends_at, p.usage_limit, p.usage_limit_per_customer, p.active, p.created_at,
         (select array_agg(pc.category_id) from promotion_categories pc where pc.promotion_id = p.id) as category_ids,
         (select array_agg(pv.variant_id) from promotion_variants pv where pv.promotion_id = p.id) as variant_ids,
         case when p.usage_limit is null then null else
           (select count(*) from promotion_redemptions r where r.promotion_id = p.id
              and r.checkout_id <> ${ownCheckout}
              and (r.status = 'redeemed' or (r.status = 'held' and r.expires_at > now()))) end as used
  from promotions p`;

/** Per isolate: the region's automatic promotions and shipping rate, for showing carts. */
const regionMemo = new Map<string, { at: number; value: PromotionContext }>();

/** How long a cart answer may reuse its region's automatic promotions and shipping rate (checkout never does). */
export const CART_PROMOTIONS_MEMO_MS = 1_000;

/** The running automatic promotions of `region` (and of every region) and the region's shipping rate: one query. */
async function loadRegionContext(db: Database, region: Region, ownCheckout: string): Promise<PromotionContext> {
  const { rows } = await db.execute<PromotionRow & { shipping_amount: string | null; shipping_free_over: string | null }>(sql`
    with candidates as (
      ${promotionSelect(ownCheckout)}
      where p.code is null and p.active and p.starts_at <= now() and (p.ends_at is null or p.ends_at > now())
        and (p.region_code is null or p.region_code = ${region.code})
    )
    select c.*, s.amount as shipping_amount, s.free_over_amount as shipping_free_over
    from (select 1) one
    left join shipping_rates s on s.region_code = ${region.code}
    left join candidates c on true`);
  const first = rows[0];
  const shipping = first && first.shipping_amount !== null ? { amount: Number(first.shipping_amount), freeOverAmount: num(first.shipping_free_over) } : null;
  return { promotions: rows.filter((r) => r.id !== null).map(toPromotion), shipping };
}

/**
 * What evaluating a cart in `region` needs: the running automatic
 * promotions, the region's shipping rate, and the promotion behind `code`
 * whatever its state (so the engine can say why it does not apply).
 *
 * `memoMs` (cart answers only) lets an isolate reuse the region's part for
 * that long: carts are read far more often than promotions change, and the
 * catalog's own bound is a second. The code's promotion is always read
 * fresh, and checkout passes no memo: it charges what the origin says now.
 */
export async function loadPromotionContext(db: Database, region: Region, code: string | null, options: { memoMs?: number; checkoutId?: string } = {}): Promise<PromotionContext> {
  const { memoMs = 0, checkoutId = '' } = options;
  const memo = regionMemo.get(region.code);
  let base: PromotionContext;
  if (memoMs > 0 && !checkoutId && memo && Date.now() - memo.at < memoMs) {
    base = memo.value;
  } else {
    base = await loadRegionContext(db, region, checkoutId);
    if (!checkoutId) regionMemo.set(region.code, { at: Date.now(), value: base });
  }
  if (code === null) return base;
  const { rows } = await db.execute<PromotionRow>(sql`${promotionSelect(checkoutId)} where p.code = ${code}`);
  return { promotions: [...base.promotions, ...rows.map(toPromotion)], shipping: base.shipping };
}

/** Who is buying, for per-customer limits. */
export interface Customer {
  email: string;
  userId?: string;
}

/** A promotion a checkout wants to use, with its limits. */
export interface UseRequest {
  promotionId: string;
  usageLimit: number | null;
  usageLimitPerCustomer: number | null;
}

/** The outcome of {@link holdUses}. */
export type HoldResult = { ok: true } | { ok: false; promotionId: string; reason: 'promotion_exhausted' | 'promotion_limit_reached' };

/** A transaction handle. */
type Tx = Parameters<Parameters<Database['transaction']>[0]>[0];

/**
 * Thrown when a promotion has no room for another use: inside
 * {@link holdUses} it rolls every hold back; from {@link redeemUses} it
 * rolls back the order write it is part of.
 */
export class NoRoom extends Error {
  constructor(readonly promotionId: string, readonly reason: 'promotion_exhausted' | 'promotion_limit_reached') {
    super(reason);
  }
}

/**
 * Holds one use of each promotion for `checkoutId`, all or none. Limited
 * promotions are locked in id order (no deadlock between two checkouts
 * using the same two codes), counted (redeemed uses and live holds of other
 * checkouts; per customer by email or account) and the hold written, in
 * one transaction. Idempotent per checkout: a retried step finds its own
 * hold and renews it.
 */
export async function holdUses(db: Database, checkoutId: string, customer: Customer, uses: readonly UseRequest[], holdMs = REDEMPTION_HOLD_MS): Promise<HoldResult> {
  if (uses.length === 0) return { ok: true };
  const email = customer.email.trim().toLowerCase();
  const expiresAt = new Date(Date.now() + holdMs);
  try {
    await db.transaction(async (tx) => {
      for (const use of [...uses].sort((a, b) => (a.promotionId < b.promotionId ? -1 : 1))) {
        await checkRoom(tx, use, checkoutId, customer);
        // A released hold of this checkout (an earlier failed attempt cannot
        // exist: a failed checkout never prices again) is simply taken again.
        await tx
          .insert(promotionRedemptions)
          .values({ id: newId('red'), promotionId: use.promotionId, checkoutId, email, userId: customer.userId ?? null, status: 'held', expiresAt })
          .onConflictDoUpdate({
            target: [promotionRedemptions.promotionId, promotionRedemptions.checkoutId],
            set: { status: 'held', expiresAt, updatedAt: new Date() },
            where: sql`${promotionRedemptions.status} <> 'redeemed'`,
          });
      }
    });
    return { ok: true };
  } catch (err) {
    if (err instanceof NoRoom) return { ok: false, promotionId: err.promotionId, reason: err.reason };
    throw err;
  }
}

/**
 * Checks, under the promotion's row lock, that one more use by `customer`
 * fits its limits (uses of other checkouts: redeemed, or held and live).
 * Throws {@link NoRoom} otherwise. Unlimited promotions pass without a lock.
 */
async function checkRoom(tx: Tx, use: UseRequest, checkoutId: string, customer: Customer): Promise<void> {
  if (use.usageLimit === null && use.usageLimitPerCustomer === null) return;
  const email = customer.email.trim().toLowerCase();
  await tx.execute(sql`select 1 from promotions where id = ${use.promotionId} for update`);
  const { rows } = await tx.execute<{ total: string; mine: string }>(sql`
    select count(*) as total,
           count(*) filter (where r.email = ${email} or (${customer.userId ?? null}::text is not null and r.user_id = ${customer.userId ?? null})) as mine
    from promotion_redemptions r
    where r.promotion_id = ${use.promotionId} and r.checkout_id <> ${checkoutId}
      and (r.status = 'redeemed' or (r.status = 'held' and r.expires_at > now()))`);
  const { total, mine } = rows[0]!;
  if (use.usageLimit !== null && Number(total) >= use.usageLimit) throw new NoRoom(use.promotionId, 'promotion_exhausted');
  if (use.usageLimitPerCustomer !== null && Number(mine) >= use.usageLimitPerCustomer) throw new NoRoom(use.promotionId, 'promotion_limit_reached');
}

/**
 * Turns a checkout's holds into uses of its order, inside the order's own
 * transaction, so a use exists exactly when its order does. A hold that
 * lapsed (a checkout held up for hours by an outage) or went missing is
 * taken again only if the limits still have room; otherwise {@link NoRoom}
 * is thrown and the order is not written.
 */
export async function redeemUses(tx: Tx, checkoutId: string, orderId: string, customer: Customer, uses: readonly UseRequest[]): Promise<void> {
  // Holds of an earlier pricing this order does not use (the shopper
  // changed the code meanwhile) go back, so they do not sit out their lapse.
  await tx.execute(sql`
    update promotion_redemptions set status = 'released', updated_at = now()
    where checkout_id = ${checkoutId} and status = 'held'
      and promotion_id <> all(${`{${uses.map((u) => `"${u.promotionId}"`).join(',')}}`}::text[])`);
  if (uses.length === 0) return;
  const email = customer.email.trim().toLowerCase();
  const sorted = [...uses].sort((a, b) => (a.promotionId < b.promotionId ? -1 : 1));
  // Limited promotions are locked before this checkout's hold is judged, and
  // by the wall clock (now() is the transaction's start): a hold that lapses
  // while another checkout takes the use is then seen as lapsed here too.
  for (const use of sorted) {
    if (use.usageLimit !== null || use.usageLimitPerCustomer !== null) await tx.execute(sql`select 1 from promotions where id = ${use.promotionId} for update`);
  }
  const { rows } = await tx.execute<{ promotion_id: string; live: boolean }>(sql`
    select promotion_id, (status = 'redeemed' or (status = 'held' and expires_at > clock_timestamp())) as live from promotion_redemptions
    where checkout_id = ${checkoutId} and status in ('held', 'redeemed')`);
  const live = new Set(rows.filter((r) => r.live).map((r) => r.promotion_id));
  for (const use of sorted) {
    if (!live.has(use.promotionId)) await checkRoom(tx, use, checkoutId, customer);
    await tx
      .insert(promotionRedemptions)
      .values({ id: newId('red'), promotionId: use.promotionId, checkoutId, orderId, email, userId: customer.userId ?? null, status: 'redeemed', expiresAt: new Date() })
      .onConflictDoUpdate({
        target: [promotionRedemptions.promotionId, promotionRedemptions.checkoutId],
        set: { status: 'redeemed', orderId, updatedAt: new Date() },
      });
  }
}

/**
 * Gives a checkout's uses back: a failed checkout's holds, or with
 * `redeemed` also the uses of an order the store itself cancelled (payment
 * not captured, holds lapsed): the shopper did not choose to cancel and must
 * be able to try again with the code. A merchant's cancel keeps the use.
 */
export async function releaseUses(db: Database | Tx, checkoutId: string, redeemed = false): Promise<void> {
  await db
    .update(promotionRedemptions)
    .set({ status: 'released', updatedAt: new Date() })
    .where(and(eq(promotionRedemptions.checkoutId, checkoutId), redeemed ? inArray(promotionRedemptions.status, ['held', 'redeemed']) : eq(promotionRedemptions.status, 'held')));
}

/** Uses per promotion (redeemed, and live holds), for the admin API. */
export async function usageCounts(db: Database, promotionIds: readonly string[]): Promise<Map<string, { redeemed: number; held: number }>> {
  if (promotionIds.length === 0) return new Map();
  const rows = await db
    .select({
      promotionId: promotionRedemptions.promotionId,
      redeemed: sql<number>`count(*) filter (where ${promotionRedemptions.status} = 'redeemed')::int`,
      held: sql<number>`count(*) filter (where ${promotionRedemptions.status} = 'held' and ${promotionRedemptions.expiresAt} > now())::int`,
    })
    .from(promotionRedemptions)
    .where(inArray(promotionRedemptions.promotionId, [...promotionIds]))
    .groupBy(promotionRedemptions.promotionId);
  return new Map(rows.map((r) => [r.promotionId, { redeemed: Number(r.redeemed), held: Number(r.held) }]));
}
