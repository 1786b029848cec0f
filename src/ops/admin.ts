/**
 * The admin port: `/healthz` (the process is alive) and `/readyz` (listeners up and the store
 * answering). Metrics join here later.
 */
import express, { type Express } from 'express';
import type { SessionStore } from '../store/types.js';

export interface AdminDeps {
  readonly store: SessionStore;
  /** True once every listener is up and until shutdown begins. */
  readonly ready: () => boolean;
}

export function createAdminApp(deps: AdminDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.get('/healthz', (_req, res) => {
    res.set('Cache-Control', 'no-store').json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    res.set('Cache-Control', 'no-store');
    if (!deps.ready()) return void res.status(503).json({ status: 'not_ready', listeners: false });
    try {
      await deps.store.ping();
      res.json({ status: 'ready', store: deps.store.kind });
    } catch {
      res.status(503).json({ status: 'not_ready', store: deps.store.kind, reason: 'store_unavailable' });
    }
  });
  return app;
}
