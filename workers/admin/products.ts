/**
 * Admin catalog API: create, update (partial), archive, and bulk import of
 * products with their variants and regional prices. Every write is one
 * transaction on the primary; after it commits, what shoppers read is
 * republished (../catalog/publish.ts).
 */
import { createRoute, z } from '@hono/zod-openapi';
import { eq, sql } from 'drizzle-orm';
import type { Context, MiddlewareHandler } from 'hono';
import { products } from '../../db/schema';
import { publishChange, publishEverything, type CatalogChange } from '../catalog/publish';
import { emitProductUpdated } from '../webhooks/events';
import { ApiError, invalidRequest, notFound } from '../lib/errors';
import { createRouter, errorResponse, fieldIssues, type FieldIssue } from '../lib/router';
import { unstorableFields } from '../lib/text';
import { adminAuth } from '../middleware/admin-auth';
import { limitBody } from '../middleware/body-limit';
import type { AppEnv } from '../types';
import {
  CatalogRuleError,
  ProductInput,
  ProductPatch,
  adminProduct,
  categoryIds,
  upsertProducts,
  upsertVariants,
  type UpsertResult,
} from './catalog-write';

/** Largest single-product JSON body. */
const PRODUCT_BODY_LIMIT = 1024 * 1024;
/** Largest import: 10,000 products of a few KB each fit comfortably. */
const IMPORT_BODY_LIMIT = 64 * 1024 * 1024;
/** Lines written per transaction during an import. */
const IMPORT_BATCH = 250;
/** Lines one import may hold. */
const IMPORT_MAX_LINES = 50_000;

const AdminPriceSchema = z.object({ amount: z.number().int(), currency: z.string(), compareAtAmount: z.number().int().nullable() });
const AdminProductSchema = z
  .object({
    id: z.string(),
    slug: z.string(),
    title: z.string(),
    description: z.string(),
    brand: z.string().nullable(),
    category: z.string(),
    status: z.enum(['draft', 'active', 'archived']),
    version: z.number().int(),
    createdAt: z.string(),
    updatedAt: z.string(),
    variants: z.array(
      z.object({
        id: z.string(),
        sku: z.string(),
        title: z.string(),
        options: z.record(z.string(), z.string()),
        position: z.number().int(),
        status: z.enum(['draft', 'active', 'archived']),
        weightGrams: z.number().int().nullable(),
        prices: z.record(z.string(), AdminPriceSchema),
      }),
    ),
  })
  .openapi('AdminProduct');

const ImportResultSchema = z
  .object({
    lines: z.number().int().openapi({ description: 'Non-blank lines read' }),
    created: z.number().int(),
    updated: z.number().int(),
    failed: z.number().int(),
    errors: z.array(
      z.object({
        line: z.number().int().openapi({ description: '1-based line number in the request body' }),
        sku: z.string().optional(),
        code: z.string(),
        message: z.string(),
        details: z.array(z.object({ field: z.string(), message: z.string() })).optional(),
      }),
    ),
  })
  .openapi('ImportResult');

const IdParam = z.object({ id: z.string().min(1).max(64).openapi({ example: 'prod_5x2m…' }) });
const security = [{ adminToken: [] }];

/** Turns a rule refusal into the API's error. */
function ruleError(err: unknown): never {
  if (err instanceof CatalogRuleError) throw new ApiError(err.status, err.code, err.message);
  throw err;
}

/** Schedules the republish of what a write changed. */
function republish(c: Context<AppEnv>, results: UpsertResult[]): Promise<void> {
  const change: CatalogChange = {
    slugs: results.flatMap((r) => (r.previousSlug ? [r.slug, r.previousSlug] : [r.slug])),
    categoryIds: results.flatMap((r) => (r.previousCategoryId ? [r.categoryId, r.previousCategoryId] : [r.categoryId])),
  };
  // Republishing is awaited, not deferred: the admin's next read, and the
  // storefront of this location, must see the change (1 s contract).
  return publishChange(c.var.services.db.primary, c.env.CATALOG, change);
}

