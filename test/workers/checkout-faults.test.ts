/**
 * Fault tests: dependencies go away in the middle of a checkout. Postgres is
 * taken away by pausing the bridge the Worker reaches it through (every
 * connection dropped, new ones refused, exactly what the Worker sees when the
 * database is down), through the control server of test/global-setup.ts.
 */
import { runInDurableObject } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { sql } from 'drizzle-orm';
import { createDatabase } from '../../db/client';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { randomToken } from '../../workers/lib/ids';
import { regionLevels } from '../../workers/inventory/shards';
import { processedMarkerId } from '../../workers/queue/order-events';
import { call, cartWith, checkoutBody, ordersFor, settle, simAuthorizations, startCheckout, stockedVariant } from './shop';

const control = (action: 'pause' | 'resume') => fetch(`${env.TEST_CONTROL_URL}/pg/${action}`, { method: 'POST' });

afterEach(async () => {
  await control('resume');
});

describe('Postgres down between the charge and the order write', () => {
  it('delays the order, then writes it exactly once when Postgres is back, with one charge', async () => {
    const { variantId } = await stockedVariant(5, 1200);
    const cartId = await cartWith(variantId, 1);
    // tok_slow keeps the provider busy long enough to take Postgres away
    // after the stock is reserved and before the order is written.
    const { checkoutId } = await (await startCheckout(checkoutBody(cartId, 'tok_slow'), `key-${randomToken()}`)).json<any>();
    for (let i = 0; i < 200; i++) {
      const state = await (await call(`/api/checkout/${checkoutId}`)).json<any>();
      if (state.status === 'reserved') break;
      await new Promise((r) => setTimeout(r, 25));
    }
    expect((await control('pause')).status).toBe(204);

    // The provider answers; the order write keeps failing and is retried.
    await new Promise((r) => setTimeout(r, 4_000));
    const during = await (await call(`/api/checkout/${checkoutId}`)).json<any>();
    expect(during.status).toBe('reserved');
    const auths = await simAuthorizations(checkoutId);
    expect(auths).toHaveLength(1);
    expect(auths[0].status).toBe('authorized');

    await control('resume');
    const done = await settle(checkoutId, 60_000);
    expect(done.status).toBe('confirmed');
    expect(await ordersFor(checkoutId)).toHaveLength(1);
    const after = await simAuthorizations(checkoutId);
    expect(after).toHaveLength(1);
    expect(after[0].status).toBe('captured');
    expect((await regionLevels(env, 'sg', [variantId])).get(variantId)).toMatchObject({ received: 5, sold: 1, held: 0 });
  }, 90_000);
});

describe('the authorisation is voided before capture', () => {
  it('cancels the unpaid order, releases the stock and ends failed, without retrying forever', async () => {
    const { variantId } = await stockedVariant(3, 800);
    const cartId = await cartWith(variantId, 1);
    const { checkoutId } = await (await startCheckout(checkoutBody(cartId, 'tok_slow'), `key-${randomToken()}`)).json<any>();
    for (let i = 0; i < 200; i++) {
      if ((await (await call(`/api/checkout/${checkoutId}`)).json<any>()).status === 'reserved') break;
      await new Promise((r) => setTimeout(r, 25));
    }
    // Hold the order write back while the authorisation goes away at the provider.
    await control('pause');
    let auths: any[] = [];
    for (let i = 0; i < 100 && auths.length === 0; i++) {
      auths = (await simAuthorizations(checkoutId)).filter((a) => a.status === 'authorized');
      if (!auths.length) await new Promise((r) => setTimeout(r, 50));
    }
    expect(auths).toHaveLength(1);
    const voided = await fetch(`${inject('paymentApiUrl')}/v1/authorizations/${auths[0].id}/void`, {
      method: 'POST',
      headers: { authorization: `Bearer ${inject('paymentApiKey')}`, 'content-type': 'application/json', 'idempotency-key': `test-${randomToken()}` },
      body: '{}',
    });
    expect(voided.status).toBe(200);
    await control('resume');

    const done = await settle(checkoutId, 60_000);
    expect(done).toMatchObject({ status: 'failed', reason: 'payment_failed' });
    const [order] = await ordersFor(checkoutId);
    expect(order).toMatchObject({ status: 'cancelled' });
    // The cancellation went out on ORDER_EVENTS: its consumer told the buyer (and would tell webhooks).
    await expect
      .poll(async () => {
        const db = createDatabase(env);
        try {
          return (await db.primary.execute<{ n: number }>(sql`select count(*)::int as n from order_events where id = ${processedMarkerId('order.cancelled', order!.id)}`)).rows[0]!.n;
        } finally {
          await db.close();
        }
      }, { timeout: 15_000 })
      .toBe(1);
    expect((await regionLevels(env, 'sg', [variantId])).get(variantId)).toMatchObject({ received: 3, available: 3, held: 0, sold: 0 });
    expect((await simAuthorizations(checkoutId)).filter((a) => a.status === 'captured')).toHaveLength(0);
  }, 90_000);
});

