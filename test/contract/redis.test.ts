/**
 * The store contract against real Redis: a standalone server (with and without the local cache
 * in front), a Sentinel group (master, replica, three sentinels) and a three-master Cluster.
 */
import { afterAll, beforeAll, describe } from 'vitest';
import { waitFor } from '../../harness/processes.js';
import { redisOptions, startCluster, startRedisServer, startSentinelGroup } from '../../harness/redis.js';
import { createCachedStore } from '../../src/store/cached.js';
import { createRedisStore } from '../../src/store/redis.js';
import { createRedisBus } from '../../src/store/redis-bus.js';
import { storeContract } from './store-contract.js';

const HEARTBEAT = { heartbeatInterval: 100, heartbeatTimeout: 2000 };

/** A Redis store that is connected (the self-test passes) before the test uses it. */
async function connected(url: string, clock: () => number) {
  const store = createRedisStore(redisOptions(url, clock));
  await waitFor(
    () =>
      store.selfTest().then(
        () => true,
        () => false,
      ),
    10_000,
  );
  return store;
}

const topologies: Array<[string, () => Promise<{ url: string; stop: () => Promise<void> }>]> = [
  [
    'redis standalone',
    async () => {
      const r = await startRedisServer();
      return { url: `redis://127.0.0.1:${r.port}`, stop: r.stop };
    },
  ],
  [
    'redis sentinel',
    async () => {
      const g = await startSentinelGroup();
      return { url: g.url, stop: g.stop };
    },
  ],
  [
    'redis cluster',
    async () => {
      const c = await startCluster();
      return { url: c.url, stop: c.stop };
    },
  ],
];

for (const [name, start] of topologies) {
  describe(name, () => {
    let env: { url: string; stop: () => Promise<void> };
    beforeAll(async () => {
      env = await start();
    }, 60_000);
    afterAll(() => env?.stop());

    storeContract(name, (clock) => connected(env.url, clock));
    if (name === 'redis standalone') {
      storeContract(`${name} behind the local cache`, async (clock) => {
        const redis = await connected(env.url, clock);
        const bus = createRedisBus(redis, HEARTBEAT);
        await waitFor(() => bus.up, 5000);
        return createCachedStore(redis, { maxEntries: 1000, ttl: 60_000, negativeTtl: 60_000, ...HEARTBEAT }, bus, clock);
      });
    }
  });
}
