/**
 * The payment provider away or slow (its address refusing connections, or
 * every byte delayed past the call timeout), and a checkout object reset in
 * the middle of its saga.
 */
import { runInDurableObject } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { afterEach, describe, expect, it } from 'vitest';
import { simAuthorizations, stockedVariant } from '../../workers/shop';
import { Shopper, expectBooksBalance, expectStock, fault, healAll, replica, until } from './harness';

afterEach(async () => {
  await healAll();
});

/** A shopper with a cart of `quantity` of a fresh variant holding `stock` units. */
async function shopperWithCart(stock: number, quantity: number) {
  const { variantId } = await stockedVariant(stock, 1800);
  await replica('caught-up');
  const shopper = new Shopper();
  const cartId = await shopper.cartWith(variantId, quantity);
  return { shopper, cartId, variantId };
}

/** Waits until the checkout's status is `status`. */
const reach = (shopper: Shopper, checkoutId: string, status: string, ms = 20_000) =>
  until(
    async () => (await shopper.call(`/api/checkout/${checkoutId}`)).json<any>(),
    (s) => s.status === status,
    ms,
    50,
  );

describe('payment provider down or slow', () => {
  it('retries a provider that refuses connections within the deadline, then charges exactly once', async () => {
    const { shopper, cartId, variantId } = await shopperWithCart(4, 1);
    await fault('payments', 'stop');
    const checkoutId = await shopper.checkout(cartId);
    expect((await reach(shopper, checkoutId, 'reserved')).status).toBe('reserved');
    await new Promise((r) => setTimeout(r, 2_000));
    expect(await simAuthorizations(checkoutId)).toHaveLength(0);

    await fault('payments', 'start');
    const done = await shopper.settle(checkoutId, 60_000);
    expect(done.status).toBe('confirmed');
    await expectBooksBalance(checkoutId, 'confirmed');
    await expectStock(variantId, 4, 1);
  }, 90_000);

  it('fails a checkout whose provider stays slower than the call timeout past the deadline: holds released, nothing charged', async () => {
    const { shopper, cartId, variantId } = await shopperWithCart(4, 2);
    // Every byte 1.5 s late each way: each call (0.8 s timeout) times out, though requests do reach the provider.
    await fault('payments', 'latency', 1_500);
    const checkoutId = await shopper.checkout(cartId);
    const failed = await shopper.settle(checkoutId, 40_000);
    expect(failed).toMatchObject({ status: 'failed', reason: 'payment_failed' });
    // The shopper is told at once; the stock is back for others straight away.
    await expectStock(variantId, 4, 0);

    // Authorisations the provider made from the late requests are voided once it answers in time again.
    await fault('payments', 'pass');
    await until(
      () => simAuthorizations(checkoutId),
      (auths) => auths.every((a) => a.status !== 'authorized'),
      60_000,
      250,
    );
    await expectBooksBalance(checkoutId, 'failed');
    // The late requests did reach the provider: what it made was found again (same idempotency key) and voided.
    const auths = await simAuthorizations(checkoutId);
    expect(auths.length).toBeGreaterThan(0);
    expect(new Set(auths.map((a) => a.status))).toEqual(new Set(['voided']));
    const stub = env.CHECKOUT.get(env.CHECKOUT.idFromName(checkoutId)) as unknown as { history(): Promise<{ status: string; step: string }[]> };
    expect((await stub.history()).at(-1)).toMatchObject({ status: 'failed', step: 'done' });
  }, 120_000);
});

describe('a provider that never answered', () => {
  it('fails the checkout at the deadline and, once the provider is back, finds nothing to void: no hold is created on the card', async () => {
    const { shopper, cartId, variantId } = await shopperWithCart(4, 1);
    await fault('payments', 'stop');
    const checkoutId = await shopper.checkout(cartId);
    const failed = await shopper.settle(checkoutId, 40_000);
    expect(failed).toMatchObject({ status: 'failed', reason: 'payment_failed' });
    await expectStock(variantId, 4, 0);

    await fault('payments', 'start');
    const stub = env.CHECKOUT.get(env.CHECKOUT.idFromName(checkoutId)) as unknown as { history(): Promise<{ status: string; step: string }[]> };
    const history = await until(
      () => stub.history(),
      (h) => h.at(-1)?.step === 'done',
      60_000,
      250,
    );
    expect(history.at(-1)).toMatchObject({ status: 'failed', step: 'done' });
    // Looked up by reference, not authorised again: the provider made nothing for this checkout.
    expect(await simAuthorizations(checkoutId)).toHaveLength(0);
    await expectBooksBalance(checkoutId, 'failed');
  }, 120_000);
});

describe('a checkout object reset mid-saga', () => {
  it('resumes from its stored step: one authorisation, one order, one capture', async () => {
    const { shopper, cartId, variantId } = await shopperWithCart(3, 1);
    // tok_slow holds the provider call for 1.5 s: the object is reset while it waits.
    const checkoutId = await shopper.checkout(cartId, 'tok_slow');
    await reach(shopper, checkoutId, 'reserved');
    const stub = env.CHECKOUT.get(env.CHECKOUT.idFromName(checkoutId));
    const reset = await runInDurableObject(stub, (_obj, state) => state.abort('reset by the failure drill')).catch((e: unknown) => e);
    expect(String(reset)).toMatch(/reset by the failure drill/);

    const done = await shopper.settle(checkoutId, 60_000);
    expect(done.status).toBe('confirmed');
    await expectBooksBalance(checkoutId, 'confirmed');
    expect(await simAuthorizations(checkoutId)).toHaveLength(1);
    await expectStock(variantId, 3, 1);
  }, 90_000);
});
