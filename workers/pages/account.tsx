/**
 * The shopper's account in the browser: sign-up, sign-in, sign-out and the
 * account page with its order history. Plain HTML forms (POST, then a 303
 * redirect), so everything works without JavaScript; nothing inline, for
 * the pages' strict CSP.
 *
 * Sign-up and sign-in are the API's own (../auth/routes.ts, `registerAccount`
 * and `signIn`): the same rate limits, the same argon2id work, the same
 * enumeration-safe answers, the same fresh session and the same guest-cart
 * claim, here with the browser's cart cookie as the guest cart.
 *
 * Mounted at the root by ./routes.tsx, behind the shopper-page middleware
 * (region, services, session, same-origin check on POSTs). Every answer
 * here is personal: `Cache-Control: private, no-store`.
 */
import { and, desc, eq } from 'drizzle-orm';
import { Hono, type Context, type MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { HtmlEscapedString } from 'hono/utils/html';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { REGIONS, isRegionCode } from '../../db/regions';
import { orders, users } from '../../db/schema';
import { AUTH_BODY_LIMIT_BYTES, AccountName, Email, NewPassword, REGISTERED_MESSAGE, registerAccount, signIn, signOut } from '../auth/routes';
import { ApiError } from '../lib/errors';
import { cursorKey, nextNewestFirstCursor, olderThan, readNewestFirstCursor } from '../lib/keyset';
import { formatMoney } from '../lib/money';
import { clearSessionCookie } from '../middleware/session';
import type { AppEnv } from '../types';
import { cartCookie, clearCartCookie, setCartCookie } from './cart-cookie';
import { FormField, Pagination } from './components';
import { Layout } from './layout';
import { PAGE_CSP, pageContext, safeNext, softRegion, type PageContext } from './page';
import { renderStatusPage } from './status';

/** Every account answer, pages and redirects alike. */
export const ACCOUNT_CACHE_CONTROL = 'private, no-store';
/** Orders per page of the order history. */
export const ORDERS_PAGE_LIMIT = 20;
/** Where a sign-in goes when it was not sent from somewhere. */
const DEFAULT_AFTER_LOGIN = '/account';

/** The account pages, mounted at the root. */
export const accountPages = new Hono<AppEnv>();

const privatePages: MiddlewareHandler<AppEnv> = async function privatePages(c, next) {
  await next();
  c.header('Cache-Control', ACCOUNT_CACHE_CONTROL);
};
// Exact paths, never `*`: this app is mounted at the root, beside the catalog pages.
accountPages.use('/account', privatePages);
accountPages.use('/account/*', privatePages);

/** Forms are a few fields; anything larger is not a sign-in (an HTML 413, not the API's envelope). */
const limitForm = bodyLimit({
  maxSize: AUTH_BODY_LIMIT_BYTES,
  onError: (c) => renderStatusPage(c as Context<AppEnv>, 413, 'That form was too large', 'Please go back and try again with shorter answers.'),
});

// --- Helpers --------------------------------------------------------------

type Html = HtmlEscapedString | Promise<HtmlEscapedString>;

/** Sends an account page: the page headers (CSP, Vary, language), private and never stored. */
function sendAccountPage(c: Context<AppEnv>, status: ContentfulStatusCode, render: () => Html): Response | Promise<Response> {
  c.header('Content-Security-Policy', PAGE_CSP);
  c.header('Vary', 'x-region, cookie');
  c.header('Content-Language', softRegion(c).locale);
  c.header('Cache-Control', ACCOUNT_CACHE_CONTROL);
  return c.html(render(), status);
}

/** The text fields of a submitted form (files and repeated names ignored). */
async function formFields(c: Context<AppEnv>): Promise<Record<string, string>> {
  const body = await c.req.parseBody().catch(() => ({}) as Record<string, unknown>);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(body)) if (typeof v === 'string') out[k] = v;
  return out;
}

/** Field name -> the message shown next to it. */
type FieldErrors = Partial<Record<string, string>>;

