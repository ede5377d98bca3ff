/** Request body size limits answered with the 413 envelope. */
import type { MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { ApiError } from '../lib/errors';
import { sendError } from './errors';
import type { AppEnv } from '../types';

/** Rejects bodies over `maxBytes` with 413 `payload_too_large`, before they are read whole. */
export function limitBody(maxBytes: number): MiddlewareHandler<AppEnv> {
  return bodyLimit({
    maxSize: maxBytes,
    onError: (c) => sendError(c as never, new ApiError(413, 'payload_too_large', `The request body exceeds ${maxBytes} bytes.`)),
  });
}
