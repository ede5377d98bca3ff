/** The sale as the admin API shows it; the storefront shows a part of it (workers/sales/routes.ts). */
import { z } from '@hono/zod-openapi';
import { REGION_CODES } from '../../db/regions';

/** A flash sale. */
export const SaleSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    state: z.enum(['scheduled', 'live', 'ended']),
    startsAt: z.string(),
    endsAt: z.string().nullable(),
    endedAt: z.string().nullable(),
    perShopperCap: z.number().int(),
    admissionRate: z.number().int(),
    queueShards: z.number().int(),
    admissionTtlSeconds: z.number().int(),
    turnstile: z.boolean(),
    regions: z.array(z.enum(REGION_CODES)),
    variants: z.array(z.object({ variantId: z.string(), sku: z.string(), productSlug: z.string(), productId: z.string() })),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi('Sale');
