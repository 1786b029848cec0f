/**
 * The session store contract. Keys are SHA-256 digests of session IDs (never IDs). Every
 * implementation passes the one contract suite in test/contract/. A store that cannot answer
 * throws StoreUnavailableError; callers turn that into `store_unavailable`, never into a
 * logout.
 */
import type { SessionRecord } from '../session/record.js';

export interface SessionStore {
  /** `memory`, `redis`, `redis-sentinel`, `redis-cluster`. */
  readonly kind: string;
  /** The record, or null when absent or past its store deadline. */
  get(key: string): Promise<SessionRecord | null>;
  create(key: string, record: SessionRecord): Promise<void>;
  /** Refreshes the idle clock of a live, not rotated-away record; a no-op otherwise. */
  touch(key: string, touchedAt: number, idleExpiresAt: number): Promise<void>;
  /**
   * Atomically: if `oldKey` is live and not yet rotated, write `record` under `newKey` and
   * mark `oldKey` rotated (valid until `graceUntil`, pointing at `newKey`). Returns false,
   * changing nothing, when another request rotated it first or it is gone.
   */
  rotate(oldKey: string, newKey: string, record: SessionRecord, graceUntil: number): Promise<boolean>;
  /** Removes the record and, if it was rotated, its successor. Idempotent. */
  destroy(key: string): Promise<void>;
  /** Resolves when the store answers; throws StoreUnavailableError otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export class StoreUnavailableError extends Error {
  override readonly name = 'StoreUnavailableError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
