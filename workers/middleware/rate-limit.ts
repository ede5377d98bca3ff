/**
 * Rate limits on Redis with @upstash/ratelimit (sliding windows; why a
 * library: its Lua scripts are the well-tested part, and its in-isolate cache
 * of identifiers already over their limit answers repeat offenders with no
 * Redis call at all).
 *
 * Each rule has a default, can be changed per environment through
 * `RATE_LIMITS` (`on`, `off`, or `on; login_ip=30/60s; checkout=20/1m`) and
 * decides on its own what happens when Redis cannot be asked:
 *
 * | rule | keyed by | default | Redis down |
 * |---|---|---|---|
 * | `login_ip` | client IP | 20 per 60 s | closed (503): sessions live in Redis, so a login could not succeed anyway, and guessing must not get a free pass |
 * | `login_account` | normalised email | 10 per 15 min | closed (503), as above; also guards the current password on a password change |
 * | `register_ip` | client IP | 5 per hour | closed (503): mass sign-ups are the abuse this stops, and no shopper loses a sale by waiting |
 * | `checkout` | signed-in user, else client IP | 20 per 60 s | open: a counter outage must not stop sales; checkouts are idempotent and stock-bound anyway. Carrier-grade NAT puts many shoppers behind one IP across APAC mobile networks: raise it for a flash sale |
 * | `cart_write` | cart id | 60 per 60 s | open: the cart itself is in Redis and answers its own 503 |
 * | `sale_ticket` | client IP | 10 per 60 s | closed (503): a flash sale's queue is what bots go for, and with Redis down carts cannot fill anyway. Asking again for the ticket a device already holds counts too, so a page must not hammer it (it follows the queue instead) |
 * | `promotion_code` | client IP | 10 per 60 s | closed (503): trying codes on a cart is how codes are guessed; with Redis down the cart cannot store one anyway |
 *
 * `RATE_LIMITS=off` is for load tests and acceptance runs; in the
 * `production` environment it is ignored (and logged), so a copied
 * development config can never switch limits off in front of real shoppers.
 */
import { Ratelimit, type Duration } from '@upstash/ratelimit';
import type { Context, MiddlewareHandler } from 'hono';
import { ApiError, unavailable } from '../lib/errors';
import { sha256Hex } from '../lib/hash';
import { withTimeout } from '../lib/timeout';
import type { AppEnv } from '../types';

/** The named limits. */
export type RateLimitRule = 'login_ip' | 'login_account' | 'register_ip' | 'checkout' | 'cart_write' | 'sale_ticket' | 'promotion_code';

interface RuleSpec {
  tokens: number;
  window: Duration;
  /** `open`: let the request through when Redis fails; `closed`: answer 503. */
  whenDown: 'open' | 'closed';
}

/** Defaults; `RATE_LIMITS` may override `tokens` and `window` per rule, never `whenDown`. */
export const RATE_LIMIT_DEFAULTS: Readonly<Record<RateLimitRule, RuleSpec>> = {
  login_ip: { tokens: 20, window: '60 s', whenDown: 'closed' },
  login_account: { tokens: 10, window: '15 m', whenDown: 'closed' },
  register_ip: { tokens: 5, window: '1 h', whenDown: 'closed' },
  checkout: { tokens: 20, window: '60 s', whenDown: 'open' },
  cart_write: { tokens: 60, window: '60 s', whenDown: 'open' },
  sale_ticket: { tokens: 10, window: '60 s', whenDown: 'closed' },
  promotion_code: { tokens: 10, window: '60 s', whenDown: 'closed' },
};

/** How long a limit check may take before Redis counts as down. */
const CHECK_TIMEOUT_MS = 1_500;

type Config = { enabled: false } | { enabled: true; rules: Record<RateLimitRule, RuleSpec> };

const configs = new Map<string, Config>();

/** Parses `RATE_LIMITS` (memoised per value). Unknown rules or bad figures fail loudly at the first request. */
export function rateLimitConfig(env: Pick<Env, 'RATE_LIMITS' | 'ENVIRONMENT'>): Config {
  const raw = (env.RATE_LIMITS ?? 'on').trim();
  const cacheKey = `${env.ENVIRONMENT}|${raw}`;
  const cached = configs.get(cacheKey);
  if (cached) return cached;
  const [head = 'on', ...overrides] = raw.split(';').map((s) => s.trim());
  let config: Config;
  if (head === 'off' && env.ENVIRONMENT !== 'production') {
    config = { enabled: false };
  } else {
    if (head === 'off') console.error(JSON.stringify({ level: 'error', message: 'RATE_LIMITS=off is ignored in production' }));
    else if (head !== 'on') throw new Error(`RATE_LIMITS must start with "on" or "off", not "${head}"`);
    const rules = { ...RATE_LIMIT_DEFAULTS };
    for (const o of overrides.filter(Boolean)) {
      const m = /^([a-z_]+)\s*=\s*(\d+)\s*\/\s*(\d+)\s*(ms|s|m|h|d)$/.exec(o);
      if (!m || !(m[1]! in rules)) throw new Error(`RATE_LIMITS: cannot read "${o}" (expected e.g. login_ip=20/60s)`);
      const rule = m[1] as RateLimitRule;
      rules[rule] = { ...rules[rule], tokens: Number(m[2]), window: `${Number(m[3])} ${m[4]}` as Duration };
    }
    config = { enabled: true, rules };
  }
  configs.set(cacheKey, config);
  return config;
}

