import { exports } from 'cloudflare:workers';
import { Hono } from 'hono';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { API_BODY_LIMIT_BYTES } from '../app';
import type { AppEnv } from '../types';
import { errorHandler } from './errors';

const call = (path: string, init?: RequestInit) => exports.default.fetch(new Request(`http://pasar.test${path}`, init));

async function expectEnvelope(res: Response, status: number, code: string) {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toContain('application/json');
  const body = await res.json<any>();
  expect(body.error.code).toBe(code);
  expect(body.error.message).toEqual(expect.any(String));
  expect(body.error.message.length).toBeGreaterThan(0);
  return body;
}

describe('error envelope', () => {
  it('answers an unknown API path with 404 not_found as JSON', async () => {
    await expectEnvelope(await call('/api/no-such-thing'), 404, 'not_found');
  });

  it('answers a known path with the wrong method with 405 and Allow', async () => {
    const res = await call('/api/regions', { method: 'DELETE' });
    await expectEnvelope(res, 405, 'method_not_allowed');
    expect(res.headers.get('allow')).toContain('GET');
  });

  it('answers an oversized body with 413 payload_too_large', async () => {
    const res = await call('/api/regions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ pad: 'x'.repeat(API_BODY_LIMIT_BYTES + 1) }),
    });
    await expectEnvelope(res, 413, 'payload_too_large');
  });

  it('never leaks an internal error as HTML', async () => {
    const res = await call('/api/health', { headers: { 'x-region': '<script>' } });
    const body = await expectEnvelope(res, 400, 'invalid_region');
    expect(JSON.stringify(body)).not.toContain('<html');
  });
});

describe('OpenAPI document', () => {
  it('is served at /api/openapi.json and documents health and regions', async () => {
    const res = await call('/api/openapi.json');
    expect(res.status).toBe(200);
    const doc = await res.json<any>();
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/api/health', '/api/regions']));
    expect(doc.components.schemas.Error).toBeDefined();
  });

  it('has a docs UI at /api/docs', async () => {
    const res = await call('/api/docs');
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('/api/openapi.json');
  });
});

describe('a body of a content type the route does not take', () => {
  it('is 415 unsupported_media_type in the envelope', async () => {
    await expectEnvelope(await call('/api/auth/login', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hi' }), 415, 'unsupported_media_type');
  });
});

describe('what the error handler logs', () => {
  const app = new Hono<AppEnv>();
  app.onError(errorHandler());
  app.get('/outage', () => {
    throw new Error('x', { cause: Object.assign(new Error('the database system is shutting down'), { code: '57P01' }) });
  });
  app.get('/bug', () => {
    throw new TypeError('cannot read properties of undefined');
  });
  afterEach(() => vi.restoreAllMocks());

  it('answers a dependency outage 503 with Retry-After and logs it as a warning, not an error', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const error = vi.spyOn(console, 'error').mockImplementation(() => {});
    const res = await app.request('/outage');
    await expectEnvelope(res, 503, 'unavailable');
    expect(res.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(warn).toHaveBeenCalledTimes(1);
    expect(error).not.toHaveBeenCalled();
  });

  it('answers a bug 500 internal and logs it as an error with its stack', async () => {
    const error = vi.spyOn(console, 'error').mockImplementation(() => {});
    const res = await app.request('/bug');
    await expectEnvelope(res, 500, 'internal');
    expect(error).toHaveBeenCalledTimes(1);
    expect(String(error.mock.calls[0]![0])).toContain('"stack"');
  });
});
