/**
 * Admin API for outbound webhooks (owner only: a subscription receives
 * order data, including buyers' emails, at a URL of the caller's choosing).
 *
 * - `POST /admin/api/webhooks` creates a subscription and answers its
 *   signing secret, the only time it is shown. The secret is stored (it
 *   must be, to sign), never answered again.
 * - `GET /admin/api/webhooks`, `GET/PATCH/DELETE /admin/api/webhooks/:id`
 *   (DELETE removes the subscription with its delivery log; PATCH
 *   `active: false` keeps the log and stops deliveries).
 * - `GET /admin/api/webhooks/:id/deliveries`: newest first, each with its
 *   attempts.
 * - `POST /admin/api/webhooks/deliveries/:deliveryId/replay`: sends the
 *   delivery again now, whatever its state, as a new series (attempt numbers
 *   continue; 24 h of retries from now), and answers the first attempt's
 *   outcome.
 */
import { createRoute, z, type RouteConfig } from '@hono/zod-openapi';
import { and, asc, desc, eq, inArray, lt } from 'drizzle-orm';
import type { MiddlewareHandler } from 'hono';
import type { Database } from '../../db/client';
import { webhookAttempts, webhookDeliveries, webhookDeliveryStatus, webhookEventTypes, webhookSubscriptions } from '../../db/schema';
import { ApiError, invalidRequest, notFound } from '../lib/errors';
import { newId, randomToken } from '../lib/ids';
import { createRouter, errorResponse } from '../lib/router';
import { adminAuth } from '../middleware/admin-auth';
import { limitBody } from '../middleware/body-limit';
import type { AppEnv } from '../types';
import { attemptDelivery } from './deliver';
import { enqueueDeliveries } from './events';

const security = [{ adminToken: [] }];
const ownerOnly: MiddlewareHandler<AppEnv>[] = [adminAuth({ roles: [] })];
const ownerWriter: MiddlewareHandler<AppEnv>[] = [adminAuth({ roles: [] }), limitBody(8 * 1024)];

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** Why `raw` cannot be a subscriber URL in `environment`, or undefined when it can. */
export function urlProblem(raw: string, environment: string): string | undefined {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'Must be an absolute URL.';
  }
  if (url.username || url.password) return 'Must not carry credentials.';
  if (url.hash) return 'Must not carry a fragment.';
  if (url.protocol === 'https:') {
    if (environment === 'production' && (LOOPBACK.has(url.hostname) || /^(10|127|0)\.|^192\.168\.|^169\.254\.|^172\.(1[6-9]|2\d|3[01])\./.test(url.hostname))) {
      return 'Must be a public address.';
    }
    return undefined;
  }
  if (url.protocol === 'http:' && environment !== 'production' && LOOPBACK.has(url.hostname)) return undefined;
  return environment === 'production' ? 'Must be an https URL.' : 'Must be an https URL (http only to 127.0.0.1 or localhost outside production).';
}

const EventTypesSchema = z
  .array(z.enum(webhookEventTypes))
  .min(1)
  .max(webhookEventTypes.length)
  .refine((a) => new Set(a).size === a.length, 'Must not repeat an event type.')
  .openapi({ description: 'Events to receive', example: ['order.created', 'order.paid'] });

const UrlSchema = z.string().trim().min(1).max(2048).openapi({
  description: 'Where events are POSTed. https only (http to 127.0.0.1 or localhost is allowed outside production).',
  example: 'https://erp.example.com/hooks/pasar',
});

const Description = z
  .string()
  .trim()
  .max(200)
  .regex(/^[^\u0000-\u001f\u007f-\u009f]*$/, 'Must not contain control characters.')
  .openapi({ description: 'A note for people, e.g. "warehouse"', example: 'warehouse' });

const CreateBody = z
  .object({ url: UrlSchema, eventTypes: EventTypesSchema, description: Description.optional(), active: z.boolean().optional() })
  .strict()
  .openapi('WebhookSubscriptionCreate');

const PatchBody = z
  .object({ url: UrlSchema.optional(), eventTypes: EventTypesSchema.optional(), description: Description.optional(), active: z.boolean().optional() })
  .strict()
  .refine((b) => Object.keys(b).length > 0, 'Send at least one field.')
  .openapi('WebhookSubscriptionPatch');

