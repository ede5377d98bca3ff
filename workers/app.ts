/**
 * The Worker's HTTP application: shared middleware, then one sub-app per
 * resource mounted with `app.route()`, then the OpenAPI document and docs UI.
 */
import { OpenAPIHono } from '@hono/zod-openapi';
import { swaggerUI } from '@hono/swagger-ui';
import { methodNotAllowed } from 'hono/method-not-allowed';
import { requestId } from 'hono/request-id';
import { secureHeaders } from 'hono/secure-headers';
import { accountRoutes } from './account/routes';
import { adminInventoryRoutes } from './admin/inventory';
import { adminOrderRoutes } from './admin/orders';
import { adminPriceListRoutes } from './admin/price-lists';
import { adminProductRoutes } from './admin/products';
import { adminSaleRoutes } from './admin/sales';
import { adminPromotionRoutes } from './admin/promotions';
import { adminTokenRoutes } from './admin/tokens';
import { adminWebhookRoutes } from './webhooks/routes';
import { authRoutes } from './auth/routes';
import { cartRoutes } from './carts/routes';
import { catalogRoutes } from './catalog/routes';
import { checkoutRoutes } from './checkout/routes';
import { orderRoutes } from './orders/routes';
import { webhookRoutes } from './payments/webhooks';
import { healthRoutes } from './health/routes';
import { ApiError } from './lib/errors';
import { auditAdminWrites } from './middleware/audit';
import { limitBody } from './middleware/body-limit';
import { observe } from './middleware/observe';
import { errorHandler, notFoundHandler, sendError } from './middleware/errors';
import { adminMediaRoutes, mediaRoutes } from './media/routes';
import { pageRoutes } from './pages/routes';
import { corsForConfiguredOrigins, sameOriginWrites } from './middleware/origin';
import { region } from './middleware/region';
import { shopper } from './middleware/session';
import { regionRoutes } from './regions/routes';
import { saleRoutes } from './sales/routes';
import { services } from './services';
import type { AppEnv } from './types';

/** Largest JSON body the storefront API accepts (bulk import has its own limit). */
export const API_BODY_LIMIT_BYTES = 64 * 1024;

/** Builds the application. Exported as a function so tests can build their own. */
export function createApp(): OpenAPIHono<AppEnv> {
  const app = new OpenAPIHono<AppEnv>();

  app.use(requestId());
  // Around everything else: one log line per request and Server-Timing
  // `total` on API answers, errors and 404s included (./middleware/observe.ts).
  app.use(observe());
  // Images may be embedded by other origins (a CDN or another storefront
  // domain); everything else keeps the strict same-origin policy.
  const apiHeaders = secureHeaders();
  const mediaHeaders = secureHeaders({ crossOriginResourcePolicy: 'cross-origin' });
  // Pages keep the referrer within the store: with `no-referrer` browsers
  // send `Origin: null` on a form POST, and the same-origin check of the
  // shopper's forms (CSRF) could not tell the store's own forms apart.
  const pageHeaders = secureHeaders({ referrerPolicy: 'same-origin' });
  app.use(function securityHeaders(c, next) {
    const path = c.req.path;
    if (path.startsWith('/media/')) return mediaHeaders(c, next);
    return path.startsWith('/api') || path.startsWith('/admin/api') ? apiHeaders(c, next) : pageHeaders(c, next);
  });
  app.use(
    methodNotAllowed({
      app,
      onMethodNotAllowed: (c, methods) =>
        sendError(
          c,
          new ApiError(405, 'method_not_allowed', `${c.req.method} is not allowed on ${c.req.path}. Allowed: ${methods.join(', ')}.`, undefined, {
            Allow: methods.join(', '),
          }),
        ),
    }),
  );
  // CORS first, so a preflight from a configured origin is answered before anything else runs.
  app.use('/api/*', corsForConfiguredOrigins());
  app.use('/admin/api/*', corsForConfiguredOrigins());
  app.use(
    '/api/*',
    // Payment webhooks come from servers and prove themselves with signatures.
    sameOriginWrites({ exempt: (path) => path.startsWith('/api/webhooks/') }),
    limitBody(API_BODY_LIMIT_BYTES),
    region(),
    services(),
    shopper(),
  );
  // Admin sub-apps set their own body limits (bulk import and media are large).
  // Admin calls carry bearer tokens, never cookies, so they need no CSRF check.
  app.use('/admin/api/*', services(), auditAdminWrites());

  app.route('/api', healthRoutes);
  app.route('/api', regionRoutes);
  app.route('/api', catalogRoutes);
  app.route('/api', checkoutRoutes);
  app.route('/api', orderRoutes);
  app.route('/api', webhookRoutes);
  app.route('/api', cartRoutes);
  app.route('/api', authRoutes);
  app.route('/api', accountRoutes);
  app.route('/api', saleRoutes);
  app.route('/admin/api', adminProductRoutes);
  app.route('/admin/api', adminInventoryRoutes);
  app.route('/admin/api', adminOrderRoutes);
  app.route('/admin/api', adminMediaRoutes);
  app.route('/admin/api', adminTokenRoutes);
  app.route('/admin/api', adminWebhookRoutes);
  app.route('/admin/api', adminSaleRoutes);
  app.route('/admin/api', adminPromotionRoutes);
  app.route('/admin/api', adminPriceListRoutes);
  app.route('/', mediaRoutes);
  app.route('/', pageRoutes);

  app.openAPIRegistry.registerComponent('securitySchemes', 'adminToken', {
    type: 'http',
    scheme: 'bearer',
    description: 'Admin API token (`npm run admin:token`, or ADMIN_BOOTSTRAP_TOKEN locally)',
  });
  app.openAPIRegistry.registerComponent('securitySchemes', 'session', {
    type: 'apiKey',
    in: 'cookie',
    name: '__Host-pasar_session',
    description: 'Shopper session, set by `POST /api/auth/login`',
  });
  app.doc31('/api/openapi.json', {
    openapi: '3.1.0',
    info: {
      title: 'Pasar API',
      version: '0.1.0',
      description:
        'Edge-first storefront API. Money is `{ amount, currency }` in integer minor units. Every error is `{ error: { code, message, details? } }`.',
    },
    tags: [
      { name: 'Storefront', description: 'Catalog, carts, checkout and orders for shoppers' },
      { name: 'Accounts', description: 'Shopper accounts and sessions (HttpOnly session cookie)' },
      { name: 'Admin', description: 'Catalog, inventory and orders for merchants (bearer admin token)' },
      { name: 'Operations', description: 'Health and diagnostics' },
    ],
  });
  app.get('/api/docs', swaggerUI({ url: '/api/openapi.json', title: 'Pasar API' }));

  app.onError(errorHandler());
  app.notFound(notFoundHandler());
  return app;
}
