import { exports } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { API_BODY_LIMIT_BYTES } from '../app';

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
