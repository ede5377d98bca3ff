/**
 * Product images on R2: admin upload and public, immutable serving.
 *
 * Uploads are content-addressed: the R2 key is derived from the SHA-256 of
 * the bytes, so the same image uploaded twice is one object and one `media`
 * row, a retried upload is harmless, and a key never changes meaning. That
 * is what lets `GET /media/<key>` promise `immutable` caching to browsers and
 * keep a copy in the edge cache without any invalidation.
 */
import { createRoute, z } from '@hono/zod-openapi';
import { eq, sql } from 'drizzle-orm';
import type { Context } from 'hono';
import { media, products } from '../../db/schema';
import { afterResponse } from '../lib/context';
import { ApiError, invalidRequest, notFound, unavailable } from '../lib/errors';
import { pgError } from '../lib/db-errors';
import { sha256Hex } from '../lib/hash';
import { newId } from '../lib/ids';
import { createRouter, errorResponse, type FieldIssue } from '../lib/router';
import { unstorableFields } from '../lib/text';
import { adminAuth } from '../middleware/admin-auth';
import { limitBody } from '../middleware/body-limit';
import type { AppEnv } from '../types';
import { IMAGE_EXTENSIONS, IMAGE_TYPES, isImageType, mediaTypeOf, sniffImage, type ImageType } from './image';

/** Largest accepted upload request (the whole body, multipart framing included). */
export const MEDIA_UPLOAD_LIMIT_BYTES = 10 * 1024 * 1024;

/** Cache policy of every served image: keys are content-addressed, so the bytes behind a URL never change. */
export const MEDIA_CACHE_CONTROL = 'public, max-age=31536000, immutable';

/** Prefix of uploaded objects' keys; seeded rows use `seed/`, so the two never collide. */
export const UPLOAD_KEY_PREFIX = 'uploads/';

/** Keys `GET /media/:key` will look up; anything else is 404 without touching R2. */
const SERVABLE_KEY = /^[a-zA-Z0-9/_.-]{1,200}$/;

/** Whether `key` may be served: the allowed alphabet and no `..` anywhere. */
export function isServableKey(key: string): boolean {
  return SERVABLE_KEY.test(key) && !key.includes('..');
}

/** The public URL path of a stored key. */
export function mediaUrl(key: string): string {
  return `/media/${key}`;
}

/**
 * The storage key for an image: `uploads/<first 32 hex digits of SHA-256>.<ext>`.
 * 128 bits of the digest keep accidental collisions out of reach while
 * keeping URLs short; the extension is the sniffed type's, so it cannot lie.
 */
export function mediaKey(digestHex: string, type: ImageType): string {
  return `${UPLOAD_KEY_PREFIX}${digestHex.slice(0, 32)}.${IMAGE_EXTENSIONS[type]}`;
}


// --- Schemas ------------------------------------------------------------------

const fieldSchemas = {
  productId: z.string().min(1).max(64).openapi({ description: 'Product to attach the image to; must exist', example: 'prd_5x2m0k7q9r3t1v8w4y6z0a2b4c' }),
  alt: z.string().max(500).openapi({ description: 'Alternative text for screen readers', example: 'Teal linen shirt, front' }),
  position: z
    .string()
    .regex(/^\d{1,4}$/, 'Must be an integer from 0 to 9999.')
    .transform(Number)
    .openapi({ description: "Order among the product's images (default: after the last one)", example: '0' }),
};

/** Upload metadata: in the query string, or as multipart text fields. */
const MediaFieldsSchema = z.object({
  productId: fieldSchemas.productId.optional(),
  alt: fieldSchemas.alt.optional(),
  position: fieldSchemas.position.optional(),
});

type MediaFields = z.output<typeof MediaFieldsSchema>;

const MediaSchema = z
  .object({
    id: z.string().openapi({ example: 'med_5x2m0k7q9r3t1v8w4y6z0a2b4c' }),
    key: z.string().openapi({ example: 'uploads/9f86d081884c7d659a2feaa0c55ad015.png' }),
    url: z.string().openapi({ description: 'Path that serves the image (immutable)', example: '/media/uploads/9f86d081884c7d659a2feaa0c55ad015.png' }),
    contentType: z.enum(IMAGE_TYPES),
    bytes: z.number().int().positive(),
    width: z.number().int().positive().nullable().openapi({ description: 'From the image header; null when not cheaply known (AVIF)' }),
    height: z.number().int().positive().nullable(),
    productId: z.string().nullable(),
    alt: z.string(),
    position: z.number().int(),
  })
  .openapi('Media');

