/**
 * The signed-in shopper's own account (shared/API.md, Accounts): `GET
 * /api/me`, `GET /api/me/orders`, and a password change that ends every
 * session. Everything here needs a session (401 otherwise) and only ever
 * reads rows of that session's user: there is no id in these paths to swap.
 */
import { createRoute, z } from '@hono/zod-openapi';
import { and, desc, eq, inArray, sql } from 'drizzle-orm';
import { orderLines, orders, users } from '../../db/schema';
import { clearSessionCookie } from '../middleware/session';
import { redisOutage, startSession, userView, AUTH_BODY_LIMIT_BYTES, NewPassword } from '../auth/routes';
import { revokeAllSessions } from '../auth/sessions';
import { DUMMY_HASH, hashPassword, verifyPassword } from '../auth/password';
import { accountCartId } from '../carts/store';
import { ApiError } from '../lib/errors';
import { rememberWriteOn } from '../lib/read-your-writes';
import { cursorKey, nextNewestFirstCursor, olderThan, readNewestFirstCursor } from '../lib/keyset';
import { MoneySchema } from '../lib/money';
import { createRouter, errorResponse } from '../lib/router';
import { signingSecrets } from '../lib/signed';
import { limitBody } from '../middleware/body-limit';
import { enforceRateLimit } from '../middleware/rate-limit';

const MeSchema = z
  .object({
    id: z.string(),
    email: z.string(),
    name: z.string(),
    createdAt: z.string(),
    cartId: z.string().nullable().openapi({ description: "The account's cart, if it has one" }),
  })
  .openapi('Me');

const OrderSummary = z
  .object({
    id: z.string(),
    number: z.string(),
    status: z.enum(['confirmed', 'cancelled', 'fulfilled']),
    region: z.string(),
    total: MoneySchema,
    items: z.number().int().openapi({ description: 'Units in the order' }),
    createdAt: z.string(),
  })
  .openapi('OrderSummary');

const PasswordBody = z
  .object({ currentPassword: z.string().min(1, 'Required.').max(256), newPassword: NewPassword })
  .strict()
  .openapi('PasswordChange');

const unauthorized = errorResponse('No session (`unauthorized`)');

