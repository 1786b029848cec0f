/**
 * The invalidation channel over Redis pub/sub: JSON lists of store keys (hashes, never
 * secrets) on `<prefix>invalidate`, read on a dedicated subscriber connection.
 *
 * The channel is trusted only while it is proven live. Every message this replica sends
 * carries a tag naming it (`~<kind>:<replica>:<n>`, kinds `m` keys, `h` heartbeat, `a` forget
 * everything), a heartbeat goes out every `heartbeat_interval`, and the channel counts as up
 * only while a message sent within the last `heartbeat_timeout` has come back on this
 * replica's own subscription. Redis hands a channel's messages to each subscriber in order, so
 * one of ours coming back proves every invalidation Redis took before it reached us too. A
 * hung Redis, a connection cut without a reset, a subscription lost on the server: nothing
 * comes back, and within heartbeat_timeout the cache stops trusting what it holds. A failed
 * publish or store command (`fault()`) distrusts it at once, until a message sent after the
 * fault comes back.
 *
 * In a Cluster, classic PUBLISH reaches subscribers on other nodes over the cluster bus, after
 * the publisher already has its reply; sharded pub/sub (SPUBLISH/SSUBSCRIBE, Redis 7) delivers
 * on the node that owns the channel's slot before it replies, as a standalone server does: so
 * a Cluster uses that. Replicas of an older version read a tag as a key nobody has.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { InvalidationBus } from './cached.js';
import type { RedisStore } from './redis.js';

export interface BusOptions {
  /** Milliseconds between heartbeats. */
  readonly heartbeatInterval: number;
  /** Milliseconds a message of ours may take to come back before the channel is distrusted. */
  readonly heartbeatTimeout: number;
  /** Monotonic milliseconds; tests may replace it. */
  readonly now?: () => number;
}

interface Waiting {
  readonly sentAt: number;
  readonly done?: (echoed: boolean) => void;
}

export function createRedisBus(store: RedisStore, opts: BusOptions): InvalidationBus {
  const now = opts.now ?? (() => performance.now());
  const sub = store.duplicateClient();
  const channel = store.channel;
  const id = randomBytes(6).toString('base64url');
  const invalidate: Array<(keys: string[] | 'all') => void> = [];
  const state: Array<(up: boolean) => void> = [];
  const waiting = new Map<number, Waiting>();
  let seq = 0;
  let subscribed = false;
  let closed = false;
  // The channel is proven by a message sent after the last fault that came back.
  let faultAt = now();
  let provenAt = -Infinity;
  let announced = false;

  const isUp = () => !closed && subscribed && provenAt > faultAt && now() - provenAt < opts.heartbeatTimeout;
  /** Tells listeners when trust changes (they also ask `up` on every read). */
  const refresh = () => {
    const up = isUp();
    if (up === announced) return;
    announced = up;
    for (const fn of state) fn(up);
  };
  const fault = () => {
    faultAt = now();
    refresh();
  };

  const sharded = store.kind === 'redis-cluster';
  const send = (message: string) => (sharded ? store.client.spublish(channel, message) : store.client.publish(channel, message));

  const heartbeat = () => {
    if (closed || !subscribed) return;
    const n = ++seq;
    waiting.set(n, { sentAt: now() });
    send(JSON.stringify([`~h:${id}:${n}`])).catch(() => {
      waiting.delete(n);
      fault();
    });
  };
  const tick = () => {
    const oldest = now() - opts.heartbeatTimeout;
    for (const [n, w] of waiting) {
      if (w.sentAt >= oldest) break; // in send order
      waiting.delete(n);
      w.done?.(false);
    }
    heartbeat();
    refresh();
  };
  const timer = setInterval(tick, opts.heartbeatInterval);
  timer.unref();

  const setSubscribed = (on: boolean) => {
    if (on === subscribed) return;
    subscribed = on;
    if (subscribed) heartbeat();
    else fault();
  };
  const subscribe = () =>
    (sharded ? sub.ssubscribe(channel) : sub.subscribe(channel)).then(
      () => setSubscribed(true),
      () => setSubscribed(false),
    );
  if (sharded) {
    // The sharded subscriber group reports its own health: a lost subscriber means missed
    // messages until it is replaced and resubscribed.
    sub.on('-subscriber', () => setSubscribed(false));
    sub.on('nodeError', () => setSubscribed(false));
    sub.on('subscribersReady', () => void subscribe());
    void subscribe();
  } else {
    // ioredis resubscribes by itself after a reconnect; 'ready' follows.
    sub.on('ready', () => void subscribe());
    sub.on('close', () => setSubscribed(false));
    sub.on('end', () => setSubscribed(false));
  }

  const echoed = (n: number) => {
    const w = waiting.get(n);
    if (!w) return;
    waiting.delete(n);
    if (w.sentAt > faultAt && w.sentAt > provenAt) provenAt = w.sentAt;
    w.done?.(true);
    refresh();
  };
  sub.on(sharded ? 'smessage' : 'message', (ch: string, message: string) => {
    if (ch !== channel) return;
    let list: unknown;
    try {
      list = JSON.parse(message);
    } catch {
      return; // not ours
    }
    if (!Array.isArray(list)) return;
    let kind = 'm';
    let from: string | undefined;
    let n = 0;
    const head: unknown = list[0];
    if (typeof head === 'string' && head.startsWith('~')) {
      const parts = head.slice(1).split(':');
      [kind, from, n] = [parts[0] ?? '', parts[1], Number(parts[2])];
      list = list.slice(1);
    }
    if (kind === 'a') for (const fn of invalidate) fn('all');
    else if (kind === 'm') {
      const keys = (list as unknown[]).filter((k): k is string => typeof k === 'string');
      if (keys.length > 0) for (const fn of invalidate) fn(keys);
    }
    if (from === id) echoed(n);
  });

  return {
    get up() {
      return isUp();
    },
    async publish(keys) {
      if (closed) throw new Error('invalidation channel closed');
      const n = ++seq;
      const tag = `~${keys === 'all' ? 'a' : 'm'}:${id}:${n}`;
      const message = JSON.stringify(keys === 'all' ? [tag] : [tag, ...keys]);
      // Wait for our own copy: Redis hands a message to every subscriber before it gets to
      // this replica's, so once it is back the others have it too. (It cannot come back to a
      // replica that is not subscribed; then the publish's reply is all there is.)
      let done: (echoed: boolean) => void = () => {};
      const back = new Promise<boolean>((resolve) => (done = resolve));
      if (subscribed) waiting.set(n, { sentAt: now(), done });
      try {
        await send(message);
      } catch (err) {
        waiting.delete(n);
        fault();
        throw err;
      }
      // Redis took it (every live subscriber has it). If ours never comes back, this
      // replica's own channel is what is wrong: distrust it, the message is still out.
      if (subscribed && waiting.has(n) && !(await back)) fault();
    },
    onInvalidate: (fn) => void invalidate.push(fn),
    onState: (fn) => void state.push(fn),
    fault,
    async close() {
      closed = true;
      clearInterval(timer);
      for (const w of waiting.values()) w.done?.(false);
      waiting.clear();
      refresh();
      sub.disconnect();
    },
  };
}
