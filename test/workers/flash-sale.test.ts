/**
 * The flash sale end to end: 1,000 shoppers check out at once for 100 units.
 * Exactly 100 orders, 900 told out of stock, stock adds up, and the charges
 * at the payment simulator match the orders one for one.
 */
import { env } from 'cloudflare:workers';
import { sql } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import { createDatabase } from '../../db/client';
import { randomToken } from '../../workers/lib/ids';
import { regionLevels } from '../../workers/inventory/shards';
import { cartWith, checkoutBody, settle, simAuthorizations, startCheckout, stockedVariant } from './shop';

const SHOPPERS = 1_000;
const UNITS = 100;

describe('flash sale', () => {
  it(`${SHOPPERS} concurrent checkouts for ${UNITS} units on a hot variant: exactly ${UNITS} confirmed`, async () => {
    const { variantId } = await stockedVariant(UNITS, 1990, 4);
    const carts: string[] = [];
    for (let i = 0; i < SHOPPERS; i += 50) carts.push(...(await Promise.all(Array.from({ length: 50 }, () => cartWith(variantId, 1)))));

    const started = Date.now();
    const ids = await Promise.all(carts.map(async (cartId) => (await (await startCheckout(checkoutBody(cartId), `key-${randomToken()}`)).json<any>()).checkoutId as string));
    const outcomes = await Promise.all(ids.map((id) => settle(id, 240_000)));
    const seconds = (Date.now() - started) / 1000;
    const reasons: Record<string, number> = {};
    for (const o of outcomes) reasons[o.status === 'failed' ? o.reason : o.status] = (reasons[o.status === 'failed' ? o.reason : o.status] ?? 0) + 1;
    console.log(JSON.stringify({ flashSale: { shoppers: SHOPPERS, units: UNITS, seconds, checkoutsPerSecond: Math.round(SHOPPERS / seconds), outcomes: reasons } }));
    expect(reasons).toEqual({ confirmed: UNITS, out_of_stock: SHOPPERS - UNITS });

    const confirmed = outcomes.filter((o) => o.status === 'confirmed');
    expect(confirmed).toHaveLength(UNITS);
    expect(outcomes.filter((o) => o.status === 'failed' && o.reason === 'out_of_stock')).toHaveLength(SHOPPERS - UNITS);
    expect((await regionLevels(env, 'sg', [variantId])).get(variantId)).toMatchObject({ received: UNITS, sold: UNITS, held: 0, available: 0 });

    const db = createDatabase(env);
    const { rows } = await db.primary.execute<{ orders: number; units: number }>(
      sql`select count(distinct o.id)::int as orders, coalesce(sum(l.quantity), 0)::int as units from orders o join order_lines l on l.order_id = o.id where l.variant_id = ${variantId}`,
    );
    await db.close();
    expect(rows[0]).toEqual({ orders: UNITS, units: UNITS });

    // Charges equal orders: one captured authorization per confirmed checkout, none for the rest.
    const charged = await Promise.all(ids.map(async (id) => (await simAuthorizations(id)).filter((a) => a.status === 'captured').length));
    expect(charged.reduce((a, b) => a + b, 0)).toBe(UNITS);
    const confirmedIds = new Set(confirmed.map((o) => o.checkoutId));
    ids.forEach((id, i) => expect(charged[i]).toBe(confirmedIds.has(id) ? 1 : 0));
  }, 300_000);
});
