/**
 * The Worker's entry point: HTTP, the order-events queue consumer, and the
 * Durable Object classes wrangler.toml binds.
 */
import { createApp } from './app';
import { handleOrderEvents } from './queue/order-events';

export { InventoryShard } from '../durable-objects/inventory';
export { Checkout } from '../durable-objects/checkout';
export { SaleQueue } from '../durable-objects/sale-queue';

const app = createApp();

export default {
  fetch: app.fetch,
  queue: handleOrderEvents,
} satisfies ExportedHandler<Env, unknown>;