type MediaBody = z.infer<typeof MediaSchema>;

const allowedList = IMAGE_TYPES.join(', ');

// --- Upload -----------------------------------------------------------------

/** What an upload request carried, before any checks on the bytes. */
interface Upload {
  declaredType: string;
  bytes: Uint8Array;
  fields: MediaFields;
  /** Where the declared type came from, for error details. */
  typeIssueAt: Pick<FieldIssue, 'in' | 'field'>;
}

const fileIssue = (message: string): FieldIssue => ({ in: 'body', field: 'file', message });

function throwIssues(issues: FieldIssue[]): never {
  throw invalidRequest(`Invalid request: ${issues.map((d) => `${d.field}: ${d.message}`).join('; ')}`, issues);
}

/** Reads a `multipart/form-data` upload: one `file` part plus optional text fields. */
async function readMultipart(c: Context<AppEnv>, query: MediaFields): Promise<Upload> {
  let form: FormData;
  try {
    form = await c.req.formData();
  } catch {
    throwIssues([{ in: 'body', field: '(root)', message: 'The multipart/form-data body could not be parsed.' }]);
  }
  const issues: FieldIssue[] = [];
  const seen = new Set<string>();
  const texts: Record<string, string> = {};
  let file: File | undefined;
  for (const [name, value] of form.entries()) {
    if (seen.has(name)) {
      issues.push({ in: 'body', field: name, message: 'Given more than once.' });
      continue;
    }
    seen.add(name);
    if (name === 'file') {
      if (typeof value === 'string') issues.push(fileIssue('Must be a file part (with a filename and Content-Type), not a text field.'));
      else file = value;
    } else if (!(name in MediaFieldsSchema.shape)) {
      // Strict like every other body: an unknown field is a client bug worth hearing about.
      issues.push({ in: 'body', field: name, message: 'Unknown field.' });
    } else if (typeof value !== 'string') {
      issues.push({ in: 'body', field: name, message: 'Must be a text field, not a file.' });
    } else if (name in query && query[name as keyof MediaFields] !== undefined) {
      issues.push({ in: 'body', field: name, message: 'Also given in the query string; send it once.' });
    } else {
      texts[name] = value;
    }
  }
  if (!seen.has('file')) issues.push(fileIssue('Required: the image as a file part named "file".'));
  const parsed = MediaFieldsSchema.safeParse(texts);
  if (!parsed.success) {
    issues.push(...parsed.error.issues.map((i) => ({ in: 'body', field: i.path.join('.') || '(root)', message: i.message })));
  } else {
    issues.push(...unstorableFields(parsed.data, 'body'));
  }
  if (issues.length > 0 || !file || !parsed.success) throwIssues(issues);
  return {
    declaredType: mediaTypeOf(file.type),
    bytes: new Uint8Array(await file.arrayBuffer()),
    fields: { ...query, ...parsed.data },
    typeIssueAt: { in: 'body', field: 'file' },
  };
}

/** Reads an upload as the request body itself (`Content-Type: image/...`). */
async function readUpload(c: Context<AppEnv>, query: MediaFields): Promise<Upload> {
  const contentType = mediaTypeOf(c.req.header('content-type'));
  if (contentType === 'multipart/form-data') return readMultipart(c, query);
  if (!contentType) {
    throwIssues([{ in: 'header', field: 'content-type', message: `Required: multipart/form-data, or one of ${allowedList}.` }]);
  }
  return {
    declaredType: contentType,
    bytes: new Uint8Array(await c.req.arrayBuffer()),
    fields: query,
    typeIssueAt: { in: 'header', field: 'content-type' },
  };
}

/**
 * Checks the bytes against the declared type. The declared type must be on
 * the allow-list (SVG is deliberately not: it is a document that can run
 * script) and the magic bytes must agree with it.
 */
function checkImage(upload: Upload) {
  const { declaredType, bytes } = upload;
  if (!isImageType(declaredType)) {
    throwIssues([{ ...upload.typeIssueAt, message: `Unsupported type "${declaredType || '(none)'}": send one of ${allowedList}.` }]);
  }
  if (bytes.byteLength === 0) throwIssues([fileIssue('The image is empty.')]);
  // bodyLimit trusts Content-Length when present; this holds however the body arrived.
  if (bytes.byteLength > MEDIA_UPLOAD_LIMIT_BYTES) {
    throw new ApiError(413, 'payload_too_large', `The image exceeds ${MEDIA_UPLOAD_LIMIT_BYTES} bytes.`);
  }
  const info = sniffImage(bytes);
  if (!info) throwIssues([fileIssue(`The bytes are not a ${allowedList.replace(/image\//g, '').toUpperCase()} image.`)]);
  if (info.type !== declaredType) throwIssues([fileIssue(`Declared as ${declaredType} but the bytes are ${info.type}.`)]);
  return info;
}

