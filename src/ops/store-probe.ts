/**
 * Whether the store can serve decisions now (SessionStore.ping: a read routed as session reads
 * are; in a Cluster, every master in cluster_state:ok). One probe feeds /readyz, gRPC health
 * and `sessiongate_store_up`, so they never disagree: it runs on an interval, on every /readyz,
 * and whenever a decision failed for the store; concurrent callers share one ping.
 */
import type { SessionStore } from '../store/types.js';

export interface StoreProbe {
  /** Last known state. */
  readonly up: boolean;
  /** Pings now (or joins the ping under way) and updates the state. */
  probe(): Promise<boolean>;
  stop(): void;
}

export function createStoreProbe(store: SessionStore, intervalMs: number, onChange: (up: boolean) => void): StoreProbe {
  let up = true;
  let running: Promise<boolean> | undefined;
  const ping = async (): Promise<boolean> => {
    let now: boolean;
    try {
      await store.ping();
      now = true;
    } catch {
      now = false;
    }
    if (now !== up) {
      up = now;
      onChange(up);
    }
    return up;
  };
  const probe = () => {
    running ??= ping().finally(() => (running = undefined));
    return running;
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
