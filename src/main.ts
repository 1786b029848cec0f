/**
 * Wiring only: builds the policy, the store and the listeners from a Config, and stops them.
 */

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import type { Registry } from 'prom-client';
import { jsonErrors } from './api/errors.js';
import { createProbe } from './api/probe.js';
import { createSessionApi } from './api/session-api.js';
import { createTokenApp } from './api/tokens.js';
import { type Config, isLoopback } from './config.js';
import { createCheck } from './core/check.js';
import type { ExternalSource } from './core/external.js';
import { buildPolicy, type Policy } from './core/policy.js';
import { createExternalSources } from './external/index.js';
import type { Provider } from './login/provider.js';
import { createAdminApp } from './ops/admin.js';
import { createDecisionLogger, type Logger } from './ops/logger.js';
import { createMetrics, type Metrics } from './ops/metrics.js';
import { createStoreProbe } from './ops/store-probe.js';
import { instanceMetrics, isWorker, shareWorkerMetrics } from './ops/workers.js';
import { createStore, proveStore, type SessionStore } from './store/index.js';
import { createEnvoyGrpcServer } from './transport/envoy-grpc.js';
import { createEnvoyHttpHandler } from './transport/envoy-http.js';
import { AUTHORIZATION_SERVICE } from './transport/envoy-proto.js';
import { createHttpServer } from './transport/http-server.js';
import { createNginxHandler } from './transport/nginx.js';
import { VERSION } from './version.js';

/** How often the store is probed for readiness (also on every /readyz and after a store error). */
const STORE_PROBE_INTERVAL_MS = 1000;

export interface Service {
  /** `admin`: health, readiness, metrics; `api`: the token API (loopback unless configured otherwise). */
  readonly ports: { readonly http: number; readonly grpc: number; readonly admin: number; readonly api: number };
  /** The HTTP port's server (nginx /auth and the session API), for embedding and tests. */
  readonly httpServer: Server;
  readonly metrics: Metrics;
  /**
   * Applies a new configuration's rules, header mappings, secrets, login token and log level
   * at once (one atomic swap). Listeners and the store stay: the keys whose change needs a
   * restart are returned.
   */
  reload(config: Config): string[];
  close(): Promise<void>;
}

function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
    server.closeIdleConnections();
  });
}

export interface ServiceOptions {
  /** Milliseconds since the epoch; tests move it to expire and rotate sessions without sleeping. */
  readonly clock?: () => number;
  /** A store to use instead of the configured one (embedding, tests). */
  readonly store?: SessionStore;
  /** A metrics registry of the caller's (tests use a fresh one). */
  readonly registry?: Registry;
}

/** The parts of a configuration a reload cannot change in a running process. */
function restartKeys(old: Config, next: Config): string[] {
  const out: string[] = [];
  if (JSON.stringify(old.listen) !== JSON.stringify(next.listen)) out.push('listen');
  if (JSON.stringify(old.store) !== JSON.stringify(next.store)) out.push('store');
  if (old.envoy.httpPathPrefix !== next.envoy.httpPathPrefix) out.push('envoy.http_path_prefix');
  if (JSON.stringify(old.external) !== JSON.stringify(next.external)) out.push('external_sessions');
  if (JSON.stringify(old.oidc) !== JSON.stringify(next.oidc)) out.push('login.oidc');
  return out;
}

