/**
 * The browser's cart: its id (a bearer token, `cart_` + 160 random bits) in
 * an HttpOnly, Secure, SameSite=Lax `__Host-` cookie, so page scripts and
 * other sites never see it. Shared by the cart, checkout and account pages
 * (a login hands the guest cart to the account and points the cookie at the
 * account's cart).
 */
import type { Context } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { CART_TTL_SECONDS, isCartId } from '../carts/store';
import type { AppEnv } from '../types';

/** Cookie name without the `__Host-` prefix Hono adds. */
export const CART_COOKIE = 'pasar_cart';

/** The cart id the browser holds, if it is shaped like one. */
export function cartCookie(c: Context<AppEnv>): string | undefined {
  const id = getCookie(c, CART_COOKIE, 'host');
  return id && isCartId(id) ? id : undefined;
}

/** Points the browser at cart `id` for as long as a cart lives. */
export function setCartCookie(c: Context<AppEnv>, id: string): void {
  setCookie(c, CART_COOKIE, id, { prefix: 'host', httpOnly: true, secure: true, sameSite: 'Lax', path: '/', maxAge: CART_TTL_SECONDS });
}

/** Forgets the cart in this browser (the cart itself stays in Redis). */
export function clearCartCookie(c: Context<AppEnv>): void {
  deleteCookie(c, CART_COOKIE, { prefix: 'host', httpOnly: true, secure: true, sameSite: 'Lax', path: '/' });
}
