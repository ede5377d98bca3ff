/**
 * A TCP proxy that fault tests put between a client and a real server
 * (Postgres, Redis, ...) to make the network slow, silent or broken while
 * both ends keep running.
 */
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';

/**
 * What the proxy does to the traffic it carries:
 * - `pass`: forwards bytes as they come;
 * - `latency`: delays every chunk by `ms` in both directions, keeping order;
 * - `drop`: a black hole, as a half-broken network: connections, old and new,
 *   stay open but no byte (nor a FIN) is forwarded either way. The proxy
 *   stops reading instead of discarding, so when the mode changes back the
 *   held bytes flow on, as TCP retransmits once a short partition heals;
 *   no connection is destroyed on leaving `drop`.
 * - `cut`: every open connection is reset (RST), and new ones are accepted
 *   and reset at once, as when a server or a middlebox dies.
 */
export type ProxyMode = { kind: 'pass' } | { kind: 'latency'; ms: number } | { kind: 'drop' } | { kind: 'cut' };

/** A running fault proxy. */
export interface FaultProxy {
  port: number;
  host: string;
  /** `host:port`, for clients that take an address. */
  address: string;
  /** The current mode. */
  mode(): ProxyMode;
  /** Switches mode; applies to open connections at once, not only to new ones. */
  set(mode: ProxyMode): void;
  /** Client connections currently open through the proxy. */
  connections(): number;
  /** Stops listening and destroys every open connection. */
  close(): Promise<void>;
}

/** Options for {@link startFaultProxy}. */
export interface FaultProxyOptions {
  /** The real server. */
  target: { host: string; port: number };
  /** Port to listen on; the OS picks a free one by default. */
  port?: number;
  /** Interface to listen on; 127.0.0.1 by default. */
  host?: string;
}

/** What a connection pair asks of the proxy, so pairs see mode changes live. */
interface ModeSource {
  current(): ProxyMode;
}

/** One queued item on its way to the other side: bytes, or the peer's FIN. */
type Item = { at: number; chunk: Buffer | null };

/**
 * One direction of a connection pair. Everything goes through a queue with
 * due times, even in `pass` (due at once), so a switch from `latency` to
 * `pass` cannot let a new chunk overtake a delayed one.
 */
class Lane {
  private readonly queue: Item[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly from: Socket,
    private readonly to: Socket,
    private readonly modes: ModeSource,
  ) {
    from.on('data', (chunk: Buffer) => this.push(chunk));
    from.on('end', () => this.push(null));
    // Backpressure: a slow receiver slows the sender instead of filling memory.
    to.on('drain', () => this.resumeReading());
  }

  /** Re-reads the mode: stops or restarts reading and delivery. */
  refresh(): void {
    if (this.modes.current().kind === 'drop') this.from.pause();
    else this.resumeReading();
    this.drain();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.queue.length = 0;
  }

  private push(chunk: Buffer | null): void {
    const mode = this.modes.current();
    const delay = mode.kind === 'latency' ? mode.ms : 0;
    const tail = this.queue.at(-1)?.at ?? 0;
    this.queue.push({ at: Math.max(Date.now() + delay, tail), chunk });
    this.drain();
  }

  private drain(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.modes.current().kind === 'drop') return;
    const now = Date.now();
    while (this.queue.length > 0 && this.queue[0]!.at <= now) this.deliver(this.queue.shift()!.chunk);
    const next = this.queue[0];
    if (next) this.timer = setTimeout(() => this.drain(), next.at - now);
  }

  private deliver(chunk: Buffer | null): void {
    if (this.to.destroyed) return;
    if (chunk === null) this.to.end();
    else if (!this.to.write(chunk)) this.from.pause();
  }

  private resumeReading(): void {
    if (this.modes.current().kind !== 'drop' && !this.to.writableNeedDrain) this.from.resume();
  }
}

/** A client connection and its connection to the target. */
class Pair {
  private readonly lanes: Lane[];

  constructor(
    readonly client: Socket,
    readonly upstream: Socket,
    modes: ModeSource,
    onClosed: (pair: Pair) => void,
  ) {
    this.lanes = [new Lane(client, upstream, modes), new Lane(upstream, client, modes)];
    let open = 2;
    for (const socket of [client, upstream]) {
      // Either side failing ends the pair quietly: the other side sees its
      // connection go, as it would if the network had failed.
      socket.on('error', () => this.destroy());
      socket.on('close', (hadError) => {
        if (hadError) this.destroy();
        if (--open === 0) {
          this.stopLanes();
          onClosed(this);
        }
      });
    }
    this.refresh();
  }

  refresh(): void {
    for (const lane of this.lanes) lane.refresh();
  }

  destroy(): void {
    this.stopLanes();
    this.client.destroy();
    this.upstream.destroy();
  }

  reset(): void {
    this.stopLanes();
    reset(this.client);
    reset(this.upstream);
  }

  private stopLanes(): void {
    for (const lane of this.lanes) lane.stop();
  }
}

/** RST where the socket is connected; a socket still connecting is just dropped. */
function reset(socket: Socket): void {
  if (socket.destroyed) return;
  if (socket.connecting) socket.destroy();
  else socket.resetAndDestroy();
}

/** Rejects modes a test could not have meant, before they reach open connections. */
function checkMode(mode: ProxyMode): ProxyMode {
  if (mode.kind === 'latency' && !(Number.isFinite(mode.ms) && mode.ms >= 0)) {
    throw new Error(`fault proxy: latency must be a finite number of ms >= 0, got ${mode.ms}`);
  }
  return { ...mode };
}

/** Listens on host:port; resolves with the address actually bound. */
async function listen(server: Server, host: string, port: number): Promise<AddressInfo> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server.address() as AddressInfo;
}

/**
 * Starts a TCP proxy to `opts.target` on `opts.host` (127.0.0.1) and
 * `opts.port` (a free one), in `pass` mode. See {@link ProxyMode} for what
 * each mode does to open and new connections.
 */
export async function startFaultProxy(opts: FaultProxyOptions): Promise<FaultProxy> {
  let mode: ProxyMode = { kind: 'pass' };
  const modes: ModeSource = { current: () => mode };
  const pairs = new Set<Pair>();

  // Half-open on both sides: a FIN travels through the lanes, behind any
  // delayed bytes, instead of Node closing our side at once.
  const server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (client) => {
    if (mode.kind === 'cut') {
      client.on('error', () => {});
      client.resetAndDestroy();
      return;
    }
    const upstream = connect({ host: opts.target.host, port: opts.target.port, allowHalfOpen: true });
    pairs.add(new Pair(client, upstream, modes, (p) => pairs.delete(p)));
  });
  const { address: host, port } = await listen(server, opts.host ?? '127.0.0.1', opts.port ?? 0);

  return {
    port,
    host,
    address: `${host}:${port}`,
    mode: () => ({ ...mode }),
    set(next) {
      mode = checkMode(next);
      for (const pair of [...pairs]) {
        if (mode.kind === 'cut') pair.reset();
        else pair.refresh();
      }
    },
    connections: () => pairs.size,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const pair of [...pairs]) pair.destroy();
      await closed;
    },
  };
}
