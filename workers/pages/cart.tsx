/**
 * The cart in the browser: `GET /cart`, `POST /cart/items` (add, from the
 * product page's form), `POST /cart/items/:variantId` (change a quantity; 0
 * removes), `POST /cart/code` (apply a promotion code; an empty code removes
 * it). Plain HTML forms, POST then 303 back to `/cart`; a refused change
 * (`quantity_limit`, `cart_full`, an item not for sale) is the cart page with
 * a message, never the API's JSON envelope.
 *
 * The cart id lives in the `__Host-` cart cookie (./cart-cookie.ts). The
 * rules are the API's (workers/carts/routes.ts): the same store scripts,
 * the same actor (the signed-in user, or '' for a guest), the same variant
 * check and pricing from the origin for the cart's own region.
 */
import { Hono, type Context } from 'hono';
import { REGIONS, type Region } from '../../db/regions';
import { loadVariantFacts, problemOf, type LineProblem, type PricedCart, type PricedItem } from '../carts/pricing';
import { CART_PROMOTIONS_MEMO_MS, quoteCart, type Quote } from '../carts/quote';
import {
  CartStoreUnavailableError,
  MAX_LINE_QUANTITY,
  MAX_LINES,
  accountCartId,
  addLine,
  createCart,
  isLineId,
  readCart,
  setCode,
  setLineQuantity,
  type CartChange,
  type StoredCart,
} from '../carts/store';
import { unavailable } from '../lib/errors';
import { formatMoney, money } from '../lib/money';
import { normalizeCode } from '../promotions/engine';
import { clientIp, rateLimit } from '../middleware/rate-limit';
import type { AppEnv } from '../types';
import { cartCookie, setCartCookie } from './cart-cookie';
import { EmptyState } from './components';
import { Layout } from './layout';
import { PRIVATE_CACHE_CONTROL, pageContext, sendPrivatePage, type PageContext } from './page';

/** A message shown above the cart (or the checkout form). */
export interface Notice {
  tone: 'error' | 'info';
  text: string;
}

/** The browser's cart, priced from the origin for the cart's region. */
export interface BrowserCart {
  cart: StoredCart;
  region: Region;
  priced: PricedCart;
  /** Promotions, shipping and the total, as checkout would charge them now. */
  quote: Quote;
}

/** The caller as the cart store sees it: the signed-in user's id, or '' for a guest. */
export async function actorOf(c: Context<AppEnv>): Promise<string> {
  return (await c.var.shopper.session())?.userId ?? '';
}

/** Awaits a cart store call; Redis being down is a 503 page (with `Retry-After`), not a 500. */
async function store<T>(c: Context<AppEnv>, work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (err) {
    if (!(err instanceof CartStoreUnavailableError)) throw err;
    console.warn(JSON.stringify({ level: 'warn', requestId: c.get('requestId'), path: c.req.path, dependency: 'Redis', error: err.message }));
    throw unavailable('Carts are temporarily unavailable. Try again shortly.');
  }
}

/**
 * The browser's cart: the one its cookie names, else (signed in) the
 * account's cart, which the cookie then points at. Null when there is none
 * (never made, expired, or another account's).
 */
export async function currentCart(c: Context<AppEnv>, actor: string): Promise<StoredCart | null> {
  const redis = c.var.services.redis;
  const cookie = cartCookie(c);
  const id = cookie ?? (actor ? await store(c, accountCartId(redis, actor)) : null);
  if (!id) return null;
  const cart = await store(c, readCart(redis, id, actor));
  if (cart && cart.id !== cookie) setCartCookie(c, cart.id);
  return cart;
}

/** The browser's cart with its lines priced (replica reads: this is for showing). */
export async function loadBrowserCart(c: Context<AppEnv>): Promise<BrowserCart | null> {
  const cart = await currentCart(c, await actorOf(c));
  if (!cart) return null;
  const region = REGIONS[cart.region];
  const quote = await quoteCart(c.var.services.db.read, region, cart.lines, cart.code ?? null, { memoMs: CART_PROMOTIONS_MEMO_MS });
  return { cart, region, priced: quote.priced, quote };
}

