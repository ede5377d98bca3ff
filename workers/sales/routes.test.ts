import { describe, expect, it } from 'vitest';
import { settle } from '../../test/workers/shop';
import { SaleShopper, scheduledSale, until } from '../../test/workers/sale';

describe('flash sale: queue to order', () => {
  it('admits a ticket, which then checks out within the cap', async () => {
    const sale = await scheduledSale({ units: 5, cap: 2, rate: 100 });
    const shopper = new SaleShopper();
    const early = await shopper.join(sale.saleId);
    expect(early.status).toBe(422);
    expect((await early.json<any>()).error.code).toBe('sale_not_started');
    await until(sale.startsAt + 50);
    const joined = await shopper.join(sale.saleId);
    expect(joined.status).toBe(201);
    const turn = await shopper.waitTurn(sale.saleId);
    expect(turn.state).toBe('admitted');
    const res = await shopper.checkout(await shopper.cart(sale.variantId, 2));
    expect(res.status).toBe(202);
    expect(await settle((await res.json<any>()).checkoutId)).toMatchObject({ status: 'confirmed' });
    const again = await shopper.checkout(await shopper.cart(sale.variantId, 1));
    expect(await settle((await again.json<any>()).checkoutId)).toMatchObject({ status: 'failed', reason: 'cap_exceeded' });
  });

  it('refuses a checkout of the sale variant without an admitted ticket', async () => {
    const sale = await scheduledSale({ units: 5, cap: 2, rate: 100 });
    await until(sale.startsAt + 50);
    const shopper = new SaleShopper();
    const res = await shopper.checkout(await shopper.cart(sale.variantId, 1));
    expect(await settle((await res.json<any>()).checkoutId)).toMatchObject({ status: 'failed', reason: 'not_admitted' });
  });

  it('refuses a ticket copied to another session', async () => {
    const sale = await scheduledSale({ units: 5, cap: 2, rate: 100 });
    await until(sale.startsAt + 50);
    const owner = new SaleShopper();
    await owner.join(sale.saleId);
    const thief = new SaleShopper();
    const res = await thief.call(`/api/sales/${sale.saleId}/queue`, {}, { 'x-queue-ticket': owner.ticket! });
    expect(res.status).toBe(403);
    expect((await res.json<any>()).error).toMatchObject({ code: 'invalid_ticket', details: { reason: 'other_session' } });
  });
});
