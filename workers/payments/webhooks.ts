/**
 * `POST /api/webhooks/payments/:provider`: signed events from the payment
 * provider. The signature (HMAC-SHA256 over "<t>.<raw body>", 5 minute
 * tolerance) is checked on the raw bytes before anything is parsed; a bad or
 * missing one is 400 `invalid_signature` and changes nothing. Each event is
 * recorded once per (provider, event id) in the same transaction as its
 * effect, so a replayed or duplicated delivery changes nothing twice. Effects
 * (simulator `payment.*`, Stripe `payment_intent.succeeded|canceled` and
 * `charge.refunded`) only move a payment forward (authorized -> captured -> refunded,
 * authorized -> voided), so events arriving out of order cannot undo one
 * another.
 */
import { createRoute, z } from '@hono/zod-openapi';
import { and, eq, inArray } from 'drizzle-orm';
import { payments, webhookEvents } from '../../db/schema';
import { ApiError, notFound } from '../lib/errors';
import { newId } from '../lib/ids';
import { createRouter, errorResponse } from '../lib/router';
import { toStorable } from '../lib/text';
import { verifySignature } from './signature';

type Move = { from: ('authorized' | 'captured')[]; to: 'captured' | 'voided' | 'refunded' };

/** Which payment statuses an event may move a payment from, and to, per provider and event type. */
const TRANSITIONS: Record<'sim' | 'stripe', Record<string, Move>> = {
  sim: {
    'payment.captured': { from: ['authorized'], to: 'captured' },
    'payment.voided': { from: ['authorized'], to: 'voided' },
    'payment.refunded': { from: ['authorized', 'captured'], to: 'refunded' },
  },
  stripe: {
    'payment_intent.succeeded': { from: ['authorized'], to: 'captured' },
    'payment_intent.canceled': { from: ['authorized'], to: 'voided' },
    'charge.refunded': { from: ['authorized', 'captured'], to: 'refunded' },
  },
};

/**
 * The provider's reference of the payment an event is about: the simulator's
 * authorisation id, or Stripe's PaymentIntent id (the object itself for
 * `payment_intent.*`, its `payment_intent` field for `charge.*`).
 */
function paymentRef(provider: 'sim' | 'stripe', data: Record<string, unknown> | undefined): string | undefined {
  if (provider === 'sim') return typeof data?.authorizationId === 'string' ? data.authorizationId : undefined;
  const object = data?.object as { object?: string; id?: unknown; payment_intent?: unknown } | undefined;
  if (object?.object === 'payment_intent' && typeof object.id === 'string') return object.id;
  return typeof object?.payment_intent === 'string' ? object.payment_intent : undefined;
}

const EventSchema = z.object({
  id: z.string().min(1).max(200),
  type: z.string().min(1).max(100),
  data: z.record(z.string(), z.unknown()).optional(),
});

export const webhookRoutes = createRouter().openapi(
  createRoute({
    method: 'post',
    path: '/webhooks/payments/{provider}',
    tags: ['Payments'],
    summary: 'Signed payment events (sim: x-pasar-signature; stripe: Stripe-Signature)',
    request: { params: z.object({ provider: z.string().max(20) }) },
    responses: {
      200: { description: 'Recorded (or already recorded)', content: { 'application/json': { schema: z.object({ received: z.boolean(), duplicate: z.boolean() }) } } },
      400: errorResponse('Missing or bad signature (`invalid_signature`), or not an event'),
      404: errorResponse('Unknown provider'),
    },
  }),
  async (c) => {
    const { provider } = c.req.valid('param');
    const secret = provider === 'sim' ? c.env.PAYMENT_WEBHOOK_SECRET : provider === 'stripe' ? c.env.STRIPE_WEBHOOK_SECRET : undefined;
    if (provider !== 'sim' && provider !== 'stripe') throw notFound(`No payment provider "${provider}".`);
    if (!secret) throw notFound(`The ${provider} provider is not configured here.`);
    const raw = await c.req.text();
    const header = provider === 'sim' ? c.req.header('x-pasar-signature') : c.req.header('stripe-signature');
    const verified = await verifySignature(secret, header, raw, Math.floor(Date.now() / 1000));
    if (!verified.ok) throw new ApiError(400, 'invalid_signature', `The webhook signature is not valid (${verified.reason}).`);
    let payload: Record<string, unknown>;
    let parsed: z.infer<typeof EventSchema>;
    try {
      // Signed by the provider, so kept even when it holds text Postgres cannot store (replaced, not refused).
      payload = toStorable(JSON.parse(raw) as Record<string, unknown>);
      parsed = EventSchema.parse(payload);
    } catch {
      throw new ApiError(400, 'invalid_request', 'The webhook body is not a payment event.');
    }
    const db = c.var.services.db.primary;
    const duplicate = await db.transaction(async (tx) => {
      const recorded = await tx
        .insert(webhookEvents)
        .values({ id: newId('whe'), provider, eventId: parsed.id, type: parsed.type, payload })
        .onConflictDoNothing()
        .returning({ id: webhookEvents.id });
      if (recorded.length === 0) return true;
      const move = TRANSITIONS[provider][parsed.type];
      const ref = paymentRef(provider, parsed.data);
      if (move && ref) {
        await tx
          .update(payments)
          .set({ status: move.to, updatedAt: new Date() })
          .where(and(eq(payments.provider, provider), eq(payments.providerRef, ref), inArray(payments.status, move.from)));
      }
      return false;
    });
    return c.json({ received: true, duplicate }, 200);
  },
);
