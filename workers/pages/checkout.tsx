/**
 * Checkout in the browser: `GET /checkout` (the form), `POST /checkout`
 * (starts the checkout exactly as `POST /api/checkout` does, through the
 * shared `startCheckout`, then 303 to its status), `GET /checkout/:id` (follows
 * the saga with a `Refresh` header, no script, until it is confirmed or
 * failed) and `GET /orders/:orderId` (the order confirmation, read through
 * the shared `readOrder`: its access token, or the buyer's session).
 *
 * Every form render carries a fresh Idempotency-Key in a hidden field, so a
 * double submit (or a reload of the POST) is the same checkout, not two.
 */
import { Hono, type Context } from 'hono';
import { REGIONS, REGION_CODES, isRegionCode, type Region } from '../../db/regions';
import type { CheckoutState } from '../../durable-objects/checkout';
import { CheckoutBody, checkoutState, startCheckout } from '../checkout/routes';
import { ApiError } from '../lib/errors';
import { randomToken } from '../lib/ids';
import { formatMoney, money, type Money } from '../lib/money';
import { readOrder, type OrderView } from '../orders/routes';
import type { AppEnv } from '../types';
import { CartSummary, NoticeBox, actorOf, currentCart, field, loadBrowserCart, type BrowserCart, type Notice } from './cart';
import { EmptyState, FormField } from './components';
import { Layout } from './layout';
import { PRIVATE_CACHE_CONTROL, pageContext, sendPrivatePage, type PageContext } from './page';
import { StatusPage } from './status';

/** The payment simulator's card tokens, with what each does. */
export const CARD_TOKENS = [
  { token: 'tok_ok', label: 'Test card: approved' },
  { token: 'tok_decline', label: 'Test card: declined by the bank' },
  { token: 'tok_slow', label: 'Test card: approved after a delay' },
  { token: 'tok_flaky', label: 'Test card: the first attempt fails, the retry is approved' },
] as const;

/** Seconds between reloads of the status page while the checkout runs. */
export const STATUS_REFRESH_SECONDS = 1;

/** What the shopper typed (kept on a re-render). */
export interface CheckoutFormValues {
  email: string;
  name: string;
  line1: string;
  line2: string;
  city: string;
  postalCode: string;
  country: string;
  token: string;
}

/** Form field name of each body path {@link CheckoutBody} may complain about. */
const FIELD_OF: Record<string, keyof CheckoutFormValues> = {
  email: 'email',
  'shippingAddress.name': 'name',
  'shippingAddress.line1': 'line1',
  'shippingAddress.line2': 'line2',
  'shippingAddress.city': 'city',
  'shippingAddress.postalCode': 'postalCode',
  'shippingAddress.country': 'country',
  'payment.token': 'token',
};

/** What to say for each invalid field. */
const FIELD_ERROR: Record<keyof CheckoutFormValues, string> = {
  email: 'Enter an email address, like name@example.com.',
  name: 'Enter the name of the person receiving the parcel.',
  line1: 'Enter the street address.',
  line2: 'Keep the second address line under 300 characters.',
  city: 'Enter the city.',
  postalCode: 'Enter the postal code (up to 20 characters).',
  country: 'Choose a country.',
  token: 'Choose a card.',
};

/** Why a checkout failed, in words, per `reason`. */
export function failureText(reason: string | undefined): string {
  switch (reason) {
    case 'out_of_stock':
      return 'Some of the items in your cart sold out before we could reserve them. Nothing was charged.';
    case 'payment_declined':
      return 'Your card was declined. Nothing was charged. Try another card.';
    case 'payment_failed':
      return 'We could not reach the payment provider to charge your card. Nothing was charged. Please try again.';
    case 'expired':
      return 'The checkout took too long and was cancelled. Nothing was charged. Please try again.';
    case 'empty_cart':
      return 'Your cart was empty when the checkout started.';
    case 'cart_not_found':
      return 'We could not find your cart. It may have expired.';
    case 'unavailable_items':
      return 'Some items in your cart are no longer sold. Remove them and try again.';
    case 'order_rejected':
      return 'We could not record your order. Nothing was charged. Please try again.';
    default:
      return 'The checkout did not go through. Nothing was charged.';
  }
}

/** The status page's heading and text while the checkout runs. */
const PROGRESS: Record<'pending' | 'reserved' | 'paid', string> = {
  pending: 'Checking your cart and reserving the items…',
  reserved: 'Items reserved. Charging your card…',
  paid: 'Payment received. Writing your order…',
};

