/**
 * A local cache in front of a shared store: an in-process LRU (`lru-cache`) of stored sessions,
 * negative answers cached more briefly. Every replica drops an entry as soon as any replica
 * destroys, rotates or revokes it: the change is published on an invalidation channel (Redis
 * pub/sub, redis-bus.ts), and a logout or revocation is answered only once every replica
 * confirmed it dropped the keys (or can no longer be using its cache), so it holds everywhere
 * on the next request, not after the TTL.
 *
 * The cache is used only while the channel is proven live (heartbeats come back in time) and
 * the store answers: a missed heartbeat or a failed store command flushes it and sends every
 * read to the store until the channel is proven again. A read that began before an
 * invalidation never fills the cache with what it read, and a copy the store says is gone is
 * dropped, never refreshed. When a destroy or revocation fails half-way, or its invalidation
 * cannot be published, every replica is told to forget everything: retried until it goes out,
 * for as long as any copy could live.
 */
import { performance } from 'node:perf_hooks';
import { LRUCache } from 'lru-cache';
import { storeDeadline } from '../session/record.js';
import type { StoredSession } from '../session/seal.js';
import { catalogOf, onceOf, type SessionStore, StoreUnavailableError } from './types.js';

export interface InvalidationBus {
  /**
   * Tells every replica (this one included) to forget these keys, or everything (`'all'`).
   * Resolves once Redis took the message; with `confirm`, once every other replica dropped the
   * keys or can no longer be using its cache. Rejects when it could not be sent.
   */
  publish(keys: readonly string[] | 'all', confirm?: boolean): Promise<void>;
  /** Keys a replica invalidated (`'all'`: everything). */
  onInvalidate(fn: (keys: string[] | 'all') => void): void;
  /** Called when trust in the channel changes; `up` is authoritative. */
  onState(fn: (up: boolean) => void): void;
  /** True while the channel is proven live: while it is not, nothing heard means nothing. */
  readonly up: boolean;
  /** Distrusts the channel (a store command failed) until it is proven again. */
  fault(): void;
  close(): Promise<void>;
}

export interface CacheOptions {
  readonly maxEntries: number;
  /** Milliseconds a found session is served from the cache. */
  readonly ttl: number;
  /** Milliseconds a "no such session" answer is. */
  readonly negativeTtl: number;
  /** Milliseconds between the channel's heartbeats. */
  readonly heartbeatInterval: number;
  /** Milliseconds within which a heartbeat must come back for the cache to be used. */
  readonly heartbeatTimeout: number;
}

export interface CacheStats {
  hits: number;
  misses: number;
  bypassed: number;
}

export interface CachedStore extends SessionStore {
  readonly stats: CacheStats;
  /** True while the cache is in use (channel proven live). */
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
  // Bumped whenever anything is dropped: a store read that began before may have read what
  // was just invalidated, so it must not fill the cache.
  let generation = 0;
  let active = false;
  /** Follows the channel's trust; starts over (empty) on every change. */
  const sync = (): boolean => {
    const up = bus.up;
    if (up !== active) {
      cache.clear();
      generation++;
      active = up;
    }
    return up;
  };
  bus.onState(() => void sync());
  bus.onInvalidate((keys) => {
    generation++;
    if (keys === 'all') cache.clear();
    else for (const k of keys) cache.delete(k);
  });

  // "Forget everything", owed to the other replicas after a failure: retried until a flush
  // sent after the failure goes out, or until no copy cached before it can still be alive
  // anywhere (ttl, plus a late heartbeat).
  let owed = 0;
  let owedUntil = 0;
  let owedTimer: NodeJS.Timeout | undefined;
  let paying = false;
  const payDebt = async () => {
    if (paying || owed === 0) return;
    paying = true;
    const covering = owed;
    try {
      await bus.publish('all');
      if (owed === covering) owed = 0;
    } catch {
      /* still owed */
    } finally {
      paying = false;
    }
    if (owed === 0 || performance.now() > owedUntil) {
      owed = 0;
      clearInterval(owedTimer);
      owedTimer = undefined;
    }
  };
  const oweFlush = () => {
    owed++;
    owedUntil = performance.now() + opts.ttl + opts.heartbeatTimeout;
    if (!owedTimer) {
      owedTimer = setInterval(() => void payDebt(), opts.heartbeatInterval);
      owedTimer.unref();
    }
    void payDebt();
  };

