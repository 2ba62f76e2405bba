/**
 * The Redis of `npm run services:up` is its own, never a Redis found on 6379, and a fresh local
 * Kafka empties it: a second local run (services:down, services:up) once stopped the worker after
 * 36 s with "belongs to another log", because a shared Redis on 6379 kept the state made from
 * the previous Kafka's log. Runs a private redis-server under a temporary state directory, so
 * the shared services are not touched.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { emptyLocalRedis, ensureRedis, stopRedis } from '../../deploy/local/redis';

const previousDir = process.env.SESSIONIZER_SERVICES_DIR;
let dir = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'local-redis-'));
  process.env.SESSIONIZER_SERVICES_DIR = dir;
});
afterAll(async () => {
  await stopRedis();
  if (previousDir === undefined) delete process.env.SESSIONIZER_SERVICES_DIR;
  else process.env.SESSIONIZER_SERVICES_DIR = previousDir;
  rmSync(dir, { recursive: true, force: true });
});

it('starts a Redis of its own (not 6379), reuses it, empties it for a fresh Kafka, and stops it', async () => {
  const first = await ensureRedis();
  expect(first.startedNow).toBe(true);
  const url = first.env.REDIS_URL as string;
  expect(url).toMatch(/^redis:\/\/127\.0\.0\.1:\d+$/);
  expect(url).not.toMatch(/:6379$/);

  const redis = new Redis(url);
  try {
    await redis.set('{sz:events:0}:meta', 'state of the previous Kafka');
    const again = await ensureRedis();
    expect(again).toEqual({ ...first, startedNow: false });
    expect(await redis.get('{sz:events:0}:meta')).toBe('state of the previous Kafka');

    expect(await emptyLocalRedis()).toBe(true);
    expect(await redis.dbsize()).toBe(0);
  } finally {
    redis.disconnect();
  }
  expect(await stopRedis()).toBe(true);
  expect(await emptyLocalRedis()).toBe(false);
}, 60_000);