export const accountRoutes = createRouter()
  .openapi(
    createRoute({
      method: 'get',
      path: '/me',
      tags: ['Accounts'],
      summary: 'The signed-in shopper',
      responses: {
        200: { description: 'The account', content: { 'application/json': { schema: MeSchema } } },
        401: unauthorized,
        503: errorResponse('Redis or Postgres is down (`unavailable`)'),
      },
    }),
    async (c) => {
      const session = await c.var.shopper.require();
      // Looked up on a replica, and on the primary when the replica has not
      // replayed a just-registered account yet.
      const { row: user } = await c.var.services.db.lookup(async (db) => (await db.select().from(users).where(eq(users.id, session.userId)).limit(1))[0]);
      // The account was deleted under a live session: that session is over.
      if (!user) throw new ApiError(401, 'unauthorized', 'Sign in first: this needs a session.');
      const cartId = await accountCartId(c.var.services.redis, user.id).catch(redisOutage);
      c.header('cache-control', 'private, no-store');
      return c.json({ ...userView(user), cartId }, 200);
    },
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/me/orders',
      tags: ['Accounts'],
      summary: "The signed-in shopper's orders, newest first",
      description:
        'Orders placed while signed in. Served by a read replica once it has the shopper\'s latest order (read-your-writes: the confirmed checkout\'s answer sets a short-lived `__Host-pasar_rw` cookie), so an order just placed is listed at once.',
      request: {
        query: z.object({
          cursor: z.string().max(512).optional().openapi({ description: 'Opaque; `nextCursor` of the previous page' }),
          limit: z.coerce.number().int().min(1).max(100).default(20),
          region: z.string().optional(),
        }),
      },
      responses: {
        200: {
          description: 'A page of orders',
          content: { 'application/json': { schema: z.object({ items: z.array(OrderSummary), nextCursor: z.string().nullable() }) } },
        },
        400: errorResponse('Invalid query or cursor'),
        401: unauthorized,
      },
    }),
    async (c) => {
      const session = await c.var.shopper.require();
      const { cursor, limit } = c.req.valid('query');
      // The scope binds a cursor to its account: one shopper's cursor is worthless to another.
      const scope = `me-orders:${session.userId}`;
      const after = await readNewestFirstCursor(cursor, scope, signingSecrets(c.env));
      const db = c.var.services.db.read;
      const rows = await db
        .select({ order: orders, key: cursorKey(orders.createdAt) })
        .from(orders)
        .where(and(eq(orders.userId, session.userId), olderThan(orders.createdAt, orders.id, after)))
        .orderBy(desc(orders.createdAt), desc(orders.id))
        .limit(limit + 1);
      const page = rows.slice(0, limit);
      const units = new Map<string, number>();
      if (page.length) {
        const counts = await db
          .select({ orderId: orderLines.orderId, units: sql<number>`sum(${orderLines.quantity})::int` })
          .from(orderLines)
          .where(inArray(orderLines.orderId, page.map((r) => r.order.id)))
          .groupBy(orderLines.orderId);
        for (const r of counts) units.set(r.orderId, Number(r.units));
      }
      const last = page.at(-1);
      const nextCursor = await nextNewestFirstCursor(rows.length, limit, last && { t: last.key, id: last.order.id }, scope, c.env.SIGNING_SECRET);
      c.header('cache-control', 'private, no-store');
      return c.json(
        {
          items: page.map(({ order: o }) => ({
            id: o.id,
            number: o.number,
            status: o.status,
            region: o.regionCode,
            total: { amount: o.totalAmount, currency: o.currency },
            items: units.get(o.id) ?? 0,
            createdAt: o.createdAt.toISOString(),
          })),
          nextCursor,
        },
        200,
      );
    },
  )
  .openapi(
    createRoute({
      method: 'post',
      path: '/me/password',
      tags: ['Accounts'],
      summary: 'Changes the password and signs out every session',
      description:
        'Needs the current password (counted against `login_account`). Every session of the account ends, this one included; the answer carries a fresh session cookie for this browser.',
      middleware: [limitBody(AUTH_BODY_LIMIT_BYTES)] as const,
      request: { body: { required: true, content: { 'application/json': { schema: PasswordBody } } } },
      responses: {
        200: { description: 'Changed', content: { 'application/json': { schema: z.object({ changed: z.literal(true), sessionsEnded: z.number().int() }) } } },
        400: errorResponse('Invalid body'),
        401: errorResponse('No session, or the current password is wrong (`unauthorized`)'),
        429: errorResponse('Too many attempts (`rate_limited`)'),
        503: errorResponse('Redis or Postgres is down (`unavailable`)'),
      },
    }),
    async (c) => {
      const session = await c.var.shopper.require();
      const { currentPassword, newPassword } = c.req.valid('json');
      const db = c.var.services.db.primary;
      const [user] = await db.select().from(users).where(eq(users.id, session.userId)).limit(1);
      if (user) await enforceRateLimit(c, 'login_account', user.email);
      if (!verifyPassword(currentPassword, user?.passwordHash ?? DUMMY_HASH) || !user) {
        throw new ApiError(401, 'unauthorized', 'The current password is not right.');
      }
      await db.update(users).set({ passwordHash: hashPassword(newPassword), updatedAt: new Date() }).where(eq(users.id, user.id));
      await rememberWriteOn(c, db);
      // The hash is changed first: if Redis fails now, old sessions live on
      // until it is back, but no one can sign in with the old password.
      const ended = await revokeAllSessions(c.var.services.redis, user.id).catch((err) => {
        clearSessionCookie(c);
        return redisOutage(err);
      });
      await startSession(c, user.id);
      c.header('cache-control', 'no-store');
      return c.json({ changed: true as const, sessionsEnded: ended }, 200);
    },
  );
