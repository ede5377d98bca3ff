/**
 * Upstash Redis REST bridge for local development and tests.
 *
 * In production the Worker talks to Upstash through `@upstash/redis`, which
 * speaks HTTP (JSON over fetch), never the Redis wire protocol: workerd has no
 * raw TCP client for it. Locally there is no Upstash, so this bridge accepts
 * the exact requests that client sends and replays them against a real Redis
 * through ioredis. The Worker then runs the production client code unchanged,
 * with `UPSTASH_REDIS_REST_URL` pointed here.
 *
 * Protocol, as `@upstash/redis` 1.x uses it (see its `pkg/http.ts`):
 * - `POST /` with `["CMD", ...args]` answers `{"result": ...}`, or HTTP 400
 *   `{"error": "..."}` when Redis replies with an error.
 * - `POST /pipeline` and `POST /multi-exec` take `[[...], [...]]` and answer an
 *   array of `{"result"}` / `{"error"}` entries, one per command.
 * - `Upstash-Encoding: base64` (the client's default) asks for every string in
 *   a result to be base64 of its raw bytes. The client decodes every string it
 *   gets back except a top-level `"OK"`, which it passes through as is, so the
 *   real service evidently sends status `OK` unencoded; the bridge does too.
 * - `Authorization: Bearer <token>`; the REST API also documents `?_token=`,
 *   which the client never sends but curl users do.
 * - `upstash-sync-token` implements read-your-writes across Upstash replicas.
 *   A single local Redis is read-your-writes already, so it is only echoed.
 * - Path-style commands (`/set/key/value`, POST body appended as the last
 *   argument, query parameters appended after it) are the documented REST
 *   form for curl and are handled too.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Command, Redis, ReplyError } from 'ioredis';
import type { Pipeline } from 'ioredis';
import { readBody } from './http-body';
import { closeOnSignals, runIfMain } from './processes';

/** Options for {@link startUpstashBridge}. */
export interface UpstashBridgeOptions {
  /** Redis to forward to, e.g. `redis://127.0.0.1:6379`. */
  redisUrl: string;
  /** Token clients must present as `Authorization: Bearer <token>`. */
  token: string;
  /** Port to listen on; 0 (the default) picks a free one. */
  port?: number;
  /** Interface to listen on; defaults to `127.0.0.1`. */
  host?: string;
  /** Largest accepted request body; larger ones get 413. Defaults to 10 MiB. */
  maxBodyBytes?: number;
  /**
   * How long a request waits for Redis to become reachable before it is
   * answered with 503. Defaults to 1000 ms.
   */
  unavailableTimeoutMs?: number;
  /**
   * Upper bound on a single Redis round trip, after which the request gets
   * 503. Catches a Redis that accepts connections but never answers (stopped
   * process, full disk during AOF rewrite). Defaults to 10 000 ms.
   */
  commandTimeoutMs?: number;
  /** Receives one line per Redis outage and recovery. Defaults to `console.warn`. */
  log?: (message: string) => void;
}

/** A running bridge. */
export interface UpstashBridge {
  /** Value for `UPSTASH_REDIS_REST_URL`, e.g. `http://127.0.0.1:8079`. */
  url: string;
  port: number;
  /** Stops accepting requests, drops open connections and disconnects from Redis. */
  close(): Promise<void>;
}

type Json = string | number | null | Json[];
/** One command's outcome, as `/pipeline` and `/multi-exec` list them. */
type Entry = { result: Json } | { error: string };
type Arg = string | Buffer;
type ParsedCommand = { name: string; args: Arg[] };

const DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024;

/**
 * Commands that need a dedicated connection or block one. Every request shares
 * one ioredis connection, so `SELECT` or `MULTI` would leak state into other
 * requests and `BLPOP 0` would stall all of them.
 */