export async function startService(config: Config, log: Logger, opts: ServiceOptions = {}): Promise<Service> {
  const clock = opts.clock ?? Date.now;
  const metrics = createMetrics({ version: VERSION }, opts.registry);
  // Read through getters on every request, so a reload swaps them atomically.
  let current = config;
  let policy: Policy = buildPolicy(config.policy);
  const getPolicy = () => policy;
  const store = opts.store
    ? metrics.instrumentStore(opts.store)
    : createStore(config.store, clock, { instrument: metrics.instrumentStore, cache: metrics.cache });
  const storeName = config.store.kind === 'memory' ? 'memory' : config.store.displayUrl;
  try {
    await proveStore(store, config.store.kind === 'memory' ? 0 : config.store.startupTimeout);
  } catch (err) {
    await store.close();
    throw new Error(`store ${storeName} is not usable: ${(err as Error).message}`);
  }
  let provider: Provider | undefined;
  // The login modules (openid-client, jose) are loaded only when a provider is configured:
  // without one they would cost several MB of resident memory for nothing.
  let createLoginRoutes: typeof import('./login/routes.js').createLoginRoutes | undefined;
  if (config.oidc) {
    try {
      provider = await (await import('./login/provider.js')).createProvider(config.oidc, clock);
      ({ createLoginRoutes } = await import('./login/routes.js'));
    } catch (err) {
      await store.close();
      throw err;
    }
  }
  let ready = false;
  let external: ExternalSource[];
  try {
    external = createExternalSources(config.external, {
      onTouchError: (kind, err) => log.warn({ msg: 'external session touch failed', source: kind, err: (err as Error).message }),
    });
  } catch (err) {
    await store.close();
    throw err;
  }

  const check = createCheck({
    policy: getPolicy,
    store,
    clock,
    external,
    observe: (() => {
      const logDecision = createDecisionLogger(log);
      return (req, d, startedAt) => {
        metrics.decision(req, d, startedAt);
        logDecision(req, d, startedAt);
        // Readiness follows what decisions can do: a store error is worth a probe now.
        if (d.reason === 'store_unavailable') void probe.probe();
      };
    })(),
    onEffectError: (effect, err) => log.warn({ msg: `session ${effect} failed`, reason: 'store_unavailable', err: (err as Error).message }),
    onRotate: metrics.sessionRotated,
  });

  const api = express();
  api.disable('x-powered-by');
  api.use(createProbe({ policy: getPolicy }));
  api.use(
    createSessionApi({
      policy: getPolicy,
      store,
      clock,
      loginToken: () => current.loginToken,
      log,
      metrics,
      devLogin: () => current.devLogin && isLoopback(config.listen.host),
    }),
  );
  if (provider && createLoginRoutes) api.use(createLoginRoutes({ provider, policy: getPolicy, store, clock, log, metrics }));
  api.use((_req, res) => void res.status(404).set('Content-Length', '0').end());
  api.use(jsonErrors(log));

  const prefix = config.envoy.httpPathPrefix;
  const httpServer = createHttpServer({
    nginx: createNginxHandler(check),
    envoy: createEnvoyHttpHandler(check, prefix),
    envoyPrefix: prefix,
    api,
  });
  if (isWorker()) shareWorkerMetrics(metrics.registry);
  const grpc = createEnvoyGrpcServer(check);
  const probe = createStoreProbe(store, STORE_PROBE_INTERVAL_MS, (up) => {
    metrics.storeUp(up);
    const status = up ? 'SERVING' : 'NOT_SERVING';
    grpc.health.setStatus('', status);
    grpc.health.setStatus(AUTHORIZATION_SERVICE, status);
    log[up ? 'info' : 'warn']({ msg: up ? 'store reachable again' : 'store unreachable', store: store.kind });
  });
  const adminServer = createServer(
    createAdminApp({
      store,
      ready: () => ready,
      storeReady: probe.probe,
      registry: metrics.registry,
      log,
      ...(isWorker() ? { metricsText: instanceMetrics } : {}),
    }),
  );
  // The token API on a listener of its own: the admin port is scraped and probed from the
  // cluster, this one creates credentials and stays on loopback unless configured otherwise.
  const tokenServer = createServer(
    createTokenApp({ policy: getPolicy, secrets: () => current.policy.secrets, store, clock, loginToken: () => current.loginToken, log }),
  );

  const servers: Server[] = [];
  let grpcBound = false;
  const stopAll = async () => {
    ready = false;
    probe.stop();
    await Promise.all([...servers.map(closeServer), grpcBound ? grpc.close() : Promise.resolve()]);
    await Promise.all(external.map((s) => s.close().catch(() => {})));
    await store.close();
  };
  try {
    const { host, adminHost, httpPort, grpcPort, adminPort, apiHost, apiPort } = config.listen;
    const http = await listen(httpServer, httpPort, host);
    servers.push(httpServer);
    const grpcActual = await grpc.listen(host, grpcPort);
    grpcBound = true;
    const admin = await listen(adminServer, adminPort, adminHost);
    servers.push(adminServer);
    const tokenApi = await listen(tokenServer, apiPort, apiHost);
    servers.push(tokenServer);
    await probe.probe();
    ready = true;
    log.info({
      msg: 'listening',
      host,
      http_port: http,
      grpc_port: grpcActual,
      admin_port: admin,
      api_host: apiHost,
      api_port: tokenApi,
      envoy_http_prefix: prefix,
      store: storeName,
      config: config.source,
    });
    return {
      ports: { http, grpc: grpcActual, admin, api: tokenApi },
      httpServer,
      metrics,
      close: stopAll,
      reload(next) {
        // A configuration without secrets would mean a fresh random one: everyone logged out.
        // Keep the running secrets instead.
        const spec = next.ephemeralSecret ? { ...next.policy, secrets: current.policy.secrets } : next.policy;
        const nextPolicy = buildPolicy(spec);
        const needRestart = restartKeys(current, next);
        policy = nextPolicy;
        current = { ...next, listen: current.listen, store: current.store, envoy: current.envoy, external: current.external, oidc: current.oidc, policy: spec };
        log.level = next.logLevel;
        return needRestart;
      },
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
