/**
 * The local cache in front of real Redis: hits, negative answers, invalidation between
 * replicas over pub/sub, and bypass while the pub/sub connection is down.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../harness/processes.js';
import { type RedisProcess, redisCli, redisOptions, startRedisServer } from '../../harness/redis.js';
import { type CachedStore, createCachedStore } from '../../src/store/cached.js';
import { createRedisStore } from '../../src/store/redis.js';
import { createRedisBus } from '../../src/store/redis-bus.js';
import { stored, T0 } from '../support/fixtures.js';

const HEARTBEAT = { heartbeatInterval: 100, heartbeatTimeout: 2000 };
let redis: RedisProcess;
async function replica(clock: () => number = () => T0): Promise<CachedStore> {
  const store = createRedisStore(redisOptions(`redis://127.0.0.1:${redis.port}`, clock));
  const bus = createRedisBus(store, HEARTBEAT);
  const cached = createCachedStore(store, { maxEntries: 100, ttl: 60_000, negativeTtl: 60_000, ...HEARTBEAT }, bus, clock);
  expect(
    await waitFor(
      () =>
        cached.active &&
        store.selfTest().then(
          () => true,
          () => false,
        ),
      10_000,
    ),
  ).toBe(true);
  return cached;
}

let a: CachedStore;
let b: CachedStore;
beforeAll(async () => {
  redis = await startRedisServer();
  [a, b] = [await replica(), await replica()];
}, 30_000);
afterAll(async () => {
  await a?.close();
  await b?.close();
  await redis?.stop();
});

let n = 0;
const key = () => `{cachetst}${n++}`;

describe('local cache', () => {
  it('serves a second read from memory, and caches "no such session" too', async () => {
    const k = key();
    await a.create(k, stored());
    const before = { ...b.stats };
    await b.get(k);
    await b.get(k);
    expect(b.stats.misses - before.misses).toBe(1);
    expect(b.stats.hits - before.hits).toBe(1);
    const missing = key();
    expect(await b.get(missing)).toBeNull();
    expect(await b.get(missing)).toBeNull();
    expect(b.stats.hits - before.hits).toBe(2);
  });

  it('forgets at once what another replica destroyed, rotated or revoked', async () => {
    const [d, r, u] = [key(), key(), key()];
    await a.create(d, stored());
    await a.create(r, stored());
    await a.create(u, stored({ user: 'cache-user' }));
    for (const k of [d, r, u]) expect(await b.get(k)).not.toBeNull(); // warm on b

    await a.destroy(d);
    expect(await waitFor(async () => (await b.get(d)) === null, 1000)).toBe(true);
    await a.rotate(r, `${r}x`, stored(), T0 + 1000);
    expect(await waitFor(async () => (await b.get(r))?.grace_until === T0 + 1000, 1000)).toBe(true);
    await a.destroyUser(['cache-user']);
    expect(await waitFor(async () => (await b.get(u)) === null, 1000)).toBe(true);
  });

  it('re-reads a copy that looks idle-expired: another replica may have touched the session', async () => {
    const now = { t: T0 };
    const [c1, c2] = [await replica(() => now.t), await replica(() => now.t)];
    try {
      const k = key();
      const s = stored();
      await c1.create(k, s);
      expect((await c2.get(k))?.idle_expires_at).toBe(s.idle_expires_at); // cached on c2
      now.t = s.idle_expires_at - 1000;
      await c1.touch(k, now.t, now.t + 30 * 60_000); // touches publish nothing
      now.t = s.idle_expires_at + 1000; // c2's copy now looks idle-expired
      const before = c2.stats.misses;
      expect((await c2.get(k))?.idle_expires_at).toBe(s.idle_expires_at - 1000 + 30 * 60_000);
      expect(c2.stats.misses).toBe(before + 1);
    } finally {
      await c1.close();
      await c2.close();
    }
  });

  it('drops a copy the store says is gone when it touches it, never refreshes it', async () => {
    const k = key();
    await a.create(k, stored());
    expect(await b.get(k)).not.toBeNull(); // cached on b
    // Gone from Redis while b did not hear of it (an invalidation that never arrived).
    redisCli(redis.port, 'DEL', `sgtest${process.pid}:s:${k}`);
    expect(await b.touch(k, T0 + 1000, T0 + 1000 + 30 * 60_000)).toBe(false);
    expect(await b.get(k)).toBeNull();
  });

  it('is flushed and bypassed while its pub/sub connection is down, and back after', async () => {
    const k = key();
    await a.create(k, stored());
    await b.get(k);
    redisCli(redis.port, 'CLIENT', 'KILL', 'TYPE', 'pubsub');
    expect(await waitFor(() => !b.active, 5000)).toBe(true);
    const bypassed = b.stats.bypassed;
    expect(await b.get(k)).not.toBeNull();
    expect(b.stats.bypassed).toBe(bypassed + 1);
    expect(await waitFor(() => b.active, 10_000)).toBe(true);
    // Back: invalidations are heard again.
    await b.get(k);
    await a.destroy(k);
    expect(await waitFor(async () => (await b.get(k)) === null, 1000)).toBe(true);
  });
});
