/**
 * Drives the bridge with the real `@upstash/redis` client against the real
 * Redis on 127.0.0.1:6379, so a protocol mismatch shows up here rather than
 * as a confusing failure inside workerd. Every key lives under a random
 * prefix and is deleted afterwards.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { Redis } from '@upstash/redis';
import { Redis as IORedis } from 'ioredis';
import { createHash } from 'node:crypto';
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { startUpstashBridge, type UpstashBridge } from './upstash-bridge';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const TOKEN = `test-token-${randomUUID()}`;
const prefix = `upstash-bridge-test:${randomUUID()}:`;
const key = (name: string) => `${prefix}${name}`;

/** Strings that break naive encodings: multi-byte UTF-8, NUL, controls, JSON metacharacters. */
const AWKWARD = 'héllo wörld · 日本語 · 🇮🇩🌏 · "quoted" \\ back\\slash \u0000nul\u0001\t\r\n end';

let bridge: UpstashBridge;
let direct: IORedis;
const silent = () => {};

/** POSTs to the bridge without the client, to see the wire format itself. */
async function post(
  path: string,
  body: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; json: unknown; headers: Headers }> {
  const res = await fetch(`${bridge.url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', ...headers },
    body,
  });
  return { status: res.status, json: await res.json(), headers: res.headers };
}

function client(opts: { responseEncoding?: false; token?: string } = {}): Redis {
  return new Redis({
    url: bridge.url,
    token: opts.token ?? TOKEN,
    ...(opts.responseEncoding === false ? { responseEncoding: false } : {}),
    enableTelemetry: false,
    // The client retries network failures with backoff; HTTP errors are never
    // retried, so this only keeps a broken test from stalling for seconds.
    retry: false,
  });
}

beforeAll(async () => {
  direct = new IORedis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await direct.connect();
  bridge = await startUpstashBridge({ redisUrl: REDIS_URL, token: TOKEN, port: 0, log: silent });
});

afterAll(async () => {
  await bridge?.close();
  if (direct) {
    const keys = await direct.keys(`${prefix}*`);
    if (keys.length > 0) await direct.del(...keys);
    await direct.quit();
  }
});

describe('single commands through @upstash/redis', () => {
  it('sets and gets a plain string', async () => {
    const redis = client();
    expect(await redis.set(key('greeting'), 'selamat pagi')).toBe('OK');
    expect(await redis.get(key('greeting'))).toBe('selamat pagi');
    expect(await direct.get(key('greeting'))).toBe('selamat pagi');
  });

  it('round-trips JSON values through automatic (de)serialization', async () => {
    const redis = client();
    const cart = { sku: 'BATIK-01', qty: 2, price: 125_000.5, tags: ['sale', 'ñ'], note: null };
    await redis.set(key('cart'), cart);
    expect(await redis.get(key('cart'))).toEqual(cart);
    expect(JSON.parse((await direct.get(key('cart')))!)).toEqual(cart);
  });

  it('round-trips unicode and control characters with base64 response encoding', async () => {
    const redis = client();
    await redis.set(key('awkward-b64'), AWKWARD);
    expect(await redis.get(key('awkward-b64'))).toBe(AWKWARD);
    const raw = await direct.getBuffer(key('awkward-b64'));
    expect(raw?.equals(Buffer.from(AWKWARD, 'utf8'))).toBe(true);
  });

  it('round-trips unicode and control characters without response encoding', async () => {
    const redis = client({ responseEncoding: false });
    await redis.set(key('awkward-plain'), AWKWARD);
    expect(await redis.get(key('awkward-plain'))).toBe(AWKWARD);
    expect(await redis.mget(key('awkward-plain'), key('missing'))).toEqual([AWKWARD, null]);
  });

  it('answers the status reply OK unencoded in base64 mode, as the client expects', async () => {
    const res = await post('/', JSON.stringify(['SET', key('status'), 'v']), {
      'upstash-encoding': 'base64',
    });
    expect(res).toMatchObject({ status: 200, json: { result: 'OK' } });
    // Every other string is base64, including non-OK status replies like PONG.
    const ping = await post('/', '["PING"]', { 'upstash-encoding': 'base64' });
    expect(ping.json).toEqual({ result: Buffer.from('PONG').toString('base64') });
    expect(await client().ping()).toBe('PONG');
  });

  it('passes non-UTF-8 bytes through base64 exactly', async () => {
    const bytes = Buffer.from([0xff, 0x00, 0xfe, 0x80, 0x41]);
    await direct.set(key('binary'), bytes);
    const res = await post('/', JSON.stringify(['GET', key('binary')]), {
      'upstash-encoding': 'base64',
    });
    expect(res.json).toEqual({ result: bytes.toString('base64') });
  });

  it('base64-encodes strings nested in arrays but leaves integers and nulls alone', async () => {
    const script = "return {1, 'OK', {ARGV[1], 2}, false}";
    const res = await post('/', JSON.stringify(['EVAL', script, '0', 'é']), {
      'upstash-encoding': 'base64',
    });
    const b64 = (s: string) => Buffer.from(s).toString('base64');
    // Lua false becomes a RESP nil.
    expect(res.json).toEqual({ result: [1, b64('OK'), [b64('é'), 2], null] });
  });

  it('converts number and boolean arguments to strings', async () => {
    const res = await post('/', JSON.stringify(['SET', key('typed'), 42.5]));
    expect(res.status).toBe(200);
    await post('/', JSON.stringify(['SET', key('flag'), true]));
    expect(await direct.mget(key('typed'), key('flag'))).toEqual(['42.5', 'true']);
  });

  it('increments counters', async () => {
    const redis = client();
    expect(await redis.incr(key('counter'))).toBe(1);
    expect(await redis.incrby(key('counter'), 41)).toBe(42);
  });

  it('stores hashes and increments hash fields', async () => {
    const redis = client();
    await redis.hset(key('product'), { name: 'Kopi Luwak', stock: 10, '2': 'two', '1': 'one' });
    expect(await redis.hincrby(key('product'), 'stock', -3)).toBe(7);
    expect(await redis.hgetall(key('product'))).toEqual({
      name: 'Kopi Luwak',
      stock: 7,
      '1': 'one',
      '2': 'two',
    });
    // Raw reply stays a flat field/value array in insertion order, not an object.
    const raw = await post('/', JSON.stringify(['HGETALL', key('product')]));
    // (The client sent integer-like fields first: that is JS object key order.)
    expect(raw.json).toEqual({
      result: ['1', 'one', '2', 'two', 'name', 'Kopi Luwak', 'stock', '7'],
    });
  });

  it('expires keys and reports their TTL', async () => {
    const redis = client();
    await redis.set(key('session'), 'abc');
    expect(await redis.ttl(key('session'))).toBe(-1);
    expect(await redis.expire(key('session'), 120)).toBe(1);
    const ttl = await redis.ttl(key('session'));
    expect(ttl).toBeGreaterThan(110);
    expect(ttl).toBeLessThanOrEqual(120);
    await redis.set(key('short'), 'x', { ex: 60 });
    expect(await redis.ttl(key('short'))).toBeGreaterThan(50);
  });

  it('adds to and ranges over sorted sets, with scores', async () => {
    const redis = client();
    const board = key('leaderboard');
    await redis.zadd(board, { score: 30, member: 'cici' }, { score: 10, member: 'ani' });
    await redis.zadd(board, { score: 20, member: 'budi' });
    expect(await redis.zrange(board, 0, -1)).toEqual(['ani', 'budi', 'cici']);
    const top = await redis.zrange(board, 0, 0, { rev: true, withScores: true });
    expect(top).toEqual(['cici', 30]);
  });

  it('runs Lua scripts with keys and arguments', async () => {
    const redis = client();
    const script = `
      local n = redis.call('INCRBY', KEYS[1], ARGV[1])
      return {n, redis.call('GET', KEYS[1]) .. ARGV[2]}
    `;
    expect(await redis.eval(script, [key('lua')], ['5', '-ok'])).toEqual([5, '5-ok']);
  });

  it('lets createScript fall back from EVALSHA to EVAL on NOSCRIPT', async () => {
    // The prefix makes the script text, and so its SHA, unique to this run.
    const script = client().createScript<string>(`-- ${prefix}\nreturn ARGV[1]`);
    expect(await script.exec([], ['first'])).toBe('first');
    expect(await script.exec([], ['cached'])).toBe('cached');
  });

  it("runs scripts with Upstash's allow-key-locking flag, which Redis itself refuses, and caches them under the client's SHA", async () => {
    const text = `#!lua flags=allow-key-locking\n-- ${prefix}\nreturn redis.call('INCR', KEYS[1])`;
    await expect(direct.eval(text, 1, key('flagged'))).rejects.toThrow(/allow-key-locking/);
    const redis = client();
    const sha = createHash('sha1').update(text).digest('hex');
    await expect(redis.evalsha(sha, [key('flagged')], [])).rejects.toThrow(/NOSCRIPT/);
    expect(await redis.eval(text, [key('flagged')], [])).toBe(1);
    expect(await redis.evalsha(sha, [key('flagged')], [])).toBe(2);
    const mixed = `#!lua flags=no-writes,allow-key-locking\n-- ${prefix}\nreturn redis.call('GET', KEYS[1])`;
    expect(await redis.eval(mixed, [key('flagged')], [])).toBe(2);
  });

  it('answers path-style commands with URL-decoded segments and query arguments', async () => {
    const k = encodeURIComponent(key('path/style'));
    const auth = { authorization: `Bearer ${TOKEN}` };
    const set = await fetch(`${bridge.url}/set/${k}/a%20b%2Fc?EX=100`, { headers: auth });
    expect(await set.json()).toEqual({ result: 'OK' });
    const get = await fetch(`${bridge.url}/get/${k}`, { method: 'POST', headers: auth });
    expect(await get.json()).toEqual({ result: 'a b/c' });
    expect(await direct.ttl(key('path/style'))).toBeGreaterThan(90);
    // A POST body is the value, appended after the path arguments.
    const body = await fetch(`${bridge.url}/set/${k}`, {
      method: 'POST',
      headers: auth,
      body: '{"x":1}',
    });
    expect(body.status).toBe(200);
    expect(await direct.get(key('path/style'))).toBe('{"x":1}');
  });

  it('reports a Redis error as HTTP 400 which the client throws', async () => {
    const redis = client();
    await redis.set(key('not-a-number'), 'abc');
    await expect(redis.incr(key('not-a-number'))).rejects.toThrow(/not an integer/);
    const res = await post('/', JSON.stringify(['INCR', key('not-a-number')]));
    expect(res.status).toBe(400);
    expect(res.json).toEqual({ error: 'ERR value is not an integer or out of range' });
  });

  it('echoes the upstash-sync-token header', async () => {
    const res = await post('/', '["PING"]', { 'upstash-sync-token': 'sync-123' });
    expect(res.headers.get('upstash-sync-token')).toBe('sync-123');
  });
});