/** Props of {@link CheckoutPage}. */
interface CheckoutPageProps {
  ctx: PageContext;
  view: BrowserCart | null;
  values: CheckoutFormValues;
  errors: Partial<Record<keyof CheckoutFormValues, string>>;
  idempotencyKey: string;
  notice?: Notice;
}

/** `GET /checkout`: the order summary and the shipping and payment form. */
export function CheckoutPage({ ctx, view, values, errors, idempotencyKey, notice }: CheckoutPageProps) {
  const items = view?.priced.items ?? [];
  const blocked = items.some((i) => i.status === 'unavailable');
  return (
    <Layout ctx={ctx} title="Checkout">
      <header class="page-header">
        <h1>Checkout</h1>
      </header>
      <NoticeBox notice={notice} />
      {!view || items.length === 0 ? (
        <EmptyState ctx={ctx} message="Your cart is empty: there is nothing to check out." />
      ) : (
      <div class="checkout">
        <CartSummary view={view} />
        {blocked ? (
          <p class="notice notice--error" role="alert">
            Some items in your cart are no longer available. <a href="/cart">Review your cart</a> to check out the rest.
          </p>
        ) : (
          <form class="checkout-form" method="post" action="/checkout">
            <input type="hidden" name="key" value={idempotencyKey} />
            <fieldset>
              <legend>Contact</legend>
              <FormField id="checkout-email" name="email" label="Email" type="email" value={values.email} error={errors.email} autocomplete="email" maxlength={254} required />
            </fieldset>
            <fieldset>
              <legend>Shipping address</legend>
              <FormField id="checkout-name" name="name" label="Full name" value={values.name} error={errors.name} autocomplete="shipping name" maxlength={200} required />
              <FormField id="checkout-line1" name="line1" label="Address" value={values.line1} error={errors.line1} autocomplete="shipping address-line1" maxlength={300} required />
              <FormField
                id="checkout-line2"
                name="line2"
                label="Apartment, unit (optional)"
                value={values.line2}
                error={errors.line2}
                autocomplete="shipping address-line2"
                maxlength={300}
              />
              <FormField id="checkout-city" name="city" label="City" value={values.city} error={errors.city} autocomplete="shipping address-level2" maxlength={100} required />
              <FormField id="checkout-postalCode" name="postalCode" label="Postal code" value={values.postalCode} error={errors.postalCode} autocomplete="shipping postal-code" maxlength={20} required />
              <div class={`field${errors.country ? ' field--invalid' : ''}`}>
                <label for="checkout-country">Country</label>
                <select id="checkout-country" name="country" autocomplete="shipping country" required>
                  {REGION_CODES.map((code) => (
                    <option value={REGIONS[code].countryCode} selected={values.country === REGIONS[code].countryCode}>
                      {REGIONS[code].name}
                    </option>
                  ))}
                </select>
                {errors.country ? <p class="field__error">{errors.country}</p> : null}
              </div>
            </fieldset>
            <fieldset>
              <legend>Payment</legend>
              <div class={`field${errors.token ? ' field--invalid' : ''}`}>
                <label for="checkout-token">Card</label>
                <select id="checkout-token" name="token" required aria-describedby="checkout-token-note">
                  {CARD_TOKENS.map((t) => (
                    <option value={t.token} selected={values.token === t.token}>
                      {t.label} ({t.token})
                    </option>
                  ))}
                </select>
                <p id="checkout-token-note" class="note">
                  This store takes payments through a payment simulator: pick how the test card should behave. tok_ok is approved, tok_decline is
                  declined, tok_slow is approved after a delay, tok_flaky fails once and is approved when retried.
                </p>
                {errors.token ? <p class="field__error">{errors.token}</p> : null}
              </div>
            </fieldset>
            <p class="checkout-form__total">
              Total <strong>{formatMoney(money(view.quote.evaluation.total, view.region), view.region)}</strong>
              {view.region.taxInclusive ? ' (tax included)' : ''}
            </p>
            <button type="submit">Place order</button>
          </form>
        )}
      </div>
      )}
    </Layout>
  );
}

/** Empty form values, the country preselected from `region`. */
function blankValues(region: Region): CheckoutFormValues {
  return { email: '', name: '', line1: '', line2: '', city: '', postalCode: '', country: region.countryCode, token: 'tok_ok' };
}

