/**
 * Logout never reports done when it is not. DELETE /~session through a real nginx (the shipped
 * config) with every ambiguous set of credentials: the cookie beside a bearer of sessiongate's
 * shape (another session's, a forged one, an API token), two different valid cookies, a valid
 * cookie beside a forged one. The rule: a logout ends every session the request presents
 * (values that fail their signature name none) and answers 204 only once none of them lives;
 * it never revokes an API token: a request presenting one is refused (400 api_token) and
 * nothing changes, the cookie kept.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSession, type Reply, send } from '../../harness/http.js';
import { type EchoUpstream, type RunningNginx, startEchoUpstream, startNginx } from '../../harness/processes.js';
import { type Service, startService } from '../../src/main.js';
import { quietLogger, testConfig } from '../support/service.js';

const SECRET = 'logout-credentials-secret-0123456789abcdef0';
const LOGIN_TOKEN = 'logout-credentials-login-token-0123456789';

let svc: Service;
let nginx: RunningNginx;
let app: EchoUpstream;

beforeAll(async () => {
  svc = await startService(testConfig({ SESSIONGATE_SECRET: SECRET, SESSIONGATE_LOGIN_TOKEN: LOGIN_TOKEN }, { example: true }), quietLogger());
  app = await startEchoUpstream();
  nginx = await startNginx({ sessiongatePort: svc.ports.http, appPort: app.port });
}, 30_000);

afterAll(async () => {
  await nginx?.stop();
  await app?.close();
  await svc?.close();
});

const login = (user: string) => createSession(`http://127.0.0.1:${svc.ports.http}`, LOGIN_TOKEN, user, ['user']);
const tokenOf = (cookie: string) => cookie.slice(cookie.indexOf('=') + 1);
/** A token of sessiongate's shape whose MAC does not verify (a character inside the MAC flipped). */
const forge = (token: string) => `${token.slice(0, 100)}${token[100] === 'A' ? 'B' : 'A'}${token.slice(101)}`;

async function apiToken(user: string): Promise<string> {
  const r = await send(`http://127.0.0.1:${svc.ports.api}/tokens`, {
    method: 'POST',
    headers: [
      ['Authorization', `Bearer ${LOGIN_TOKEN}`],
      ['Content-Type', 'application/json'],
    ],
    body: JSON.stringify({ user_id: user, roles: ['ci'], ttl: '1d' }),
  });
  expect(r.status).toBe(201);
  return r.json<{ token: string }>().token;
}

const logout = (headers: Array<[string, string]>): Promise<Reply> => send(`${nginx.url}/~session`, { method: 'DELETE', headers });
/** Who the credential is, through nginx; null when it names no live session. */
async function whoami(header: [string, string]): Promise<string | null> {
  const r = await send(`${nginx.url}/~session`, { headers: [header] });
  if (r.status === 401) return null;
  expect(r.status).toBe(200);
  return r.json<{ user_id: string }>().user_id;
}
const cookie = (c: string): [string, string] => ['Cookie', c];
const bearer = (t: string): [string, string] => ['Authorization', `Bearer ${t}`];
const cleared = (r: Reply) => r.cookies.some((c) => /^sessiongate=;.*Max-Age=0/.test(c));

describe('DELETE /~session ends every session it is shown, or nothing', () => {
  it('the cookie beside another session as a bearer: both end', async () => {
    const [mine, other] = [await login('kim'), await login('lee')];
    const r = await logout([cookie(mine), bearer(tokenOf(other))]);
    expect(r.status).toBe(204);
    expect(cleared(r)).toBe(true);
    expect(await whoami(cookie(mine))).toBeNull();
    expect(await whoami(bearer(tokenOf(other)))).toBeNull();
  });

  it('the cookie beside a forged bearer of our shape: the cookie session ends', async () => {
    const mine = await login('max');
    const r = await logout([cookie(mine), bearer(forge(tokenOf(await login('ned'))))]);
    expect(r.status).toBe(204);
    expect(await whoami(cookie(mine))).toBeNull();
  });

  it('two different valid session cookies (duplicate_cookie): both end', async () => {
    const [first, second] = [await login('ola'), await login('pia')];
    const r = await logout([cookie(`${first}; ${second}`)]);
    expect(r.status).toBe(204);
    expect(await whoami(cookie(first))).toBeNull();
    expect(await whoami(cookie(second))).toBeNull();
  });

  it('a valid cookie beside a forged one, in either order: the valid one ends', async () => {
    for (const order of [0, 1]) {
      const mine = await login('quinn');
      const forged = `sessiongate=${forge(tokenOf(mine))}`;
      const r = await logout([cookie(order === 0 ? `${forged}; ${mine}` : `${mine}; ${forged}`)]);
      expect(r.status).toBe(204);
      expect(await whoami(cookie(mine))).toBeNull();
    }
  });

  it('an API token beside the cookie: 400 api_token, nothing ends, the cookie is kept', async () => {
    const [mine, token] = [await login('rob'), await apiToken('svc-rob')];
    const r = await logout([cookie(mine), bearer(token)]);
    expect(r.status).toBe(400);
    expect(r.json()).toMatchObject({ error: 'api_token' });
    expect(r.cookies).toEqual([]);
    expect(await whoami(cookie(mine))).toBe('rob');
    expect(await whoami(bearer(token))).toBe('svc-rob');
  });

  it('an API token alone, as a bearer or as the cookie: 400, the token lives', async () => {
    const token = await apiToken('svc-sam');
    for (const header of [bearer(token), cookie(`sessiongate=${token}`)]) {
      const r = await logout([header]);
      expect(r.status).toBe(400);
      expect(r.json()).toMatchObject({ error: 'api_token' });
      expect(await whoami(bearer(token))).toBe('svc-sam');
    }
  });

  it('a session token alone as a bearer (a non-browser client) ends it', async () => {
    const token = tokenOf(await login('tia'));
    expect((await logout([bearer(token)])).status).toBe(204);
    expect(await whoami(bearer(token))).toBeNull();
  });
});
