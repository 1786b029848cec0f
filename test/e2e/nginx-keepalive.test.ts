/**
 * nginx keeps its upstream connection to sessiongate only when answers have no body. Proven
 * here by counting the TCP connections sessiongate accepts while nginx carries many requests,
 * allowed and denied alike.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { send } from '../../harness/http.js';
import { type EchoUpstream, type RunningNginx, startEchoUpstream, startNginx } from '../../harness/processes.js';
import { type Service, startService } from '../../src/main.js';
import { quietLogger, testConfig } from '../support/service.js';

let svc: Service;
let nginx: RunningNginx;
let app: EchoUpstream;
let accepted = 0;

beforeAll(async () => {
  svc = await startService(testConfig({ SESSIONGATE_LOGIN_TOKEN: 'keepalive-token-0123456789' }), quietLogger());
  svc.httpServer.on('connection', () => accepted++);
  app = await startEchoUpstream();
  nginx = await startNginx({ sessiongatePort: svc.ports.http, appPort: app.port });
});
afterAll(async () => {
  await nginx?.stop();
  await svc?.close();
  await app?.close();
});

it('reuses one upstream connection for many decisions', async () => {
  const login = await send(`http://127.0.0.1:${svc.ports.http}/~session`, {
    method: 'POST',
    headers: [
      ['Authorization', 'Bearer keepalive-token-0123456789'],
      ['Content-Type', 'application/json'],
    ],
    body: '{"user_id":"k"}',
  });
  const cookie = login.cookies[0]!.split(';')[0]!;
  accepted = 0;
  const statuses = new Set<number>();
  for (let i = 0; i < 60; i++) {
    const headers: Array<[string, string]> = i % 3 === 0 ? [] : [['Cookie', cookie]];
    statuses.add((await send(nginx.url, { path: `/page/${i}`, headers })).status);
  }
  expect([...statuses].sort()).toEqual([200, 401]);
  // One nginx worker: one connection carries them all (allow a second for a race at start).
  expect(accepted).toBeGreaterThan(0);
  expect(accepted).toBeLessThanOrEqual(2);
});