/** The promotions, shipping and total under a cart's subtotal. */
function Totals({ view }: { view: BrowserCart }) {
  const { region } = view;
  const e = view.quote.evaluation;
  const m = (amount: number) => formatMoney(money(amount, region), region);
  return (
    <dl class="totals">
      <div>
        <dt>Subtotal</dt>
        <dd>{m(e.subtotal)}</dd>
      </div>
      {e.applied.map((a) => (
        <div class="totals__discount">
          <dt>
            {a.title}
            {a.code ? ` (${a.code})` : ''}
          </dt>
          <dd>−{m(a.amount)}</dd>
        </div>
      ))}
      <div>
        <dt>Shipping</dt>
        <dd>{e.shipping === 0 ? 'Free' : m(e.shipping)}</dd>
      </div>
      <div class="totals__total">
        <dt>Total</dt>
        <dd>
          <strong>{m(e.total)}</strong>
        </dd>
      </div>
    </dl>
  );
}

/** The promotion code form: apply one, or see why the one applied does not count. */
function CodeForm({ view }: { view: BrowserCart }) {
  const status = view.quote.evaluation.code;
  return (
    <form class="promo-code" method="post" action="/cart/code">
      <label for="promo-code">Promotion code</label>
      <input id="promo-code" name="code" type="text" maxlength={40} autocomplete="off" value={status?.code ?? ''} />
      <button type="submit">{status ? 'Change' : 'Apply'}</button>
      {status ? (
        <button type="submit" name="code" value="" formnovalidate>
          Remove code
        </button>
      ) : null}
      {status && !status.applied ? <p class="cart-line__warning">{status.message}</p> : null}
    </form>
  );
}

/** A quantity field: a whole number in `min`-99, or null. An empty field is `fallback`. */
export function parseQuantity(value: unknown, min: number, fallback?: number): number | null {
  const text = typeof value === 'string' ? value.trim() : '';
  if (text === '' && fallback !== undefined) return fallback;
  if (!/^\d{1,3}$/.test(text)) return null;
  const n = Number(text);
  return n >= min && n <= MAX_LINE_QUANTITY ? n : null;
}

/** Why an item cannot be bought, in words. */
export function problemText(problem: LineProblem, region: Region): string {
  switch (problem) {
    case 'archived':
      return 'This item is no longer sold.';
    case 'not_sold_in_region':
      return `This item is not sold in ${region.name}.`;
    case 'unknown_variant':
      return 'This item no longer exists.';
  }
}

/** A refused change, in words. */
function refusedText(change: Exclude<CartChange, { ok: true }>): string {
  switch (change.reason) {
    case 'quantity_limit':
      return `You already have ${change.currentQuantity} of this item in your cart, and one item can be bought at most ${MAX_LINE_QUANTITY} at a time. Nothing was added.`;
    case 'cart_full':
      return `Your cart already holds ${MAX_LINES} different items, the most it can. Remove one to add another.`;
    case 'no_item':
      return 'That item is not in your cart any more.';
    case 'not_found':
      return 'Your cart has expired. Add the item again.';
  }
}

/** A 303 back to the cart (after a change), never stored. */
function backToCart(c: Context<AppEnv>) {
  c.header('Cache-Control', PRIVATE_CACHE_CONTROL);
  return c.redirect('/cart', 303);
}

/** One form field as a string ('' when absent or a file). */
export function field(form: Record<string, unknown>, name: string): string {
  const value = form[name];
  return typeof value === 'string' ? value : '';
}

/** A message box; errors are announced at once. */
export function NoticeBox({ notice }: { notice?: Notice }) {
  if (!notice) return null;
  return (
    <p class={`notice notice--${notice.tone}`} role={notice.tone === 'error' ? 'alert' : 'status'}>
      {notice.text}
    </p>
  );
}

/** A cart line's warnings: unavailable, or repriced since it was added. */
function LineWarnings({ item, region }: { item: PricedItem; region: Region }) {
  if (item.status === 'unavailable') {
    return <p class="cart-line__warning">{problemText(item.problem ?? 'unknown_variant', region)} Remove it to check out the rest.</p>;
  }
  if (item.previousUnitPrice) {
    const went = item.unitPrice.amount > item.previousUnitPrice.amount ? 'went up' : 'went down';
    return (
      <p class="cart-line__warning">
        The price {went} since you added this: it was {formatMoney(item.previousUnitPrice, region)}, it is now {formatMoney(item.unitPrice, region)}.
      </p>
    );
  }
  return null;
}