  /** A store command failed: this replica stops trusting its cache until proven again. */
  const failed = (err: unknown): never => {
    bus.fault();
    sync();
    throw err;
  };
  /**
   * A change failed: some of it may have happened (or may still happen: a timed-out script
   * can run later), and nobody knows which keys. Every replica forgets everything.
   */
  const failedChange = (err: unknown): never => {
    oweFlush();
    return failed(err);
  };

  /**
   * Drops keys here and tells every replica. When the message cannot go out, every replica
   * is owed a flush (retried in the background); for a logout or a revocation (`strict`) the
   * caller hears of it too, so it answers store_unavailable and the client retries rather than
   * being told it is logged out while another replica may serve a cached copy.
   */
  const forget = async (keys: readonly string[], strict: boolean) => {
    generation++;
    for (const k of keys) cache.delete(k);
    if (keys.length === 0) return;
    try {
      await bus.publish(keys, strict);
    } catch (err) {
      sync();
      oweFlush();
      if (strict) throw new StoreUnavailableError(`invalidation not published: ${(err as Error).message}`, { cause: err });
    }
  };

  return {
    kind: inner.kind,
    stats,
    get active() {
      return sync();
    },
    async get(key) {
      if (!sync()) {
        stats.bypassed++;
        observe('bypass');
        return inner.get(key).catch(failed);
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
      const before = generation;
      const value = await inner.get(key).catch(failed);
      if (before === generation && active) cache.set(key, { value }, value === null ? { ttl: opts.negativeTtl } : undefined);
      return value;
    },
    async create(key, record) {
      await inner.create(key, record).catch(failed);
      cache.delete(key);
    },
    async touch(key, touchedAt, idleExpiresAt) {
      const before = generation;
      const touched = await inner.touch(key, touchedAt, idleExpiresAt).catch(failed);
      const e = cache.peek(key);
      if (!touched) {
        // The store has no live record under this key: never serve (or refresh) a copy of it.
        cache.delete(key);
      } else if (before === generation && e?.value && e.value.grace_until === undefined) {
        // Keep this replica's copy current, so it does not ask for the same touch again.
        cache.set(key, { value: { ...e.value, touched_at: touchedAt, idle_expires_at: idleExpiresAt } });
      }
      return touched;
    },
    async rotate(oldKey, newKey, record, graceUntil) {
      const done = await inner.rotate(oldKey, newKey, record, graceUntil).catch(failedChange);
      await forget([oldKey, newKey], false);
      return done;
    },
    async destroy(key) {
      const removed = await inner.destroy(key).catch(failedChange);
      await forget(removed.includes(key) ? removed : [key, ...removed], true);
      return removed;
    },
    async destroyUser(refs) {
      const removed = await inner.destroyUser(refs).catch(failedChange);
      await forget(removed, true);
      return removed;
    },
    // The cache holds sessions only: the token catalog and one-time values go straight to the store.
    ...catalogOf(inner),
    ...onceOf(inner),
    ping: () => inner.ping(),
    async selfTest() {
      await inner.selfTest();
      // The channel too: a message of ours must have come back on the subscription (the
      // caller retries while it comes up).
      await bus.publish([]);
      if (!bus.up) throw new StoreUnavailableError('the invalidation channel is not live (no message of ours came back on the subscription)');
    },
    async close() {
      clearInterval(owedTimer);
      cache.clear();
      await bus.close();
      await inner.close();
    },
  };
}
