/**
 * In-memory session store: the embedded default, for a single replica. Bounded by
 * `max_entries` (least recently used sessions are evicted first) and swept of dead records on
 * an interval. Each session's family (the IDs it was rotated through)
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

const one = () => 1;

export function createMemoryStore(opts: MemoryStoreOptions): MemoryStore {
  // The indexes cost memory per session, so each holds the common case in its smallest form.
  // The per-user index: a reference's one key as a string, a Set only from the second session.
  const byUser = new Map<string, string | Set<string>>();
  const catalogs = new Map<string, Map<string, string>>();
  // A session's family (every ID it was rotated through), kept beside the LRU so that evicting
  // one member never hides the others from a logout. Only families of two or more are filed
  // (the first rotation makes one): a key with no entry is a family of itself. The Set is the
  // family's identity, shared by its members' entries.
  const familyOf = new Map<string, Set<string>>();
  // One-time values (login flows, logout-token IDs): their own bounded map, each with its TTL.
  // Claims (logout-token IDs) apart from values (login flows): a flood of started logins must
  // not evict what stops a replay.
  // Bounded by count through maxSize, not max: with max, lru-cache fills arrays of that length
  // at start-up (megabytes at the default bound, for maps that are mostly empty).
  const once = new LRUCache<string, string>({ maxSize: opts.maxEntries, sizeCalculation: one, perf: { now: () => opts.clock() } });
  const claims = new LRUCache<string, true>({ maxSize: opts.maxEntries, sizeCalculation: one, perf: { now: () => opts.clock() } });
  const fileUnder = (ref: string, key: string) => {
    const keys = byUser.get(ref);
    if (keys === undefined) byUser.set(ref, key);
    else if (typeof keys !== 'string') keys.add(key);
    else if (keys !== key) byUser.set(ref, new Set([keys, key]));
  };
  const unfileUnder = (ref: string, key: string) => {
    const keys = byUser.get(ref);
    if (keys === key) byUser.delete(ref);
    else if (keys !== undefined && typeof keys !== 'string' && keys.delete(key) && keys.size === 1) byUser.set(ref, keys.values().next().value!);
  };
  const unfile = (key: string, r: StoredSession) => {
    unfileUnder(r.user, key);
    if (r.links) for (const ref of r.links) unfileUnder(ref, key);
    const family = familyOf.get(key);
    if (family === undefined) return;
    familyOf.delete(key);
    family.delete(key);
    // The last member left is a family of itself again.
    if (family.size === 1) for (const k of family) familyOf.delete(k);
  };
  // The sessions, least recently used first. A Map keeps its keys in insertion order, so
  // moving a key to the end on use makes it an LRU with nothing per session beyond the Map's
  // own entry (lru-cache keeps four arrays more, each filled to max_entries at start-up).
  const sessions = new Map<string, StoredSession>();
  // Below half the bound no session is near eviction, so a read need not reorder (a delete and
  // an insert per request); sessions in use are rewritten by their touches all the same.
  const half = opts.maxEntries / 2;
  /** Removes a session and its filing; false when it was not there. */
  const remove = (key: string): boolean => {
    const r = sessions.get(key);
    if (r === undefined) return false;
    sessions.delete(key);
    unfile(key, r);
    return true;
  };
  /**
   * Stores a record as the most recently used. A record replaced under the same key (touch,
   * rotation) keeps its filing; only leaving the store (delete, eviction, expiry) unfiles it.
   */
  const put = (key: string, r: StoredSession) => {
    sessions.delete(key);
    sessions.set(key, r);
    if (sessions.size > opts.maxEntries) remove(sessions.keys().next().value!);
  };
  const file = (key: string, r: StoredSession) => {
    fileUnder(r.user, key);
    if (r.links) for (const ref of r.links) fileUnder(ref, key);
  };
  /** Files `newKey` in `oldKey`'s family (making one of the two when `oldKey` was alone). */
  const join = (oldKey: string, newKey: string) => {
    let family = familyOf.get(oldKey);
    if (family === undefined) familyOf.set(oldKey, (family = new Set([oldKey])));
    family.add(newKey);
    familyOf.set(newKey, family);
  };
  const live = (key: string): StoredSession | null => {
    const r = sessions.get(key);
    if (r === undefined) return null;
    if (opts.clock() >= storeDeadline(r)) {
      remove(key);
      return null;
    }
    if (sessions.size > half) {
      sessions.delete(key);
      sessions.set(key, r);
    }
    return r;
  };
  /** Removes every member of the key's family; the keys that were there. */
  const destroyFamily = (key: string): string[] => {
    const family = familyOf.get(key);
    // A copy: each delete unfiles its key from the family.
    const members = family === undefined ? [key] : [...family];
    return members.filter(remove);
  };

  let timer: NodeJS.Timeout | undefined;
  const store: MemoryStore = {
    kind: 'memory',
    get size() {
      return sessions.size;
    },
    async get(key) {
      return live(key);
    },
    async create(key, record) {
      remove(key); // a fresh session, not a member of an old family
      put(key, record);
      file(key, record);
    },
    async touch(key, touchedAt, idleExpiresAt) {
      const r = live(key);
      if (!r || r.grace_until !== undefined) return false;
      put(key, { ...r, touched_at: touchedAt, idle_expires_at: idleExpiresAt });
      return true;
    },
    async rotate(oldKey, newKey, record, graceUntil) {
      const r = live(oldKey);
      if (!r || r.grace_until !== undefined) return false;
      remove(newKey);
      put(newKey, record);
      file(newKey, record);
      join(oldKey, newKey);
      put(oldKey, { ...r, grace_until: graceUntil, successor: newKey });
      return true;
    },
    async destroy(key) {
      return destroyFamily(key);
    },
    async destroyUser(refs) {
      const removed: string[] = [];
      for (const ref of refs) {
        const keys = byUser.get(ref);
        if (keys === undefined) continue;
        // A copy: each destroy unfiles its keys.
        for (const key of typeof keys === 'string' ? [keys] : [...keys]) removed.push(...destroyFamily(key));
      }
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
      sessions.clear();
      once.clear();
      claims.clear();
      byUser.clear();
      familyOf.clear();
    },
    sweep() {
      const now = opts.clock();
      let n = 0;
      // Deleting from a Map while iterating it is safe: the iteration goes on with the next key.
      for (const [key, r] of sessions) if (now >= storeDeadline(r) && remove(key)) n++;
      return n;
    },
  };
  if (opts.sweepInterval > 0) {
    timer = setInterval(() => store.sweep(), opts.sweepInterval);
    timer.unref();
  }
  return store;
}
