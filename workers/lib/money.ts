/**
 * Money: an integer number of minor units plus an ISO 4217 currency. Never a
 * float. How many decimals a currency shows is a property of the region
 * (db/regions.ts): IDR, VND and TWD amounts are whole units.
 */
import { REGIONS, type Region } from '../../db/regions';
import { z } from '@hono/zod-openapi';

/** The wire shape of an amount of money. */
export interface Money {
  amount: number;
  currency: string;
}

/** OpenAPI/zod schema of {@link Money}. */
export const MoneySchema = z
  .object({
    amount: z.number().int().openapi({ description: 'Integer minor units of `currency`', example: 1990 }),
    currency: z.string().length(3).openapi({ example: 'SGD' }),
  })
  .openapi('Money');

/** `amount` minor units in the region's currency. */
export function money(amount: number, region: Region): Money {
  return { amount, currency: region.currency };
}

const formatters = new Map<string, Intl.NumberFormat>();

/**
 * Symbols that say which dollar: in its own locale SGD and TWD print a bare
 * "$", which a shopper comparing prices across the region (or a tourist)
 * cannot tell from USD.
 */
const UNAMBIGUOUS_SYMBOL: Record<string, string> = { SGD: 'S$', TWD: 'NT$' };

/**
 * Formats for display in the region's locale with exactly the currency's
 * decimals: `S$19.90`, `Rp 149.000`, `149.000 ₫`.
 */
export function formatMoney(value: Money, region: Region = regionForCurrency(value.currency)): string {
  const key = `${region.locale}:${value.currency}`;
  let fmt = formatters.get(key);
  if (!fmt) {
    fmt = new Intl.NumberFormat(region.locale, {
      style: 'currency',
      currency: value.currency,
      minimumFractionDigits: region.currencyExponent,
      maximumFractionDigits: region.currencyExponent,
    });
    formatters.set(key, fmt);
  }
  const symbol = UNAMBIGUOUS_SYMBOL[value.currency];
  const amount = value.amount / 10 ** region.currencyExponent;
  if (!symbol) return fmt.format(amount);
  return fmt
    .formatToParts(amount)
    .map((part) => (part.type === 'currency' ? symbol : part.value))
    .join('');
}

function regionForCurrency(currency: string): Region {
  const found = Object.values(REGIONS).find((r) => r.currency === currency);
  if (!found) throw new Error(`no region uses ${currency}`);
  return found;
}
