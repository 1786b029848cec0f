/**
 * Prometheus metrics (prom-client), on a registry of the service's own (tests make a fresh one).
 * Label sets are closed and created once: transports, results, reason codes, store operations.
 * Never a user ID, path or session ID in a label. The decision counter's children are made
 * up front, so every series exists (at 0) from the first scrape and the hot path does a Map
 * lookup, not a label hash.
 *
 * The series counted on every decision (decisions, their durations, store calls and theirs) are
 * kept in plain numbers and handed to prom-client when the registry collects (a scrape, a
 * worker's report to the primary): prom-client's inc() and observe() validate and hash the label
 * set on every call, even on a bound child, and on the decision path that cost more than all the
 * rest of the bookkeeping. A scrape shows the same series and values.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { ALLOW_REASONS, DENY_REASONS, ERROR_REASONS, type Reason } from '../core/reasons.js';
import { type AuthRequest, type Decision, TRANSPORTS, type Transport } from '../core/types.js';
import { LOGIN_REASONS, type LoginReason, loginResult } from '../login/reasons.js';
import type { OneTimeValues, SessionOperations, SessionStore, StoreHealth, TokenCatalog } from '../store/types.js';

export const STORE_OPS = [
  'get',
  'create',
  'touch',
  'rotate',
  'destroy',
  'destroy_user',
  'catalog_put',
  'catalog_list',
  'catalog_delete',
  'once_put',
  'once_take',
  'once_claim',
  'ping',
  'self_test',
] as const;
export type StoreOp = (typeof STORE_OPS)[number];
export type CacheResult = 'hit' | 'miss' | 'bypass';
export type DestroyReason = 'logout' | 'revoked' | 'backchannel';

/** Decisions take tens of microseconds; store calls up to the command timeout. */
export const BUCKETS = [0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];

/** One counter series, counted in a plain number until collection. */
interface CountSeries {
  n: number;
  readonly child: { inc(value: number): void };
}

function countSeries(child: { inc(value: number): void }): CountSeries {
  return { n: 0, child };
}

function flushCounts(series: Iterable<CountSeries>): void {
  for (const s of series) {
    if (s.n === 0) continue;
    const n = s.n;
    s.n = 0;
    s.child.inc(n);
  }
}

/** One histogram series (BUCKETS), counted in plain numbers until collection; the last slot is past the last bound. */
interface TimeSeries {
  readonly labels: Record<string, string>;
  count: number;
  sum: number;
  readonly buckets: Float64Array;
}

/** Exported for test/unit/metrics.test.ts, with observeInto and flushTimes. */
export function timeSeries(labels: Record<string, string>): TimeSeries {
  return { labels, count: 0, sum: 0, buckets: new Float64Array(BUCKETS.length + 1) };
}

/** As prom-client's observe: the first bucket whose bound is at least the value; past the last, only count and sum. */
export function observeInto(s: TimeSeries, seconds: number): void {
  if (!Number.isFinite(seconds)) return;
  let i = 0;
  while (i < BUCKETS.length && seconds > BUCKETS[i]!) i++;
  s.buckets[i]!++;
  s.count++;
  s.sum += seconds;
}

/** prom-client's state of one histogram series (lib/histogram.js: hashMap values). */
interface PromHistogramSeries {
  readonly labels: Record<string, string | number>;
  readonly bucketValues: Record<number, number>;
  sum: number;
  count: number;
}

/**
 * Adds the pending counts to prom-client's series. prom-client has no public call that adds a
 * bucket count, so this writes its per-series state (the shape lib/histogram.js gives it);
 * test/unit/metrics.test.ts checks the exposition against prom-client's own observe().
 */
export function flushTimes(histogram: Histogram<string>, series: Iterable<TimeSeries>): void {
  for (const s of series) {
    if (s.count === 0) continue;
    const find = () =>
      Object.values((histogram as unknown as { hashMap: Record<string, PromHistogramSeries> }).hashMap).find((e) =>
        Object.entries(s.labels).every(([k, v]) => e.labels[k] === v),
      );
    let entry = find();
    if (entry === undefined) {
      histogram.zero(s.labels);
      entry = find()!;
    }
    for (let i = 0; i < BUCKETS.length; i++) entry.bucketValues[BUCKETS[i]!]! += s.buckets[i]!;
    entry.sum += s.sum;
    entry.count += s.count;
    s.count = 0;
    s.sum = 0;
    s.buckets.fill(0);
  }
}

