import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { randomToken } from '../lib/ids';
import { callWith, newShopper, req, signedInShopper } from '../auth/test-helpers';
import { RATE_LIMIT_DEFAULTS, ipv6Prefix64, rateLimitConfig } from './rate-limit';

const errorOf = async (res: Response) => (await res.json<{ error: { code: string; message: string; details?: any } }>()).error;
/** A client address of its own per test, so parallel tests never share a counter. */
const ip = () => `203.0.113.${Math.floor(Math.random() * 250) + 1}-${randomToken(4)}`;

describe('RATE_LIMITS', () => {
  it('reads on, off and per-rule overrides', () => {
    expect(rateLimitConfig({ RATE_LIMITS: 'off', ENVIRONMENT: 'development' })).toEqual({ enabled: false });
    const on = rateLimitConfig({ RATE_LIMITS: 'on', ENVIRONMENT: 'development' });
    expect(on).toEqual({ enabled: true, rules: RATE_LIMIT_DEFAULTS });
    const tuned = rateLimitConfig({ RATE_LIMITS: 'on; login_ip=3/60s; checkout=100/1m', ENVIRONMENT: 'staging' });
    expect(tuned).toMatchObject({ enabled: true, rules: { login_ip: { tokens: 3, window: '60 s', whenDown: 'closed' }, checkout: { tokens: 100, window: '1 m' } } });
  });

  it('cannot be switched off in production', () => {
    expect(rateLimitConfig({ RATE_LIMITS: 'off', ENVIRONMENT: 'production' })).toEqual({ enabled: true, rules: RATE_LIMIT_DEFAULTS });
  });

  it('refuses a config it cannot read rather than guessing', () => {
    expect(() => rateLimitConfig({ RATE_LIMITS: 'on; login_ip=lots', ENVIRONMENT: 'development' })).toThrow(/cannot read/);
    expect(() => rateLimitConfig({ RATE_LIMITS: 'on; nope=1/1s', ENVIRONMENT: 'development' })).toThrow(/cannot read/);
    expect(() => rateLimitConfig({ RATE_LIMITS: 'maybe', ENVIRONMENT: 'development' })).toThrow(/on" or "off/);
  });
});