describe('a provider slower than the call deadline', () => {
  it('ends confirmed with one charge, or failed with none: never both, never charged without an order', async () => {
    // In this project provider calls time out after 0.8 s; tok_slow answers after 1.5 s.
    const { variantId } = await stockedVariant(2, 700);
    const { checkoutId } = await (await startCheckout(checkoutBody(await cartWith(variantId, 1), 'tok_slow'), `key-${randomToken()}`)).json<any>();
    const done = await settle(checkoutId, 90_000);
    const orders = await ordersFor(checkoutId);
    const captured = (await simAuthorizations(checkoutId)).filter((a) => a.status === 'captured');
    if (done.status === 'confirmed') {
      expect(orders).toEqual([expect.objectContaining({ status: 'confirmed' })]);
      expect(captured).toHaveLength(1);
      expect((await regionLevels(env, 'sg', [variantId])).get(variantId)).toMatchObject({ sold: 1, held: 0 });
    } else {
      expect(done.status).toBe('failed');
      expect(orders.filter((o) => o.status === 'confirmed')).toHaveLength(0);
      expect(captured).toHaveLength(0);
      expect((await regionLevels(env, 'sg', [variantId])).get(variantId)).toMatchObject({ sold: 0, held: 0 });
    }
  }, 120_000);
});

describe('an order the database refuses for good', () => {
  it('ends the checkout failed as order_rejected, voids the authorisation and releases the stock, instead of retrying for ever', async () => {
    const { variantId } = await stockedVariant(2, 900);
    const cartId = await cartWith(variantId, 1);
    // Straight to the object, past the route's validation: text Postgres
    // cannot store (U+0000) is the simplest write the database always refuses.
    const checkoutId = `chk_${randomToken(16)}`;
    const request = { ...checkoutBody(cartId), shippingAddress: { ...checkoutBody(cartId).shippingAddress, name: 'Siti\u0000Rahman' } } as any;
    const stub = env.CHECKOUT.get(env.CHECKOUT.idFromName(checkoutId));
    expect((await stub.start(checkoutId, 'fingerprint', request)).ok).toBe(true);

    const done = await settle(checkoutId, 30_000);
    expect(done).toMatchObject({ status: 'failed', reason: 'order_rejected' });
    expect(await ordersFor(checkoutId)).toEqual([]);
    const auths = await simAuthorizations(checkoutId);
    expect(auths).toHaveLength(1);
    expect(auths[0].status).toBe('voided');
    expect((await regionLevels(env, 'sg', [variantId])).get(variantId)).toMatchObject({ received: 2, available: 2, held: 0, sold: 0 });
  }, 60_000);
});

describe('an order number that is already taken', () => {
  it('draws another number and writes the order once, instead of failing a paid checkout', async () => {
    const { variantId } = await stockedVariant(5, 700);
    const first = await settle((await (await startCheckout(checkoutBody(await cartWith(variantId, 1)), `key-${randomToken()}`)).json<any>()).checkoutId);
    expect(first.status).toBe('confirmed');
    const db = createDatabase(env);
    const numberOf = async (where: string, value: string) =>
      (await db.primary.execute<{ number: string }>(sql`select number from orders where ${sql.identifier(where)} = ${value}`)).rows.map((r) => r.number);
    try {
      const [taken] = await numberOf('id', first.orderId);
      // The second checkout's write is held back (Postgres away) until its number is swapped for the taken one.
      const { checkoutId } = await (await startCheckout(checkoutBody(await cartWith(variantId, 1), 'tok_slow'), `key-${randomToken()}`)).json<any>();
      for (let i = 0; i < 200; i++) {
        if ((await (await call(`/api/checkout/${checkoutId}`)).json<any>()).status === 'reserved') break;
        await new Promise((r) => setTimeout(r, 25));
      }
      expect((await control('pause')).status).toBe(204);
      const stub = env.CHECKOUT.get(env.CHECKOUT.idFromName(checkoutId));
      const step = () => runInDurableObject(stub, (_, state) => state.storage.sql.exec<{ step: string }>('select step from checkout').one().step);
      for (let i = 0; i < 200 && (await step()) !== 'write_order'; i++) await new Promise((r) => setTimeout(r, 50));
      expect(await step()).toBe('write_order');
      await runInDurableObject(stub, (_, state) => void state.storage.sql.exec('update checkout set order_number = ?', taken!));
      await control('resume');

      const done = await settle(checkoutId, 60_000);
      expect(done.status).toBe('confirmed');
      const numbers = await numberOf('checkout_id', checkoutId);
      expect(numbers).toHaveLength(1);
      expect(numbers[0]).not.toBe(taken);
      expect(numbers[0]).toMatch(/^SG-\d{8}$/);
    } finally {
      await db.close();
    }
  }, 90_000);
});
