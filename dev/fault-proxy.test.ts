import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startFaultProxy, type FaultProxy } from './fault-proxy';

let echo: Server;
let proxy: FaultProxy;
const clients = new Set<Socket>();
const echoed = new Set<Socket>();

beforeAll(async () => {
  echo = createServer((socket) => {
    echoed.add(socket);
    socket.on('close', () => echoed.delete(socket));
    socket.on('error', () => {});
    socket.pipe(socket);
  });
  await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
  proxy = await startFaultProxy({ target: { host: '127.0.0.1', port: (echo.address() as AddressInfo).port } });
});

afterEach(async () => {
  for (const c of clients) c.destroy();
  clients.clear();
  proxy.set({ kind: 'pass' });
  // Each test counts its own connections: let the last test's closes pass through.
  await expect.poll(() => proxy.connections()).toBe(0);
});

afterAll(async () => {
  await proxy?.close();
  for (const s of echoed) s.destroy();
  await new Promise((resolve) => echo?.close(resolve));
});

/** A connected client through the proxy, destroyed after each test. */
async function client(): Promise<Socket> {
  const socket = connect({ host: proxy.host, port: proxy.port });
  clients.add(socket);
  socket.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return socket;
}

/** The next bytes `socket` receives, or null when none came within `timeoutMs`. */
async function nextData(socket: Socket, timeoutMs: number): Promise<string | null> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => done(null), timeoutMs);
    const onData = (chunk: Buffer) => done(chunk.toString());
    function done(value: string | null) {
      clearTimeout(timer);
      socket.off('data', onData);
      resolve(value);
    }
    socket.on('data', onData);
  });
}

/** Sends `text` and waits for its echo; resolves with the echo and the round trip time. */
async function roundTrip(socket: Socket, text: string, timeoutMs = 2_000): Promise<{ reply: string | null; ms: number }> {
  const started = performance.now();
  const reply = nextData(socket, timeoutMs);
  socket.write(text);
  return { reply: await reply, ms: performance.now() - started };
}

/** Resolves when `socket` closes, with whether it went with an error (a reset). */
async function closed(socket: Socket): Promise<{ hadError: boolean }> {
  if (socket.closed) return { hadError: socket.errored !== null };
  return new Promise((resolve) => socket.once('close', (hadError) => resolve({ hadError })));
}

describe('fault proxy', () => {
  it('passes bytes both ways', async () => {
    const socket = await client();
    expect((await roundTrip(socket, 'hello')).reply).toBe('hello');
    expect(proxy.connections()).toBe(1);
  });

  it('delays every chunk in both directions, in order', async () => {
    proxy.set({ kind: 'latency', ms: 150 });
    const socket = await client();
    const { reply, ms } = await roundTrip(socket, 'slow');
    expect(reply).toBe('slow');
    // 150 ms out and 150 ms back; timers may fire a millisecond early.
    expect(ms).toBeGreaterThanOrEqual(295);

    let received = '';
    socket.on('data', (chunk: Buffer) => (received += chunk.toString()));
    for (const part of ['a', 'b', 'c', 'd']) {
      socket.write(part);
      await new Promise((r) => setTimeout(r, 20));
    }
    proxy.set({ kind: 'pass' });
    socket.write('e');
    await expect.poll(() => received, { timeout: 2_000 }).toBe('abcde');
  });

  it('black-holes traffic on drop, keeping connections open, and lets it through again on pass', async () => {
    const before = await client();
    proxy.set({ kind: 'drop' });
    expect((await roundTrip(before, 'lost?', 300)).reply).toBeNull();
    const during = await client();
    expect((await roundTrip(during, 'anyone?', 300)).reply).toBeNull();
    expect(before.closed || during.closed).toBe(false);
    expect(proxy.connections()).toBe(2);

    // Held, not lost: the bytes sent during the drop arrive once it heals.
    const held = nextData(before, 2_000);
    proxy.set({ kind: 'pass' });
    expect(await held).toBe('lost?');
    expect((await roundTrip(await client(), 'new')).reply).toBe('new');
  });

  it('resets open connections on cut, and new ones at once', async () => {
    const open = await client();
    expect((await roundTrip(open, 'ping')).reply).toBe('ping');
    proxy.set({ kind: 'cut' });
    expect(await closed(open)).toEqual({ hadError: true });

    const late = connect({ host: proxy.host, port: proxy.port });
    clients.add(late);
    late.on('error', () => {});
    const result = await Promise.race([closed(late), new Promise((r) => setTimeout(() => r('still open'), 1_000))]);
    expect(result).toEqual({ hadError: true });

    proxy.set({ kind: 'pass' });
    expect((await roundTrip(await client(), 'back')).reply).toBe('back');
    await expect.poll(() => proxy.connections()).toBe(1);
  });

  it('closes the client side when the target is unreachable, without unhandled errors', async () => {
    const dead = await startFaultProxy({ target: { host: '127.0.0.1', port: 1 } });
    try {
      const socket = connect({ host: dead.host, port: dead.port });
      clients.add(socket);
      socket.on('error', () => {});
      await closed(socket);
      await expect.poll(() => dead.connections()).toBe(0);
    } finally {
      await dead.close();
    }
  });

  it('rejects a latency that is not a number of ms', () => {
    expect(() => proxy.set({ kind: 'latency', ms: Number.NaN })).toThrow(/latency/);
    expect(proxy.mode()).toEqual({ kind: 'pass' });
  });
});
