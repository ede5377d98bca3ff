import { env, exports } from 'cloudflare:workers';
import { eq, sql } from 'drizzle-orm';
import { beforeAll, describe, expect, it } from 'vitest';
import { createDatabase, type Database } from '../../db/client';
import { apiTokens, media, products } from '../../db/schema';
import { newId, randomToken } from '../lib/ids';
import { hashToken } from '../middleware/admin-auth';
import { MEDIA_CACHE_CONTROL, MEDIA_UPLOAD_LIMIT_BYTES, etagMatches, isServableKey, parseRange } from './routes';

const call = (path: string, init?: RequestInit) => exports.default.fetch(new Request(`http://pasar.test${path}`, init));

/** Runs `fn` with a database client of its own, closed afterwards (I/O objects may not outlive a request). */
async function withDb<T>(fn: (db: Database) => Promise<T>): Promise<T> {
  const clients = createDatabase(env);
  try {
    return await fn(clients.primary);
  } finally {
    await clients.close();
  }
}

async function expectEnvelope(res: Response, status: number, code: string) {
  const body = await res.json<any>();
  expect(res.status, JSON.stringify(body)).toBe(status);
  expect(res.headers.get('content-type')).toContain('application/json');
  expect(body.error.code).toBe(code);
  expect(body.error.message).toEqual(expect.any(String));
  return body;
}

// --- Tiny real images, built here rather than shipped as fixtures ----------------

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(data: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of data) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function pngChunk(type: string, data: Uint8Array): Uint8Array {
  const body = concat([new TextEncoder().encode(type), data]);
  const head = new Uint8Array(4);
  new DataView(head.buffer).setUint32(0, data.length);
  const tail = new Uint8Array(4);
  new DataView(tail.buffer).setUint32(0, crc32(body));
  return concat([head, body, tail]);
}

