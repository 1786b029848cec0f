/**
 * The store factory: one place that turns the configured store into an implementation, and
 * fails loudly on a kind it does not know.
 */
import type { StoreConfig } from '../config.js';
import { createMemoryStore } from './memory.js';
import type { SessionStore } from './types.js';

export type { SessionStore } from './types.js';
export { StoreUnavailableError } from './types.js';

export function createStore(cfg: StoreConfig, clock: () => number): SessionStore {
  switch (cfg.kind) {
    case 'memory':
      return createMemoryStore({ maxEntries: cfg.maxEntries, sweepInterval: cfg.sweepInterval, clock });
    default: {
      const kind: never = cfg.kind;
      throw new Error(`unknown store kind: ${String(kind)}`);
    }
  }
}