/**
 * The in-isolate caches of identifiers over their limit outlive the request
 * (that is what lets them answer repeat offenders without Redis); the
 * limiter itself is made per request around that request's Redis client.
 * Keyed by rule and figures, so a changed config starts fresh.
 */
const blockedCaches = new Map<string, Map<string, number>>();

function limiterFor(c: Context<AppEnv>, rule: RateLimitRule, spec: RuleSpec): Ratelimit {
  const prefix = `rl:${rule}:${spec.tokens}/${spec.window.replace(' ', '')}`;
  let cache = blockedCaches.get(prefix);
  if (!cache) blockedCaches.set(prefix, (cache = new Map()));
  return new Ratelimit({
    redis: c.var.services.redis,
    limiter: Ratelimit.slidingWindow(spec.tokens, spec.window),
    prefix,
    ephemeralCache: cache,
    analytics: false,
    // Timeouts are ours (enforceRateLimit): the library's would always fail open.
    timeout: 0,
  });
}

/**
 * The client's address as Cloudflare saw it (never a client-sent
 * X-Forwarded-For), as rate limits count it: an IPv4 address whole, an IPv6
 * address by its /64 prefix, because one subscriber is routinely handed a
 * whole /64 and could otherwise rotate through 2^64 "addresses".
 */
export function clientIp(c: Context<AppEnv>): string {
  const ip = (c.req.header('cf-connecting-ip') ?? '').trim();
  if (!ip) return 'unknown';
  return ip.includes(':') ? ipv6Prefix64(ip) : ip;
}

/** The first four groups of an IPv6 address, expanded (`2001:db8::1` -> `2001:db8:0:0::/64`). */
export function ipv6Prefix64(ip: string): string {
  const [head = '', tail] = ip.toLowerCase().split('::');
  const left = head ? head.split(':') : [];
  const right = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const groups = tail === undefined ? left : [...left, ...Array(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right];
  return `${groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '')).join(':')}::/64`;
}

/** Forgets the requests counted for `identifier` (a successful login clears its account's failures). */
export async function resetRateLimit(c: Context<AppEnv>, rule: RateLimitRule, identifier: string): Promise<void> {
  const config = rateLimitConfig(c.env);
  if (!config.enabled) return;
  await limiterFor(c, rule, config.rules[rule])
    .resetUsedTokens(await sha256Hex(`${rule}:${identifier}`))
    .catch((err: unknown) => console.warn(JSON.stringify({ level: 'warn', requestId: c.get('requestId'), rateLimit: rule, reset: 'failed', error: String(err) })));
}

/**
 * Counts one request against `rule` for `identifier`; 429 `rate_limited`
 * with `Retry-After` when over. Identifiers are hashed, so emails and IPs
 * are not kept in Redis in the clear.
 */
export async function enforceRateLimit(c: Context<AppEnv>, rule: RateLimitRule, identifier: string): Promise<void> {
  const config = rateLimitConfig(c.env);
  if (!config.enabled) return;
  const spec = config.rules[rule];
  const limiter = limiterFor(c, rule, spec);
  let result: Awaited<ReturnType<Ratelimit['limit']>>;
  try {
    result = await withTimeout(limiter.limit(await sha256Hex(`${rule}:${identifier}`)), CHECK_TIMEOUT_MS, 'Redis');
  } catch (err) {
    console.warn(JSON.stringify({ level: 'warn', requestId: c.get('requestId'), rateLimit: rule, whenDown: spec.whenDown, error: String(err) }));
    if (spec.whenDown === 'open') return;
    throw unavailable('This action is temporarily unavailable. Try again shortly.');
  }
  if (result.success) return;
  const retryAfter = Math.max(1, Math.ceil((result.reset - Date.now()) / 1000));
  throw new ApiError(
    429,
    'rate_limited',
    `Too many attempts. Try again in ${retryAfter} second${retryAfter === 1 ? '' : 's'}.`,
    { rule, limit: result.limit, retryAfter },
    { 'Retry-After': String(retryAfter) },
  );
}

/** Middleware factory: {@link enforceRateLimit} with the identifier `key` derives from the request. */
export function rateLimit(rule: RateLimitRule, key: (c: Context<AppEnv>) => string | Promise<string>): MiddlewareHandler<AppEnv> {
  return async function rateLimited(c, next) {
    await enforceRateLimit(c, rule, await key(c));
    await next();
  };
}
