/**
 * WebSocket-to-TCP bridge for the Neon serverless driver.
 *
 * In production the Neon driver opens a WebSocket to Neon's proxy, which
 * forwards the Postgres wire protocol to the database. Locally there is no
 * Neon proxy, so this bridge plays its part: each WebSocket connection is
 * piped, byte for byte, to a TCP connection to a local Postgres (the real
 * server or PGlite behind pglite-socket). The Worker then runs exactly the
 * driver code it runs in production, with `neonConfig.wsProxy` pointed here.
 *
 * It only connects to the Postgres addresses it was started with: a bridge
 * that dialled whatever `?address=` a client asked for would be an open
 * TCP relay on the developer's machine.
 */
import { createServer, type IncomingMessage } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';

/** Options for {@link startPgWsBridge}. */
export interface PgWsBridgeOptions {
  /** `host:port` pairs the bridge may connect to, e.g. `127.0.0.1:5432`. */
  allowedTargets: string[];
  /** Port to listen on; 0 picks a free one. */
  port?: number;
  host?: string;
  /**
   * Postgres connections open at once; more queue for a free one (as behind
   * Neon's pooler). Keep it under the server's max_connections. Default 50.
   */
  maxConnections?: number;
}

/** A running bridge. */
export interface PgWsBridge {
  /** Value for `neonConfig.wsProxy` / `NEON_WS_PROXY`: host:port/v1, no scheme. */
  wsProxy: string;
  port: number;
  /** Number of WebSocket connections currently open. */
  openConnections(): number;
  /** Counters since start: connections accepted and queries sent (simple `Q` plus extended-protocol `E`xecute messages). */
  stats(): { connections: number; queries: number };
  /** Drops every connection and refuses new ones, as if Postgres were down (fault tests). */
  pause(): void;
  /** Accepts connections again. */
  resume(): void;
  close(): Promise<void>;
}

/** Normalises `localhost` so `localhost:5432` and `127.0.0.1:5432` are one target. */
function normaliseTarget(target: string): string {
  const [host, port] = splitHostPort(target);
  return `${host === 'localhost' ? '127.0.0.1' : host}:${port}`;
}

function splitHostPort(target: string): [string, number] {
  const i = target.lastIndexOf(':');
  const host = i > 0 ? target.slice(0, i) : target;
  const port = i > 0 ? Number(target.slice(i + 1)) : 5432;
  return [host.replace(/^\[|\]$/g, ''), port];
}

/**
 * A Postgres ErrorResponse message. Answering the client's startup message
 * with one (instead of dropping the WebSocket) lets the driver fail the
 * connection with a readable error, as Neon's proxy does, rather than
 * tripping over a socket that closed under it.
 */
export function pgErrorResponse(sqlState: string, message: string): Buffer {
  const field = (type: string, value: string) => Buffer.concat([Buffer.from(type), Buffer.from(value, 'utf8'), Buffer.from([0])]);
  const body = Buffer.concat([field('S', 'FATAL'), field('V', 'FATAL'), field('C', sqlState), field('M', message), Buffer.from([0])]);
  const header = Buffer.alloc(5);
  header.write('E', 0);
  header.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([header, body]);
}

/** Sends `error` once the client has spoken (or at once if it already has), then closes. */
function refuse(ws: WebSocket, error: Buffer, clientSpoke: boolean): void {
  const send = () => {
    if (ws.readyState !== ws.OPEN) return;
    ws.send(error, { binary: true });
    ws.close(1008, 'refused');
  };
  if (clientSpoke) send();
  else ws.once('message', send);
}

/**
 * Counts the queries a client sends by walking the frontend message framing
 * (type byte + int32 length) across chunk boundaries. The startup message has
 * no type byte, so counting begins after it.
 */
class QueryCounter {
  private pending: Buffer = Buffer.alloc(0);
  private started = false;
  constructor(private readonly onQuery: () => void) {}

  feed(chunk: Buffer): void {
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    for (;;) {
      if (!this.started) {
        if (this.pending.length < 8) return;
        const len = this.pending.readInt32BE(0);
        const code = this.pending.readInt32BE(4);
        if (this.pending.length < len) return;
        this.pending = this.pending.subarray(len);
        // SSLRequest (80877103) is followed by a real startup message.
        if (code !== 80877103) this.started = true;
        continue;
      }
      if (this.pending.length < 5) return;
      const len = this.pending.readInt32BE(1);
      if (this.pending.length < len + 1) return;
      const type = this.pending[0];
      if (type === 0x51 /* Q */ || type === 0x45 /* E */) this.onQuery();
      this.pending = this.pending.subarray(len + 1);
    }
  }
}