const UNSUPPORTED = new Set([
  'SUBSCRIBE', 'PSUBSCRIBE', 'SSUBSCRIBE', 'UNSUBSCRIBE', 'PUNSUBSCRIBE', 'SUNSUBSCRIBE',
  'MONITOR', 'SYNC', 'PSYNC', 'REPLCONF',
  'BLPOP', 'BRPOP', 'BRPOPLPUSH', 'BLMOVE', 'BLMPOP', 'BZPOPMIN', 'BZPOPMAX', 'BZMPOP',
  'WAIT', 'WAITAOF',
  'SELECT', 'SWAPDB', 'QUIT', 'RESET', 'HELLO', 'AUTH',
  'MULTI', 'EXEC', 'DISCARD', 'WATCH', 'UNWATCH',
]);

/** The REST framing answers in JSON: status code plus a message for `{"error"}`. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * ioredis rewrites some replies by command name (HGETALL becomes an object,
 * which loses field order and binary field names). The REST protocol returns
 * the raw reply, and the Upstash client does its own shaping, so replies must
 * pass through untouched, as Buffers.
 */
class RawCommand extends Command {
  override transformReply(result: Buffer | Buffer[]): Buffer | Buffer[] {
    return result;
  }
}

function isReplyError(err: unknown): err is Error {
  return err instanceof ReplyError;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Converts one JSON argument the way the Upstash client serialises it. */
function toArg(value: unknown, position: number): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (typeof value === 'boolean') return String(value);
  throw new HttpError(
    400,
    `ERR invalid argument at position ${position}: expected string, number or boolean`,
  );
}

function parseCommandArray(value: unknown): ParsedCommand {
  if (!Array.isArray(value) || value.length === 0) {
    throw new HttpError(400, 'ERR a command must be a non-empty JSON array');
  }
  const [name, ...rest] = value.map((v, i) => toArg(v, i));
  return checkSupported({ name: name as string, args: rest });
}

function checkSupported(cmd: ParsedCommand): ParsedCommand {
  const upper = cmd.name.toUpperCase();
  if (UNSUPPORTED.has(upper) || isBlockingStreamRead(upper, cmd.args)) {
    throw new HttpError(400, `ERR command not supported over REST: ${upper}`);
  }
  return adaptScript(upper, cmd);
}

/**
 * Upstash accepts a script flag that open-source Redis does not:
 * `#!lua flags=allow-key-locking` (@upstash/ratelimit's scripts carry it).
 * The flag only changes how Upstash locks keys, so the bridge drops it
 * before Redis sees the script, and maps the SHA-1 the client computed over
 * the original text to the one Redis keeps for the adapted text, so EVALSHA
 * behaves as on Upstash (NOSCRIPT until the first EVAL, then cached).
 */
