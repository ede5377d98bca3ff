/**
 * Region resolution. A request's region fixes its currency, prices, tax and
 * which inventory objects are asked, so it is decided once, up front, and
 * echoed back in `x-region`.
 */
import type { MiddlewareHandler } from 'hono';
import { getCookie } from 'hono/cookie';
import { REGIONS, REGION_CODES, isRegionCode, regionForCountry, type RegionCode } from '../../db/regions';
import { ApiError } from '../lib/errors';
import type { AppEnv } from '../types';

/** Options for {@link region}. */
export interface RegionOptions {
  /** Fallback when nothing else decides; defaults to `env.DEFAULT_REGION`. */
  defaultRegion?: RegionCode;
}

/**
 * Middleware: sets `c.var.region`. Precedence, per shared/API.md: the
 * `x-region` header, the `region` cookie, `?region=`; then the country of
 * the edge location (`request.cf.country`); then `DEFAULT_REGION`. An
 * explicit but unknown region is a 400 `invalid_region`, not a silent
 * fallback: a shopper must never be charged in a currency they did not pick.
 */
export function region(options: RegionOptions = {}): MiddlewareHandler<AppEnv> {
  return async function region(c, next) {
    const explicit = c.req.header('x-region') ?? getCookie(c, 'region') ?? c.req.query('region');
    let code: RegionCode | undefined;
    if (explicit !== undefined) {
      const normalised = explicit.trim().toLowerCase();
      if (!isRegionCode(normalised)) {
        throw new ApiError(400, 'invalid_region', `Unknown region "${explicit.slice(0, 32)}". Use one of: ${REGION_CODES.join(', ')}.`, {
          region: explicit.slice(0, 32),
          allowed: REGION_CODES,
        });
      }
      code = normalised;
    }
    code ??= regionForCountry((c.req.raw.cf as { country?: string } | undefined)?.country);
    code ??= options.defaultRegion ?? (isRegionCode(c.env.DEFAULT_REGION) ? c.env.DEFAULT_REGION : 'sg');
    c.set('region', REGIONS[code]);
    c.header('x-region', code);
    await next();
  };
}