/** The "too many attempts" wording of a 429, with its Retry-After copied onto the page. */
function rateLimited(c: Context<AppEnv>, err: ApiError): string {
  for (const [name, value] of Object.entries(err.headers)) c.header(name, value);
  const seconds = Number((err.details as { retryAfter?: number } | undefined)?.retryAfter ?? err.headers['Retry-After'] ?? 60);
  return `Too many attempts. Try again in ${seconds} second${seconds === 1 ? '' : 's'}.`;
}

/** Where to go after signing in: a same-origin path from `next`, else the account page. */
function afterLogin(next: string | undefined): string {
  return next ? safeNext(next) : DEFAULT_AFTER_LOGIN;
}

/** `/account/login`, carrying `next` when there is one. */
function loginPath(next?: string): string {
  return next ? `/account/login?${new URLSearchParams({ next })}` : '/account/login';
}

// --- Components -----------------------------------------------------------

/** A message above a form: an error (announced at once) or a notice. */
function FormMessage({ tone, text }: { tone: 'error' | 'notice'; text?: string }) {
  if (!text) return null;
  return tone === 'error' ? (
    <p class="form-message form-message--error" role="alert">
      {text}
    </p>
  ) : (
    <p class="form-message form-message--notice" role="status">
      {text}
    </p>
  );
}

/** The rules of a new password, as shown under its field. */
export const PASSWORD_RULES = 'At least 8 characters (up to 256), not only spaces. A long passphrase is easiest to remember.';

/** Props of {@link RegisterPage}. */
export interface RegisterPageProps {
  ctx: PageContext;
  values?: { name?: string; email?: string };
  errors?: FieldErrors;
  message?: string;
}

/** `GET /account/register`: the sign-up form. */
export function RegisterPage({ ctx, values = {}, errors = {}, message }: RegisterPageProps) {
  return (
    <Layout ctx={ctx} title="Create an account">
      <section class="auth" aria-labelledby="auth-title">
        <h1 id="auth-title">Create an account</h1>
        <FormMessage tone="error" text={message} />
        <form class="auth__form" action="/account/register" method="post" novalidate>
          <FormField id="register-name" name="name" label="Name" type="text" value={values.name} error={errors.name} autocomplete="name" maxlength={100} required autofocus={!!errors.name} />
          <FormField id="register-email" name="email" label="Email" type="email" value={values.email} error={errors.email} autocomplete="email" maxlength={254} required />
          <FormField
            id="register-password"
            name="password"
            label="Password"
            type="password"
            error={errors.password}
            hint={PASSWORD_RULES}
            autocomplete="new-password"
            minlength={8}
            maxlength={256}
            required
          />
          <button type="submit" class="button">
            Create account
          </button>
        </form>
        <p class="auth__switch">
          Already have an account? <a href="/account/login">Sign in</a>
        </p>
      </section>
    </Layout>
  );
}

/** Props of {@link LoginPage}. */
export interface LoginPageProps {
  ctx: PageContext;
  email?: string;
  next?: string;
  errors?: FieldErrors;
  message?: string;
  notice?: string;
}

/** `GET /account/login`: the sign-in form. */
export function LoginPage({ ctx, email, next, errors = {}, message, notice }: LoginPageProps) {
  return (
    <Layout ctx={ctx} title="Sign in">
      <section class="auth" aria-labelledby="auth-title">
        <h1 id="auth-title">Sign in</h1>
        <FormMessage tone="notice" text={notice} />
        <FormMessage tone="error" text={message} />
        <form class="auth__form" action="/account/login" method="post" novalidate>
          {next ? <input type="hidden" name="next" value={next} /> : null}
          <FormField id="login-email" name="email" label="Email" type="email" value={email} error={errors.email} autocomplete="username" maxlength={254} required />
          <FormField id="login-password" name="password" label="Password" type="password" error={errors.password} autocomplete="current-password" maxlength={256} required />
          <button type="submit" class="button">
            Sign in
          </button>
        </form>
        <p class="auth__switch">
          New here? <a href="/account/register">Create an account</a>
        </p>
      </section>
    </Layout>
  );
}

/** One row of the order history. */
export interface OrderRow {
  id: string;
  number: string;
  status: 'confirmed' | 'cancelled' | 'fulfilled';
  regionCode: string;
  currency: string;
  totalAmount: number;
  createdAt: Date;
}

