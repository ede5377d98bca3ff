import { describe, expect, it } from 'vitest';
import { scheduledSale, until } from '../../test/workers/sale';
import { admin } from '../../test/workers/shop';
import { pageClient } from './test-helpers';

const browser = pageClient('sg');

/** The cookies a response sets, as a Cookie header. */
const cookiesOf = (res: Response, jar = new Map<string, string>()) => {
  for (const c of res.headers.getSetCookie()) {
    const [pair] = c.split(';');
    const i = pair!.indexOf('=');
    jar.set(pair!.slice(0, i), pair!.slice(i + 1));
  }
  return { jar, header: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') };
};

describe('sale page', () => {
  it('counts down before the start, then lets the shopper join and shows the place in the queue', async () => {
    const sale = await scheduledSale({ units: 5, cap: 1, rate: 1, startsInMs: 2_000 });
    const before = await browser.get(`/sale/${sale.saleId}`);
    expect(before.status).toBe(200);
    expect(before.headers.get('cache-control')).toContain('no-store');
    expect(Number(before.headers.get('refresh'))).toBeGreaterThanOrEqual(1);
    const html = await before.text();
    expect(html).toContain('data-countdown=');
    expect(html).toContain('/assets/sale.js');
    expect(html).not.toContain('Join the queue');

    await until(sale.startsAt + 50);
    const open = await (await browser.get(`/sale/${sale.saleId}`)).text();
    expect(open).toContain('Join the queue');
    const first = await browser.post(`/sale/${sale.saleId}/join`, {});
    expect(first.status).toBe(303);
    expect(first.headers.get('location')).toBe(`/sale/${sale.saleId}`);
    const second = await browser.post(`/sale/${sale.saleId}/join`, {});
    const secondCookies = cookiesOf(second).header;
    // One a second: the first is let in within the first second, the second a second later.
    let firstPage = '';
    for (let i = 0; i < 30 && !firstPage.includes('It is your turn'); i++) {
      firstPage = await (await browser.get(`/sale/${sale.saleId}`, cookiesOf(first).header)).text();
      if (!firstPage.includes('It is your turn')) await new Promise((r) => setTimeout(r, 100));
    }
    const secondPage = await browser.get(`/sale/${sale.saleId}`, secondCookies);
    const secondHtml = await secondPage.text();
    expect(firstPage).toContain('It is your turn');
    expect(firstPage).toContain(`/p/`);
    expect(secondHtml).toMatch(/You are number <strong data-field="position">2<\/strong>/);
    expect(secondPage.headers.get('refresh')).toMatch(/^\d+$/);
  });

  it('refuses a join posted from another site', async () => {
    const sale = await scheduledSale({ units: 5, cap: 1, rate: 10, startsInMs: 300 });
    await until(sale.startsAt + 50);
    const res = await browser.post(`/sale/${sale.saleId}/join`, {}, undefined, 'https://evil.example');
    expect(res.status).toBe(403);
    expect(res.headers.getSetCookie().some((c) => c.includes('pasar_q_'))).toBe(false);
  });

  it('shows the sale on the product page, without words that change with the clock', async () => {
    const sale = await scheduledSale({ units: 5, cap: 2, rate: 10, startsInMs: 60_000 });
    const view = await (await admin(`/admin/api/sales/${sale.saleId}`, 'GET')).json<any>();
    const page = await (await browser.get(`/p/${view.variants[0].productSlug}`)).text();
    expect(page).toContain(`href="/sale/${sale.saleId}"`);
    expect(page).toContain('limit 2 per shopper');
    expect(page).toContain(`datetime="${new Date(sale.startsAt).toISOString()}"`);
  });

  it('answers an unknown sale with the HTML not-found page', async () => {
    const res = await browser.get('/sale/sale_unknown');
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toContain('text/html');
  });
});