const unknownProduct = (productId: string) => new ApiError(422, 'unknown_product', `There is no product "${productId}".`);

/** The SQLSTATE behind a failed query (see ../lib/db-errors.ts). */
const pgErrorCode = (err: unknown) => pgError(err)?.code;

const toBody = (row: typeof media.$inferSelect): MediaBody => ({
  id: row.id,
  key: row.key,
  url: mediaUrl(row.key),
  contentType: row.contentType as ImageType,
  bytes: row.bytes,
  width: row.width,
  height: row.height,
  productId: row.productId,
  alt: row.alt,
  position: row.position,
});

const uploadRoute = createRoute({
  method: 'post',
  path: '/media',
  tags: ['Admin'],
  summary: 'Uploads a product image to R2',
  description: [
    'Send the image either as `multipart/form-data` (a `file` part plus optional `productId`, `alt`, `position` text fields)',
    `or as the raw body with its \`Content-Type\` (${allowedList}; metadata in the query string).`,
    'The bytes must really be the declared format. At most 10 MiB.',
    '',
    'Keys are content-addressed (`uploads/<sha256 prefix>.<ext>`): uploading the same bytes again answers 200 with the',
    'existing image (its product, alt and position unchanged) instead of 201.',
  ].join('\n'),
  security: [{ adminToken: [] }],
  middleware: [adminAuth({ roles: ['catalog'] }), limitBody(MEDIA_UPLOAD_LIMIT_BYTES)] as const,
  request: {
    query: MediaFieldsSchema,
    // Plain OpenAPI schemas, not zod: documentation only. A zod body schema
    // would make the framework gate content types and parse the form itself,
    // and raw image bodies and file parts need checks it cannot express.
    body: {
      required: true,
      content: {
        'multipart/form-data': {
          schema: {
            type: 'object',
            required: ['file'],
            additionalProperties: false,
            properties: {
              file: { type: 'string', format: 'binary', description: `The image (${allowedList})` },
              productId: { type: 'string' },
              alt: { type: 'string', maxLength: 500 },
              position: { type: 'integer', minimum: 0, maximum: 9999 },
            },
          },
        },
        ...Object.fromEntries(IMAGE_TYPES.map((t) => [t, { schema: { type: 'string' as const, format: 'binary' } }])),
      },
    },
  },
  responses: {
    201: {
      description: 'Stored; `Location` is the public URL',
      content: { 'application/json': { schema: MediaSchema } },
    },
    200: {
      description: 'These exact bytes were already uploaded: the existing image',
      content: { 'application/json': { schema: MediaSchema } },
    },
    400: errorResponse('Not an accepted image, bytes that do not match the declared type, an empty body, or bad metadata (`invalid_request`)'),
    401: errorResponse('No or invalid admin token'),
    403: errorResponse('The token may not manage the catalog'),
    413: errorResponse('Body over 10 MiB (`payload_too_large`)'),
    422: errorResponse('`productId` names no product (`unknown_product`)'),
    503: errorResponse('Storage is unavailable'),
  },
});

