/**
 * In-memory session store: the embedded default, for a single replica. Bounded by
 * `max_entries` (least recently used sessions are evicted first: an LRU from `lru-cache`) and
 * swept of dead records on an interval. Each session's family (the IDs it was rotated through)
 * is indexed, so a logout with any of them ends all. One-time values (login flows) live in a
 * second bounded map, each expiring on its own TTL. Time comes from the injected clock, so
 * expiry is tested without sleeping.
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
  // A session's family (every ID it was rotated through) under the key of its first ID, kept
  // beside the LRU so that evicting one member never hides the others from a logout.
  const familyOf = new Map<string, string>();
  const families = new Map<string, Set<string>>();
  // One-time values (login flows, logout-token IDs): their own bounded map, each with its TTL.
  // Claims (logout-token IDs) apart from values (login flows): a flood of started logins must
  // not evict what stops a replay.
  const once = new LRUCache<string, string>({ max: opts.maxEntries, perf: { now: () => opts.clock() } });
  const claims = new LRUCache<string, true>({ max: opts.maxEntries, perf: { now: () => opts.clock() } });
  const refsOf = (r: StoredSession) => (r.links ? [r.user, ...r.links] : [r.user]);
  const unfile = (key: string, r: StoredSession) => {
    for (const ref of refsOf(r)) {
      const keys = byUser.get(ref);
      keys?.delete(key);
      if (keys?.size === 0) byUser.delete(ref);
    }
    const root = familyOf.get(key);
    familyOf.delete(key);
    const members = root === undefined ? undefined : families.get(root);
    members?.delete(key);
    if (root !== undefined && members?.size === 0) families.delete(root);
  };
  // A record replaced under the same key (touch, rotation) keeps its filing; only leaving the
  // LRU (delete, eviction, expiry) unfiles it.
  const cache = new LRUCache<string, StoredSession>({ max: opts.maxEntries, dispose: (r, key, reason) => reason !== 'set' && unfile(key, r) });
  const file = (key: string, r: StoredSession, root: string) => {
    for (const ref of refsOf(r)) {
      let keys = byUser.get(ref);
      if (!keys) byUser.set(ref, (keys = new Set()));
      keys.add(key);
    }
    familyOf.set(key, root);
    let members = families.get(root);
    if (!members) families.set(root, (members = new Set()));
    members.add(key);
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
  /** Removes every member of the key's family; the keys that were there. */
  const destroyFamily = (key: string): string[] => {
    const root = familyOf.get(key);
    if (root === undefined) return [];
    const members = [...(families.get(root) ?? [])];
    return members.filter((k) => cache.delete(k));
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
      if (cache.has(key)) cache.delete(key); // a fresh session, not a member of an old family
      cache.set(key, record);
      file(key, record, key);
    },
    async touch(key, touchedAt, idleExpiresAt) {
      const r = live(key);
      if (!r || r.grace_until !== undefined) return false;
      cache.set(key, { ...r, touched_at: touchedAt, idle_expires_at: idleExpiresAt });
      return true;
    },
    async rotate(oldKey, newKey, record, graceUntil) {
      const r = live(oldKey);
      if (!r || r.grace_until !== undefined) return false;
      if (cache.has(newKey)) cache.delete(newKey);
      cache.set(newKey, record);
      file(newKey, record, familyOf.get(oldKey) ?? oldKey);
      cache.set(oldKey, { ...r, grace_until: graceUntil, successor: newKey });
      return true;
    },
    async destroy(key) {
      return destroyFamily(key);
    },
    async destroyUser(refs) {
      const removed: string[] = [];
      for (const ref of refs) for (const key of [...(byUser.get(ref) ?? [])]) removed.push(...destroyFamily(key));
      return removed;
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
    async oncePut(key, value, ttlMs) {
      once.set(key, value, { ttl: Math.max(1, ttlMs) });
    },
    async onceTake(key) {
      const v = once.get(key);
      if (v !== undefined) {
        once.delete(key);
        return v;
      }
      // A claim given back (its work failed): taken like a value.
      return claims.delete(key) ? '1' : null;
    },
    async onceClaim(key, ttlMs) {
      if (claims.get(key) !== undefined) return false;
      claims.set(key, true, { ttl: Math.max(1, ttlMs) });
      return true;
    },
    async ping() {},
    async selfTest() {},
    async close() {
      if (timer) clearInterval(timer);
      cache.clear();
      once.clear();
      claims.clear();
      byUser.clear();
      familyOf.clear();
      families.clear();
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