const STATUS_LABEL: Record<OrderRow['status'], string> = { confirmed: 'Confirmed', cancelled: 'Cancelled', fulfilled: 'Shipped' };

/** An order's total in its own currency, written the way its region writes it. */
function orderTotal(o: OrderRow): string {
  const region = isRegionCode(o.regionCode) ? REGIONS[o.regionCode] : undefined;
  return formatMoney({ amount: o.totalAmount, currency: o.currency }, region && region.currency === o.currency ? region : undefined);
}

/** An order's date in the shopper's region. */
function orderDate(o: OrderRow, ctx: PageContext): string {
  return new Intl.DateTimeFormat(ctx.region.locale, { dateStyle: 'medium', timeZone: ctx.region.timeZone }).format(o.createdAt);
}

/** Props of {@link AccountPage}. */
export interface AccountPageProps {
  ctx: PageContext;
  user: { name: string; email: string };
  orders: OrderRow[];
  nextCursor: string | null;
  isFirstPage: boolean;
}

/** `GET /account`: who is signed in, their orders, and the sign-out button. */
export function AccountPage({ ctx, user, orders: rows, nextCursor, isFirstPage }: AccountPageProps) {
  return (
    <Layout ctx={ctx} title="Your account">
      <header class="page-header account__header">
        <h1>Your account</h1>
        <dl class="account__details">
          <dt>Name</dt>
          <dd>{user.name}</dd>
          <dt>Email</dt>
          <dd>{user.email}</dd>
        </dl>
        <form action="/account/logout" method="post">
          <button type="submit" class="button-secondary">
            Sign out
          </button>
        </form>
      </header>
      <section aria-labelledby="orders-title">
        <h2 id="orders-title">Your orders</h2>
        {rows.length ? (
          <table class="orders">
            <thead>
              <tr>
                <th scope="col">Order</th>
                <th scope="col">Date</th>
                <th scope="col">Status</th>
                <th scope="col" class="orders__total">
                  Total
                </th>
              </tr>
            </thead>
            <tbody>
              {rows.map((o) => (
                <tr>
                  <th scope="row">
                    <a href={`/orders/${o.id}`}>{o.number}</a>
                  </th>
                  <td>
                    <time datetime={o.createdAt.toISOString()}>{orderDate(o, ctx)}</time>
                  </td>
                  <td>
                    <span class={`order-status order-status--${o.status}`}>{STATUS_LABEL[o.status]}</span>
                  </td>
                  <td class="orders__total">{orderTotal(o)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        ) : (
          <p class="empty">{isFirstPage ? 'No orders yet. Orders you place while signed in are listed here.' : 'No older orders.'}</p>
        )}
        <Pagination first="/account" next={nextCursor ? `/account?${new URLSearchParams({ cursor: nextCursor })}` : null} isFirstPage={isFirstPage} />
      </section>
    </Layout>
  );
}

// --- Routes ---------------------------------------------------------------

/** The API's own field rules, so the form and `POST /api/auth/register` never disagree. */
const REGISTER_FIELDS = { name: AccountName, email: Email, password: NewPassword } as const;

accountPages.get('/account/register', (c) => sendAccountPage(c, 200, () => <RegisterPage ctx={pageContext(c)} />));

accountPages.post('/account/register', limitForm, async (c) => {
  const form = await formFields(c);
  const values = { name: form.name ?? '', email: form.email ?? '' };
  const errors: FieldErrors = {};
  const parsed: Record<string, string> = {};
  for (const [field, schema] of Object.entries(REGISTER_FIELDS)) {
    const r = schema.safeParse(form[field] ?? '');
    if (r.success) parsed[field] = r.data;
    else errors[field] = r.error.issues[0]?.message ?? 'Not valid.';
  }
  if (Object.keys(errors).length) {
    return sendAccountPage(c, 400, () => (
      <RegisterPage ctx={pageContext(c)} values={values} errors={errors} message="Please correct the fields marked below." />
    ));
  }
  try {
    await registerAccount(c, { email: parsed.email!, password: parsed.password!, name: parsed.name! });
  } catch (err) {
    if (err instanceof ApiError && err.status === 429) {
      const message = rateLimited(c, err);
      return sendAccountPage(c, 429, () => <RegisterPage ctx={pageContext(c)} values={values} message={message} />);
    }
    throw err;
  }
  // The same answer for a taken email: the sign-in page with the API's message.
  return c.redirect('/account/login?registered=1', 303);
});

accountPages.get('/account/login', async (c) => {
  const next = c.req.query('next') || undefined;
  // Already signed in: nothing to do here.
  if (c.var.shopper.hasCookie && (await c.var.shopper.session())) return c.redirect(afterLogin(next), 303);
  const notice = c.req.query('registered') ? REGISTERED_MESSAGE : undefined;
  return sendAccountPage(c, 200, () => <LoginPage ctx={pageContext(c)} next={next} notice={notice} />);
});

const INVALID_CREDENTIALS = 'The email or password is not right.';

accountPages.post('/account/login', limitForm, async (c) => {
  const form = await formFields(c);
  const next = form.next || undefined;
  const email = form.email ?? '';
  const password = form.password ?? '';
  const errors: FieldErrors = {};
  const parsedEmail = Email.safeParse(email);
  if (!parsedEmail.success) errors.email = email.trim() ? parsedEmail.error.issues[0]?.message : 'Required.';
  if (!password) errors.password = 'Required.';
  else if (password.length > 256) errors.password = 'At most 256 characters.';
  const again = (status: ContentfulStatusCode, message: string, fields: FieldErrors = {}) =>
    sendAccountPage(c, status, () => <LoginPage ctx={pageContext(c)} email={email.trim()} next={next} errors={fields} message={message} />);
  if (!parsedEmail.success || errors.password) return again(400, 'Enter your email and password.', errors);

  let result: Awaited<ReturnType<typeof signIn>>;
  try {
    result = await signIn(c, { email: parsedEmail.data, password, cartId: cartCookie(c) });
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return again(401, INVALID_CREDENTIALS);
    if (err instanceof ApiError && err.status === 429) return again(429, rateLimited(c, err));
    throw err;
  }
  // The browser now shops with the account's cart (the guest cart, adopted or merged into).
  if (result.cart.cartId) setCartCookie(c, result.cart.cartId);
  return c.redirect(afterLogin(next), 303);
});

accountPages.post('/account/logout', limitForm, async (c) => {
  await signOut(c);
  // The cart belongs to the account now: this browser no longer holds it.
  clearCartCookie(c);
  return c.redirect('/', 303);
});

accountPages.get('/account', async (c) => {
  const session = await c.var.shopper.session();
  if (!session) return c.redirect(loginPath('/account'), 303);
  const db = c.var.services.db.primary;
  const [user] = await db.select({ name: users.name, email: users.email }).from(users).where(eq(users.id, session.userId)).limit(1);
  if (!user) {
    // The account was deleted under a live session: that session is over.
    clearSessionCookie(c);
    return c.redirect(loginPath('/account'), 303);
  }
  const cursor = c.req.query('cursor') || undefined;
  // The same scope as `GET /api/me/orders`: a cursor is bound to its account.
  const scope = `me-orders:${session.userId}`;
  const after = await readNewestFirstCursor(cursor, scope, c.env.SIGNING_SECRET);
  const rows = await db
    .select({
      id: orders.id,
      number: orders.number,
      status: orders.status,
      regionCode: orders.regionCode,
      currency: orders.currency,
      totalAmount: orders.totalAmount,
      createdAt: orders.createdAt,
      key: cursorKey(orders.createdAt),
    })
    .from(orders)
    .where(and(eq(orders.userId, session.userId), olderThan(orders.createdAt, orders.id, after)))
    .orderBy(desc(orders.createdAt), desc(orders.id))
    .limit(ORDERS_PAGE_LIMIT + 1);
  const page = rows.slice(0, ORDERS_PAGE_LIMIT);
  const last = page.at(-1);
  const nextCursor = await nextNewestFirstCursor(rows.length, ORDERS_PAGE_LIMIT, last && { t: last.key, id: last.id }, scope, c.env.SIGNING_SECRET);
  return sendAccountPage(c, 200, () => <AccountPage ctx={pageContext(c)} user={user} orders={page} nextCursor={nextCursor} isFirstPage={!cursor} />);
});
