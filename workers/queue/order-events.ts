/**
 * Consumer of the `ORDER_EVENTS` queue. Messages are order events written by
 * the checkout saga (`order.created`, ...). A message that is not an order
 * event can never succeed, so it is acknowledged and logged instead of being
 * retried into the dead-letter queue; handlers for each event type plug in
 * here as the features that need them land.
 */

/** The body every producer puts on `ORDER_EVENTS`. */
export interface OrderEvent {
  type: string;
  orderId: string;
  at: string;
  data?: Record<string, unknown>;
}

/** Narrows an unknown queue body to an {@link OrderEvent}. */
export function isOrderEvent(body: unknown): body is OrderEvent {
  if (typeof body !== 'object' || body === null) return false;
  const b = body as Record<string, unknown>;
  return typeof b.type === 'string' && /^order\.[a-z_]+$/.test(b.type) && typeof b.orderId === 'string' && typeof b.at === 'string';
}

/** `queue()` handler of the Worker. */
export async function handleOrderEvents(batch: MessageBatch<unknown>, _env: Env): Promise<void> {
  for (const message of batch.messages) {
    if (!isOrderEvent(message.body)) {
      console.warn(JSON.stringify({ level: 'warn', queue: batch.queue, messageId: message.id, msg: 'dropping malformed order event' }));
      message.ack();
      continue;
    }
    console.log(JSON.stringify({ level: 'info', queue: batch.queue, messageId: message.id, type: message.body.type, orderId: message.body.orderId }));
    message.ack();
  }
}