/** One line of the cart page, with its quantity and remove forms. */
function CartLineRow({ item, region, ctx }: { item: PricedItem; region: Region; ctx: PageContext }) {
  const qid = `qty-${item.id}`;
  return (
    <li class={`cart-line${item.status === 'unavailable' ? ' cart-line--unavailable' : ''}`}>
      <div class="cart-line__info">
        <h2 class="cart-line__title">{item.productSlug && item.status === 'ok' ? <a href={ctx.href(`/p/${item.productSlug}`)}>{item.title}</a> : item.title}</h2>
        <p class="cart-line__unit">
          <span class="visually-hidden">Unit price: </span>
          {formatMoney(item.unitPrice, region)} each
        </p>
        <LineWarnings item={item} region={region} />
      </div>
      <div class="cart-line__actions">
        <form class="cart-line__quantity" method="post" action={`/cart/items/${item.id}`}>
          <label for={qid}>Quantity</label>
          <input id={qid} type="number" name="quantity" value={String(item.quantity)} min={0} max={MAX_LINE_QUANTITY} step={1} inputmode="numeric" required />
          <button type="submit" class="button-secondary">
            Update
          </button>
        </form>
        <form method="post" action={`/cart/items/${item.id}`}>
          <input type="hidden" name="quantity" value="0" />
          <button type="submit" class="button-secondary cart-line__remove" aria-label={`Remove ${item.title}`}>
            Remove
          </button>
        </form>
      </div>
      <p class="cart-line__total">
        <span class="visually-hidden">Line total: </span>
        {item.status === 'ok' ? formatMoney(item.lineTotal, region) : 'Not available'}
      </p>
    </li>
  );
}

/** A compact read-only list of the lines (checkout summary). */
export function CartSummary({ view }: { view: BrowserCart }) {
  const { priced, region } = view;
  return (
    <section class="summary" aria-labelledby="summary-title">
      <h2 id="summary-title">Your order</h2>
      <ul class="summary__lines">
        {priced.items.map((item) => (
          <li>
            <span>
              {item.title} × {item.quantity}
            </span>
            <span>{item.status === 'ok' ? formatMoney(item.lineTotal, region) : 'Not available'}</span>
          </li>
        ))}
      </ul>
      <Totals view={view} />
    </section>
  );
}

/** `GET /cart`. */
export function CartPage({ ctx, view, notice }: { ctx: PageContext; view: BrowserCart | null; notice?: Notice }) {
  const items = view?.priced.items ?? [];
  const blocked = items.some((i) => i.status === 'unavailable');
  return (
    <Layout ctx={ctx} title="Your cart">
      <header class="page-header">
        <h1>Your cart</h1>
      </header>
      <NoticeBox notice={notice} />
      {!view || items.length === 0 ? (
        <EmptyState ctx={ctx} message="Your cart is empty." />
      ) : (
        <>
          {view.region.code !== ctx.region.code ? (
            <p class="note">
              This cart was started in {view.region.name}: it is priced in {view.region.currency} and ships there.
            </p>
          ) : null}
          <ul class="cart-lines" aria-label="Items in your cart">
            {items.map((item) => (
              <CartLineRow item={item} region={view.region} ctx={ctx} />
            ))}
          </ul>
          <div class="cart-footer">
            <Totals view={view} />
            <CodeForm view={view} />
            <p class="note">
              Prices {view.region.taxInclusive ? 'include tax' : 'exclude tax'}.
            </p>
            {blocked ? (
              <p class="cart-line__warning">Remove the items that are no longer available to check out.</p>
            ) : (
              <p>
                <a class="button" href="/checkout">
                  Go to checkout
                </a>
              </p>
            )}
            <p>
              <a href={ctx.href('/')}>Continue shopping</a>
            </p>
          </div>
        </>
      )}
    </Layout>
  );
}

/** Answers the cart page (with `notice`, at `status` for a refused change). */
async function renderCart(c: Context<AppEnv>, status: 200 | 400 | 404 | 422, notice?: Notice): Promise<Response> {
  const view = await loadBrowserCart(c);
  return sendPrivatePage(c, status, () => <CartPage ctx={pageContext(c)} view={view} notice={notice} />);
}

