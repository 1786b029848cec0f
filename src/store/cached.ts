/**
 * A local cache in front of a shared store: an in-process LRU (`lru-cache`) of stored sessions,
 * negative answers cached more briefly. Every replica drops an entry as soon as any replica
 * destroys, rotates or revokes it: the change is published on an invalidation channel (Redis
 * pub/sub) before the answer goes out, so a logout holds everywhere within milliseconds, not
 * after the TTL. While the channel is down the cache is flushed and bypassed.
 */
import { LRUCache } from 'lru-cache';
import { storeDeadline } from '../session/record.js';
import type { StoredSession } from '../session/seal.js';
import { StoreUnavailableError, type SessionStore } from './types.js';

export interface InvalidationBus {
  /** Tells every replica (this one included) to forget these keys; resolves once the message is out. */
  publish(keys: readonly string[]): Promise<void>;
  /** Keys another replica invalidated. */
  onInvalidate(fn: (keys: string[]) => void): void;
  /** Whether the channel is up: while it is down, nothing heard means nothing. */
  onState(fn: (up: boolean) => void): void;
  readonly up: boolean;
  close(): Promise<void>;
}

export interface CacheOptions {
  readonly maxEntries: number;
  /** Milliseconds a found session is served from the cache. */
  readonly ttl: number;
  /** Milliseconds a "no such session" answer is. */
  readonly negativeTtl: number;
}

export interface CacheStats {
  hits: number;
  misses: number;
  bypassed: number;
}

export interface CachedStore extends SessionStore {
  readonly stats: CacheStats;
  /** True while the cache is in use (channel up). */
  readonly active: boolean;
}

type Entry = { readonly value: StoredSession | null };

export function createCachedStore(
  inner: SessionStore,
  opts: CacheOptions,
  bus: InvalidationBus,
  clock: () => number,
  observe: (result: 'hit' | 'miss' | 'bypass') => void = () => {},
): CachedStore {
  const cache = new LRUCache<string, Entry>({ max: opts.maxEntries, ttl: opts.ttl, ttlAutopurge: false });
  const stats: CacheStats = { hits: 0, misses: 0, bypassed: 0 };
  let active = bus.up;
  bus.onState((up) => {
    // Whatever was said while the channel was down was not heard: start over either way.
    cache.clear();
    active = up;
  });
  bus.onInvalidate((keys) => {
    for (const k of keys) cache.delete(k);
  });

  /**
   * Drops keys here and tells every replica. When the message cannot go out, this replica
   * starts over; for a logout or a revocation (`strict`) the caller hears of it too, so it
   * answers store_unavailable and the client retries, rather than other replicas serving a
   * cached copy of an ended session until their TTL. (The store change itself is done and
   * idempotent: the retry publishes again.)
   */
  const forget = async (keys: readonly string[], strict = false) => {
    for (const k of keys) cache.delete(k);
    if (keys.length === 0) return;
    try {
      await bus.publish(keys);
    } catch (err) {
      cache.clear();
      if (strict) throw new StoreUnavailableError(`invalidation not published: ${(err as Error).message}`, { cause: err });
    }
  };

  return {
    kind: inner.kind,
    stats,
    get active() {
      return active;
    },
    async get(key) {
      if (!active) {
        stats.bypassed++;
        observe('bypass');
        return inner.get(key);
      }
      let hit = cache.get(key);
      // A copy that looks idle-expired may only be stale: another replica may have touched the
      // session since. Ask the store before anyone is turned away on a cached idle time.
      if (hit?.value && clock() >= hit.value.idle_expires_at) hit = undefined;
      if (hit) {
        stats.hits++;
        observe('hit');
        // Past its store deadline a record is gone, cached or not.
        return hit.value && clock() >= storeDeadline(hit.value) ? null : hit.value;
      }
      stats.misses++;
      observe('miss');
      const value = await inner.get(key);
      if (active) cache.set(key, { value }, value === null ? { ttl: opts.negativeTtl } : undefined);
      return value;
    },
    async create(key, record) {
      await inner.create(key, record);
      cache.delete(key);
    },
    async touch(key, touchedAt, idleExpiresAt) {
      await inner.touch(key, touchedAt, idleExpiresAt);
      // Keep this replica's copy current, so it does not ask for the same touch again.
      const e = cache.get(key);
      if (e?.value && e.value.grace_until === undefined) cache.set(key, { value: { ...e.value, touched_at: touchedAt, idle_expires_at: idleExpiresAt } });
    },
    async rotate(oldKey, newKey, record, graceUntil) {
      const done = await inner.rotate(oldKey, newKey, record, graceUntil);
      await forget([oldKey, newKey]);
      return done;
    },
    async destroy(key) {
      const successor = cache.get(key)?.value?.successor;
      await inner.destroy(key);
      await forget(successor ? [key, successor] : [key], true);
    },
    async destroyUser(refs) {
      const removed = await inner.destroyUser(refs);
      await forget(removed, true);
      return removed;
    },
    catalogPut: (c, id, v) => inner.catalogPut(c, id, v),
    catalogList: (c) => inner.catalogList(c),
    catalogDelete: (c, id) => inner.catalogDelete(c, id),
    ping: () => inner.ping(),
    selfTest: () => inner.selfTest(),
    async close() {
      cache.clear();
      await bus.close();
      await inner.close();
    },
  };
}
