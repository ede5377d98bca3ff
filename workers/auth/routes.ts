/**
 * Shopper sign-up and sign-in (shared/API.md, Accounts): register, login,
 * logout. Accounts live in Postgres (`users`), sessions in Redis
 * (./sessions.ts), passwords as argon2id (./password.ts).
 *
 * Enumeration safety: register answers the same 201 whether or not the
 * email already has an account (and hashes the password either way), and a
 * failed login says the same thing, after the same argon2id work, for an
 * unknown email as for a wrong password.
 */
import { createRoute, z } from '@hono/zod-openapi';
import { eq } from 'drizzle-orm';
import type { Context } from 'hono';
import { users } from '../../db/schema';
import { CartStoreUnavailableError, claimCartOnLogin, type CartClaim } from '../carts/store';
import { ApiError, unavailable } from '../lib/errors';
import { newId } from '../lib/ids';
import { createRouter, errorResponse } from '../lib/router';
import { limitBody } from '../middleware/body-limit';
import { clientIp, enforceRateLimit, resetRateLimit } from '../middleware/rate-limit';
import { clearSessionCookie, setSessionCookie } from '../middleware/session';
import type { AppEnv } from '../types';
import { DUMMY_HASH, hashPassword, needsRehash, verifyPassword } from './password';
import { SessionStoreUnavailableError, createSession, revokeSession } from './sessions';

/** Auth bodies are a few fields; anything larger is not a sign-in. */
export const AUTH_BODY_LIMIT_BYTES = 4 * 1024;

/** Trimmed and lower-cased, as `users.email` stores it (a CHECK holds it there). */
export const Email = z
  .string()
  .max(320)
  .trim()
  .toLowerCase()
  .pipe(z.email('A valid email address.').max(254))
  .openapi({ example: 'siti@example.com' });

/**
 * OWASP ASVS: at least 8 characters, long passphrases allowed, no
 * composition rules. Only the upper bound is about us: argon2id reads the
 * whole input.
 */
export const NewPassword = z
  .string()
  .min(8, 'At least 8 characters.')
  .max(256, 'At most 256 characters.')
  .refine((p) => p.trim().length > 0, 'Not only spaces.')
  .openapi({ example: 'kopi-kaya-toast-2026' });

/** The name a shopper goes by. */
export const AccountName = z.string().trim().min(1, 'Required.').max(100, 'At most 100 characters.');

const RegisterBody = z
  .object({
    email: Email,
    password: NewPassword,
    name: AccountName,
  })
  .strict()
  .openapi('RegisterRequest');

const LoginBody = z
  .object({
    email: Email,
    password: z.string().min(1, 'Required.').max(256),
    cartId: z.string().max(100).optional().openapi({ description: 'The guest cart in use: it becomes (or is merged into) the account cart' }),
  })
  .strict()
  .openapi('LoginRequest');

const UserSchema = z.object({ id: z.string(), email: z.string(), name: z.string(), createdAt: z.string() }).openapi('User');

const LoginAnswer = z
  .object({
    user: UserSchema,
    cart: z.object({
      id: z.string().nullable().openapi({ description: 'The account cart after the login' }),
      outcome: z.enum(['adopted', 'merged', 'kept', 'none']),
      refused: z.enum(['cart_full', 'region_mismatch']).optional().openapi({ description: 'Why the guest cart was not merged: too many lines together, or another region' }),
    }),
  })
  .openapi('LoginAnswer');

const json = <T extends z.ZodType>(schema: T) => ({ content: { 'application/json': { schema } } });

/** The account as `/api/me` and login show it. */
export function userView(u: { id: string; email: string; name: string; createdAt: Date }) {
  return { id: u.id, email: u.email, name: u.name, createdAt: u.createdAt.toISOString() };
}

/** Turns a session or cart store failure into 503. */
export function redisOutage(err: unknown): never {
  if (err instanceof SessionStoreUnavailableError || err instanceof CartStoreUnavailableError) {
    throw unavailable('Sign-in is temporarily unavailable. Try again shortly.');
  }
  throw err;
}

/** Starts a fresh session (a new id every time: no fixation) and sets its cookie, ending the one the request came with. */
export async function startSession(c: Context<AppEnv>, userId: string): Promise<void> {
  const redis = c.var.services.redis;
  const previous = await c.var.shopper.session();
  const { id } = await createSession(redis, userId).catch(redisOutage);
  if (previous) await revokeSession(redis, previous).catch(redisOutage);
  setSessionCookie(c, id);
}

/** Ends the request's session on the server (if any) and clears its cookie; 503 when Redis is down. */
export async function signOut(c: Context<AppEnv>): Promise<void> {
  const session = await c.var.shopper.session();
  if (session) await revokeSession(c.var.services.redis, session).catch(redisOutage);
  clearSessionCookie(c);
}

/** What a sign-up answers, taken email or not. */
export const REGISTERED_MESSAGE = 'If this email was not registered yet, the account is ready: sign in to continue.';

const invalidCredentials = () => new ApiError(401, 'unauthorized', 'The email or password is not right.');

/**
 * Registers an account (shared by `POST /api/auth/register` and the sign-up
 * page). Rate limited per client IP; the same outcome, after the same
 * argon2id work, whether or not the email already has an account.
 */