/** Authentication first (a stranger learns nothing from validation errors), then the size limit. */
const catalogWriter = (maxBody: number): MiddlewareHandler<AppEnv>[] => [adminAuth({ roles: ['catalog'] }), limitBody(maxBody)];
const catalogReader: MiddlewareHandler<AppEnv>[] = [adminAuth({ roles: ['catalog', 'readonly'] })];

export const adminProductRoutes = createRouter()
  .openapi(
    createRoute({
      method: 'post',
      path: '/products',
      tags: ['Admin'],
      security,
      summary: 'Creates a product with its variants and regional prices',
      middleware: catalogWriter(PRODUCT_BODY_LIMIT),
      request: { body: { required: true, content: { 'application/json': { schema: ProductInput } } } },
      responses: {
        201: { description: 'Created', content: { 'application/json': { schema: AdminProductSchema } } },
        400: errorResponse('Invalid body'),
        401: errorResponse('No or bad admin token'),
        403: errorResponse('Role may not write the catalog'),
        409: errorResponse('SKU or slug taken'),
        422: errorResponse('Unknown category'),
      },
    }),
    async (c) => {
      const input = c.req.valid('json');
      const db = c.var.services.db.primary;
      const [result] = await db.transaction((tx) => upsertProducts(tx, [input], 'create')).catch(ruleError);
      await republish(c, [result!]);
      await emitProductUpdated(c.env, db, [{ productId: result!.productId, slug: result!.slug, change: 'created' }]);
      return c.json((await adminProduct(db, result!.productId))!, 201);
    },
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/products/{id}',
      tags: ['Admin'],
      security,
      summary: 'A product as the admin sees it (every status, every region)',
      middleware: catalogReader,
      request: { params: IdParam },
      responses: {
        200: { description: 'The product', content: { 'application/json': { schema: AdminProductSchema } } },
        404: errorResponse('Unknown id'),
      },
    }),
    async (c) => {
      const product = await adminProduct(c.var.services.db.primary, c.req.valid('param').id);
      if (!product) throw notFound('No such product.');
      return c.json(product, 200);
    },
  )
  .openapi(
    createRoute({
      method: 'patch',
      path: '/products/{id}',
      tags: ['Admin'],
      security,
      summary: 'Changes the fields given; variants are upserted by SKU',
      middleware: catalogWriter(PRODUCT_BODY_LIMIT),
      request: { params: IdParam, body: { required: true, content: { 'application/json': { schema: ProductPatch } } } },
      responses: {
        200: { description: 'Updated', content: { 'application/json': { schema: AdminProductSchema } } },
        400: errorResponse('Invalid body'),
        404: errorResponse('Unknown id'),
        409: errorResponse('SKU or slug taken'),
        422: errorResponse('Unknown category'),
      },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      const patch = c.req.valid('json');
      const db = c.var.services.db.primary;
      const result = await db
        .transaction(async (tx) => {
          const [current] = await tx.select().from(products).where(eq(products.id, id)).for('update');
          if (!current) throw notFound('No such product.');
          let categoryId = current.categoryId;
          if (patch.category) {
            const found = (await categoryIds(tx, [patch.category])).get(patch.category);
            if (!found) throw new CatalogRuleError(422, 'unknown_category', `No category "${patch.category}".`);
            categoryId = found;
          }
          if (patch.slug && patch.slug !== current.slug) {
            const [taken] = await tx.select({ id: products.id }).from(products).where(eq(products.slug, patch.slug));
            if (taken) throw new CatalogRuleError(409, 'slug_taken', `The slug "${patch.slug}" is taken by another product.`);
          }
          const now = new Date();
          await tx
            .update(products)
            .set({
              ...(patch.slug !== undefined ? { slug: patch.slug } : {}),
              ...(patch.title !== undefined ? { title: patch.title } : {}),
              ...(patch.description !== undefined ? { description: patch.description } : {}),
              ...(patch.brand !== undefined ? { brand: patch.brand } : {}),
              ...(patch.status !== undefined ? { status: patch.status } : {}),
              categoryId,
              version: sql`${products.version} + 1`,
              updatedAt: now,
            })
            .where(eq(products.id, id));
          await upsertVariants(tx, (patch.variants ?? []).map((variant) => ({ productId: id, variant })), now, true);
          const slug = patch.slug ?? current.slug;
          return {
            productId: id,
            slug,
            ...(slug !== current.slug ? { previousSlug: current.slug } : {}),
            categoryId,
            ...(categoryId !== current.categoryId ? { previousCategoryId: current.categoryId } : {}),
            created: false,
          } satisfies UpsertResult;
        })
        .catch(ruleError);
      await republish(c, [result]);
      await emitProductUpdated(c.env, db, [{ productId: id, slug: result.slug, change: 'updated' }]);
      return c.json((await adminProduct(db, id))!, 200);
    },
  )
  .openapi(
    createRoute({
      method: 'delete',
      path: '/products/{id}',
      tags: ['Admin'],
      security,
      summary: 'Archives a product: it leaves the storefront, its orders keep it',
      middleware: catalogWriter(PRODUCT_BODY_LIMIT),
      request: { params: IdParam },
      responses: {
        200: { description: 'Archived', content: { 'application/json': { schema: AdminProductSchema } } },
        404: errorResponse('Unknown id'),
      },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      const db = c.var.services.db.primary;
      const [row] = await db
        .update(products)
        .set({ status: 'archived', version: sql`${products.version} + 1`, updatedAt: new Date() })
        .where(eq(products.id, id))
        .returning({ slug: products.slug, categoryId: products.categoryId });
      if (!row) throw notFound('No such product.');
      await republish(c, [{ productId: id, slug: row.slug, categoryId: row.categoryId, created: false }]);
      await emitProductUpdated(c.env, db, [{ productId: id, slug: row.slug, change: 'archived' }]);
      return c.json((await adminProduct(db, id))!, 200);
    },
  )
  .openapi(
    createRoute({
      method: 'post',
      path: '/products/import',
      tags: ['Admin'],
      security,
      summary: 'Bulk import: one product per line (NDJSON), idempotent by SKU',
      middleware: catalogWriter(IMPORT_BODY_LIMIT),
      description:
        'Each line is a product as in `POST /admin/api/products`. A line whose SKUs exist updates that product; otherwise it creates one. ' +
        'Lines are validated one by one: bad lines are reported with their line numbers and the rest are imported. The body is streamed.',
      request: { body: { required: true, content: { 'application/x-ndjson': { schema: z.string() } } } },
      responses: {
        200: { description: 'What was imported and what was refused', content: { 'application/json': { schema: ImportResultSchema } } },
        400: errorResponse('Not NDJSON, or more than 50,000 lines'),
        413: errorResponse('Body over 64 MiB'),
      },
    }),
    async (c) => {
      const type = c.req.header('content-type') ?? '';
      if (!/^application\/(x-)?ndjson|^application\/jsonl|^text\/plain/i.test(type)) {
        throw invalidRequest('Send the import as application/x-ndjson: one JSON product per line.', [
          { in: 'header', field: 'content-type', message: 'Expected application/x-ndjson.' },
        ]);
      }
      const result = await importProducts(c);
      return c.json(result, 200);
    },
  );

type ImportError = z.infer<typeof ImportResultSchema>['errors'][number];

/** Reads the body line by line, validating as it goes, and writes in batches. */
async function importProducts(c: Context<AppEnv>): Promise<z.infer<typeof ImportResultSchema>> {
  const db = c.var.services.db.primary;
  const errors: ImportError[] = [];
  let lines = 0;
  let created = 0;
  let updated = 0;
  const touchedCategories = new Set<string>();
  let batch: { line: number; input: ProductInput }[] = [];
  const written: Parameters<typeof emitProductUpdated>[2] = [];

  const record = (results: UpsertResult[]) => {
    for (const r of results) {
      written.push({ productId: r.productId, slug: r.slug, change: r.created ? 'created' : 'updated' });
      if (r.created) created++;
      else updated++;
      touchedCategories.add(r.categoryId);
      if (r.previousCategoryId) touchedCategories.add(r.previousCategoryId);
    }
  };
  const refuse = (line: number, input: ProductInput, err: unknown) => {
    if (!(err instanceof CatalogRuleError)) throw err;
    errors.push({ line, sku: input.variants[0]?.sku, code: err.code, message: err.message });
  };

  const flush = async () => {
    if (batch.length === 0) return;
    const current = batch;
    batch = [];
    try {
      record(await db.transaction((tx) => upsertProducts(tx, current.map((b) => b.input), 'upsert')));
    } catch (err) {
      if (!(err instanceof CatalogRuleError)) throw err;
      // One line broke the batch: write the lines one by one so only it fails.
      for (const item of current) {
        try {
          record(await db.transaction((tx) => upsertProducts(tx, [item.input], 'upsert')));
        } catch (lineErr) {
          refuse(item.line, item.input, lineErr);
        }
      }
    }
  };

  const seenSkus = new Map<string, number>();
  const handleLine = async (text: string, lineNo: number) => {
    if (text.trim() === '') return;
    lines++;
    if (lines > IMPORT_MAX_LINES) throw invalidRequest(`An import holds at most ${IMPORT_MAX_LINES} lines; split the file.`);
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      errors.push({ line: lineNo, code: 'invalid_json', message: 'This line is not valid JSON.' });
      return;
    }
    const parsed = ProductInput.safeParse(json);
    const unstorableText = parsed.success ? unstorableFields(parsed.data, 'body') : [];
    if (!parsed.success || unstorableText.length) {
      const details: FieldIssue[] = parsed.success ? unstorableText : fieldIssues('body', parsed.error);
      errors.push({
        line: lineNo,
        ...(typeof (json as { variants?: { sku?: unknown }[] })?.variants?.[0]?.sku === 'string' ? { sku: (json as { variants: { sku: string }[] }).variants[0]!.sku } : {}),
        code: 'invalid_request',
        message: details.map((d) => `${d.field}: ${d.message}`).join('; '),
        details: details.map(({ field, message }) => ({ field, message })),
      });
      return;
    }
    // The same SKU twice in one file: the later line would silently win.
    const dup = parsed.data.variants.find((v) => seenSkus.has(v.sku));
    if (dup) {
      errors.push({ line: lineNo, sku: dup.sku, code: 'duplicate_sku', message: `SKU ${dup.sku} already appeared on line ${seenSkus.get(dup.sku)}.` });
      return;
    }
    for (const v of parsed.data.variants) seenSkus.set(v.sku, lineNo);
    batch.push({ line: lineNo, input: parsed.data });
    if (batch.length >= IMPORT_BATCH) await flush();
  };

  const body = c.req.raw.body;
  if (!body) throw invalidRequest('The import body is empty.');
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = '';
  let lineNo = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffered += value;
    let newline: number;
    while ((newline = buffered.indexOf('\n')) >= 0) {
      const text = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      await handleLine(text, ++lineNo);
    }
  }
  if (buffered.length) await handleLine(buffered, ++lineNo);
  await flush();

  if (created + updated > 0) await publishEverything(db, c.env.CATALOG, [...touchedCategories]);
  if (written.length) await emitProductUpdated(c.env, db, written);
  errors.sort((a, b) => a.line - b.line);
  return { lines, created, updated, failed: errors.length, errors };
}
