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
import { createStore } from './store/index.js';
import { createHttpServer } from './transport/http-server.js';
import { createNginxHandler } from './transport/nginx.js';

export interface Service {
  readonly ports: { readonly http: number; readonly admin: number };
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

export async function startService(config: Config, log: Logger, clock: () => number = Date.now): Promise<Service> {
  // Read through a getter on every request, so a reload can swap the policy atomically.
  const policy: Policy = buildPolicy(config.policy);
  const getPolicy = () => policy;
  const store = createStore(config.store, clock);
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

  const httpServer = createHttpServer(createNginxHandler(check), api);
  const adminServer = createServer(createAdminApp({ store, ready: () => ready }));
  const servers: Server[] = [];
  try {
    const { host, httpPort, adminPort } = config.listen;
    const http = await listen(httpServer, httpPort, host);
    servers.push(httpServer);
    const admin = await listen(adminServer, adminPort, host);
    servers.push(adminServer);
    ready = true;
    log.info({ msg: 'listening', host, http_port: http, admin_port: admin, store: store.kind, config: config.source });
    return {
      ports: { http, admin },
      httpServer,
      async close() {
        ready = false;
        await Promise.all(servers.map(closeServer));
        await store.close();
      },
    };
  } catch (err) {
    await Promise.all(servers.map(closeServer));
    await store.close();
    throw err;
  }
}