async function deflate(data: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([data]).stream().pipeThrough(new CompressionStream('deflate'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/**
 * A valid grayscale PNG of `width` x `height`. `label` goes into a tEXt chunk
 * so each test can make bytes no other test uploaded (keys are content hashes).
 */
async function makePng(width: number, height: number, label = crypto.randomUUID()): Promise<Uint8Array> {
  const ihdr = new Uint8Array(13);
  const v = new DataView(ihdr.buffer);
  v.setUint32(0, width);
  v.setUint32(4, height);
  ihdr.set([8, 0, 0, 0, 0], 8); // 8-bit grayscale, deflate, no filter, no interlace
  const rows = new Uint8Array(height * (width + 1)); // each row: filter byte 0, then black pixels
  return concat([
    new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('tEXt', new TextEncoder().encode(`Comment\0${label}`)),
    pngChunk('IDAT', await deflate(rows)),
    pngChunk('IEND', new Uint8Array()),
  ]);
}

/** A baseline JPEG header (SOI, JFIF, SOF0 with the size, SOS, EOI); enough for a sniffer. */
function makeJpeg(width: number, height: number, label = crypto.randomUUID()): Uint8Array {
  const note = new TextEncoder().encode(label);
  return concat([
    new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00]),
    new Uint8Array([0xff, 0xfe, 0x00, note.length + 2]),
    note,
    new Uint8Array([0xff, 0xc0, 0x00, 0x0b, 0x08, height >> 8, height & 0xff, width >> 8, width & 0xff, 0x01, 0x01, 0x11, 0x00]),
    new Uint8Array([0xff, 0xda, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3f, 0x00, 0x00, 0xff, 0xd9]),
  ]);
}

/** The classic 43-byte transparent 1x1 GIF89a. */
const GIF_1X1 = Uint8Array.from(atob('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7'), (ch) => ch.charCodeAt(0));

// --- Fixtures ---------------------------------------------------------------------

let catalogToken: string;
let readonlyToken: string;
let productId: string;

beforeAll(async () => {
  catalogToken = `test_${randomToken(24)}`;
  readonlyToken = `test_${randomToken(24)}`;
  await withDb(async (db) => {
    await db.insert(apiTokens).values([
      { id: newId('tok'), name: 'media test (catalog)', tokenHash: await hashToken(catalogToken), role: 'catalog' },
      { id: newId('tok'), name: 'media test (readonly)', tokenHash: await hashToken(readonlyToken), role: 'readonly' },
    ]);
    // The seed catalog is loaded by the global setup; any product will do.
    const [product] = await db.select({ id: products.id }).from(products).orderBy(products.id).limit(1);
    productId = product!.id;
  });
});

const auth = (token = catalogToken) => ({ authorization: `Bearer ${token}` });

function uploadRaw(bytes: Uint8Array, contentType: string, query = '', token = catalogToken) {
  return call(`/admin/api/media${query}`, { method: 'POST', headers: { ...auth(token), 'content-type': contentType }, body: bytes });
}

function uploadForm(fields: Record<string, string | Blob>, query = '') {
  const form = new FormData();
  for (const [name, value] of Object.entries(fields)) {
    if (typeof value === 'string') form.append(name, value);
    else form.append(name, value, 'upload.bin');
  }
  return call(`/admin/api/media${query}`, { method: 'POST', headers: auth(), body: form });
}

const rowsWithKey = (key: string) => withDb((db) => db.select().from(media).where(eq(media.key, key)));

// --- Upload -----------------------------------------------------------------------

describe('POST /admin/api/media', () => {
  it('stores a raw PNG and answers 201 with its key and URL', async () => {
    const png = await makePng(3, 2);
    const res = await uploadRaw(png, 'image/png');
    const body = await res.json<any>();
    expect(res.status, JSON.stringify(body)).toBe(201);
    expect(body).toMatchObject({ contentType: 'image/png', bytes: png.length, width: 3, height: 2, productId: null, alt: '', position: 0 });
    expect(body.id).toMatch(/^med_[0-9a-z]{26}$/);
    expect(body.key).toMatch(/^uploads\/[0-9a-f]{32}\.png$/);
    expect(body.url).toBe(`/media/${body.key}`);
    expect(res.headers.get('location')).toBe(body.url);

    const [row] = await rowsWithKey(body.key);
    expect(row).toMatchObject({ id: body.id, contentType: 'image/png', bytes: png.length, width: 3, height: 2, productId: null });

    const object = await env.MEDIA.head(body.key);
    expect(object?.httpMetadata?.contentType).toBe('image/png');
    expect(object?.httpMetadata?.cacheControl).toBe(MEDIA_CACHE_CONTROL);
  });

  it('keys by content: the same bytes twice are one object and one row (201, then 200)', async () => {
    const png = await makePng(4, 4);
    const first = await uploadRaw(png, 'image/png');
    expect(first.status).toBe(201);
    const a = await first.json<any>();
    const second = await uploadRaw(png, 'image/png', '?alt=ignored');
    expect(second.status).toBe(200);
    const b = await second.json<any>();
    expect(b).toEqual(a);
    expect(await rowsWithKey(a.key)).toHaveLength(1);
  });

  it('takes a multipart upload linked to a product, appended after its images', async () => {
    const before = await withDb((db) =>
      db.select({ n: sql<number>`coalesce(max(${media.position}) + 1, 0)`.mapWith(Number) }).from(media).where(eq(media.productId, productId)),
    );
    const jpeg = makeJpeg(640, 480);
    const res = await uploadForm({ file: new Blob([jpeg], { type: 'image/jpeg' }), productId, alt: 'Front view' });
    const body = await res.json<any>();
    expect(res.status, JSON.stringify(body)).toBe(201);
    expect(body).toMatchObject({ contentType: 'image/jpeg', width: 640, height: 480, productId, alt: 'Front view', position: before[0]!.n });
    expect(body.key).toMatch(/^uploads\/[0-9a-f]{32}\.jpg$/);
    const [row] = await rowsWithKey(body.key);
    expect(row).toMatchObject({ productId, alt: 'Front view', position: before[0]!.n });
  });

  it('takes metadata from the query for a raw upload, and an explicit position', async () => {
    const res = await uploadRaw(GIF_1X1, 'image/gif', `?productId=${productId}&alt=Tiny&position=7`);
    const body = await res.json<any>();
    expect(res.status, JSON.stringify(body)).toBe(201);
    expect(body).toMatchObject({ contentType: 'image/gif', productId, alt: 'Tiny', position: 7, width: 1, height: 1 });
    expect(body.key).toMatch(/\.gif$/);
  });

  it('refuses bytes that are not the declared type (400 invalid_request on file)', async () => {
    const png = await makePng(1, 1);
    const body = await expectEnvelope(await uploadRaw(png, 'image/jpeg'), 400, 'invalid_request');
    expect(body.error.details).toEqual([{ in: 'body', field: 'file', message: expect.stringContaining('image/png') }]);

    const renamed = new TextEncoder().encode('<html><script>alert(1)</script></html>');
    const form = await expectEnvelope(await uploadForm({ file: new Blob([renamed], { type: 'image/png' }) }), 400, 'invalid_request');
    expect(form.error.details).toEqual([{ in: 'body', field: 'file', message: expect.any(String) }]);
  });

  it('refuses a type outside the allow-list', async () => {
    const body = await expectEnvelope(await uploadRaw(new TextEncoder().encode('hello'), 'text/plain'), 400, 'invalid_request');
    expect(body.error.details[0]).toMatchObject({ in: 'header', field: 'content-type' });
    const svg = new TextEncoder().encode('<svg xmlns="http://www.w3.org/2000/svg"/>');
    await expectEnvelope(await uploadForm({ file: new Blob([svg], { type: 'image/svg+xml' }) }), 400, 'invalid_request');
  });

  it('refuses an empty body', async () => {
    const body = await expectEnvelope(await uploadRaw(new Uint8Array(), 'image/png'), 400, 'invalid_request');
    expect(body.error.details[0]).toMatchObject({ in: 'body', field: 'file' });
  });

  it('refuses a multipart body without a file, with unknown fields, or with bad metadata', async () => {
    const png = new Blob([await makePng(1, 1)], { type: 'image/png' });
    const missing = await expectEnvelope(await uploadForm({ alt: 'x' }), 400, 'invalid_request');
    expect(missing.error.details).toEqual([expect.objectContaining({ field: 'file' })]);
    const unknown = await expectEnvelope(await uploadForm({ file: png, role: 'owner' }), 400, 'invalid_request');
    expect(unknown.error.details).toEqual([{ in: 'body', field: 'role', message: 'Unknown field.' }]);
    const position = await expectEnvelope(await uploadForm({ file: png, position: '-1' }), 400, 'invalid_request');
    expect(position.error.details[0]).toMatchObject({ in: 'body', field: 'position' });
    await expectEnvelope(await uploadRaw(await makePng(1, 1), 'image/png', '?position=first'), 400, 'invalid_request');
  });

  it('answers 422 unknown_product for a product that does not exist', async () => {
    const res = await uploadRaw(await makePng(2, 2), 'image/png', '?productId=prd_doesnotexist');
    await expectEnvelope(res, 422, 'unknown_product');
    const form = await uploadForm({ file: new Blob([await makePng(2, 2)], { type: 'image/png' }), productId: 'prd_nope' });
    await expectEnvelope(form, 422, 'unknown_product');
  });

  it('answers 413 payload_too_large over 10 MiB', async () => {
    const big = new Uint8Array(MEDIA_UPLOAD_LIMIT_BYTES + 1);
    big.set((await makePng(1, 1)).subarray(0, 33));
    await expectEnvelope(await uploadRaw(big, 'image/png'), 413, 'payload_too_large');
  });

  // workerd logs "read end of pipe was aborted" here: the Worker stops reading
  // the body at the limit, which is the point.
  it('answers 413 for an oversized streamed body without Content-Length', async () => {
    const chunk = new Uint8Array(1024 * 1024);
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent > MEDIA_UPLOAD_LIMIT_BYTES) return controller.close();
        sent += chunk.length;
        controller.enqueue(chunk);
      },
    });
    const res = await call('/admin/api/media', { method: 'POST', headers: { ...auth(), 'content-type': 'image/png' }, body: stream });
    await expectEnvelope(res, 413, 'payload_too_large');
  });

  it('answers 401 unauthorized without a token', async () => {
    const res = await call('/admin/api/media', { method: 'POST', headers: { 'content-type': 'image/png' }, body: await makePng(1, 1) });
    await expectEnvelope(res, 401, 'unauthorized');
    const bad = await uploadRaw(await makePng(1, 1), 'image/png', '', `nope_${randomToken(16)}`);
    await expectEnvelope(bad, 401, 'unauthorized');
  });

  it('answers 403 forbidden for a readonly token', async () => {
    await expectEnvelope(await uploadRaw(await makePng(1, 1), 'image/png', '', readonlyToken), 403, 'forbidden');
  });

  it('is documented in the OpenAPI document with the admin token scheme', async () => {
    const doc = await (await call('/api/openapi.json')).json<any>();
    const op = doc.paths['/admin/api/media']?.post;
    expect(op).toBeDefined();
    expect(op.security).toEqual([{ adminToken: [] }]);
    expect(Object.keys(op.requestBody.content)).toEqual(expect.arrayContaining(['multipart/form-data', 'image/png']));
    expect(op.parameters.map((p: any) => p.name)).toEqual(expect.arrayContaining(['productId', 'alt', 'position']));
    expect(Object.keys(op.responses)).toEqual(expect.arrayContaining(['200', '201', '400', '401', '403', '413', '422']));
    expect(doc.paths['/media/{key}']?.get).toBeDefined();
  });
});