describe('client addresses', () => {
  it('counts IPv6 by its /64, however the address is written', () => {
    expect(ipv6Prefix64('2001:db8:85a3:1:aaaa:bbbb:cccc:dddd')).toBe('2001:db8:85a3:1::/64');
    expect(ipv6Prefix64('2001:DB8:85A3:0001::1')).toBe('2001:db8:85a3:1::/64');
    expect(ipv6Prefix64('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(ipv6Prefix64('::1')).toBe('0:0:0:0::/64');
    expect(ipv6Prefix64('fe80::')).toBe('fe80:0:0:0::/64');
  });

  it('one subscriber rotating through its IPv6 /64 is one client', async () => {
    const prefix = `2001:db8:${Math.floor(Math.random() * 0xffff).toString(16)}:${Math.floor(Math.random() * 0xffff).toString(16)}`;
    const limits = { RATE_LIMITS: 'on; register_ip=2/1h' };
    const from = (n: number) => ({ 'cf-connecting-ip': `${prefix}:${n.toString(16)}::${n}` });
    expect((await callWith(limits, '/api/auth/register', req('POST', newShopper(), undefined, from(1)))).status).toBe(201);
    expect((await callWith(limits, '/api/auth/register', req('POST', newShopper(), undefined, from(2)))).status).toBe(201);
    expect((await callWith(limits, '/api/auth/register', req('POST', newShopper(), undefined, from(3)))).status).toBe(429);
  });
});

describe('login limits', () => {
  // Hour-long windows: a sliding window near its boundary lets a burst through
  // (the previous window's count is weighted down), which a minute-long window
  // would hit in about one run in sixty.
  const limits = { RATE_LIMITS: 'on; login_ip=3/1h; login_account=5/1h' };

  it('stops password guessing from one address with 429 and Retry-After, before the password is checked', async () => {
    const shopper = await signedInShopper();
    const from = ip();
    const guess = (password: string) =>
      callWith(limits, '/api/auth/login', req('POST', { email: shopper.email, password }, undefined, { 'cf-connecting-ip': from }));
    for (let i = 0; i < 3; i++) expect((await guess(`wrong-${i}`)).status).toBe(401);
    const blocked = await guess(shopper.password);
    expect(blocked.status).toBe(429);
    expect(Number(blocked.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(Number(blocked.headers.get('retry-after'))).toBeLessThanOrEqual(3600);
    expect(await errorOf(blocked)).toMatchObject({ code: 'rate_limited', details: { rule: 'login_ip', limit: 3 } });
    expect(blocked.headers.getSetCookie()).toEqual([]);
    // Another address is not affected.
    expect((await callWith(limits, '/api/auth/login', req('POST', { email: shopper.email, password: shopper.password }, undefined, { 'cf-connecting-ip': ip() }))).status).toBe(200);
  });

  it('stops guessing one account from many addresses, for any spelling of its email', async () => {
    const shopper = await signedInShopper();
    const spellings = [shopper.email, shopper.email.toUpperCase(), `  ${shopper.email}`];
    for (let i = 0; i < 5; i++) {
      const res = await callWith(limits, '/api/auth/login', req('POST', { email: spellings[i % 3], password: `wrong-${i}` }, undefined, { 'cf-connecting-ip': ip() }));
      expect(res.status).toBe(401);
    }
    const blocked = await callWith(limits, '/api/auth/login', req('POST', { email: shopper.email, password: shopper.password }, undefined, { 'cf-connecting-ip': ip() }));
    expect(blocked.status).toBe(429);
    expect((await errorOf(blocked)).details.rule).toBe('login_account');
  });

  it('fails closed when Redis is down: 503, never a free guess', async () => {
    const res = await callWith(
      { ...limits, UPSTASH_REDIS_REST_URL: env.TEST_DEAD_UPSTASH_URL! },
      '/api/auth/login',
      req('POST', { email: 'someone@example.com', password: 'whatever-it-is' }, undefined, { 'cf-connecting-ip': ip() }),
    );
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBeTruthy();
    expect((await errorOf(res)).code).toBe('unavailable');
  });
});

describe('what counts', () => {
  it('a request refused by validation does not use up an address\'s sign-ups', async () => {
    const limits = { RATE_LIMITS: 'on; register_ip=1/1h' };
    const from = { 'cf-connecting-ip': ip() };
    for (let i = 0; i < 3; i++) {
      expect((await callWith(limits, '/api/auth/register', req('POST', { ...newShopper(), password: 'short' }, undefined, from))).status).toBe(400);
    }
    expect((await callWith(limits, '/api/auth/register', req('POST', newShopper(), undefined, from))).status).toBe(201);
  });

  it('a successful login clears the account\'s earlier failures', async () => {
    const limits = { RATE_LIMITS: 'on; login_account=3/15m' };
    const shopper = await signedInShopper();
    const login = (password: string) => callWith(limits, '/api/auth/login', req('POST', { email: shopper.email, password }, undefined, { 'cf-connecting-ip': ip() }));
    expect((await login('typo-1')).status).toBe(401);
    expect((await login('typo-2')).status).toBe(401);
    expect((await login(shopper.password)).status).toBe(200);
    expect((await login('typo-3')).status).toBe(401);
    expect((await login('typo-4')).status).toBe(401);
    expect((await login(shopper.password)).status).toBe(200);
  });

  it('a retry of a checkout already started gets its checkout back, never a 429', async () => {
    const limits = { RATE_LIMITS: 'on; checkout=1/1h' };
    const from = { 'cf-connecting-ip': ip() };
    const body = {
      cartId: `cart_${'2'.repeat(32)}`,
      email: 'siti@example.com',
      shippingAddress: { name: 'Siti', line1: '1 Orchard Road', city: 'Singapore', postalCode: '238823', country: 'SG' },
      payment: { method: 'card', token: 'tok_ok' },
    };
    const key = randomToken(8);
    const start = (k: string) => callWith(limits, '/api/checkout', req('POST', body, undefined, { ...from, 'idempotency-key': k }));
    const first = await start(key);
    expect(first.status).toBe(202);
    const again = await start(key);
    expect(again.status).toBe(200);
    expect((await again.json<any>()).checkoutId).toBe((await first.json<any>()).checkoutId);
    expect((await start(randomToken(8))).status).toBe(429);
  });
});

describe('register limit', () => {
  it('allows a few sign-ups per address, then 429', async () => {
    const limits = { RATE_LIMITS: 'on; register_ip=2/1h' };
    const from = ip();
    const register = () => callWith(limits, '/api/auth/register', req('POST', newShopper(), undefined, { 'cf-connecting-ip': from }));
    expect((await register()).status).toBe(201);
    expect((await register()).status).toBe(201);
    const blocked = await register();
    expect(blocked.status).toBe(429);
    // The sliding window's counters roll over at the window's clock boundary
    // (the top of the hour here), so the wait is anything up to the window.
    const retryAfter = Number(blocked.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(3600);
  });

  it('fails closed when Redis is down', async () => {
    const s = newShopper();
    const res = await callWith({ RATE_LIMITS: 'on', UPSTASH_REDIS_REST_URL: env.TEST_DEAD_UPSTASH_URL! }, '/api/auth/register', req('POST', s));
    expect(res.status).toBe(503);
  });
});

describe('cart write limit', () => {
  it('counts writes per cart, so one busy cart does not slow another', async () => {
    const limits = { RATE_LIMITS: 'on; cart_write=2/1h' };
    const cartOf = async () => (await (await callWith(limits, '/api/carts', req('POST', {}))).json<any>()).id as string;
    const [one, two] = [await cartOf(), await cartOf()];
    const write = (cart: string) => callWith(limits, `/api/carts/${cart}/items/var_nope`, req('DELETE'));
    expect((await write(one)).status).toBe(404);
    expect((await write(one)).status).toBe(404);
    expect((await write(one)).status).toBe(429);
    expect((await write(two)).status).toBe(404);
  });
});

describe('checkout limit', () => {
  const body = (cartId: string) => ({
    cartId,
    email: 'siti@example.com',
    shippingAddress: { name: 'Siti', line1: '1 Orchard Road', city: 'Singapore', postalCode: '238823', country: 'SG' },
    payment: { method: 'card', token: 'tok_ok' },
  });

  it('limits a signed-in shopper however many addresses they use', async () => {
    const limits = { RATE_LIMITS: 'on; checkout=2/1h' };
    const shopper = await signedInShopper();
    const start = () =>
      callWith(limits, '/api/checkout', req('POST', body(`cart_${'0'.repeat(32)}`), shopper.cookie, { 'idempotency-key': randomToken(8), 'cf-connecting-ip': ip() }));
    expect((await start()).status).toBe(202);
    expect((await start()).status).toBe(202);
    expect((await start()).status).toBe(429);
  });

  it('fails open when Redis is down: a counter outage does not stop sales', async () => {
    const res = await callWith(
      { RATE_LIMITS: 'on; checkout=1/1h', UPSTASH_REDIS_REST_URL: env.TEST_DEAD_UPSTASH_URL! },
      '/api/checkout',
      req('POST', body(`cart_${'1'.repeat(32)}`), undefined, { 'idempotency-key': randomToken(8), 'cf-connecting-ip': ip() }),
    );
    expect(res.status).toBe(202);
  });
});
