/**
 * The invalidation channel over Redis pub/sub: JSON lists of store keys (hashes, never
 * secrets) on `<prefix>invalidate`, read on a dedicated subscriber connection.
 *
 * The channel is trusted only while it is proven live. Every message a replica sends carries a
 * tag naming it (`~<kind>:<replica>:<n>`), a heartbeat goes out every `heartbeat_interval`, and
 * the channel counts as up only while a message of ours sent within the last
 * `heartbeat_timeout` has come back on our own subscription. Redis hands a channel's messages
 * to each subscriber in order, so one of ours coming back proves every invalidation Redis took
 * before it reached us too. A hung Redis, a connection cut without a reset, a subscription lost
 * on the server: nothing comes back, and within heartbeat_timeout the cache stops trusting what
 * it holds. A failed publish or store command (`fault()`) distrusts it at once, until a message
 * sent after the fault comes back.
 *
 * A logout's invalidation is confirmed: every replica acknowledges it (kind `k`) once it has
 * dropped the keys, and the publisher waits for every replica it heard from within
 * heartbeat_timeout, or for heartbeat_timeout after Redis took the message. A replica that has
 * not processed the message by then has not had any newer message of its own back either, so
 * it has stopped using its cache. Either way, when the logout is answered no replica serves
 * the session from its cache.
 *
 * Kinds: `m` keys, `x` keys to acknowledge, `a` forget everything, `h` heartbeat, `k` an
 * acknowledgement (of `<replica>:<n>`). Replicas of an older version read a tag as a key
 * nobody has, and never acknowledge (they are not waited for: they send no tags).
 *
 * In a Cluster, classic PUBLISH reaches subscribers on other nodes over the cluster bus, after
 * the publisher already has its reply; sharded pub/sub (SPUBLISH/SSUBSCRIBE, Redis 7) delivers
 * on the node that owns the channel's slot before it replies, as a standalone server does: so
 * a Cluster uses that.
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

/**
 * A confirmed publish: done once echoed and acknowledged by every replica alive at the echo,
 * or at its deadline. `required` is null when this replica has not been subscribed long enough
 * to have heard every live replica: then only the deadline counts.
 */
interface Confirming {
  readonly acks: Set<string>;
  required: string[] | null | undefined;
  deadline: number;
  readonly finish: () => void;
}

/** Replica IDs not heard from for this long are forgotten. */
const FORGET_PEERS_MS = 60_000;

export function createRedisBus(store: RedisStore, opts: BusOptions): InvalidationBus {
  const now = opts.now ?? (() => performance.now());
  const sub = store.duplicateClient();
  const channel = store.channel;
  const id = randomBytes(6).toString('base64url');
  const invalidate: Array<(keys: string[] | 'all') => void> = [];
  const state: Array<(up: boolean) => void> = [];
  const waiting = new Map<number, Waiting>();
  const confirming = new Map<number, Confirming>();
  // Other replicas, by the tags of what they send: the last time each was heard.
  const peers = new Map<string, number>();
  let seq = 0;
  let subscribed = false;
  let subscribedAt = Infinity;
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
    for (const [peer, heard] of peers) if (heard < now() - FORGET_PEERS_MS) peers.delete(peer);
    for (const n of confirming.keys()) settle(n);
    heartbeat();
    refresh();
  };
  const timer = setInterval(tick, opts.heartbeatInterval);
  timer.unref();

  const setSubscribed = (on: boolean) => {
    if (on === subscribed) return;
    subscribed = on;
    subscribedAt = on ? now() : Infinity;
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

  const alivePeers = () => {
    const since = now() - opts.heartbeatTimeout;
    return [...peers].filter(([, heard]) => heard >= since).map(([peer]) => peer);
  };
  /** Finishes a confirmed publish when every required replica acknowledged, or at its deadline. */
  function settle(n: number): void {
    const c = confirming.get(n);
    if (!c) return;
    const acked = Array.isArray(c.required) && c.required.every((peer) => c.acks.has(peer));
    if (!acked && now() < c.deadline) return;
    confirming.delete(n);
    c.finish();
  }
  const echoed = (n: number) => {
    const w = waiting.get(n);
    const c = confirming.get(n);
    // The replicas whose messages came before ours are the ones that must acknowledge it;
    // every live one sent some within heartbeat_timeout, if we listened that long.
    if (c && c.required === undefined) c.required = now() - subscribedAt >= opts.heartbeatTimeout ? alivePeers() : null;
    if (!w) return void settle(n);
    waiting.delete(n);
    if (w.sentAt > faultAt && w.sentAt > provenAt) provenAt = w.sentAt;
    w.done?.(true);
    refresh();
    settle(n);
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
    if (from !== undefined && from !== id) peers.set(from, now());
    if (kind === 'a') for (const fn of invalidate) fn('all');
    else if (kind === 'm' || kind === 'x') {
      const keys = (list as unknown[]).filter((k): k is string => typeof k === 'string');
      if (keys.length > 0) for (const fn of invalidate) fn(keys);
      // Dropped: say so to the replica that is waiting to answer its logout.
      if (kind === 'x' && from !== undefined && from !== id) {
        send(JSON.stringify([`~k:${id}:${++seq}`, `${from}:${n}`])).catch(fault);
      }
    } else if (kind === 'k' && from !== undefined) {
      const [to, of] = String((list as unknown[])[0] ?? '').split(':');
      const c = to === id ? confirming.get(Number(of)) : undefined;
      if (c) {
        c.acks.add(from);
        settle(Number(of));
      }
    }
    if (from === id) echoed(n);
  });

  return {
    get up() {
      return isUp();
    },
    async publish(keys, confirm = false) {
      if (closed) throw new Error('invalidation channel closed');
      const n = ++seq;
      const tag = `~${keys === 'all' ? 'a' : confirm ? 'x' : 'm'}:${id}:${n}`;
      const message = JSON.stringify(keys === 'all' ? [tag] : [tag, ...keys]);
      // Our own copy coming back proves the subscription (it cannot come back to a replica
      // that is not subscribed).
      let done: (echoed: boolean) => void = () => {};
      const back = new Promise<boolean>((resolve) => (done = resolve));
      if (subscribed) waiting.set(n, { sentAt: now(), done });
      let confirmed: Promise<void> | undefined;
      if (confirm && keys !== 'all') {
        confirmed = new Promise<void>((finish) => confirming.set(n, { acks: new Set(), required: undefined, deadline: Infinity, finish }));
      }
      try {
        await send(message);
      } catch (err) {
        waiting.delete(n);
        confirming.get(n)?.finish();
        confirming.delete(n);
        fault();
        throw err;
      }
      // Redis took it: every live subscriber has it queued.
      const c = confirming.get(n);
      if (c) {
        c.deadline = now() + opts.heartbeatTimeout;
        const deadline = setTimeout(() => settle(n), opts.heartbeatTimeout + 1);
        settle(n);
        await confirmed;
        clearTimeout(deadline);
      }
      // If ours never comes back, this replica's own channel is what is wrong: distrust it.
      // (Only a confirmed publish waits for that; a rotation's answer does not.)
      if (subscribed && waiting.has(n)) {
        if (c) {
          if (!(await back)) fault();
        } else void back.then((echoed) => echoed || fault());
      }
    },
    onInvalidate: (fn) => void invalidate.push(fn),
    onState: (fn) => void state.push(fn),
    fault,
    async close() {
      closed = true;
      clearInterval(timer);
      for (const w of waiting.values()) w.done?.(false);
      waiting.clear();
      for (const c of confirming.values()) c.finish();
      confirming.clear();
      refresh();
      sub.disconnect();
    },
  };
}
