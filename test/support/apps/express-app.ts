/**
 * express 4 and 5 applications with the method-override middleware, configured the way its
 * README shows: the three override headers, `_method` in the query, and `_method` in a form or
 * JSON body (the custom getter). Every override is honoured on any method (`methods: null`).
 * `/admin/secret` answers GET and POST with the secret, and DELETE, PUT and PATCH with a
 * `RAN-<METHOD>` marker: a request that comes back with one ran a method the rule refuses.
 */

import type { Server } from 'node:http';
import { createRequire } from 'node:module';
import type { Request, Response } from 'express';
import type { RunningApp } from './readings.js';
import { runningServer, SECRET_PATH } from './readings.js';

const require = createRequire(import.meta.url);

type Express = typeof import('express');
type Getter = string | ((req: Request, res: Response) => string | undefined);
type MethodOverride = (getter: Getter, options?: { methods: string[] | null }) => (req: Request, res: Response, next: () => void) => void;

export const EXPRESS_VERSIONS: Record<string, () => Express> = {
  'express 4': () => require('express4') as Express,
  'express 5': () => require('express') as Express,
};

/** Marks a response from a handler for a method the rule does not admit. */
export const RAN = 'RAN-';

export async function startExpressApp(name: string, secret: string): Promise<RunningApp> {
  const express = EXPRESS_VERSIONS[name]!();
  const methodOverride = require('method-override') as MethodOverride;
  const app = express();
  const any = { methods: null };
  app.use(methodOverride('X-HTTP-Method-Override', any));
  app.use(methodOverride('X-HTTP-Method', any));
  app.use(methodOverride('X-Method-Override', any));
  app.use(methodOverride('_method', any)); // not a header name: read from the query
  app.use(express.urlencoded({ extended: false }));
  app.use(express.json());
  app.use(
    methodOverride((req) => {
      const body = req.body as Record<string, unknown> | undefined;
      if (body && typeof body === 'object' && '_method' in body && typeof body['_method'] === 'string') return body['_method'];
      return undefined;
    }, any),
  );
  app.get(SECRET_PATH, (req, res) => void res.type('text/plain').send(`${req.method} ${secret}`));
  app.post(SECRET_PATH, (req, res) => void res.type('text/plain').send(`${req.method} ${secret}`));
  for (const m of ['delete', 'put', 'patch'] as const) {
    app[m](SECRET_PATH, (req, res) => void res.type('text/plain').send(`${RAN}${req.method} ${secret}`));
  }
  const server = await new Promise<Server>((r) => {
    const s = app.listen(0, '127.0.0.1', () => r(s));
  });
  return runningServer(name, server);
}
