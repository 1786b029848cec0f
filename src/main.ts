/**
 * Wiring only: builds the policy, the store and the listeners from a Config, and stops them.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { createSessionApi } from './api/session-api.js';
import type { Config } from './config.js';
import { createCheck } from './core/check.js';
import { buildPolicy, type Policy } from './core/policy.js';
import { createAdminApp } from './ops/admin.js';
import { createDecisionLogger, type Logger } from './ops/logger.js';
import { createStore, proveStore, type SessionStore } from './store/index.js';
import { createHttpServer } from './transport/http-server.js';
import { createNginxHandler } from './transport/nginx.js';
import { createEnvoyHttpHandler } from './transport/envoy-http.js';
import { createEnvoyGrpcServer } from './transport/envoy-grpc.js';
import { AUTHORIZATION_SERVICE } from './transport/envoy-proto.js';
import { createStoreProbe } from './ops/store-probe.js';

/** How often the store is pinged for gRPC health. */
const STORE_PROBE_INTERVAL_MS = 2000;

export interface Service {
  readonly ports: { readonly http: number; readonly grpc: number; readonly admin: number };
  /** The HTTP port's server (nginx /auth and the session API), for embedding and tests. */
  readonly httpServer: Server;
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
}

export async function startService(config: Config, log: Logger, opts: ServiceOptions = {}): Promise<Service> {
  const clock = opts.clock ?? Date.now;
  // Read through a getter on every request, so a reload can swap the policy atomically.
  const policy: Policy = buildPolicy(config.policy);
  const getPolicy = () => policy;
  const store = opts.store ?? createStore(config.store, clock);
  const storeName = config.store.kind === 'memory' ? 'memory' : config.store.displayUrl;
  try {
    await proveStore(store, config.store.kind === 'memory' ? 0 : config.store.startupTimeout);
  } catch (err) {
    await store.close();
    throw new Error(`store ${storeName} is not usable: ${(err as Error).message}`);
  }
  let ready = false;

  const check = createCheck({
    policy: getPolicy,
    store,
    clock,
    observe: createDecisionLogger(log),
    onEffectError: (effect, err) => log.warn({ msg: `session ${effect} failed`, reason: 'store_unavailable', err: (err as Error).message }),
  });

  const api = express();
  api.disable('x-powered-by');
  api.use(createSessionApi({ policy: getPolicy, store, clock, loginToken: config.loginToken, log }));
  api.use((_req, res) => void res.status(404).set('Content-Length', '0').end());

  const prefix = config.envoy.httpPathPrefix;
  const httpServer = createHttpServer({
    nginx: createNginxHandler(check),
    envoy: createEnvoyHttpHandler(check, getPolicy, prefix),
    envoyPrefix: prefix,
    api,
  });
  const adminServer = createServer(createAdminApp({ store, ready: () => ready }));
  const grpc = createEnvoyGrpcServer(check, getPolicy);
  const probe = createStoreProbe(store, STORE_PROBE_INTERVAL_MS, (up) => {
    const status = up ? 'SERVING' : 'NOT_SERVING';
    grpc.health.setStatus('', status);
    grpc.health.setStatus(AUTHORIZATION_SERVICE, status);
    log[up ? 'info' : 'warn']({ msg: up ? 'store reachable again' : 'store unreachable', store: store.kind });
  });

  const servers: Server[] = [];
  let grpcBound = false;
  const stopAll = async () => {
    ready = false;
    probe.stop();
    await Promise.all([...servers.map(closeServer), grpcBound ? grpc.close() : Promise.resolve()]);
    await store.close();
  };
  try {
    const { host, httpPort, grpcPort, adminPort } = config.listen;
    const http = await listen(httpServer, httpPort, host);
    servers.push(httpServer);
    const grpcActual = await grpc.listen(host, grpcPort);
    grpcBound = true;
    const admin = await listen(adminServer, adminPort, host);
    servers.push(adminServer);
    await probe.probe();
    ready = true;
    log.info({ msg: 'listening', host, http_port: http, grpc_port: grpcActual, admin_port: admin, envoy_http_prefix: prefix, store: storeName, config: config.source });
    return { ports: { http, grpc: grpcActual, admin }, httpServer, close: stopAll };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