export async function registerAccount(c: Context<AppEnv>, input: { email: string; password: string; name: string }): Promise<void> {
  const { email, password, name } = input;
  // Counted after validation: a typo in a form must not use up a shared address's sign-ups.
  await enforceRateLimit(c, 'register_ip', clientIp(c));
  // Hash first, either way: the answer for a taken email costs the same time.
  const passwordHash = hashPassword(password);
  const inserted = await c.var.services.db.primary
    .insert(users)
    .values({ id: newId('usr'), email, name, passwordHash })
    .onConflictDoNothing({ target: users.email })
    .returning({ id: users.id });
  if (inserted.length === 0) {
    // Deployed, this is where the owner of the address would be emailed ("someone tried to sign up with your address").
    console.log(JSON.stringify({ level: 'info', event: 'register.existing_email', requestId: c.get('requestId') }));
  }
}

/** What a successful {@link signIn} did. */
export interface SignInResult {
  user: typeof users.$inferSelect;
  cart: CartClaim;
}

/**
 * Signs in (shared by `POST /api/auth/login` and the sign-in page): rate
 * limits per client IP and per email, argon2id verification (against a
 * dummy hash for an unknown email), a rehash when the parameters are old,
 * the guest cart handed to the account, then a fresh session and its
 * cookie. 401 `unauthorized` (one message for both cases), 429, 503.
 */
export async function signIn(c: Context<AppEnv>, input: { email: string; password: string; cartId?: string }): Promise<SignInResult> {
  const { email, password, cartId } = input;
  await enforceRateLimit(c, 'login_ip', clientIp(c));
  await enforceRateLimit(c, 'login_account', email);
  const db = c.var.services.db.primary;
  const [user] = await db.select().from(users).where(eq(users.email, email)).limit(1);
  // Unknown email: the same argon2id work against a hash of no one's password.
  const ok = verifyPassword(password, user?.passwordHash ?? DUMMY_HASH);
  if (!user || !ok) throw invalidCredentials();
  if (needsRehash(user.passwordHash)) {
    await db.update(users).set({ passwordHash: hashPassword(password), updatedAt: new Date() }).where(eq(users.id, user.id));
  }
  // The cart first: if Redis fails there, no session has been handed out with the 503.
  const cart: CartClaim = await claimCartOnLogin(c.var.services.redis, user.id, cartId).catch(redisOutage);
  await startSession(c, user.id);
  // In: a few mistyped attempts before this one stop counting against the account.
  await resetRateLimit(c, 'login_account', email);
  return { user, cart };
}

export const authRoutes = createRouter()
  .openapi(
    createRoute({
      method: 'post',
      path: '/auth/register',
      tags: ['Accounts'],
      summary: 'Creates a shopper account',
      description:
        'Always 201 with the same answer for a well-formed request, whether or not the email already has an account, so the answer does not reveal which emails are registered. Sign in with `POST /api/auth/login` afterwards. Rate limited per client IP (`register_ip`).',
      middleware: [limitBody(AUTH_BODY_LIMIT_BYTES)] as const,
      request: { body: { required: true, ...json(RegisterBody) } },
      responses: {
        201: {
          description: 'Accepted',
          ...json(z.object({ email: z.string(), message: z.string() })),
        },
        400: errorResponse('Invalid body (`invalid_request`) or malformed JSON (`invalid_json`)'),
        413: errorResponse('Body over 4 KiB'),
        429: errorResponse('Too many sign-ups from this address (`rate_limited`)'),
        503: errorResponse('A dependency is down (`unavailable`)'),
      },
    }),
    async (c) => {
      const { email, password, name } = c.req.valid('json');
      await registerAccount(c, { email, password, name });
      c.header('cache-control', 'no-store');
      return c.json({ email, message: REGISTERED_MESSAGE }, 201);
    },
  )
  .openapi(
    createRoute({
      method: 'post',
      path: '/auth/login',
      tags: ['Accounts'],
      summary: 'Signs in: sets the session cookie and keeps the guest cart',
      description:
        'Sets `__Host-pasar_session` (HttpOnly, Secure, SameSite=Lax), a new session id at every login. With `cartId`, the guest cart becomes the account cart; an existing account cart of the same region is merged into it (quantities of the same variant add up, capped at 99); carts of different regions, or more than 100 lines together, are left as they were (`refused`). Rate limited per client IP (`login_ip`) and per email (`login_account`).',
      middleware: [limitBody(AUTH_BODY_LIMIT_BYTES)] as const,
      request: { body: { required: true, ...json(LoginBody) } },
      responses: {
        200: { description: 'Signed in', ...json(LoginAnswer) },
        400: errorResponse('Invalid body'),
        401: errorResponse('Wrong email or password (`unauthorized`), the same answer for both'),
        413: errorResponse('Body over 4 KiB'),
        429: errorResponse('Too many attempts from this address or for this account (`rate_limited`)'),
        503: errorResponse('Redis or Postgres is down (`unavailable`)'),
      },
    }),
    async (c) => {
      const { email, password, cartId } = c.req.valid('json');
      const { user, cart } = await signIn(c, { email, password, cartId });
      c.header('cache-control', 'no-store');
      return c.json({ user: userView(user), cart: { id: cart.cartId, outcome: cart.outcome, ...(cart.refused ? { refused: cart.refused } : {}) } }, 200);
    },
  )
  .openapi(
    createRoute({
      method: 'post',
      path: '/auth/logout',
      tags: ['Accounts'],
      summary: 'Signs out: ends the session on the server and clears the cookie',
      description: 'Idempotent: signing out without a session is also 200. The account cart stays with the account.',
      middleware: [limitBody(AUTH_BODY_LIMIT_BYTES)] as const,
      responses: {
        200: { description: 'Signed out', ...json(z.object({ signedOut: z.literal(true) })) },
        503: errorResponse('Redis is down (`unavailable`)'),
      },
    }),
    async (c) => {
      await signOut(c);
      c.header('cache-control', 'no-store');
      return c.json({ signedOut: true as const }, 200);
    },
  );
