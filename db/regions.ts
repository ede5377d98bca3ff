/**
 * The selling regions and their facts. This table is code, not only data:
 * the Worker resolves a request's region from it without a database round
 * trip, and the seed writes the same rows into `regions` so the origin's
 * foreign keys agree with what the edge believes.
 *
 * Currency exponents are the number of decimals *this store* uses for the
 * currency: IDR and VND are priced in whole units (no sen/xu in circulation),
 * and TWD shelf prices are whole dollars, so all three store amounts in units
 * of 1. The others use cents.
 *
 * Tax rates are the consumption tax on ordinary goods in force in 2026 as far
 * as published schedules go: Malaysia's sales tax on goods is 10 % (its 8 % is
 * the service tax); Indonesia's 12 % PPN is levied on 11/12 of the price for
 * non-luxury goods (PMK 131/2024), 11 % in effect. Tax-inclusive shelf prices
 * are the retail norm in every one of these markets.
 */
export const REGION_CODES = ['sg', 'my', 'th', 'id', 'vn', 'ph', 'tw'] as const;

/** A region code: `sg`, `my`, `th`, `id`, `vn`, `ph` or `tw`. */
export type RegionCode = (typeof REGION_CODES)[number];

/** Static facts about a region. */
export interface Region {
  code: RegionCode;
  name: string;
  /** ISO 3166-1 alpha-2 of the country, as in `request.cf.country`. */
  countryCode: string;
  /** ISO 4217 code. */
  currency: string;
  /** Decimals shown for amounts; amounts are integers in units of 10^-exponent. */
  currencyExponent: number;
  /** BCP 47 locale for formatting. */
  locale: string;
  timeZone: string;
  /** Consumption tax in basis points. */
  taxRateBps: number;
  taxInclusive: boolean;
  /** Durable Object location hint for this region's objects. */
  locationHint: DurableObjectLocationHint;
}

/** Cloudflare's coarse Durable Object placement areas. */
export type DurableObjectLocationHint = 'wnam' | 'enam' | 'sam' | 'weur' | 'eeur' | 'apac' | 'oc' | 'afr' | 'me';

export const REGIONS: Readonly<Record<RegionCode, Region>> = {
  sg: { code: 'sg', name: 'Singapore', countryCode: 'SG', currency: 'SGD', currencyExponent: 2, locale: 'en-SG', timeZone: 'Asia/Singapore', taxRateBps: 900, taxInclusive: true, locationHint: 'apac' },
  my: { code: 'my', name: 'Malaysia', countryCode: 'MY', currency: 'MYR', currencyExponent: 2, locale: 'ms-MY', timeZone: 'Asia/Kuala_Lumpur', taxRateBps: 1000, taxInclusive: true, locationHint: 'apac' },
  th: { code: 'th', name: 'Thailand', countryCode: 'TH', currency: 'THB', currencyExponent: 2, locale: 'th-TH', timeZone: 'Asia/Bangkok', taxRateBps: 700, taxInclusive: true, locationHint: 'apac' },
  id: { code: 'id', name: 'Indonesia', countryCode: 'ID', currency: 'IDR', currencyExponent: 0, locale: 'id-ID', timeZone: 'Asia/Jakarta', taxRateBps: 1100, taxInclusive: true, locationHint: 'apac' },
  vn: { code: 'vn', name: 'Vietnam', countryCode: 'VN', currency: 'VND', currencyExponent: 0, locale: 'vi-VN', timeZone: 'Asia/Ho_Chi_Minh', taxRateBps: 1000, taxInclusive: true, locationHint: 'apac' },
  ph: { code: 'ph', name: 'Philippines', countryCode: 'PH', currency: 'PHP', currencyExponent: 2, locale: 'en-PH', timeZone: 'Asia/Manila', taxRateBps: 1200, taxInclusive: true, locationHint: 'apac' },
  tw: { code: 'tw', name: 'Taiwan', countryCode: 'TW', currency: 'TWD', currencyExponent: 0, locale: 'zh-TW', timeZone: 'Asia/Taipei', taxRateBps: 500, taxInclusive: true, locationHint: 'apac' },
};

/** Narrows an arbitrary string to a region code. */
export function isRegionCode(value: string): value is RegionCode {
  return (REGION_CODES as readonly string[]).includes(value);
}

/** The region that serves shoppers in a country, if any. */
export function regionForCountry(countryCode: string | undefined | null): RegionCode | undefined {
  if (!countryCode) return undefined;
  const upper = countryCode.toUpperCase();
  return REGION_CODES.find((code) => REGIONS[code].countryCode === upper);
}
