/**
 * The Worker's entry point: HTTP, the queue consumers (order events; outbound
 * webhook deliveries), and the Durable Object classes wrangler.toml binds.
 */
import { createApp } from './app';
import { handleOrderEvents } from './queue/order-events';
import { handleWebhookDeliveries } from './webhooks/deliver';

export { InventoryShard } from '../durable-objects/inventory';
export { Checkout } from '../durable-objects/checkout';
export { SaleQueue } from '../durable-objects/sale-queue';

const app = createApp();

export default {
  fetch: app.fetch,
  // One Worker consumes both queues; the queue's name (per environment:
  // pasar-webhooks-dev|staging|production) picks the handler.
  queue: (batch, env) => (batch.queue.startsWith('pasar-webhooks-') ? handleWebhookDeliveries(batch, env) : handleOrderEvents(batch, env)),
} satisfies ExportedHandler<Env, unknown>;