/** Cart pages, mounted at the root by ./routes.tsx (after the shopper middleware). */
export const cartPages = new Hono<AppEnv>();

/** Cart writes count against the same `cart_write` limit as the API's, per cart (per client before there is one). */
const limitCartWrites = rateLimit('cart_write', (c) => cartCookie(c) ?? `ip:${clientIp(c)}`);

cartPages.get('/cart', (c) => renderCart(c, 200));

cartPages.post('/cart/items', limitCartWrites, async (c) => {
  const form = await c.req.parseBody();
  const variantId = field(form, 'variant').trim();
  const quantity = parseQuantity(form.quantity, 1, 1);
  if (!variantId) return renderCart(c, 400, { tone: 'error', text: 'Choose an option before adding to your cart.' });
  if (quantity === null) return renderCart(c, 400, { tone: 'error', text: `The quantity must be a whole number from 1 to ${MAX_LINE_QUANTITY}. Nothing was added.` });
  const { redis, db } = c.var.services;
  const actor = await actorOf(c);
  let cart = await currentCart(c, actor);
  // A cart keeps the region it was started in; a new one is the request's.
  const region = REGIONS[cart?.region ?? c.var.region.code];
  // One origin query checks the variant (as the API does) in the cart's region.
  const facts = isLineId(variantId) ? await loadVariantFacts(db.read, region, [variantId]) : new Map();
  const problem = problemOf(facts.get(variantId));
  if (problem) return renderCart(c, 422, { tone: 'error', text: `${problemText(problem, region)} Nothing was added.` });
  const amount = facts.get(variantId)!.amount!;
  const fresh = async () => {
    const made = await store(c, createCart(redis, region.code, actor));
    setCartCookie(c, made.id);
    return made;
  };
  cart ??= await fresh();
  let result = await store(c, addLine(redis, cart.id, actor, variantId, quantity, amount));
  // Gone between the read and the add (expired, or bought elsewhere and deleted): start a new one.
  if (!result.ok && result.reason === 'not_found') result = await store(c, addLine(redis, (await fresh()).id, actor, variantId, quantity, amount));
  if (!result.ok) return renderCart(c, 422, { tone: 'error', text: refusedText(result) });
  return backToCart(c);
});

cartPages.post('/cart/items/:variantId', limitCartWrites, async (c) => {
  const variantId = c.req.param('variantId');
  const form = await c.req.parseBody();
  const quantity = parseQuantity(form.quantity, 0);
  if (quantity === null) return renderCart(c, 400, { tone: 'error', text: `The quantity must be a whole number from 0 to ${MAX_LINE_QUANTITY} (0 removes the item).` });
  const actor = await actorOf(c);
  const cart = await currentCart(c, actor);
  if (!cart || !isLineId(variantId)) return renderCart(c, 404, { tone: 'error', text: 'That item is not in your cart any more.' });
  const result = await store(c, setLineQuantity(c.var.services.redis, cart.id, actor, variantId, quantity));
  if (!result.ok) return renderCart(c, 404, { tone: 'error', text: refusedText(result) });
  return backToCart(c);
});

/** Applies the code typed (replacing any other); an empty field removes it. A code that does not apply is the cart with the reason. */
cartPages.post('/cart/code', rateLimit('promotion_code', (c) => clientIp(c)), limitCartWrites, async (c) => {
  const form = await c.req.parseBody();
  const typed = field(form, 'code');
  const code = normalizeCode(typed).slice(0, 40);
  const actor = await actorOf(c);
  const cart = await currentCart(c, actor);
  if (!cart) return renderCart(c, 404, { tone: 'error', text: 'Your cart has expired. Add the items again.' });
  const redis = c.var.services.redis;
  if (code === '') {
    await store(c, setCode(redis, cart.id, actor, ''));
    return backToCart(c);
  }
  const quote = await quoteCart(c.var.services.db.read, REGIONS[cart.region], cart.lines, code, { memoMs: CART_PROMOTIONS_MEMO_MS });
  const status = quote.evaluation.code!;
  if (!status.applied) return renderCart(c, 422, { tone: 'error', text: status.message });
  const result = await store(c, setCode(redis, cart.id, actor, code));
  if (!result.ok) return renderCart(c, 404, { tone: 'error', text: refusedText(result) });
  return backToCart(c);
});
