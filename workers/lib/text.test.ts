import { describe, expect, it } from 'vitest';
import { toStorable, unstorable, unstorableFields } from './text';

describe('unstorable', () => {
  it('accepts any well-formed text, emoji and CJK included', () => {
    for (const s of ['', 'Kopi O kosong', 'ข้าวมันไก่', '珍珠奶茶 🧋', 'a\tb\nc']) expect(unstorable(s)).toBeUndefined();
  });

  it('names NUL and unpaired surrogates, which Postgres text and jsonb refuse', () => {
    expect(unstorable('a\u0000b')).toMatch(/NUL/);
    expect(unstorable('\ud800')).toMatch(/surrogate/);
    expect(unstorable('x\udc00')).toMatch(/surrogate/);
    expect(unstorable('🧋'.slice(0, 1))).toMatch(/surrogate/);
  });
});

describe('unstorableFields', () => {
  it('finds bad values and bad keys anywhere, with their paths', () => {
    const issues = unstorableFields({ title: 'ok', variants: [{ options: { 'col\u0000our': 'teal', size: '\ud800' } }] }, 'body');
    expect(issues.map((i) => i.field)).toEqual(['variants.0.options.col\u0000our', 'variants.0.options.size']);
    expect(issues.every((i) => i.in === 'body')).toBe(true);
  });

  it('is empty for clean input', () => {
    expect(unstorableFields({ a: ['b', 1, null, { c: true }] }, 'query')).toEqual([]);
  });
});

describe('toStorable', () => {
  it('replaces what cannot be stored with U+FFFD, keys included, and keeps the rest', () => {
    expect(toStorable({ id: 'evt\u00001', data: { ['k\ud800']: ['ok', 2, '\udc00'] } })).toEqual({ id: 'evt\ufffd1', data: { 'k\ufffd': ['ok', 2, '\ufffd'] } });
  });
});
