/**
 * `/auth?redirect=302`: for forward-auth proxies that hand a denial to the browser as it is
 * (Traefik), a browser navigation without a session gets a 302 to the login page; nginx's form
 * (401 with Location, turned into a redirect by error_page) stays the default, and scripts still
 * get 401 either way.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send } from '../../harness/http.js';
import { type Service, startService } from '../../src/main.js';
import { quietLogger, testConfig } from '../support/service.js';

let svc: Service;
beforeAll(async () => {
  svc = await startService(testConfig({ SESSIONGATE_LOGIN_URL: 'https://login.example.com/start' }), quietLogger());
});
afterAll(() => svc?.close());

const ask = (query: string, accept: string) =>
  send(`http://127.0.0.1:${svc.ports.http}/auth${query}`, {
    headers: [
      ['X-Forwarded-Method', 'GET'],
      ['X-Forwarded-Uri', '/app?x=1'],
      ['X-Forwarded-Proto', 'https'],
      ['X-Forwarded-Host', 'app.example.com'],
      ['Accept', accept],
    ],
  });
const BROWSER = 'text/html,application/xhtml+xml';
const LOGIN = `https://login.example.com/start?rd=${encodeURIComponent('https://app.example.com/app?x=1')}`;

describe('/auth?redirect=302', () => {
  it('answers a browser navigation 302 to the login page', async () => {
    const r = await ask('?redirect=302', BROWSER);
    expect([r.status, r.headers['location'], r.headers['content-length']]).toEqual([302, LOGIN, '0']);
  });

  it('keeps nginx’s 401 with Location without the flag, and 401 for scripts with it', async () => {
    const plain = await ask('', BROWSER);
    expect([plain.status, plain.headers['location']]).toEqual([401, LOGIN]);
    const script = await ask('?redirect=302', 'application/json');
    expect([script.status, script.headers['location']]).toEqual([401, undefined]);
    const other = await ask('?redirect=301', BROWSER);
    expect(other.status).toBe(401);
  });
});
