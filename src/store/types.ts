/**
 * The session store contract, by role: session operations (what decisions and the session API
 * use), the token catalog (the token API) and health (probes, start-up, shutdown). A
 * SessionStore is all three; a caller or a wrapper (local cache, metrics) takes the role it
 * needs (one-time values: login flows and logout-token IDs). Keys are `{tag}` + SHA-256 of session IDs (never IDs); values are StoredSessions, their
 * identity sealed (session/seal.ts). Every implementation passes the one contract suite in
 * test/contract/, one part per role. A store that cannot answer throws StoreUnavailableError;
 * callers turn that into `store_unavailable`, never into a logout.
 */
import type { StoredSession } from '../session/seal.js';

/** Sessions: read, create, keep alive, rotate, end. */
export interface SessionOperations {
  /** The record, or null when absent or past its store deadline (see storeDeadline). */
  get(key: string): Promise<StoredSession | null>;
  /** Writes the record and files it under its user reference. */
  create(key: string, record: StoredSession): Promise<void>;
  /**
   * Refreshes the idle clock of a live, not rotated-away record; a no-op otherwise. True when
   * it touched (the record is there and live), false when the store has no such live record.
   */
  touch(key: string, touchedAt: number, idleExpiresAt: number): Promise<boolean>;
  /**
   * Atomically: if `oldKey` is live and not yet rotated, write `record` under `newKey` and
   * mark `oldKey` rotated (valid until `graceUntil`, pointing at `newKey`). Returns false,
   * changing nothing, when another request rotated it first or it is gone.
   */
  rotate(oldKey: string, newKey: string, record: StoredSession, graceUntil: number): Promise<boolean>;
  /**
   * Removes the record's whole family: every ID the session was rotated through, successors
   * and predecessors, however long the chain, so no ID of the session stays valid (not even
   * one in its rotation grace). A rotation racing it either lands in the removed family or
   * fails. Returns the keys removed (empty when there was nothing). Idempotent.
   */
  destroy(key: string): Promise<string[]>;
  /**
   * Removes every session (whole families) filed under any of the user references; returns
   * the keys removed. An interrupted call leaves the index entries of what it did not finish,
   * so a retry finds them.
   */
  destroyUser(userRefs: readonly string[]): Promise<string[]>;
}

/**
 * A small named catalog of opaque values (the API token list): put, list, delete by ID.
 * Values are sealed by the caller; the store only keeps them.
 */
export interface TokenCatalog {
  catalogPut(catalog: string, id: string, value: string): Promise<void>;
  catalogList(catalog: string): Promise<Record<string, string>>;
  /** True when the entry existed. */
  catalogDelete(catalog: string, id: string): Promise<boolean>;
}

/**
 * Short-lived values used once: a login flow's state (taken by its callback, never twice) and
 * the IDs of logout tokens already acted on. Keys are hashes chosen by the caller; values are
 * sealed by the caller. Each expires on its own TTL, whatever else happens.
 */
export interface OneTimeValues {
  /** Keeps `value` under `key` for `ttlMs` (replacing any value there). */
  oncePut(key: string, value: string, ttlMs: number): Promise<void>;
  /**
   * The value under `key`, removed in the same step: of two concurrent takes, one gets it. Null
   * when absent or expired. Taking a claimed key gives the claim back.
   */
  onceTake(key: string): Promise<string | null>;
  /** Marks `key` seen for `ttlMs`; true only for the first caller (until it expires). */
  onceClaim(key: string, ttlMs: number): Promise<boolean>;
}

/** Whether the store works, and its end. */
export interface StoreHealth {
  /** `memory`, `redis`, `redis-sentinel`, `redis-cluster`. */
  readonly kind: string;
  /**
   * Resolves when the store can serve decisions now: a read routed as session reads are (in a
   * Cluster, every master answers and reports cluster_state:ok). Throws StoreUnavailableError
   * otherwise. Readiness, gRPC health and `sessiongate_store_up` follow it.
   */
  ping(): Promise<void>;
  /** A real write, read and delete: start-up proof that the store works, with a clear error if not. */
  selfTest(): Promise<void>;
  close(): Promise<void>;
}

export interface SessionStore extends SessionOperations, TokenCatalog, OneTimeValues, StoreHealth {}

/** The one-time values of `store`, passed through unchanged (a wrapper that has nothing to add to them). */
export function onceOf(store: OneTimeValues): OneTimeValues {
  return {
    oncePut: (k, v, ttl) => store.oncePut(k, v, ttl),
    onceTake: (k) => store.onceTake(k),
    onceClaim: (k, ttl) => store.onceClaim(k, ttl),
  };
}

/** The catalog of `store`, passed through unchanged (a wrapper that has nothing to add to it). */
export function catalogOf(store: TokenCatalog): TokenCatalog {
  return {
    catalogPut: (c, id, v) => store.catalogPut(c, id, v),
    catalogList: (c) => store.catalogList(c),
    catalogDelete: (c, id) => store.catalogDelete(c, id),
  };
}

export class StoreUnavailableError extends Error {
  override readonly name = 'StoreUnavailableError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
