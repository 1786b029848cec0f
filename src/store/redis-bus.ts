/**
 * The invalidation channel over Redis pub/sub: a JSON list of store keys (hashes, never
 * secrets) on `<prefix>invalidate`. A dedicated subscriber connection; the channel counts as
 * up only while that connection is ready and subscribed.
 *
 * In a Cluster, classic PUBLISH reaches subscribers on other nodes over the cluster bus, after
 * the publisher already has its reply: a replica could serve one more request from its cache.
 * Sharded pub/sub (SPUBLISH/SSUBSCRIBE, Redis 7) instead delivers on the node that owns the
 * channel's slot before it replies, as a standalone server does: so a Cluster uses that.
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

  const sharded = store.kind === 'redis-cluster';
  const subscribe = () =>
    (sharded ? sub.ssubscribe(channel) : sub.subscribe(channel)).then(
      () => set(true),
      () => set(false),
    );
  if (sharded) {
    // The sharded subscriber group reports its own health: a lost subscriber means missed
    // messages until it is replaced and resubscribed.
    sub.on('-subscriber', () => set(false));
    sub.on('nodeError', () => set(false));
    sub.on('subscribersReady', () => void subscribe());
    void subscribe();
  } else {
    // ioredis resubscribes by itself after a reconnect; 'ready' follows, and only then is the
    // channel trusted again.
    sub.on('ready', () => void subscribe());
    sub.on('close', () => set(false));
    sub.on('end', () => set(false));
  }
  sub.on(sharded ? 'smessage' : 'message', (ch: string, message: string) => {
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
      const message = JSON.stringify(keys);
      await (sharded ? store.client.spublish(channel, message) : store.client.publish(channel, message));
    },
    onInvalidate: (fn) => void invalidate.push(fn),
    onState: (fn) => void state.push(fn),
    async close() {
      set(false);
      sub.disconnect();
    },
  };
}
