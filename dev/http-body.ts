/** Reading request bodies with a size limit, for the local stand-in services in dev/. */
import type { IncomingMessage } from 'node:http';

/**
 * The whole body of `req`, refused with `tooLarge()` as soon as it is known to
 * pass `limit` bytes (from Content-Length, or while streaming), so an
 * oversized upload is never buffered whole.
 */
export function readBody(req: IncomingMessage, limit: number, tooLarge: () => Error): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      reject(tooLarge());
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    req.on('data', (chunk: Buffer) => {
      if (failed) return;
      size += chunk.length;
      if (size > limit) {
        failed = true;
        chunks.length = 0;
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (!failed) resolve(Buffer.concat(chunks));
    });
    req.on('error', (err) => {
      failed = true;
      reject(err);
    });
  });
}
