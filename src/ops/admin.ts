/**
 * The admin port: `/healthz` (the process is alive), `/readyz` (listeners up and the store able
 * to serve decisions, by the one store probe that also drives gRPC health and
 * `sessiongate_store_up`) and `/metrics` (Prometheus). Nothing that changes state: this port
 * may be bound to a cluster address for probes and scrapes (the token API has its own listener).
 */
import express, { type Express } from 'express';
import type { Registry } from 'prom-client';
import { jsonErrors, notFound } from '../api/errors.js';
import type { SessionStore } from '../store/types.js';
import type { Logger } from './logger.js';

export interface AdminDeps {
  readonly store: SessionStore;
  readonly registry: Registry;
  /** The metrics text to serve; defaults to this registry's (a worker asks the primary for the whole instance's). */
  readonly metricsText?: () => Promise<string>;
  /** True once every listener is up and until shutdown begins. */
  readonly ready: () => boolean;
  /** Probes the store now (ops/store-probe.ts): true when it can serve decisions. */
  readonly storeReady: () => Promise<boolean>;
  /** Where an internal error is logged (by name and place, never with request data). */
  readonly log?: Logger;
}

export function createAdminApp(deps: AdminDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.get('/healthz', (_req, res) => {
    res.set('Cache-Control', 'no-store').json({ status: 'ok', pid: process.pid });
  });
  app.get('/readyz', async (_req, res) => {
    res.set('Cache-Control', 'no-store');
    if (!deps.ready()) return void res.status(503).json({ status: 'not_ready', listeners: false });
    // A local cache that cannot prove its invalidation channel is bypassed: decisions still
    // work (from the store), so it is reported, not a reason to leave the load balancer.
    const cache = 'active' in deps.store ? { cache: deps.store.active ? 'live' : 'bypassed' } : {};
    if (await deps.storeReady()) res.json({ status: 'ready', store: deps.store.kind, ...cache });
    else res.status(503).json({ status: 'not_ready', store: deps.store.kind, reason: 'store_unavailable', ...cache });
  });
  const metricsText = deps.metricsText ?? (() => deps.registry.metrics());
  app.get('/metrics', async (_req, res) => {
    try {
      res.set('Content-Type', deps.registry.contentType).send(await metricsText());
    } catch (err) {
      res
        .status(503)
        .set('Content-Type', 'text/plain')
        .send(`metrics unavailable: ${(err as Error).message}\n`);
    }
  });
  // JSON for unknown paths and every error, never express's HTML page with its stack trace.
  app.use(notFound);
  app.use(jsonErrors(deps.log));
  return app;
}
