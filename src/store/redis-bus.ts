/**
 * The invalidation channel over Redis pub/sub: a JSON list of store keys (hashes, never
 * secrets) on `<prefix>invalidate`. A dedicated subscriber connection; the channel counts as
 * up only while that connection is ready and subscribed.
 */
import type { InvalidationBus } from './cached.js';
import type { RedisStore } from './redis.js';

export function createRedisBus(store: RedisStore): InvalidationBus {
  const sub = store.duplicateClient();
  const channel = store.channel;
  const invalidate: Array<(keys: string[]) => void> = [];
  const state: Array<(up: boolean) => void> = [];
  let up = false;
  const set = (now: boolean) => {
    if (now === up) return;
    up = now;
    for (const fn of state) fn(up);
  };

  const subscribe = () =>
    sub.subscribe(channel).then(
      () => set(true),
      () => set(false),
    );
  // ioredis resubscribes by itself after a reconnect; 'ready' follows, and only then is the
  // channel trusted again.
  sub.on('ready', () => void subscribe());
  sub.on('close', () => set(false));
  sub.on('end', () => set(false));
  sub.on('message', (ch: string, message: string) => {
    if (ch !== channel) return;
    try {
      const keys = JSON.parse(message) as unknown;
      if (Array.isArray(keys)) for (const fn of invalidate) fn(keys.filter((k): k is string => typeof k === 'string'));
    } catch {
      /* not ours */
    }
  });

  return {
    get up() {
      return up;
    },
    async publish(keys) {
      await store.client.publish(channel, JSON.stringify(keys));
    },
    onInvalidate: (fn) => void invalidate.push(fn),
    onState: (fn) => void state.push(fn),
    async close() {
      set(false);
      sub.disconnect();
    },
  };
}