/** The status page of a running or failed checkout. */
function CheckoutStatusPage({ ctx, state }: { ctx: PageContext; state: CheckoutState }) {
  if (state.status === 'failed') {
    return (
      <Layout ctx={ctx} title="Checkout failed">
        <section class="checkout-status checkout-status--failed" aria-labelledby="checkout-status-title">
          <h1 id="checkout-status-title">Your order did not go through</h1>
          <p class="notice notice--error" role="alert">
            {failureText(state.reason)}
          </p>
          <p>Your cart is kept as it was.</p>
          <p>
            <a class="button" href="/cart">
              Back to your cart
            </a>
          </p>
        </section>
      </Layout>
    );
  }
  const text = state.status === 'confirmed' ? 'Your order is confirmed.' : PROGRESS[state.status];
  return (
    <Layout ctx={ctx} title="Placing your order">
      <section class="checkout-status" aria-labelledby="checkout-status-title">
        <h1 id="checkout-status-title">Placing your order</h1>
        <p class="checkout-status__step" role="status">
          {text}
        </p>
        <p class="note">This page updates by itself. Please do not pay again.</p>
        <p>
          <a href={`/checkout/${state.checkoutId}`}>Check now</a>
        </p>
      </section>
    </Layout>
  );
}

/** A money amount of an order, formatted for the order's region. */
function orderMoney(value: Money, region: Region | undefined): string {
  return region ? formatMoney(value, region) : formatMoney(value);
}

/** `GET /orders/:orderId`: the order confirmation. */
export function OrderPage({ ctx, order }: { ctx: PageContext; order: OrderView }) {
  const region = isRegionCode(order.region) ? REGIONS[order.region] : undefined;
  const address = order.shippingAddress;
  const country = REGION_CODES.map((c) => REGIONS[c]).find((r) => r.countryCode === address.country)?.name ?? address.country;
  const heading = order.status === 'cancelled' ? `Order ${order.number} was cancelled` : `Thank you! Order ${order.number}`;
  return (
    <Layout ctx={ctx} title={`Order ${order.number}`}>
      <header class="page-header">
        <h1>{heading}</h1>
        <p>
          {order.status === 'confirmed'
            ? `Your order is confirmed. It is on record for ${order.email}.`
            : order.status === 'fulfilled'
              ? 'Your order has been shipped.'
              : 'This order was cancelled.'}
        </p>
      </header>
      <div class="order">
        <section aria-labelledby="order-lines-title">
          <h2 id="order-lines-title">Items</h2>
          <table class="order__lines">
            <thead>
              <tr>
                <th scope="col">Item</th>
                <th scope="col">Quantity</th>
                <th scope="col">Unit price</th>
                <th scope="col">Total</th>
              </tr>
            </thead>
            <tbody>
              {order.lines.map((l) => (
                <tr>
                  <th scope="row">{l.title}</th>
                  <td>{l.quantity}</td>
                  <td>{orderMoney(l.unitPrice, region)}</td>
                  <td>{orderMoney(l.lineTotal, region)}</td>
                </tr>
              ))}
            </tbody>
            <tfoot>
              <tr>
                <th scope="row" colspan={3}>
                  Subtotal
                </th>
                <td>{orderMoney(order.subtotal, region)}</td>
              </tr>
              {order.discounts.map((d) => (
                <tr>
                  <th scope="row" colspan={3}>
                    {d.title}
                    {d.code ? ` (${d.code})` : ''}
                  </th>
                  <td>−{orderMoney(d.amount, region)}</td>
                </tr>
              ))}
              <tr>
                <th scope="row" colspan={3}>
                  Shipping
                </th>
                <td>{order.shipping.amount === 0 ? 'Free' : orderMoney(order.shipping, region)}</td>
              </tr>
              <tr>
                <th scope="row" colspan={3}>
                  Tax included
                </th>
                <td>{orderMoney(order.tax, region)}</td>
              </tr>
              <tr class="order__total">
                <th scope="row" colspan={3}>
                  Total
                </th>
                <td>{orderMoney(order.total, region)}</td>
              </tr>
            </tfoot>
          </table>
        </section>
        <section aria-labelledby="order-address-title">
          <h2 id="order-address-title">Shipping to</h2>
          <address class="order__address">
            {address.name}
            <br />
            {address.line1}
            {address.line2 ? (
              <>
                <br />
                {address.line2}
              </>
            ) : null}
            <br />
            {address.postalCode} {address.city}
            <br />
            {country}
          </address>
          <p class="note">Order number {order.number}. Keep this page's address to look at your order again.</p>
        </section>
      </div>
      <p>
        <a class="button-secondary" href={ctx.href('/')}>
          Continue shopping
        </a>
      </p>
    </Layout>
  );
}

