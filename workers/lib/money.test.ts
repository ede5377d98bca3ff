import { describe, expect, it } from 'vitest';
import { REGIONS } from '../../db/regions';
import { formatMoney } from './money';

describe('formatMoney', () => {
  it('shows cents where the currency has them and says which dollar', () => {
    expect(formatMoney({ amount: 1990, currency: 'SGD' }, REGIONS.sg)).toBe('S$19.90');
    expect(formatMoney({ amount: 123456, currency: 'MYR' }, REGIONS.my)).toMatch(/^RM\s?1,234\.56$/);
  });

  it('shows IDR, VND and TWD in whole units, grouped the local way', () => {
    expect(formatMoney({ amount: 149000, currency: 'IDR' }, REGIONS.id)).toMatch(/^Rp\s?149\.000$/);
    expect(formatMoney({ amount: 1290000, currency: 'VND' }, REGIONS.vn)).toMatch(/^1\.290\.000\s?₫$/);
    expect(formatMoney({ amount: 1290, currency: 'TWD' }, REGIONS.tw)).toBe('NT$1,290');
  });

  it('keeps a zero amount and large amounts exact', () => {
    expect(formatMoney({ amount: 0, currency: 'PHP' }, REGIONS.ph)).toMatch(/0\.00$/);
    expect(formatMoney({ amount: 999_999_999_000, currency: 'IDR' }, REGIONS.id)).toMatch(/999\.999\.999\.000$/);
  });
});