export interface Metrics {
  readonly registry: Registry;
  /** Counts and times one decision. */
  decision(req: AuthRequest, d: Decision, startedAt: bigint): void;
  storeUp(up: boolean): void;
  cache(result: CacheResult): void;
  sessionCreated(): void;
  sessionsDestroyed(reason: DestroyReason, n: number): void;
  sessionRotated(): void;
  /** One finished (or refused) built-in login: `ok`, or the reason it was refused (src/login/reasons.ts). */
  login(outcome: LoginReason | 'ok'): void;
  /** Wraps a store so every call (sessions, token catalog, health) is counted and timed by operation and result. */
  instrumentStore<S extends SessionStore>(store: S): S;
}

function resultOf(reason: Reason): 'allow' | 'deny' | 'error' {
  if ((ALLOW_REASONS as readonly string[]).includes(reason)) return 'allow';
  if ((DENY_REASONS as readonly string[]).includes(reason)) return 'deny';
  return 'error';
}

export function createMetrics(info: { version: string }, registry = new Registry()): Metrics {
  collectDefaultMetrics({ register: registry });
  new Gauge({
    name: 'sessiongate_build_info',
    help: 'Build information; always 1.',
    labelNames: ['version', 'node_version'],
    registers: [registry],
    aggregator: 'first',
  })
    .labels(info.version, process.version)
    .set(1);

  // Hot-path series, counted in plain numbers and handed over on collection (see the header).
  const decisionCounts = new Map<Transport, Map<Reason, CountSeries>>();
  const decisionTimes = new Map<Transport, TimeSeries>();
  const storeCounts: CountSeries[] = [];
  const storeTimes: TimeSeries[] = [];

  const decisions = new Counter({
    name: 'sessiongate_decisions_total',
    help: 'Authorization decisions by transport, result (allow, deny, error) and reason code.',
    labelNames: ['transport', 'result', 'reason'],
    registers: [registry],
    collect: () => {
      for (const byReason of decisionCounts.values()) flushCounts(byReason.values());
    },
  });
  const decisionSeconds: Histogram<string> = new Histogram({
    name: 'sessiongate_decision_duration_seconds',
    help: 'Time from request translated to decision made, store calls included.',
    labelNames: ['transport'],
    buckets: BUCKETS,
    registers: [registry],
    collect: () => flushTimes(decisionSeconds, decisionTimes.values()),
  });
  const storeOps = new Counter({
    name: 'sessiongate_store_operations_total',
    help: 'Session store calls by operation and result (ok, error).',
    labelNames: ['op', 'result'],
    registers: [registry],
    collect: () => flushCounts(storeCounts),
  });
  const storeSeconds: Histogram<string> = new Histogram({
    name: 'sessiongate_store_duration_seconds',
    help: 'Session store call latency by operation.',
    labelNames: ['op'],
    buckets: BUCKETS,
    registers: [registry],
    collect: () => flushTimes(storeSeconds, storeTimes),
  });
  const storeUp = new Gauge({
    name: 'sessiongate_store_up',
    help: '1 while the session store answers its health probe, else 0.',
    registers: [registry],
    aggregator: 'min',
  });
  const cache = new Counter({
    name: 'sessiongate_store_cache_requests_total',
    help: 'Local session cache lookups by result (hit, miss, bypass while invalidation is down).',
    labelNames: ['result'],
    registers: [registry],
  });
  const created = new Counter({ name: 'sessiongate_sessions_created_total', help: 'Sessions created through the session API.', registers: [registry] });
  const destroyed = new Counter({
    name: 'sessiongate_sessions_destroyed_total',
    help: 'Sessions ended on purpose, by reason (logout, revoked, backchannel).',
    labelNames: ['reason'],
    registers: [registry],
  });
  const rotated = new Counter({ name: 'sessiongate_sessions_rotated_total', help: 'Session IDs rotated.', registers: [registry] });
  const logins = new Counter({
    name: 'sessiongate_logins_total',
    help: 'Built-in OpenID Connect logins at the callback, by result (ok, refused, error) and reason.',
    labelNames: ['result', 'reason'],
    registers: [registry],
  });
  const spoofs = new Counter({
    name: 'sessiongate_spoof_attempts_total',
    help: 'Requests that carried a protected identity header or an alias of one.',
    registers: [registry],
  });

  // Every valid series up front: zero is a value, and the hot path stays a Map lookup.
  for (const t of TRANSPORTS) {
    decisionSeconds.zero({ transport: t });
    decisionTimes.set(t, timeSeries({ transport: t }));
    const byReason = new Map<Reason, CountSeries>();
    decisionCounts.set(t, byReason);
    for (const r of [...ALLOW_REASONS, ...DENY_REASONS, ...ERROR_REASONS]) {
      const labels = { transport: t, result: resultOf(r), reason: r };
      decisions.inc(labels, 0);
      byReason.set(r, countSeries(decisions.labels(labels)));
    }
  }
  for (const op of STORE_OPS) {
    storeOps.inc({ op, result: 'ok' }, 0);
    storeOps.inc({ op, result: 'error' }, 0);
    storeSeconds.zero({ op });
  }
  for (const result of ['hit', 'miss', 'bypass']) cache.inc({ result }, 0);
  for (const reason of ['logout', 'revoked', 'backchannel']) destroyed.inc({ reason }, 0);
  logins.inc({ result: 'ok', reason: 'authenticated' }, 0);
  for (const reason of LOGIN_REASONS) logins.inc({ result: loginResult(reason), reason }, 0);
  storeUp.set(1);

  function timed<A extends unknown[], R>(op: StoreOp, fn: (...a: A) => Promise<R>): (...a: A) => Promise<R> {
    // Series made once: the hot path does no label hashing.
    const seconds = timeSeries({ op });
    const ok = countSeries(storeOps.labels(op, 'ok'));
    const error = countSeries(storeOps.labels(op, 'error'));
    storeTimes.push(seconds);
    storeCounts.push(ok, error);
    return async (...a) => {
      const start = process.hrtime.bigint();
      try {
        const r = await fn(...a);
        ok.n++;
        return r;
      } catch (err) {
        error.n++;
        throw err;
      } finally {
        observeInto(seconds, Number(process.hrtime.bigint() - start) / 1e9);
      }
    };
  }

  return {
    registry,
    decision(req, d, startedAt) {
      const counted = decisionCounts.get(req.transport)?.get(d.reason);
      if (counted !== undefined) counted.n++;
      const times = decisionTimes.get(req.transport);
      if (times !== undefined) observeInto(times, Number(process.hrtime.bigint() - startedAt) / 1e9);
      if (d.spoofed.length > 0) spoofs.inc();
    },
    storeUp: (up) => storeUp.set(up ? 1 : 0),
    cache: (r) => cache.labels(r).inc(),
    sessionCreated: () => created.inc(),
    sessionsDestroyed: (reason, n) => destroyed.labels(reason).inc(n),
    sessionRotated: () => rotated.inc(),
    login: (outcome) => logins.inc({ result: loginResult(outcome), reason: outcome === 'ok' ? 'authenticated' : outcome }),
    instrumentStore(store) {
      const s: SessionStore = store;
      const sessions: SessionOperations = {
        get: timed('get', s.get.bind(s)),
        create: timed('create', s.create.bind(s)),
        touch: timed('touch', s.touch.bind(s)),
        rotate: timed('rotate', s.rotate.bind(s)),
        destroy: timed('destroy', s.destroy.bind(s)),
        destroyUser: timed('destroy_user', s.destroyUser.bind(s)),
      };
      const catalog: TokenCatalog = {
        catalogPut: timed('catalog_put', s.catalogPut.bind(s)),
        catalogList: timed('catalog_list', s.catalogList.bind(s)),
        catalogDelete: timed('catalog_delete', s.catalogDelete.bind(s)),
      };
      const once: OneTimeValues = {
        oncePut: timed('once_put', s.oncePut.bind(s)),
        onceTake: timed('once_take', s.onceTake.bind(s)),
        onceClaim: timed('once_claim', s.onceClaim.bind(s)),
      };
      const health: StoreHealth = {
        kind: s.kind,
        ping: timed('ping', s.ping.bind(s)),
        selfTest: timed('self_test', s.selfTest.bind(s)),
        close: s.close.bind(s),
      };
      // On a prototype of the store: what is not a store operation (a Redis store's client) stays reachable.
      return Object.assign(Object.create(store) as object, sessions, catalog, once, health) as typeof store;
    },
  };
}
