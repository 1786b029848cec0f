/**
 * The session API while the store is down: errors, never a false logout. The failing store is
 * a collaborator stub; the claim is about the API's answers.
 */
import { createServer, type Server } from 'node:http';
import express from 'express';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { send } from '../../harness/http.js';
import { createSessionApi } from '../../src/api/session-api.js';
import { createLogger } from '../../src/ops/logger.js';
import { createMemoryStore } from '../../src/store/memory.js';
import { type SessionStore, StoreUnavailableError } from '../../src/store/types.js';
import { testPolicy } from '../support/fixtures.js';

const down = () => Promise.reject(new StoreUnavailableError('connection refused'));
const store: SessionStore = { ...createMemoryStore({ maxEntries: 1, sweepInterval: 0, clock: Date.now }), get: down, create: down, destroy: down };
const policy = testPolicy();
let server: Server;
let base: string;

beforeAll(async () => {
  const app = express();
  app.use(
    createSessionApi({ policy: () => policy, store, clock: Date.now, loginToken: () => Buffer.from('down-token-0123456789'), log: createLogger('silent') }),
  );
  server = createServer(app);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

const cookie = `sessiongate=${policy.tokens.issue().token}`;

it('POST answers 503 and sets no cookie', async () => {
  const r = await send(`${base}/~session`, {
    method: 'POST',
    headers: [
      ['Authorization', 'Bearer down-token-0123456789'],
      ['Content-Type', 'application/json'],
    ],
    body: '{"user_id":"a"}',
  });
  expect(r.status).toBe(503);
  expect(r.json()).toEqual({ error: 'store_unavailable' });
  expect(r.cookies).toEqual([]);
});

it('DELETE answers 503 and keeps the cookie: no logout that did not happen', async () => {
  const r = await send(`${base}/~session`, { method: 'DELETE', headers: [['Cookie', cookie]] });
  expect(r.status).toBe(503);
  expect(r.cookies).toEqual([]);
});

it('GET answers 503, not 401', async () => {
  const r = await send(`${base}/~session`, { headers: [['Cookie', cookie]] });
  expect(r.status).toBe(503);
});
