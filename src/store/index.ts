/**
 * The store factory: one place that turns the configured store into an implementation (with
 * the local cache and its invalidation channel in front of Redis), and fails loudly on a kind
 * it does not know.
 */
import { type CacheOptions, createCachedStore } from './cached.js';
import { createMemoryStore } from './memory.js';
import { createRedisStore, type RedisConnection, StoreAuthError } from './redis.js';
import { createRedisBus } from './redis-bus.js';
import type { SessionStore } from './types.js';

export type { SessionStore } from './types.js';
export { StoreUnavailableError } from './types.js';

/** The configured store, as config/schema.ts builds it from `store`, `redis`, `cache` and `memory`. */
export type StoreConfig =
  | { readonly kind: 'memory'; readonly maxEntries: number; readonly sweepInterval: number }
  | (RedisConnection & {
      readonly kind: 'redis' | 'redis-sentinel' | 'redis-cluster';
      /** How long start-up retries the store's self-test. */
      readonly startupTimeout: number;
      readonly cache: CacheOptions & { readonly enabled: boolean };
    });

export interface StoreHooks {
  /** Wraps the store that does real work (not the cache), e.g. to count and time its calls. */
  readonly instrument?: <S extends SessionStore>(store: S) => S;
  /** Told the result of every local cache lookup. */
  readonly cache?: (result: 'hit' | 'miss' | 'bypass') => void;
}

export function createStore(cfg: StoreConfig, clock: () => number, hooks: StoreHooks = {}): SessionStore {
  const instrument = hooks.instrument ?? (<S extends SessionStore>(s: S) => s);
  switch (cfg.kind) {
    case 'memory':
      return instrument(createMemoryStore({ maxEntries: cfg.maxEntries, sweepInterval: cfg.sweepInterval, clock }));
    case 'redis':
    case 'redis-sentinel':
    case 'redis-cluster': {
      const redis = createRedisStore({ ...cfg, clock });
      if (!cfg.cache.enabled) return instrument(redis);
      return createCachedStore(instrument(redis), cfg.cache, createRedisBus(redis, cfg.cache), clock, hooks.cache);
    }
    default: {
      const kind: never = cfg;
      throw new Error(`unknown store kind: ${JSON.stringify(kind)}`);
    }
  }
}

/**
 * A real write, read and delete, retried while the store comes up, for at most `timeoutMs`;
 * an authentication failure is final at once (no password gets better by waiting).
 */
export async function proveStore(store: SessionStore, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      await store.selfTest();
      return;
    } catch (err) {
      if (err instanceof StoreAuthError || Date.now() >= end) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