const SubscriptionSchema = z
  .object({
    id: z.string().openapi({ example: 'whs_5x2m…' }),
    url: z.string(),
    eventTypes: z.array(z.enum(webhookEventTypes)),
    description: z.string(),
    active: z.boolean(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi('WebhookSubscription');

const CreatedSchema = SubscriptionSchema.extend({
  secret: z.string().openapi({
    description: 'Signing secret of `x-pasar-signature`. Shown only in this answer: store it now (see clients/webhook-verify.ts).',
    example: 'whsec_0123456789abcdefghjkmnpqrstvwxyz0123456789abcd',
  }),
}).openapi('WebhookSubscriptionCreated');

const AttemptSchema = z
  .object({
    attempt: z.number().int(),
    at: z.string(),
    statusCode: z.number().int().nullable().openapi({ description: "The subscriber's HTTP status; null when no answer came (network error, timeout)" }),
    error: z.string().nullable(),
    durationMs: z.number().int(),
  })
  .openapi('WebhookAttempt');

const DeliverySchema = z
  .object({
    id: z.string().openapi({ example: 'whd_5x2m…' }),
    subscriptionId: z.string(),
    eventId: z.string(),
    eventType: z.enum(webhookEventTypes),
    status: z.enum(webhookDeliveryStatus).openapi({ description: '`pending` (being tried), `delivered` (a 2xx), `failed` (gave up after 24 h, or the subscription was switched off)' }),
    attempts: z.number().int(),
    nextAttemptAt: z.string().nullable().openapi({ description: 'When a pending delivery is tried next' }),
    retryUntil: z.string().nullable(),
    lastStatusCode: z.number().int().nullable(),
    lastError: z.string().nullable(),
    deliveredAt: z.string().nullable(),
    createdAt: z.string(),
    payload: z.record(z.string(), z.unknown()).openapi({ description: 'The body sent: `{ id, type, createdAt, data }`' }),
    attemptLog: z.array(AttemptSchema),
  })
  .openapi('WebhookDelivery');

const IdParam = z.object({ id: z.string().min(1).max(64).openapi({ example: 'whs_5x2m…' }) });
const DeliveryParam = z.object({ deliveryId: z.string().min(1).max(64).openapi({ example: 'whd_5x2m…' }) });
const DeliveriesQuery = z.object({
  status: z.enum(webhookDeliveryStatus).optional(),
  limit: z.coerce.number().int().min(1).max(100).default(50),
  before: z.string().datetime().optional().openapi({ description: 'Only deliveries created before this time (the `createdAt` of the last one of the previous page)' }),
});

type SubscriptionRow = typeof webhookSubscriptions.$inferSelect;
type DeliveryRow = typeof webhookDeliveries.$inferSelect;

function subscriptionView(row: SubscriptionRow): z.infer<typeof SubscriptionSchema> {
  return {
    id: row.id,
    url: row.url,
    eventTypes: row.eventTypes as z.infer<typeof SubscriptionSchema>['eventTypes'],
    description: row.description,
    active: row.active,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}

async function deliveryViews(db: Database, rows: DeliveryRow[]): Promise<z.infer<typeof DeliverySchema>[]> {
  const ids = rows.map((r) => r.id);
  const attempts = ids.length
    ? await db.select().from(webhookAttempts).where(inArray(webhookAttempts.deliveryId, ids)).orderBy(asc(webhookAttempts.attempt))
    : [];
  return rows.map((r) => ({
    id: r.id,
    subscriptionId: r.subscriptionId,
    eventId: r.eventId,
    eventType: r.eventType as z.infer<typeof DeliverySchema>['eventType'],
    status: r.status,
    attempts: r.attempts,
    nextAttemptAt: r.status === 'pending' ? r.nextAttemptAt.toISOString() : null,
    retryUntil: r.retryUntil?.toISOString() ?? null,
    lastStatusCode: r.lastStatusCode,
    lastError: r.lastError,
    deliveredAt: r.deliveredAt?.toISOString() ?? null,
    createdAt: r.createdAt.toISOString(),
    payload: r.payload,
    attemptLog: attempts
      .filter((a) => a.deliveryId === r.id)
      .map((a) => ({ attempt: a.attempt, at: a.at.toISOString(), statusCode: a.statusCode, error: a.error, durationMs: a.durationMs })),
  }));
}

/** 400 `invalid_request` naming `url`, like a schema failure. */
function checkUrl(url: string, env: Env): void {
  const problem = urlProblem(url, env.ENVIRONMENT);
  if (problem) throw invalidRequest(`Invalid request: url: ${problem}`, [{ in: 'body', field: 'url', message: problem }]);
}

/** A JSON answer of `schema` for `responses`. */
const answer = <T extends z.ZodType>(schema: T, description: string) => ({ description, content: { 'application/json': { schema } } }) as const;
/** A required strict JSON request body. */
const jsonBody = <T extends z.ZodType>(schema: T) => ({ required: true, content: { 'application/json': { schema } } }) as const;
/** The 404 of an unknown subscription id. */
const unknownId = { 404: errorResponse('Unknown id') };

/** An owner-only admin route: `createRoute` with the tag, security and middleware filled in. */
function adminRoute<M extends 'get' | 'post' | 'patch' | 'delete', P extends string, R extends Omit<RouteConfig, 'method' | 'path' | 'tags' | 'security' | 'middleware'>>(
  method: M,
  path: P,
  middleware: MiddlewareHandler<AppEnv>[],
  rest: R,
) {
  return createRoute({ method, path, tags: ['Admin'], security, middleware, ...rest });
}

const notes = {
  401: errorResponse('No or bad admin token'),
  403: errorResponse('Only an owner token may manage webhooks'),
};

export const adminWebhookRoutes = createRouter()
  .openapi(
    adminRoute('post', '/webhooks', ownerWriter, {
      summary: 'Subscribes a URL to webhook events (owner only); the signing secret is shown once',
      description:
        'Events: `order.created`, `order.paid`, `order.cancelled`, `order.fulfilled`, `inventory.low`, `product.updated`. Each is POSTed as JSON ' +
        '`{ id, type, createdAt, data }` with `x-pasar-event`, `x-pasar-delivery` and `x-pasar-signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">` ' +
        '(verify with clients/webhook-verify.ts); a non-2xx answer is retried with backoff for 24 h. Body strict, at most 8 KiB.',
      request: { body: jsonBody(CreateBody) },
      responses: {
        201: answer(CreatedSchema, 'Created; `secret` is shown only here'),
        400: errorResponse('Invalid body (`invalid_request`, `invalid_json`), e.g. a non-https URL or an unknown event type'),
        ...notes,
        413: errorResponse('Body over 8 KiB'),
      },
    }),
    async (c) => {
      const body = c.req.valid('json');
      checkUrl(body.url, c.env);
      const secret = `whsec_${randomToken(32)}`;
      const [row] = await c.var.services.db.primary
        .insert(webhookSubscriptions)
        .values({ id: newId('whs'), url: body.url, eventTypes: body.eventTypes, secret, description: body.description ?? '', active: body.active ?? true })
        .returning();
      c.header('cache-control', 'no-store');
      return c.json({ ...subscriptionView(row!), secret }, 201);
    },
  )
  .openapi(
    adminRoute('get', '/webhooks', ownerOnly, {
      summary: 'Lists webhook subscriptions, newest first (owner only; never the secrets)',
      responses: { 200: answer(z.object({ items: z.array(SubscriptionSchema) }), 'Every subscription'), ...notes },
    }),
    async (c) => {
      const rows = await c.var.services.db.primary.select().from(webhookSubscriptions).orderBy(desc(webhookSubscriptions.createdAt), desc(webhookSubscriptions.id));
      c.header('cache-control', 'private, no-store');
      return c.json({ items: rows.map(subscriptionView) }, 200);
    },
  )
  .openapi(
    adminRoute('get', '/webhooks/{id}', ownerOnly, {
      summary: 'One webhook subscription (owner only)',
      request: { params: IdParam },
      responses: { 200: answer(SubscriptionSchema, 'The subscription'), ...notes, ...unknownId },
    }),
    async (c) => {
      const [row] = await c.var.services.db.primary.select().from(webhookSubscriptions).where(eq(webhookSubscriptions.id, c.req.valid('param').id));
      if (!row) throw notFound('No such webhook subscription.');
      c.header('cache-control', 'private, no-store');
      return c.json(subscriptionView(row), 200);
    },
  )
  .openapi(
    adminRoute('patch', '/webhooks/{id}', ownerWriter, {
      summary: 'Changes a webhook subscription (owner only)',
      description: '`active: false` stops deliveries (pending ones end as `failed` at their next attempt) and keeps the log. Body strict; the secret cannot be changed here.',
      request: { params: IdParam, body: jsonBody(PatchBody) },
      responses: {
        200: answer(SubscriptionSchema, 'Updated'),
        400: errorResponse('Invalid body'),
        ...notes,
        ...unknownId,
      },
    }),
    async (c) => {
      const patch = c.req.valid('json');
      if (patch.url !== undefined) checkUrl(patch.url, c.env);
      const [row] = await c.var.services.db.primary
        .update(webhookSubscriptions)
        .set({ ...patch, updatedAt: new Date() })
        .where(eq(webhookSubscriptions.id, c.req.valid('param').id))
        .returning();
      if (!row) throw notFound('No such webhook subscription.');
      return c.json(subscriptionView(row), 200);
    },
  )
  .openapi(
    adminRoute('delete', '/webhooks/{id}', ownerOnly, {
      summary: 'Deletes a webhook subscription and its delivery log (owner only)',
      description: 'Nothing more is sent to it. To stop deliveries but keep the log, PATCH `active: false` instead.',
      request: { params: IdParam },
      responses: { 200: answer(SubscriptionSchema, 'The deleted subscription'), ...notes, ...unknownId },
    }),
    async (c) => {
      const [row] = await c.var.services.db.primary.delete(webhookSubscriptions).where(eq(webhookSubscriptions.id, c.req.valid('param').id)).returning();
      if (!row) throw notFound('No such webhook subscription.');
      return c.json(subscriptionView(row), 200);
    },
  )
  .openapi(
    adminRoute('get', '/webhooks/{id}/deliveries', ownerOnly, {
      summary: "A subscription's deliveries, newest first, each with its attempts (owner only)",
      request: { params: IdParam, query: DeliveriesQuery },
      responses: {
        200: answer(z.object({ items: z.array(DeliverySchema) }), 'Deliveries'),
        400: errorResponse('Invalid query'),
        ...notes,
        ...unknownId,
      },
    }),
    async (c) => {
      const db = c.var.services.db.primary;
      const { id } = c.req.valid('param');
      const q = c.req.valid('query');
      const [sub] = await db.select({ id: webhookSubscriptions.id }).from(webhookSubscriptions).where(eq(webhookSubscriptions.id, id));
      if (!sub) throw notFound('No such webhook subscription.');
      const rows = await db
        .select()
        .from(webhookDeliveries)
        .where(
          and(
            eq(webhookDeliveries.subscriptionId, id),
            q.status ? eq(webhookDeliveries.status, q.status) : undefined,
            q.before ? lt(webhookDeliveries.createdAt, new Date(q.before)) : undefined,
          ),
        )
        .orderBy(desc(webhookDeliveries.createdAt), desc(webhookDeliveries.id))
        .limit(q.limit);
      c.header('cache-control', 'private, no-store');
      return c.json({ items: await deliveryViews(db, rows) }, 200);
    },
  )
  .openapi(
    adminRoute('post', '/webhooks/deliveries/{deliveryId}/replay', ownerOnly, {
      summary: 'Sends a delivery again now, as a new series of attempts (owner only)',
      description:
        'Whatever its state (delivered, failed or pending), the delivery is sent again at once, with a fresh signature; the attempt is logged ' +
        '(numbers continue) and answered. If it fails, it is retried with backoff for 24 h from now. The subscription must be active (409 `inactive`).',
      request: { params: DeliveryParam },
      responses: {
        200: answer(DeliverySchema, 'The delivery after the attempt'),
        ...notes,
        404: errorResponse('Unknown delivery id'),
        409: errorResponse('`inactive`: the subscription is switched off'),
      },
    }),
    async (c) => {
      const db = c.var.services.db.primary;
      const { deliveryId } = c.req.valid('param');
      const [found] = await db
        .select({ active: webhookSubscriptions.active })
        .from(webhookDeliveries)
        .innerJoin(webhookSubscriptions, eq(webhookSubscriptions.id, webhookDeliveries.subscriptionId))
        .where(eq(webhookDeliveries.id, deliveryId));
      if (!found) throw notFound('No such webhook delivery.');
      if (!found.active) throw new ApiError(409, 'inactive', 'The subscription is switched off: PATCH it `active: true` first.');
      const now = new Date();
      // A new series: due now, 24 h of retries from this attempt. (Replaying
      // a pending delivery while a queued attempt is in flight can send it
      // twice; receivers dedupe on the event id, as for any webhook.)
      await db
        .update(webhookDeliveries)
        .set({ status: 'pending', deliveredAt: null, retryUntil: null, nextAttemptAt: now, updatedAt: now })
        .where(eq(webhookDeliveries.id, deliveryId));
      const outcome = await attemptDelivery(c.env, db, deliveryId, now);
      if (outcome.kind === 'retry') await enqueueDeliveries(c.env, [deliveryId], outcome.delaySeconds);
      const [row] = await db.select().from(webhookDeliveries).where(eq(webhookDeliveries.id, deliveryId));
      return c.json((await deliveryViews(db, [row!]))[0]!, 200);
    },
  );