/** `POST /admin/api/media` (mounted under /admin/api). */
export const adminMediaRoutes = createRouter().openapi(uploadRoute, async (c) => {
  const upload = await readUpload(c, c.req.valid('query'));
  const info = checkImage(upload);
  const { bytes, fields } = upload;
  const db = c.var.services.db.primary;

  // Before touching R2, so a refused upload leaves no object behind.
  let position = fields.position ?? 0;
  if (fields.productId !== undefined) {
    const [product] = await db
      .select({
        id: products.id,
        // Uncorrelated on purpose: drizzle leaves columns unqualified, which
        // inside a subquery would resolve against `media`, not `products`.
        nextPosition: sql<number>`(select coalesce(max(${media.position}) + 1, 0) from ${media} where ${media.productId} = ${fields.productId})`.mapWith(Number),
      })
      .from(products)
      .where(eq(products.id, fields.productId))
      .limit(1);
    if (!product) throw unknownProduct(fields.productId);
    position = fields.position ?? product.nextPosition;
  }

  const digest = await sha256Hex(bytes);
  const key = mediaKey(digest, info.type);
  try {
    // Always written, even when the row exists: rewriting identical bytes is
    // harmless and repairs an object lost after its row was committed.
    await c.env.MEDIA.put(key, bytes, {
      httpMetadata: { contentType: info.type, cacheControl: MEDIA_CACHE_CONTROL },
      // R2 verifies the checksum, so a body corrupted on the way is refused.
      sha256: digest,
      customMetadata: { uploadedBy: c.var.admin.tokenId },
    });
  } catch (err) {
    console.error(JSON.stringify({ level: 'error', requestId: c.get('requestId'), what: 'r2 put', key, error: String(err) }));
    throw unavailable('Image storage is unavailable; try again.');
  }

  let inserted: (typeof media.$inferSelect)[];
  try {
    inserted = await db
      .insert(media)
      .values({
        id: newId('med'),
        productId: fields.productId ?? null,
        key,
        contentType: info.type,
        bytes: bytes.byteLength,
        width: info.width,
        height: info.height,
        alt: fields.alt ?? '',
        position,
      })
      .onConflictDoNothing({ target: media.key })
      .returning();
  } catch (err) {
    // The product was deleted between the check and the insert.
    if (pgErrorCode(err) === '23503' && fields.productId !== undefined) throw unknownProduct(fields.productId);
    throw err;
  }

  c.header('cache-control', 'no-store');
  const [created] = inserted;
  if (created) return c.json(toBody(created), 201, { Location: mediaUrl(key) });
  const [existing] = await db.select().from(media).where(eq(media.key, key)).limit(1);
  // Only reachable if the row was deleted between the conflict and this read.
  if (!existing) throw unavailable('The image was changed concurrently; try again.', 1);
  return c.json(toBody(existing), 200);
});

// --- Serving ------------------------------------------------------------------

/** A parsed single `Range: bytes=...` header. */
type ByteRange = { offset: number; length?: number } | { suffix: number };

/**
 * Parses a single byte range. Multiple ranges and malformed headers yield
 * null, meaning "ignore the header and send the whole image", which RFC 9110
 * allows and which every client handles.
 */
export function parseRange(header: string | undefined): ByteRange | null {
  const m = /^bytes=(\d*)-(\d*)$/.exec((header ?? '').trim());
  if (!m) return null;
  const [, first, last] = m;
  if (first === '' && last === '') return null;
  if (first === '') return { suffix: Number(last) };
  const offset = Number(first);
  if (last === '') return { offset };
  const end = Number(last);
  return end < offset ? null : { offset, length: end - offset + 1 };
}

/** Resolves a range against the object size: `[start, end]` inclusive, or null when unsatisfiable. */
function resolveRange(range: ByteRange, size: number): [number, number] | null {
  if ('suffix' in range) {
    if (range.suffix === 0 || size === 0) return null;
    return [Math.max(0, size - range.suffix), size - 1];
  }
  if (range.offset >= size) return null;
  const end = range.length === undefined ? size - 1 : Math.min(size - 1, range.offset + range.length - 1);
  return [range.offset, end];
}

