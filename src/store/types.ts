/**
 * The session store contract. Keys are `{tag}` + SHA-256 of session IDs (never IDs); values
 * are StoredSessions, their identity sealed (session/seal.ts). Every implementation passes the
 * one contract suite in test/contract/. A store that cannot answer throws StoreUnavailableError;
 * callers turn that into `store_unavailable`, never into a logout.
 */
import type { StoredSession } from '../session/seal.js';

export interface SessionStore {
  /** `memory`, `redis`, `redis-sentinel`, `redis-cluster`. */
  readonly kind: string;
  /** The record, or null when absent or past its store deadline (see storeDeadline). */
  get(key: string): Promise<StoredSession | null>;
  /** Writes the record and files it under its user reference. */
  create(key: string, record: StoredSession): Promise<void>;
  /** Refreshes the idle clock of a live, not rotated-away record; a no-op otherwise. */
  touch(key: string, touchedAt: number, idleExpiresAt: number): Promise<void>;
  /**
   * Atomically: if `oldKey` is live and not yet rotated, write `record` under `newKey` and
   * mark `oldKey` rotated (valid until `graceUntil`, pointing at `newKey`). Returns false,
   * changing nothing, when another request rotated it first or it is gone.
   */
  rotate(oldKey: string, newKey: string, record: StoredSession, graceUntil: number): Promise<boolean>;
  /** Removes the record and, if it was rotated, its successor. Idempotent. */
  destroy(key: string): Promise<void>;
  /** Removes every session filed under any of the user references; returns the keys removed. */
  destroyUser(userRefs: readonly string[]): Promise<string[]>;
  /**
   * A small named catalog of opaque values (the API token list): put, list, delete by ID.
   * Values are sealed by the caller; the store only keeps them.
   */
  catalogPut(catalog: string, id: string, value: string): Promise<void>;
  catalogList(catalog: string): Promise<Record<string, string>>;
  /** True when the entry existed. */
  catalogDelete(catalog: string, id: string): Promise<boolean>;
  /** Resolves when the store answers; throws StoreUnavailableError otherwise. */
  ping(): Promise<void>;
  /** A real write, read and delete: start-up proof that the store works, with a clear error if not. */
  selfTest(): Promise<void>;
  close(): Promise<void>;
}

export class StoreUnavailableError extends Error {
  override readonly name = 'StoreUnavailableError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
