/** `GET /api/regions`: the regions a shopper can pick, with their currency. */
import { createRoute, z } from '@hono/zod-openapi';
import { REGIONS, REGION_CODES } from '../../db/regions';
import { createRouter } from '../lib/router';

const RegionSchema = z
  .object({
    code: z.enum(REGION_CODES).openapi({ example: 'sg' }),
    name: z.string().openapi({ example: 'Singapore' }),
    country: z.string().openapi({ example: 'SG' }),
    currency: z.string().openapi({ example: 'SGD' }),
    currencyExponent: z.number().int().openapi({ description: 'Decimals of the minor unit used for amounts', example: 2 }),
    locale: z.string().openapi({ example: 'en-SG' }),
    timeZone: z.string().openapi({ example: 'Asia/Singapore' }),
    taxRateBps: z.number().int().openapi({ description: 'Consumption tax in basis points', example: 900 }),
    taxInclusive: z.boolean(),
  })
  .openapi('Region');

// Static facts: computed once per isolate, cacheable everywhere for an hour.
const body = {
  items: REGION_CODES.map((code) => {
    const r = REGIONS[code];
    return {
      code,
      name: r.name,
      country: r.countryCode,
      currency: r.currency,
      currencyExponent: r.currencyExponent,
      locale: r.locale,
      timeZone: r.timeZone,
      taxRateBps: r.taxRateBps,
      taxInclusive: r.taxInclusive,
    };
  }),
};

export const regionRoutes = createRouter().openapi(
  createRoute({
    method: 'get',
    path: '/regions',
    tags: ['Storefront'],
    summary: 'Lists the selling regions and their currencies',
    responses: {
      200: {
        description: 'All regions',
        content: { 'application/json': { schema: z.object({ items: z.array(RegionSchema) }) } },
      },
    },
  }),
  (c) => c.json(body, 200, { 'cache-control': 'public, max-age=3600' }),
);