describe('pipelines and transactions', () => {
  it('runs a pipeline in order and fails only the bad command', async () => {
    const redis = client();
    const results = await redis
      .pipeline()
      .set(key('p'), 'text')
      .incr(key('p'))
      .append(key('p'), '-more')
      .get(key('p'))
      .exec({ keepErrors: true });
    expect(results.map((r) => r.error)).toEqual([
      undefined,
      'ERR value is not an integer or out of range',
      undefined,
      undefined,
    ]);
    expect(results.map((r) => r.result)).toEqual(['OK', undefined, 9, 'text-more']);
    // Without keepErrors the client turns the failed entry into an exception.
    await expect(redis.pipeline().get(key('p')).incr(key('p')).exec()).rejects.toThrow(
      /Command 2 \[ incr \] failed/,
    );
  });

  it('reports an unsupported command inside a pipeline as that entry’s error', async () => {
    const batch = [['PING'], ['BLPOP', key('q'), '0'], ['PING']];
    const res = await post('/pipeline', JSON.stringify(batch));
    expect(res.status).toBe(200);
    expect(res.json).toEqual([
      { result: 'PONG' },
      { error: 'ERR command not supported over REST: BLPOP' },
      { result: 'PONG' },
    ]);
  });

  it('runs multi() as one MULTI/EXEC transaction', async () => {
    const redis = client();
    const results = await redis
      .multi()
      .set(key('tx'), 1)
      .incr(key('tx'))
      .hset(key('tx-hash'), { field: 'value' })
      .get(key('tx'))
      .exec();
    expect(results).toEqual(['OK', 2, 1, 2]);
  });

  it('keeps concurrent transactions from interleaving', async () => {
    // Each transaction increments twice and then reads: if another transaction
    // could slip in between, some reads would see an odd count.
    const runs = Array.from({ length: 25 }, () =>
      client().multi().incr(key('atomic')).incr(key('atomic')).get<number>(key('atomic')).exec(),
    );
    const reads = (await Promise.all(runs)).map((r) => Number(r[2]));
    expect(reads.every((n) => n % 2 === 0)).toBe(true);
    expect(Math.max(...reads)).toBe(50);
  });

  it('reports a runtime error inside a transaction per command, like Redis', async () => {
    const redis = client();
    const results = await redis
      .multi()
      .set(key('tx-runtime'), 'text')
      .incr(key('tx-runtime'))
      .get(key('tx-runtime'))
      .exec({ keepErrors: true });
    expect(results.map((r) => r.error)).toEqual([
      undefined,
      'ERR value is not an integer or out of range',
      undefined,
    ]);
  });

  it('rejects a transaction with a queueing error as a whole, applying nothing', async () => {
    const res = await post(
      '/multi-exec',
      JSON.stringify([['SET', key('aborted'), 'x'], ['NOSUCHCOMMAND', 'a']]),
    );
    expect(res.status).toBe(400);
    expect((res.json as { error: string }).error).toMatch(/^EXECABORT .*unknown command/);
    expect(await direct.exists(key('aborted'))).toBe(0);
  });

  it('rejects a transaction holding an unsupported command before running any of it', async () => {
    const res = await post(
      '/multi-exec',
      JSON.stringify([['SET', key('aborted2'), 'x'], ['SUBSCRIBE', 'ch']]),
    );
    expect(res).toMatchObject({
      status: 400,
      json: { error: 'ERR command not supported over REST: SUBSCRIBE' },
    });
    expect(await direct.exists(key('aborted2'))).toBe(0);
  });
});

