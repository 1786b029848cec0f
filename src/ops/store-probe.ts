/**
 * Watches the store: pings it on an interval and reports each change of reachability, so gRPC
 * health can say NOT_SERVING while the store is down and SERVING again when it returns.
 */
import type { SessionStore } from '../store/types.js';

export interface StoreProbe {
  /** Last known reachability. */
  readonly up: boolean;
  /** Pings now and updates the state. */
  probe(): Promise<boolean>;
  stop(): void;
}

export function createStoreProbe(store: SessionStore, intervalMs: number, onChange: (up: boolean) => void): StoreProbe {
  let up = true;
  let running = false;
  const probe = async () => {
    if (running) return up;
    running = true;
    let now: boolean;
    try {
      await store.ping();
      now = true;
    } catch {
      now = false;
    } finally {
      running = false;
    }
    if (now !== up) {
      up = now;
      onChange(up);
    }
    return up;
  };
  const timer = setInterval(() => void probe(), intervalMs);
  timer.unref();
  return {
    get up() {
      return up;
    },
    probe,
    stop: () => clearInterval(timer),
  };
}
