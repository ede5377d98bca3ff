import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { spawnRedis, type SpawnedRedis } from './processes';

const started: SpawnedRedis[] = [];
const dirs: string[] = [];

afterAll(async () => {
  await Promise.allSettled(started.map((r) => r.stop()));
  await Promise.allSettled(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

/** Runs `fn` with a client on `redis`, always disconnecting it. */
async function withClient<T>(redis: SpawnedRedis, fn: (client: Redis) => Promise<T>): Promise<T> {
  const client = new Redis(redis.url, { maxRetriesPerRequest: 1, lazyConnect: true });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    client.disconnect();
  }
}

/** spawnRedis, remembered for afterAll. */
async function spawn(...args: Parameters<typeof spawnRedis>): Promise<SpawnedRedis> {
  const redis = await spawnRedis(...args);
  started.push(redis);
  return redis;
}

describe('spawnRedis', () => {
  it('keeps data across a stop and a new spawn on the same port and dir with appendonly', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'redis-aof-'));
    dirs.push(dir);
    const first = await spawn(undefined, { dir, appendonly: true });
    await withClient(first, (c) => c.set('survivor', 'still here'));
    await first.stop();

    const second = await spawn(first.port, { dir, appendonly: true });
    expect(await withClient(second, (c) => c.get('survivor'))).toBe('still here');
  });

  it('keeps nothing by default', async () => {
    const first = await spawn();
    await withClient(first, (c) => c.set('ephemeral', '1'));
    await first.stop();

    const second = await spawn(first.port);
    expect(await withClient(second, (c) => c.get('ephemeral'))).toBeNull();
  });

  it('refuses appendonly without a dir', async () => {
    await expect(spawnRedis(undefined, { appendonly: true })).rejects.toThrow(/needs opts.dir/);
  });
});
