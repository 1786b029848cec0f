/**
 * Prometheus metrics (prom-client), on a registry of the service's own (tests make a fresh one).
 * Label sets are closed and created once: transports, results, reason codes, store operations.
 * Never a user ID, path or session ID in a label. The decision counter's children are made
 * up front, so every series exists (at 0) from the first scrape and the hot path does a Map
 * lookup, not a label hash.
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
const BUCKETS = [0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];

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

  const decisions = new Counter({
    name: 'sessiongate_decisions_total',
    help: 'Authorization decisions by transport, result (allow, deny, error) and reason code.',
    labelNames: ['transport', 'result', 'reason'],
    registers: [registry],
  });
  const decisionSeconds = new Histogram({
    name: 'sessiongate_decision_duration_seconds',
    help: 'Time from request translated to decision made, store calls included.',
    labelNames: ['transport'],
    buckets: BUCKETS,
    registers: [registry],
  });
  const storeOps = new Counter({
    name: 'sessiongate_store_operations_total',
    help: 'Session store calls by operation and result (ok, error).',
    labelNames: ['op', 'result'],
    registers: [registry],
  });
  const storeSeconds = new Histogram({
    name: 'sessiongate_store_duration_seconds',
    help: 'Session store call latency by operation.',
    labelNames: ['op'],
    buckets: BUCKETS,
    registers: [registry],
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
  const decisionChild = new Map<string, ReturnType<typeof decisions.labels>>();
  const timer = new Map<Transport, ReturnType<typeof decisionSeconds.labels>>();
  for (const t of TRANSPORTS) {
    decisionSeconds.zero({ transport: t });
    timer.set(t, decisionSeconds.labels(t));
    for (const r of [...ALLOW_REASONS, ...DENY_REASONS, ...ERROR_REASONS]) {
      const labels = { transport: t, result: resultOf(r), reason: r };
      decisions.inc(labels, 0);
      decisionChild.set(`${t}|${r}`, decisions.labels(labels));
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
    // Children bound once: the hot path does no label hashing.
    const seconds = storeSeconds.labels(op);
    const ok = storeOps.labels(op, 'ok');
    const error = storeOps.labels(op, 'error');
    return async (...a) => {
      const start = process.hrtime.bigint();
      try {
        const r = await fn(...a);
        ok.inc();
        return r;
      } catch (err) {
        error.inc();
        throw err;
      } finally {
        seconds.observe(Number(process.hrtime.bigint() - start) / 1e9);
      }
    };
  }

  return {
    registry,
    decision(req, d, startedAt) {
      decisionChild.get(`${req.transport}|${d.reason}`)?.inc();
      timer.get(req.transport)?.observe(Number(process.hrtime.bigint() - startedAt) / 1e9);
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