/** Starts the bridge; resolves once it listens. */
export async function startPgWsBridge(opts: PgWsBridgeOptions): Promise<PgWsBridge> {
  const allowed = new Set(opts.allowedTargets.map(normaliseTarget));
  const http = createServer((_req, res) => {
    res.writeHead(426, { 'content-type': 'text/plain' }).end('WebSocket upgrade required\n');
  });
  const wss = new WebSocketServer({ server: http, perMessageDeflate: false });
  const sockets = new Set<Socket>();
  const totals = { connections: 0, queries: 0 };

  const maxConnections = opts.maxConnections ?? 50;
  /** Connections waiting for a free slot, oldest first. */
  const waiting: (() => void)[] = [];
  let active = 0;
  let paused = false;
  const release = () => {
    active--;
    const next = waiting.shift();
    if (next) next();
  };

  wss.on('connection', (ws: WebSocket, req: IncomingMessage) => {
    const address = new URL(req.url ?? '/', 'http://bridge').searchParams.get('address');
    if (!address || !allowed.has(normaliseTarget(address))) {
      refuse(ws, pgErrorResponse('28000', `the local bridge does not forward to ${address ?? '(no address)'}`), false);
      return;
    }
    if (paused) {
      refuse(ws, pgErrorResponse('57P03', 'the database system is not accepting connections (paused by the test harness)'), false);
      return;
    }
    // What the client sends before its TCP connection exists (it may wait for
    // a slot) is kept and written once the connection opens.
    const early: Buffer[] = [];
    let clientSpoke = false;
    let tcp: Socket | undefined;
    let done = false;
    const counter = new QueryCounter(() => totals.queries++);
    ws.on('message', (data: RawData) => {
      clientSpoke = true;
      const chunks = Array.isArray(data) ? data : [Buffer.isBuffer(data) ? data : Buffer.from(data)];
      for (const chunk of chunks) {
        counter.feed(chunk);
        if (tcp && !tcp.destroyed) tcp.write(chunk);
        else if (!tcp) early.push(chunk);
      }
    });
    const open = () => {
      if (done) return release();
      const [host, port] = splitHostPort(address);
      totals.connections++;
      const socket = connect({ host, port });
      tcp = socket;
      socket.setNoDelay(true);
      sockets.add(socket);
      for (const chunk of early.splice(0)) socket.write(chunk);
      let connected = false;
      let released = false;
      const free = () => {
        if (!released) {
          released = true;
          sockets.delete(socket);
          release();
        }
      };
      socket.once('connect', () => {
        connected = true;
      });
      socket.on('data', (chunk) => {
        if (ws.readyState === ws.OPEN) ws.send(chunk, { binary: true });
      });
      socket.on('error', (err) => {
        free();
        // Could not reach Postgres at all: tell the driver in its own protocol.
        if (!connected) refuse(ws, pgErrorResponse('08001', `could not connect to Postgres at ${address}: ${err.message}`), clientSpoke);
        else if (ws.readyState === ws.OPEN) ws.close();
      });
      socket.on('close', () => {
        free();
        if (connected && ws.readyState === ws.OPEN) ws.close();
      });
    };
    const closeBoth = () => {
      done = true;
      tcp?.destroy();
      if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.close();
    };
    ws.on('close', closeBoth);
    ws.on('error', closeBoth);
    // Like the pooler in front of Neon: at most `maxConnections` reach
    // Postgres at once, the rest queue, instead of Postgres refusing them.
    active++;
    if (active <= maxConnections) open();
    else waiting.push(open);
  });

  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
  });
  const { port } = http.address() as AddressInfo;
  const host = opts.host && opts.host !== '0.0.0.0' ? opts.host : '127.0.0.1';
  return {
    wsProxy: `${host}:${port}/v1`,
    port,
    openConnections: () => sockets.size,
    stats: () => ({ ...totals }),
    pause: () => {
      paused = true;
      for (const sock of sockets) sock.destroy();
    },
    resume: () => {
      paused = false;
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      for (const client of wss.clients) client.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}
