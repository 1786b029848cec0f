/**
 * In-memory session store: the embedded default, for a single replica. Bounded by
 * `max_entries` (least recently used sessions are evicted first: an LRU from `lru-cache`) and
 * swept of dead records on an interval. Time comes from the injected clock, so expiry is tested
 * without sleeping.
 */
import { LRUCache } from 'lru-cache';
import { storeDeadline } from '../session/record.js';
import type { StoredSession } from '../session/seal.js';
import type { SessionStore } from './types.js';

export interface MemoryStoreOptions {
  readonly maxEntries: number;
  /** Milliseconds between sweeps of dead records; 0 disables the timer (tests sweep by hand). */
  readonly sweepInterval: number;
  readonly clock: () => number;
}

export interface MemoryStore extends SessionStore {
  /** Drops every record past its deadline; returns how many. */
  sweep(): number;
  readonly size: number;
}

export function createMemoryStore(opts: MemoryStoreOptions): MemoryStore {
  const byUser = new Map<string, Set<string>>();
  const catalogs = new Map<string, Map<string, string>>();
  const unfile = (key: string, r: StoredSession) => {
    const keys = byUser.get(r.user);
    keys?.delete(key);
    if (keys?.size === 0) byUser.delete(r.user);
  };
  const cache = new LRUCache<string, StoredSession>({ max: opts.maxEntries, dispose: (r, key) => unfile(key, r) });
  const file = (key: string, r: StoredSession) => {
    let keys = byUser.get(r.user);
    if (!keys) byUser.set(r.user, (keys = new Set()));
    keys.add(key);
  };
  const live = (key: string): StoredSession | null => {
    const r = cache.get(key);
    if (!r) return null;
    if (opts.clock() >= storeDeadline(r)) {
      cache.delete(key);
      return null;
    }
    return r;
  };

  let timer: NodeJS.Timeout | undefined;
  const store: MemoryStore = {
    kind: 'memory',
    get size() {
      return cache.size;
    },
    async get(key) {
      return live(key);
    },
    async create(key, record) {
      cache.set(key, record);
      file(key, record);
    },
    async touch(key, touchedAt, idleExpiresAt) {
      const r = live(key);
      if (!r || r.grace_until !== undefined) return;
      cache.set(key, { ...r, touched_at: touchedAt, idle_expires_at: idleExpiresAt });
      file(key, r);
    },
    async rotate(oldKey, newKey, record, graceUntil) {
      const r = live(oldKey);
      if (!r || r.grace_until !== undefined) return false;
      cache.set(newKey, record);
      file(newKey, record);
      cache.set(oldKey, { ...r, grace_until: graceUntil, successor: newKey });
      file(oldKey, r);
      return true;
    },
    async destroy(key) {
      const r = cache.get(key);
      cache.delete(key);
      if (r?.successor !== undefined) await store.destroy(r.successor);
    },
    async destroyUser(refs) {
      const keys = refs.flatMap((ref) => [...(byUser.get(ref) ?? [])]);
      for (const key of keys) cache.delete(key);
      return keys;
    },
    async catalogPut(catalog, id, value) {
      let c = catalogs.get(catalog);
      if (!c) catalogs.set(catalog, (c = new Map()));
      c.set(id, value);
    },
    async catalogList(catalog) {
      return Object.fromEntries(catalogs.get(catalog) ?? []);
    },
    async catalogDelete(catalog, id) {
      return catalogs.get(catalog)?.delete(id) ?? false;
    },
    async ping() {},
    async selfTest() {},
    async close() {
      if (timer) clearInterval(timer);
      cache.clear();
      byUser.clear();
    },
    sweep() {
      const now = opts.clock();
      // Collect first: deleting while iterating an LRU reorders it.
      const dead: string[] = [];
      for (const [key, r] of cache.entries()) if (now >= storeDeadline(r)) dead.push(key);
      let n = 0;
      for (const key of dead) if (cache.delete(key)) n++;
      return n;
    },
  };
  if (opts.sweepInterval > 0) {
    timer = setInterval(() => store.sweep(), opts.sweepInterval);
    timer.unref();
  }
  return store;
}
