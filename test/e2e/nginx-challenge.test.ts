/**
 * The 401 a bearer caller gets through the shipped nginx config: sessiongate's challenge, once.
 * nginx's auth_request copies WWW-Authenticate from a 401 answer itself; a second copy from the
 * login location would be a different answer to a client that reads only one.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cookiePair, send } from '../../harness/http.js';
import { type EchoUpstream, type RunningNginx, type RunningService, startEchoUpstream, startNginx, startService } from '../../harness/processes.js';
import { rawRequest } from '../../harness/raw-http.js';

const LOGIN_TOKEN = 'challenge-login-token-0123456789';
let sg: RunningService;
let nginx: RunningNginx;
let app: EchoUpstream;

beforeAll(async () => {
  app = await startEchoUpstream();
  sg = await startService({
    env: { SESSIONGATE_SECRET: 'w'.repeat(40), SESSIONGATE_LOGIN_TOKEN: LOGIN_TOKEN, SESSIONGATE_LOGIN_URL: 'https://login.example.com/login' },
  });
  nginx = await startNginx({ sessiongatePort: sg.httpPort, appPort: app.port });
});
afterAll(async () => {
  await nginx?.stop();
  await sg?.stop();
  await app?.close();
});

const FORGED = `${'A'.repeat(43)}.${'B'.repeat(43)}.${'C'.repeat(43)}`;

describe('WWW-Authenticate through nginx', () => {
  it.each([
    ['a token of our shape that does not verify', `Bearer ${FORGED}`, 'Bearer realm="sessiongate", error="invalid_token"'],
    ['a bearer token that is not ours', 'Bearer not-one-of-ours', 'Bearer realm="sessiongate"'],
  ])('%s: one challenge, the right one', async (_name, authorization, challenge) => {
    for (const accept of ['application/json', 'text/html']) {
      const r = await rawRequest(nginx.port, {
        target: '/app/x',
        headers: [
          ['Authorization', authorization],
          ['Accept', accept],
        ],
      });
      expect(r.status).toBe(401);
      expect(r.headers['www-authenticate']).toEqual([challenge]);
      expect(r.headers['location']).toBeUndefined();
    }
  });

  it('no challenge without a bearer token; a browser is redirected, once', async () => {
    const api = await rawRequest(nginx.port, { target: '/app/x', headers: [['Accept', 'application/json']] });
    expect(api.status).toBe(401);
    expect(api.headers['www-authenticate']).toBeUndefined();
    const browser = await rawRequest(nginx.port, { target: '/app/x', headers: [['Accept', 'text/html']] });
    expect(browser.status).toBe(302);
    expect(browser.headers['location']).toHaveLength(1);
    expect(browser.headers['www-authenticate']).toBeUndefined();
  });

  it('an allowed request carries no challenge', async () => {
    const r = await send(`${sg.url}/~session`, {
      method: 'POST',
      headers: [
        ['Authorization', `Bearer ${LOGIN_TOKEN}`],
        ['Content-Type', 'application/json'],
      ],
      body: JSON.stringify({ user_id: 'walt', roles: [] }),
    });
    const cookie = cookiePair(r.cookies[0]!);
    const ok = await rawRequest(nginx.port, { target: '/app/x', headers: [['Cookie', cookie]] });
    expect(ok.status).toBe(200);
    expect(ok.headers['www-authenticate']).toBeUndefined();
  });
});