// --- Serving ----------------------------------------------------------------------

describe('GET /media/:key', () => {
  async function uploaded(): Promise<{ key: string; url: string; png: Uint8Array }> {
    const png = await makePng(5, 5);
    const res = await uploadRaw(png, 'image/png');
    expect(res.status).toBe(201);
    const { key, url } = await res.json<any>();
    return { key, url, png };
  }

  it('serves the stored bytes with immutable caching, an ETag and nosniff', async () => {
    const { key, url, png } = await uploaded();
    const res = await call(url);
    expect(res.status).toBe(200);
    expect(new Uint8Array(await res.arrayBuffer())).toEqual(png);
    expect(res.headers.get('content-type')).toBe('image/png');
    expect(res.headers.get('cache-control')).toBe(MEDIA_CACHE_CONTROL);
    expect(res.headers.get('content-length')).toBe(String(png.length));
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    const object = await env.MEDIA.head(key);
    expect(res.headers.get('etag')).toBe(object!.httpEtag);
  });

  it('serves the same answer again (from the edge cache once it is filled)', async () => {
    const { url, png } = await uploaded();
    const first = await call(url);
    await first.arrayBuffer();
    const etag = first.headers.get('etag');
    // The cache write runs after the response; give it a moment.
    await new Promise((r) => setTimeout(r, 50));
    const second = await call(url);
    expect(second.status).toBe(200);
    expect(second.headers.get('etag')).toBe(etag);
    expect(second.headers.get('cache-control')).toBe(MEDIA_CACHE_CONTROL);
    expect(new Uint8Array(await second.arrayBuffer())).toEqual(png);
  });

  it('answers 304 to a matching If-None-Match, from R2 and from the cache', async () => {
    const { url } = await uploaded();
    // First request with a condition: nothing cached yet, so R2 answers.
    const object = await env.MEDIA.head(url.slice('/media/'.length));
    const cold = await call(url, { headers: { 'if-none-match': object!.httpEtag } });
    expect(cold.status).toBe(304);
    expect(cold.headers.get('etag')).toBe(object!.httpEtag);
    expect(await cold.text()).toBe('');

    const full = await call(url);
    await full.arrayBuffer();
    await new Promise((r) => setTimeout(r, 50));
    const warm = await call(url, { headers: { 'if-none-match': `"other", ${full.headers.get('etag')}` } });
    expect(warm.status).toBe(304);

    const stale = await call(url, { headers: { 'if-none-match': '"something-else"' } });
    expect(stale.status).toBe(200);
    await stale.arrayBuffer();
  });

  it('answers HEAD with the headers and no body', async () => {
    const { url, png } = await uploaded();
    const res = await call(url, { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/png');
    expect(res.headers.get('cache-control')).toBe(MEDIA_CACHE_CONTROL);
    expect(res.headers.get('etag')).toBeTruthy();
    expect(res.headers.get('content-length')).toBe(String(png.length));
    expect(await res.text()).toBe('');
  });

  it('serves byte ranges, and 416 outside the image', async () => {
    const { url, png } = await uploaded();
    const res = await call(url, { headers: { range: 'bytes=0-7' } });
    expect(res.status).toBe(206);
    expect(res.headers.get('content-range')).toBe(`bytes 0-7/${png.length}`);
    expect(new Uint8Array(await res.arrayBuffer())).toEqual(png.subarray(0, 8));

    const suffix = await call(url, { headers: { range: 'bytes=-4' } });
    expect(suffix.status).toBe(206);
    expect(new Uint8Array(await suffix.arrayBuffer())).toEqual(png.subarray(png.length - 4));

    const outside = await call(url, { headers: { range: `bytes=${png.length}-` } });
    await expectEnvelope(outside, 416, 'range_not_satisfiable');
    expect(outside.headers.get('content-range')).toBe(`bytes */${png.length}`);

    // Several ranges: ignored, the whole image is sent.
    const multi = await call(url, { headers: { range: 'bytes=0-1,4-5' } });
    expect(multi.status).toBe(200);
    expect(new Uint8Array(await multi.arrayBuffer())).toEqual(png);
  });

  it('answers 404 JSON for an unknown key', async () => {
    await expectEnvelope(await call('/media/uploads/0123456789abcdef0123456789abcdef.png'), 404, 'not_found');
    // Seeded rows name objects the seed never uploaded.
    await expectEnvelope(await call('/media/seed/no-such-product-1.jpg'), 404, 'not_found');
  });

  it('answers 404 for traversal and keys outside the allowed alphabet, without reaching R2', async () => {
    await expectEnvelope(await call('/media/uploads%2F..%2F..%2Fsecret'), 404, 'not_found');
    await expectEnvelope(await call('/media/a/..%2f..%2fetc/passwd'), 404, 'not_found');
    await expectEnvelope(await call('/media/uploads/a%20b.png'), 404, 'not_found');
    await expectEnvelope(await call(`/media/${'a'.repeat(201)}`), 404, 'not_found');
  });
});

describe('helpers', () => {
  it('validates servable keys', () => {
    expect(isServableKey('uploads/0123abcd.png')).toBe(true);
    expect(isServableKey('seed/linen-shirt-1.jpg')).toBe(true);
    expect(isServableKey('uploads/../x')).toBe(false);
    expect(isServableKey('a b')).toBe(false);
    expect(isServableKey('')).toBe(false);
  });

  it('parses single byte ranges and ignores the rest', () => {
    expect(parseRange('bytes=0-99')).toEqual({ offset: 0, length: 100 });
    expect(parseRange('bytes=100-')).toEqual({ offset: 100 });
    expect(parseRange('bytes=-50')).toEqual({ suffix: 50 });
    expect(parseRange('bytes=5-1')).toBeNull();
    expect(parseRange('bytes=0-1,3-4')).toBeNull();
    expect(parseRange('items=0-1')).toBeNull();
    expect(parseRange(undefined)).toBeNull();
  });

  it('compares ETags weakly for If-None-Match', () => {
    expect(etagMatches('"abc"', '"abc"')).toBe(true);
    expect(etagMatches('W/"abc"', '"abc"')).toBe(true);
    expect(etagMatches('"x", "abc"', '"abc"')).toBe(true);
    expect(etagMatches('*', '"abc"')).toBe(true);
    expect(etagMatches('"x"', '"abc"')).toBe(false);
    expect(etagMatches(undefined, '"abc"')).toBe(false);
  });
});
