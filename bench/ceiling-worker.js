/**
 * The ceiling the benchmarks compare against: the least a Worker can do on
 * this machine, run by the same workerd, through the same Miniflare entry and
 * loaded by the same wrk script as the store.
 *
 *   GET /ceiling         a fixed small JSON body, nothing else;
 *   GET /do              an empty RPC, `ping()`, on one SQLite-backed Durable
 *                        Object (fixed name);
 *   GET /do?spread=N     the same RPC on one of N objects, picked at random;
 *   GET /cache           one Cache API hit (`caches.default.match`) of a small
 *                        JSON document, returned as is;
 *   GET /kv              one Workers KV read of a small JSON document;
 *   GET /redis           one Redis GET of a small value over Upstash REST
 *                        (`fetch` to the same bridge and Redis the store
 *                        uses): what the store's cart routes are read against.
 *
 * /cache and /kv measure what Miniflare's local Cache API and KV cost by
 * themselves (both are simulated inside workerd, not Cloudflare's), so the
 * store's cache and KV hits can be read against them.
 * Plain JavaScript on purpose: it is loaded as-is, with no build step.
 */
import { DurableObject } from 'cloudflare:workers';

const BODY = JSON.stringify({ ok: true, service: 'ceiling' });
const JSON_HEADERS = { 'content-type': 'application/json; charset=UTF-8' };
/** About the size of a product document (~700 bytes). */
const DOC = JSON.stringify({ etag: 'W/"000000000000000000000000"', body: { id: 'prod_ceiling', title: 'x'.repeat(600) } });

export class Ceiling extends DurableObject {
  /** Does nothing: the cost measured is the RPC round trip itself. */
  ping() {
    return 1;
  }
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === '/ceiling') {
      return new Response(BODY, { headers: JSON_HEADERS });
    }
    if (url.pathname === '/do') {
      const spread = Math.max(1, Math.min(1024, Number(url.searchParams.get('spread')) || 1));
      const name = spread === 1 ? 'ceiling' : `ceiling-${Math.floor(Math.random() * spread)}`;
      const stub = env.CEILING.get(env.CEILING.idFromName(name));
      const pong = await stub.ping();
      return new Response(`{"ok":true,"pong":${pong}}`, { headers: JSON_HEADERS });
    }
    if (url.pathname === '/cache') {
      const key = new Request('https://ceiling.internal/doc');
      const hit = await caches.default.match(key);
      if (!hit) {
        await caches.default.put(key, new Response(DOC, { headers: { ...JSON_HEADERS, 'cache-control': 'public, max-age=86400' } }));
        return new Response(DOC, { headers: { ...JSON_HEADERS, 'x-cache-tier': 'origin' } });
      }
      return new Response(hit.body, { headers: { ...JSON_HEADERS, 'x-cache-tier': 'cache' } });
    }
    if (url.pathname === '/kv') {
      let doc = await env.KV.get('doc');
      let tier = 'kv';
      if (doc === null) {
        await env.KV.put('doc', DOC);
        doc = DOC;
        tier = 'origin';
      }
      return new Response(doc, { headers: { ...JSON_HEADERS, 'x-cache-tier': tier } });
    }
    if (url.pathname === '/redis' && env.UPSTASH_REDIS_REST_URL) {
      const res = await fetch(`${env.UPSTASH_REDIS_REST_URL}/get/bench:ceiling`, {
        headers: { authorization: `Bearer ${env.UPSTASH_REDIS_REST_TOKEN}` },
      });
      return new Response(await res.text(), { status: res.status, headers: { ...JSON_HEADERS, 'x-cache-tier': 'redis' } });
    }
    return new Response('{"error":"not_found"}', { status: 404, headers: JSON_HEADERS });
  },
};