describe('request validation', () => {
  it('rejects a wrong token with 401, which the client throws', async () => {
    await expect(client({ token: 'wrong' }).get(key('x'))).rejects.toThrow(/Unauthorized/);
    const res = await post('/', '["PING"]', { authorization: 'Bearer wrong' });
    expect(res).toMatchObject({ status: 401, json: { error: 'Unauthorized' } });
    const none = await fetch(`${bridge.url}/ping`);
    expect(none.status).toBe(401);
  });

  it('accepts the token as a _token query parameter', async () => {
    const res = await fetch(`${bridge.url}/ping?_token=${encodeURIComponent(TOKEN)}`);
    expect(await res.json()).toEqual({ result: 'PONG' });
  });

  it.each([
    ['SUBSCRIBE', ['SUBSCRIBE', 'news']],
    ['BLPOP', ['BLPOP', 'q', '0']],
    ['BZPOPMIN', ['bzpopmin', 'z', '1']],
    ['SELECT', ['select', '1']],
    ['MULTI', ['MULTI']],
    ['WATCH', ['WATCH', 'k']],
    ['XREAD', ['XREAD', 'BLOCK', '0', 'STREAMS', 's', '$']],
  ] as const)('refuses %s, which cannot work over stateless REST', async (name, command) => {
    await expect(client().exec([...command])).rejects.toThrow(
      `ERR command not supported over REST: ${name}`,
    );
  });

  it('still allows a non-blocking XREAD', async () => {
    await direct.xadd(key('stream'), '*', 'f', 'v');
    const command = ['XREAD', 'COUNT', '1', 'STREAMS', key('stream'), '0'];
    const res = await post('/', JSON.stringify(command));
    expect(res.status).toBe(200);
  });

  it('answers malformed JSON with 400', async () => {
    const res = await post('/', '["SET", "k"');
    expect(res.status).toBe(400);
    expect((res.json as { error: string }).error).toMatch(/malformed JSON/);
  });

  it.each([
    ['an object', '/', '{"cmd":"PING"}'],
    ['an empty command', '/', '[]'],
    ['a null argument', '/', '["SET","k",null]'],
    ['a flat pipeline', '/pipeline', '["PING"]'],
    ['an empty transaction', '/multi-exec', '[]'],
  ])('answers %s with 400', async (_label, path, body) => {
    const res = await post(path, body);
    expect(res.status).toBe(400);
    expect(res.json).toHaveProperty('error');
  });

  it('answers an oversized body with 413', async () => {
    const huge = JSON.stringify(['SET', key('huge'), 'x'.repeat(11 * 1024 * 1024)]);
    const res = await fetch(`${bridge.url}/`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}` },
      body: huge,
    });
    expect(res.status).toBe(413);
    expect(await direct.exists(key('huge'))).toBe(0);
  });
});

describe('when Redis is unreachable', () => {
  async function freePort(): Promise<number> {
    const server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    server.close();
    await once(server, 'close');
    return port;
  }

  async function startRedisServer(port: number): Promise<ChildProcess> {
    const child = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`redis-server did not start:\n${output}`)),
        5000,
      );
      child.stdout?.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes('Ready to accept connections')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`redis-server exited with ${code}:\n${output}`));
      });
    });
    return child;
  }

  async function stopRedisServer(child: ChildProcess): Promise<void> {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
  }

  it('answers 503 quickly when Redis was never reachable', async () => {
    const port = await freePort();
    const dead = await startUpstashBridge({
      redisUrl: `redis://127.0.0.1:${port}`,
      token: TOKEN,
      log: silent,
    });
    try {
      const started = Date.now();
      const res = await fetch(`${dead.url}/`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}` },
        body: '["PING"]',
      });
      expect(Date.now() - started).toBeLessThan(3000);
      expect(res.status).toBe(503);
      const { error } = (await res.json()) as { error: string };
      expect(error).toMatch(/Redis unavailable.*ECONNREFUSED/);
    } finally {
      await dead.close();
    }
  });

  it('fails fast while Redis is down, then recovers', { timeout: 30_000 }, async () => {
    const port = await freePort();
    let server = await startRedisServer(port);
    const lines: string[] = [];
    const local = await startUpstashBridge({
      redisUrl: `redis://127.0.0.1:${port}`,
      token: TOKEN,
      log: (line) => lines.push(line),
    });
    try {
      const redis = new Redis({ url: local.url, token: TOKEN, retry: false });
      expect(await redis.set('k', 'before')).toBe('OK');

      await stopRedisServer(server);
      const started = Date.now();
      await expect(redis.get('k')).rejects.toThrow(/Redis unavailable/);
      expect(Date.now() - started).toBeLessThan(3000);
      // Still failing, still fast, and the bridge process is still serving.
      const again = Date.now();
      await expect(redis.pipeline().get('k').get('k').exec()).rejects.toThrow(/Redis unavailable/);
      expect(Date.now() - again).toBeLessThan(3000);
      expect(lines.some((l) => l.startsWith('Redis unreachable'))).toBe(true);

      server = await startRedisServer(port);
      const deadline = Date.now() + 10_000;
      let value: unknown;
      for (;;) {
        try {
          value = await redis.set('k', 'after');
          break;
        } catch (err) {
          if (Date.now() > deadline) throw err;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      expect(value).toBe('OK');
      expect(await redis.get('k')).toBe('after');
      expect(lines.some((l) => l.startsWith('Redis reachable again'))).toBe(true);
    } finally {
      await local.close();
      await stopRedisServer(server);
    }
  });

  it('times out instead of hanging when Redis accepts but stops answering', async () => {
    const port = await freePort();
    const server = await startRedisServer(port);
    const local = await startUpstashBridge({
      redisUrl: `redis://127.0.0.1:${port}`,
      token: TOKEN,
      commandTimeoutMs: 500,
      log: silent,
    });
    try {
      const redis = new Redis({ url: local.url, token: TOKEN, retry: false });
      expect(await redis.ping()).toBe('PONG');
      // A stopped process keeps its sockets open: no error, just silence.
      server.kill('SIGSTOP');
      const started = Date.now();
      await expect(redis.ping()).rejects.toThrow(/Redis unavailable.*timed out/);
      expect(Date.now() - started).toBeLessThan(2000);
      server.kill('SIGCONT');
      expect(await redis.ping()).toBe('PONG');
    } finally {
      server.kill('SIGCONT');
      await local.close();
      await stopRedisServer(server);
    }
  });
});
