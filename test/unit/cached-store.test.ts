/**
 * The local cache when its invalidation message cannot go out: a logout or revocation is
 * reported as a store failure (the client retries; the retry publishes again), never a silent
 * success that leaves other replicas serving a cached copy; a rotation is not failed for it.
 */
import { describe, expect, it } from 'vitest';
import { createCachedStore, type InvalidationBus } from '../../src/store/cached.js';
import { createMemoryStore } from '../../src/store/memory.js';
import { StoreUnavailableError } from '../../src/store/types.js';
import { stored, T0 } from '../support/fixtures.js';

function bus(): InvalidationBus & { failing: boolean; published: string[][]; deliver: (keys: string[]) => void } {
  const heard: Array<(keys: string[] | 'all') => void> = [];
  const b = {
    failing: false,
    published: [] as string[][],
    deliver: (keys: string[]) => {
      for (const fn of heard) fn(keys);
    },
    up: true,
    publish: async (keys: readonly string[] | 'all') => {
      if (b.failing) throw new Error('connection reset');
      b.published.push(keys === 'all' ? ['*'] : [...keys]);
    },
    fault: () => {},
    onInvalidate: (fn: (keys: string[] | 'all') => void) => void heard.push(fn),
    onState: () => {},
    close: async () => {},
  };
  return b;
}

describe('cached store, invalidation failures', () => {
  const setup = () => {
    const inner = createMemoryStore({ maxEntries: 100, sweepInterval: 0, clock: () => T0 });
    const b = bus();
    return {
      b,
      store: createCachedStore(inner, { maxEntries: 100, ttl: 10_000, negativeTtl: 500, heartbeatInterval: 100, heartbeatTimeout: 1000 }, b, () => T0),
    };
  };

  it('destroy: the unpublished invalidation is an error; the retry publishes', async () => {
    const { b, store } = setup();
    await store.create('{k}1', stored());
    b.failing = true;
    await expect(store.destroy('{k}1')).rejects.toBeInstanceOf(StoreUnavailableError);
    expect(await store.get('{k}1')).toBeNull(); // gone from the store all the same
    b.failing = false;
    await store.destroy('{k}1');
    expect(b.published).toContainEqual(['{k}1']);
  });

  it('destroyUser: likewise', async () => {
    const { b, store } = setup();
    await store.create('{k}2', stored({ user: 'u2' }));
    b.failing = true;
    await expect(store.destroyUser(['u2'])).rejects.toBeInstanceOf(StoreUnavailableError);
  });

  it('rotate: succeeds; only this replica starts over', async () => {
    const { b, store } = setup();
    await store.create('{k}3', stored());
    b.failing = true;
    expect(await store.rotate('{k}3', '{k}4', stored(), T0 + 1000)).toBe(true);
  });
});

describe('cached store, reads racing invalidations', () => {
  it('a read that began before an invalidation does not fill the cache with what it read', async () => {
    const inner = createMemoryStore({ maxEntries: 100, sweepInterval: 0, clock: () => T0 });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    // The store answers, and the answer is slow to come back (a busy event loop, a slow network).
    const slow = {
      ...inner,
      get: async (k: string) => {
        const v = await inner.get(k);
        await gate;
        return v;
      },
    };
    const b = bus();
    const store = createCachedStore(slow, { maxEntries: 100, ttl: 10_000, negativeTtl: 500, heartbeatInterval: 100, heartbeatTimeout: 1000 }, b, () => T0);
    await inner.create('{k}9', stored());
    const reading = store.get('{k}9');
    await inner.destroy('{k}9'); // another replica's logout ...
    b.deliver(['{k}9']); // ... and its invalidation, heard while the read is on its way back
    release();
    expect(await reading).not.toBeNull(); // it read before the logout
    expect(await store.get('{k}9')).toBeNull(); // but did not cache what it read
  });
});