/** Whether an `If-None-Match` value matches `etag` (weak comparison, as RFC 9110 asks for this header). */
export function etagMatches(ifNoneMatch: string | undefined, etag: string): boolean {
  if (!ifNoneMatch) return false;
  const bare = (t: string) => t.trim().replace(/^W\//, '');
  const want = bare(etag);
  return ifNoneMatch.split(',').some((t) => t.trim() === '*' || bare(t) === want);
}

/** Headers every served image carries. */
function objectHeaders(object: R2Object): Headers {
  const headers = new Headers();
  const stored = mediaTypeOf(object.httpMetadata?.contentType);
  // Only image types are served as such: anything else that finds its way
  // into the bucket must not render as a page on the storefront's origin.
  headers.set('content-type', isImageType(stored) ? stored : 'application/octet-stream');
  headers.set('cache-control', MEDIA_CACHE_CONTROL);
  headers.set('etag', object.httpEtag);
  headers.set('last-modified', object.uploaded.toUTCString());
  headers.set('accept-ranges', 'bytes');
  headers.set('x-content-type-options', 'nosniff');
  // An image opened directly still cannot run script or load anything.
  headers.set('content-security-policy', "default-src 'none'; sandbox");
  return headers;
}

function notModified(headers: Headers): Response {
  const out = new Headers();
  for (const name of ['etag', 'cache-control', 'last-modified']) {
    const value = headers.get(name);
    if (value) out.set(name, value);
  }
  return new Response(null, { status: 304, headers: out });
}

/** The edge-cache key: the URL without its query, so `?v=2` cannot fill the cache with copies. */
function cacheKeyFor(url: string): Request {
  const u = new URL(url);
  return new Request(`${u.origin}${u.pathname}`, { method: 'GET' });
}

/** `GET /media/:key` (mounted at the root). */
export const mediaRoutes = createRouter();

mediaRoutes.openAPIRegistry.registerPath({
  method: 'get',
  path: '/media/{key}',
  tags: ['Storefront'],
  summary: 'Serves an uploaded image',
  description:
    'Immutable: `Cache-Control: public, max-age=31536000, immutable`, an `ETag` (`If-None-Match` answers 304), and single `Range` requests (206). HEAD is supported.',
  request: {
    params: z.object({ key: z.string().openapi({ description: 'The `key` returned by the upload; may contain `/`', example: 'uploads/9f86d081884c7d659a2feaa0c55ad015.png' }) }),
  },
  responses: {
    200: { description: 'The image', content: Object.fromEntries(IMAGE_TYPES.map((t) => [t, { schema: { type: 'string' as const, format: 'binary' } }])) },
    206: { description: 'The requested byte range' },
    304: { description: 'Not modified (`If-None-Match` matched)' },
    404: errorResponse('No such image'),
    416: errorResponse('Range not satisfiable (`range_not_satisfiable`, with `Content-Range: bytes */<size>`)'),
  },
});

mediaRoutes.get('/media/:key{.+}', async (c) => {
  const key = c.req.param('key');
  if (!isServableKey(key)) throw notFound('No such image.');
  const isHead = c.req.method === 'HEAD';
  const ifNoneMatch = c.req.header('if-none-match');
  let range = parseRange(c.req.header('range'));
  const cache = caches.default;
  const cacheKey = cacheKeyFor(c.req.url);

  // Range requests go to R2, which slices server-side; everything else tries
  // this location's cache first, since the bytes behind a key never change.
  if (!range) {
    const cached = await cache.match(cacheKey);
    if (cached) {
      const etag = cached.headers.get('etag');
      if (etag && etagMatches(ifNoneMatch, etag)) {
        await cached.body?.cancel();
        return notModified(cached.headers);
      }
      // A fresh Response: cache.match() hands back immutable headers, and the
      // app's middleware adds its own on the way out.
      if (isHead) await cached.body?.cancel();
      return new Response(isHead ? null : cached.body, cached);
    }
  }

  const bucket = c.env.MEDIA;
  // Metadata first whenever the answer may not need the body.
  const needsHeadFirst = isHead || range !== null || ifNoneMatch !== undefined;
  let object: R2Object | R2ObjectBody | null = needsHeadFirst ? await bucket.head(key) : await bucket.get(key);
  if (!object) throw notFound('No such image.');
  const headers = objectHeaders(object);
  if (etagMatches(ifNoneMatch, object.httpEtag)) return notModified(headers);

  // If-Range: a range only applies to the representation the client already has.
  const ifRange = c.req.header('if-range');
  if (range && ifRange !== undefined && ifRange.trim() !== object.httpEtag) range = null;

  if (range) {
    const span = resolveRange(range, object.size);
    if (!span) {
      throw new ApiError(416, 'range_not_satisfiable', `The range is outside the image's ${object.size} bytes.`, undefined, {
        'Content-Range': `bytes */${object.size}`,
      });
    }
    const [start, end] = span;
    headers.set('content-range', `bytes ${start}-${end}/${object.size}`);
    headers.set('content-length', String(end - start + 1));
    if (isHead) return new Response(null, { status: 206, headers });
    const part = await bucket.get(key, { range: { offset: start, length: end - start + 1 } });
    if (!part) throw notFound('No such image.');
    return new Response(part.body, { status: 206, headers });
  }

  headers.set('content-length', String(object.size));
  if (isHead) return new Response(null, { status: 200, headers });
  if (!('body' in object)) {
    object = await bucket.get(key);
    if (!object) throw notFound('No such image.');
  }
  const response = new Response((object as R2ObjectBody).body, { status: 200, headers });
  await afterResponse(c, cache.put(cacheKey, response.clone()));
  return response;
});
