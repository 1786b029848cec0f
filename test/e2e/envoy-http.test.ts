/**
 * Envoy ext_authz in http_service mode: what the answer carries for Envoy to act on
 * (identity headers, x-envoy-auth-headers-to-remove, Set-Cookie, deny status and Location),
 * and a 5xx on store failure, which Envoy treats as an authorization error.
 */
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cookiePair, send } from '../../harness/http.js';
import { waitFor } from '../../harness/processes.js';
import { type Service, startService } from '../../src/main.js';
import { createLogger } from '../../src/ops/logger.js';
import { quietLogger, switchableStore, testConfig } from '../support/service.js';

const LOGIN_TOKEN = 'http-login-token-0123456789';
let svc: Service;
const store = switchableStore();
const base = () => `http://127.0.0.1:${svc.ports.http}`;

beforeAll(async () => {
  svc = await startService(testConfig({ SESSIONGATE_SECRET: 'h'.repeat(40), SESSIONGATE_LOGIN_TOKEN: LOGIN_TOKEN }, { example: true }), quietLogger(), {
    store,
  });
});
afterAll(() => svc?.close());

async function login(): Promise<string> {
  const r = await send(`${base()}/~session`, {
    method: 'POST',
    headers: [
      ['Authorization', `Bearer ${LOGIN_TOKEN}`],
      ['Content-Type', 'application/json'],
    ],
    body: '{"user_id":"alice","roles":["user"]}',
  });
  return cookiePair(r.cookies[0]!);
}

const envoy = (path: string, headers: Array<[string, string]> = [], method = 'GET') =>
  send(`${base()}/envoy${path}`, { method, headers: [['Host', 'app.example.com'], ['X-Forwarded-Proto', 'https'], ...headers] });

describe('Envoy HTTP ext_authz', () => {
  it('allows with identity headers and names client copies and aliases to remove', async () => {
    const cookie = await login();
    const r = await envoy('/app?x=1', [
      ['Cookie', cookie],
      ['x_user_id', 'root'],
    ]);
    // x_user_id is an alias on a protected path: denied in the default spoof_guard: deny.
    expect(r.status).toBe(403);
    const ok = await envoy('/app?x=1', [['Cookie', cookie]]);
    expect(ok.status).toBe(200);
    expect(ok.headers['x-user-id']).toBe('alice');
    expect(ok.headers['x-user-roles']).toBe('user');
    // The session cookie was the only cookie: the upstream gets no Cookie header at all.
    expect(ok.headers['x-envoy-auth-headers-to-remove']).toBe('x-user-email, x-auth-user, x-sessiongate-degraded, cookie');
    expect(ok.headers['cookie']).toBeUndefined();
    expect(ok.headers['content-length']).toBe('0');
  });

  it('removes spoofed copies on an anonymous path', async () => {
    const r = await envoy('/blog/', [
      ['X-User-Id', 'root'],
      ['x.user.roles', 'admin'],
    ]);
    expect(r.status).toBe(200);
    expect(r.headers['x-user-id']).toBeUndefined();
    expect((r.headers['x-envoy-auth-headers-to-remove'] as string).split(', ').sort()).toEqual(
      ['x-auth-user', 'x-sessiongate-degraded', 'x-user-email', 'x-user-id', 'x-user-roles', 'x.user.roles'].sort(),
    );
  });

  it('reads the original path after the prefix, query included', async () => {
    expect((await envoy('/~assets/app.css?v=3')).status).toBe(200);
    expect((await envoy('')).headers['x-sessiongate-reason']).toBe('no_session');
    expect((await envoy('?next=/~assets/')).headers['x-sessiongate-reason']).toBe('no_session');
    // A path merely starting with the prefix is not under it: that goes to the session API (404).
    expect((await send(`${base()}/envoyx/app`)).status).toBe(404);
  });

  it('denies with 401, 403 or 302 and a short body', async () => {
    const api = await envoy('/app', [['Accept', 'application/json']]);
    expect(api.status).toBe(401);
    expect(api.body).toBe('Unauthorized\n');
    const browser = await envoy('/app/page?q=1', [['Accept', 'text/html']]);
    expect(browser.status).toBe(302);
    expect(browser.headers['location']).toBe(`https://login.example.com/login?rd=${encodeURIComponent('https://app.example.com/app/page?q=1')}`);
    const bearer = await envoy('/app', [['Authorization', `Bearer ${'A'.repeat(43)}.${'B'.repeat(43)}.${'C'.repeat(43)}`]]);
    expect(bearer.status).toBe(401);
    expect(bearer.headers['www-authenticate']).toBe('Bearer realm="sessiongate", error="invalid_token"');
    const cookie = await login();
    const forbidden = await envoy('/admin/', [['Cookie', cookie]]);
    expect(forbidden.status).toBe(403);
    expect(forbidden.body).toBe('Forbidden\n');
  });

  it('answers 503 while the store is down, so Envoy applies its failure policy', async () => {
    const cookie = await login();
    store.down = true;
    try {
      const r = await envoy('/app', [['Cookie', cookie]]);
      expect(r.status).toBe(503);
      expect(r.headers['x-sessiongate-reason']).toBe('store_unavailable');
      expect(r.headers['x-user-id']).toBeUndefined();
    } finally {
      store.down = false;
    }
  });
});

describe('Envoy HTTP ext_authz log lines', () => {
  it("carry the request's x-request-id (allowed_headers passes it), so they join Envoy's and the application's", async () => {
    const lines: Array<Record<string, unknown>> = [];
    const out = new Writable({
      write(chunk: Buffer, _e, cb) {
        for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
        cb();
      },
    });
    const logged = await startService(
      testConfig({ SESSIONGATE_SECRET: 'h'.repeat(40), SESSIONGATE_LOGIN_TOKEN: LOGIN_TOKEN }, { example: true }),
      createLogger('info', out),
    );
    try {
      const requestId = '9b1d7c2e-0f3a-4e5b-8c6d-7a2f1e0b3c4d';
      const r = await send(`http://127.0.0.1:${logged.ports.http}/envoy/app`, {
        headers: [
          ['Host', 'app.example.com'],
          ['Accept', 'application/json'],
          ['X-Request-Id', requestId],
        ],
      });
      expect(r.status).toBe(401);
      await waitFor(() => lines.some((l) => l['msg'] === 'decision'), 5000);
      expect(lines.find((l) => l['msg'] === 'decision')).toMatchObject({ transport: 'envoy_http', reason: 'no_session', request_id: requestId });
    } finally {
      await logged.close();
    }
  });

  it('reads both cookies of a header sent on two lines (encode_raw_headers passes them so)', async () => {
    const cookie = await login();
    const r = await envoy('/app', [
      ['Cookie', 'theme=dark'],
      ['Cookie', cookie],
    ]);
    expect(r.status).toBe(200);
    expect(r.headers['x-user-id']).toBe('alice');
    expect(r.headers['cookie']).toBe('theme=dark');
  });
});