const UPSTASH_ONLY_FLAG = /^(#!lua[^\n]*?)\s*\ballow-key-locking\b,?/;
const adaptedShas = new Map<string, string>();
const sha1 = (text: string) => createHash('sha1').update(text).digest('hex');

function adaptScript(upper: string, cmd: ParsedCommand): ParsedCommand {
  const scriptAt = upper === 'EVAL' || upper === 'EVAL_RO' ? 0 : upper === 'SCRIPT' && String(cmd.args[0]).toUpperCase() === 'LOAD' ? 1 : -1;
  if (scriptAt >= 0) {
    const script = String(cmd.args[scriptAt] ?? '');
    if (!UPSTASH_ONLY_FLAG.test(script)) return cmd;
    const adapted = script.replace(UPSTASH_ONLY_FLAG, '$1').replace(/^(#!lua flags=[^\n]*?),(\s*(\n|$))/, '$1$2').replace(/^#!lua flags=\s*(\n|$)/, '#!lua$1');
    adaptedShas.set(sha1(script), sha1(adapted));
    const args = [...cmd.args];
    args[scriptAt] = adapted;
    return { name: cmd.name, args };
  }
  if (upper === 'EVALSHA' || upper === 'EVALSHA_RO') {
    const mapped = adaptedShas.get(String(cmd.args[0]).toLowerCase());
    if (mapped) return { name: cmd.name, args: [mapped, ...cmd.args.slice(1)] };
  }
  return cmd;
}

/** `XREAD ... BLOCK ms STREAMS ...` blocks like BLPOP; without BLOCK it is fine. */
function isBlockingStreamRead(upper: string, args: Arg[]): boolean {
  if (upper !== 'XREAD' && upper !== 'XREADGROUP') return false;
  for (const arg of args) {
    const word = arg.toString().toUpperCase();
    if (word === 'STREAMS') return false;
    if (word === 'BLOCK') return true;
  }
  return false;
}

/**
 * Encodes a raw ioredis reply as JSON. `topLevel` is the whole result of one
 * command: only there does the client pass a bare `OK` through undecoded.
 */
function encodeReply(reply: unknown, base64: boolean, topLevel: boolean): Json {
  if (reply === null || reply === undefined) return null;
  if (typeof reply === 'number') return reply;
  if (Array.isArray(reply)) return reply.map((item) => encodeReply(item, base64, false));
  // Errors nested in an array (a Lua table holding `{err=...}`) have no JSON
  // form in the protocol; their message is the most useful string to send.
  const bytes = Buffer.isBuffer(reply)
    ? reply
    : Buffer.from(reply instanceof Error ? reply.message : String(reply));
  if (!base64) return bytes.toString('utf8');
  if (topLevel && bytes.length === 2 && bytes.toString('latin1') === 'OK') return 'OK';
  return bytes.toString('base64');
}

/** Digests first so the comparison is constant-time whatever the lengths. */
function tokenMatches(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

function presentedToken(req: IncomingMessage, url: URL): string | undefined {
  const header = req.headers.authorization;
  if (header) {
    const match = /^Bearer\s+(.+)$/i.exec(header.trim());
    return match?.[1];
  }
  return url.searchParams.get('_token') ?? undefined;
}


function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new HttpError(400, `ERR malformed JSON request body: ${errorMessage(err)}`);
  }
}

/** `/set/k/v?EX=10`, with a POST body slotted in before the query arguments. */
function parsePathCommand(url: URL, body: Buffer): ParsedCommand {
  const segments = url.pathname.split('/').filter((s) => s.length > 0);
  let decoded: string[];
  try {
    decoded = segments.map((s) => decodeURIComponent(s));
  } catch {
    throw new HttpError(400, 'ERR malformed percent-encoding in request path');
  }
  const [name, ...args] = decoded as [string, ...string[]];
  const all: Arg[] = [...args];
  if (body.length > 0) all.push(body);
  for (const [key, value] of url.searchParams) {
    if (key === '_token') continue;
    all.push(key);
    if (value !== '') all.push(value);
  }
  return checkSupported({ name, args: all });
}

function redactUrl(redisUrl: string): string {
  try {
    const u = new URL(redisUrl);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'redis';
  }
}

function formatHost(host: string): string {
  if (host === '0.0.0.0' || host === '::') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}

/**
 * Starts an Upstash-compatible REST server in front of `opts.redisUrl`.
 * Resolves once it listens; Redis need not be up yet (requests answer 503
 * until it is, and the bridge reconnects on its own).
 */
export async function startUpstashBridge(opts: UpstashBridgeOptions): Promise<UpstashBridge> {
  if (!opts.token) throw new Error('startUpstashBridge: token must be a non-empty string');
  const maxBodyBytes = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const unavailableTimeoutMs = opts.unavailableTimeoutMs ?? 1000;
  const log = opts.log ?? ((message: string) => console.warn(`[upstash-bridge] ${message}`));
  const redisLabel = redactUrl(opts.redisUrl);

  const redis = new Redis(opts.redisUrl, {
    // Queued commands would wait out an outage; the health check needs an
    // error instead, so requests wait for `ready` themselves, with a deadline.
    enableOfflineQueue: false,
    // Commands in flight when the socket drops are failed after one retry.
    maxRetriesPerRequest: 1,
    connectTimeout: 1000,
    commandTimeout: opts.commandTimeoutMs ?? 10_000,
    // Short, capped backoff so a restarted Redis is picked up within half a
    // second, which is inside the window a waiting request allows.
    retryStrategy: (times: number) => Math.min(times * 100, 500),
    connectionName: 'upstash-bridge',
  });

  let down = false;
  let lastError = 'not connected yet';
  redis.on('error', (err: unknown) => {
    lastError = errorMessage(err);
    // ioredis reports every failed reconnect; one line per outage is enough.
    if (!down) {
      down = true;
      log(`Redis unreachable at ${redisLabel}: ${lastError}`);
    }
  });
  const readyWaiters = new Set<() => void>();
  redis.on('ready', () => {
    if (down) log(`Redis reachable again at ${redisLabel}`);
    down = false;
    for (const wake of readyWaiters) wake();
    readyWaiters.clear();
  });

  function waitForRedis(): Promise<void> {
    if (redis.status === 'ready') return Promise.resolve();
    const unavailable = () =>
      new HttpError(503, `ERR Redis unavailable at ${redisLabel}: ${lastError}`);
    if (redis.status === 'end') return Promise.reject(unavailable());
    return new Promise((resolve, reject) => {
      const wake = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        readyWaiters.delete(wake);
        reject(unavailable());
      }, unavailableTimeoutMs);
      readyWaiters.add(wake);
    });
  }

  /** ReplyErrors are the caller's problem (400); anything else means Redis is gone. */
  function asUnavailable(err: unknown): HttpError {
    return new HttpError(503, `ERR Redis unavailable at ${redisLabel}: ${errorMessage(err)}`);
  }

  async function runSingle(cmd: ParsedCommand, base64: boolean): Promise<{ result: Json }> {
    await waitForRedis();
    const command = new RawCommand(cmd.name, cmd.args);
    try {
      redis.sendCommand(command);
      return { result: encodeReply(await command.promise, base64, true) };
    } catch (err) {
      if (isReplyError(err)) throw new HttpError(400, err.message);
      throw asUnavailable(err);
    }
  }

  async function runPipeline(body: unknown, base64: boolean): Promise<Entry[]> {
    const entries = parseBatch(body);
    // A malformed or unsupported entry fails alone, like a Redis error would.
    const parsed = entries.map((entry): ParsedCommand | HttpError => {
      try {
        return parseCommandArray(entry);
      } catch (err) {
        if (err instanceof HttpError) return err;
        throw err;
      }
    });
    await waitForRedis();
    // Sent back to back on the one connection, so Redis runs them in order.
    const pending = parsed.map((cmd) => {
      if (cmd instanceof HttpError) return Promise.reject(cmd);
      const command = new RawCommand(cmd.name, cmd.args);
      redis.sendCommand(command);
      return command.promise as Promise<unknown>;
    });
    const settled = await Promise.allSettled(pending);
    return settled.map((s): Entry => {
      if (s.status === 'fulfilled') return { result: encodeReply(s.value, base64, true) };
      const reason: unknown = s.reason;
      if (reason instanceof HttpError || isReplyError(reason)) return { error: reason.message };
      throw asUnavailable(reason);
    });
  }

  async function runMultiExec(body: unknown, base64: boolean): Promise<Entry[]> {
    // Unlike a pipeline, one bad entry must stop the whole transaction.
    const commands = parseBatch(body).map(parseCommandArray);
    await waitForRedis();
    // ioredis's own MULTI pipeline, rather than hand-sent MULTI/EXEC, because
    // it aborts the transaction cleanly if the connection drops half way.
    const tx = redis.multi() as unknown as Pipeline;
    for (const cmd of commands) tx.sendCommand(new RawCommand(cmd.name, cmd.args));
    let results: [Error | null, unknown][] | null;
    try {
      results = await tx.exec();
    } catch (err) {
      if (isReplyError(err)) {
        const previous = (err as Error & { previousErrors?: Error[] }).previousErrors ?? [];
        // EXECABORT alone does not say which command was rejected.
        const detail = previous.map((e) => e.message.trim()).join('; ');
        const message = detail ? `${err.message.replace(/\.$/, '')}: ${detail}` : err.message;
        throw new HttpError(400, message);
      }
      throw asUnavailable(err);
    }
    if (!results) throw new HttpError(400, 'ERR transaction aborted');
    return results.map(([err, value]): Entry =>
      err ? { error: err.message } : { result: encodeReply(value, base64, true) },
    );
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://bridge');
    const method = req.method ?? 'GET';
    if (method !== 'GET' && method !== 'POST' && method !== 'PUT') {
      res.setHeader('allow', 'GET, POST, PUT');
      throw new HttpError(405, `ERR method ${method} not allowed`);
    }
    const token = presentedToken(req, url);
    if (token === undefined || !tokenMatches(token, opts.token)) {
      throw new HttpError(401, 'Unauthorized');
    }
    const syncToken = req.headers['upstash-sync-token'];
    if (typeof syncToken === 'string' && syncToken !== '') {
      res.setHeader('upstash-sync-token', syncToken);
    }
    const encoding = req.headers['upstash-encoding'];
    const base64 = typeof encoding === 'string' && encoding.toLowerCase() === 'base64';
    const body = await readBody(req, maxBodyBytes, () => new HttpError(413, `ERR request body exceeds ${maxBodyBytes} bytes`));

    const path = url.pathname.replace(/\/+$/, '');
    if (path === '' || path === '/pipeline' || path === '/multi-exec') {
      if (method === 'GET') throw new HttpError(400, `ERR ${path || '/'} expects a POST body`);
      const json = parseJson(body);
      if (path === '') return sendJson(res, 200, await runSingle(parseCommandArray(json), base64));
      if (path === '/pipeline') return sendJson(res, 200, await runPipeline(json, base64));
      return sendJson(res, 200, await runMultiExec(json, base64));
    }
    return sendJson(res, 200, await runSingle(parsePathCommand(url, body), base64));
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (err instanceof HttpError) {
        // After a 413 the rest of the upload is not worth reading.
        if (err.status === 413) res.setHeader('connection', 'close');
        sendJson(res, err.status, { error: err.message });
      } else {
        sendJson(res, 500, { error: `ERR bridge failure: ${errorMessage(err)}` });
      }
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${formatHost(opts.host ?? '127.0.0.1')}:${port}`,
    port,
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // fetch keeps connections alive; without this close() waits for them to idle out.
      server.closeAllConnections();
      await closed;
      for (const wake of readyWaiters) wake();
      readyWaiters.clear();
      if (redis.status === 'ready') await redis.quit().catch(() => redis.disconnect());
      else redis.disconnect();
    },
  };
}

function parseBatch(body: unknown): unknown[] {
  if (!Array.isArray(body) || body.length === 0 || !body.every(Array.isArray)) {
    throw new HttpError(400, 'ERR expected a non-empty JSON array of command arrays');
  }
  return body;
}

function sendJson(res: ServerResponse, status: number, payload: unknown): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const text = JSON.stringify(payload);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

async function main(): Promise<void> {
  const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const port = Number(process.env.UPSTASH_BRIDGE_PORT ?? 8079);
  const token = process.env.UPSTASH_TOKEN;
  if (!token) {
    console.error('UPSTASH_TOKEN must be set: the Worker presents it as its REST token.');
    process.exitCode = 1;
    return;
  }
  const bridge = await startUpstashBridge({ redisUrl, token, port });
  console.log(`Upstash REST bridge on ${bridge.url} -> ${redactUrl(redisUrl)}`);
  closeOnSignals(bridge.close);
}

runIfMain(import.meta.url, main);