/** A private 404 page (a checkout or an order that does not exist, or is not yours). */
function notYours(c: Context<AppEnv>, message: string) {
  return sendPrivatePage(c, 404, () => <StatusPage c={c} status={404} title="Page not found" message={message} />);
}

/** Renders the checkout form. */
async function renderCheckout(
  c: Context<AppEnv>,
  status: 200 | 400 | 409,
  options: { values?: CheckoutFormValues; errors?: CheckoutPageProps['errors']; key?: string; notice?: Notice } = {},
) {
  const view = await loadBrowserCart(c);
  const values = options.values ?? blankValues(view?.region ?? c.var.region);
  return sendPrivatePage(c, status, () => (
    <CheckoutPage ctx={pageContext(c)} view={view} values={values} errors={options.errors ?? {}} idempotencyKey={options.key ?? randomToken(16)} notice={options.notice} />
  ));
}

/** Checkout and order pages, mounted at the root by ./routes.tsx (after the shopper middleware). */
export const checkoutPages = new Hono<AppEnv>();

checkoutPages.get('/checkout', (c) => renderCheckout(c, 200));

checkoutPages.post('/checkout', async (c) => {
  const form = await c.req.parseBody();
  const values: CheckoutFormValues = {
    email: field(form, 'email').trim(),
    name: field(form, 'name'),
    line1: field(form, 'line1'),
    line2: field(form, 'line2'),
    city: field(form, 'city'),
    postalCode: field(form, 'postalCode'),
    country: field(form, 'country').trim().toUpperCase(),
    token: field(form, 'token'),
  };
  const key = field(form, 'key');
  if (!key || key.length > 255) {
    return renderCheckout(c, 400, { values, notice: { tone: 'error', text: 'This form is out of date. Check your details and place the order again.' } });
  }
  const cart = await currentCart(c, await actorOf(c));
  if (!cart || cart.lines.length === 0) return renderCheckout(c, 400, { values, key });
  const parsed = CheckoutBody.safeParse({
    cartId: cart.id,
    email: values.email,
    shippingAddress: {
      name: values.name,
      line1: values.line1,
      ...(values.line2.trim() ? { line2: values.line2 } : {}),
      city: values.city,
      postalCode: values.postalCode,
      country: values.country,
    },
    payment: { method: 'card', token: values.token },
  });
  if (!parsed.success) {
    const errors: CheckoutPageProps['errors'] = {};
    for (const issue of parsed.error.issues) {
      const name = FIELD_OF[issue.path.join('.')];
      if (name) errors[name] = FIELD_ERROR[name];
    }
    return renderCheckout(c, 400, { values, errors, key, notice: { tone: 'error', text: 'Please correct the marked fields.' } });
  }
  let state: CheckoutState;
  try {
    ({ state } = await startCheckout(c, key, parsed.data));
  } catch (err) {
    if (!(err instanceof ApiError) || err.code !== 'idempotency_conflict') throw err;
    // This form was already sent with other details (back button, edit, resend): a new key makes a new checkout.
    return renderCheckout(c, 409, {
      values,
      notice: { tone: 'error', text: 'This order form was already sent with other details. Check them and place the order again.' },
    });
  }
  c.header('Cache-Control', PRIVATE_CACHE_CONTROL);
  return c.redirect(`/checkout/${state.checkoutId}`, 303);
});

checkoutPages.get('/checkout/:checkoutId', async (c) => {
  const state = await checkoutState(c, c.req.param('checkoutId'));
  if (!state) return notYours(c, 'There is no such checkout.');
  if (state.status === 'confirmed' && state.orderId) {
    c.header('Cache-Control', PRIVATE_CACHE_CONTROL);
    const to = `/orders/${state.orderId}${state.orderToken ? `?token=${encodeURIComponent(state.orderToken)}` : ''}`;
    return c.redirect(to, 303);
  }
  // Still running: the browser asks again by itself (a header: no script, nothing inline).
  if (state.status !== 'failed') c.header('Refresh', String(STATUS_REFRESH_SECONDS));
  return sendPrivatePage(c, 200, () => <CheckoutStatusPage ctx={pageContext(c)} state={state} />);
});

checkoutPages.get('/orders/:orderId', async (c) => {
  const order = await readOrder(c, c.req.param('orderId'), c.req.query('token') || undefined);
  if (!order) return notYours(c, 'There is no such order, or this link is not valid.');
  return sendPrivatePage(c, 200, () => <OrderPage ctx={pageContext(c)} order={order} />);
});
