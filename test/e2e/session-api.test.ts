/**
 * The session API over real HTTP against the service started in-process (startService, the
 * same wiring main uses), so the store can be inspected and the clock is real.
 */
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cookiePair, send } from '../../harness/http.js';
import type { Config } from '../../src/config.js';
import { type Service, startService } from '../../src/main.js';
import { createLogger } from '../../src/ops/logger.js';
import { testConfig } from '../support/service.js';

const LOGIN_TOKEN = 'api-login-token-0123456789';
const SECRET = 'api-test-secret-0123456789abcdef0123456789';
const logLines: string[] = [];
let svc: Service;
let base: string;

const config = (env: Record<string, string>): Config => testConfig({ SESSIONGATE_SECRET: SECRET, ...env });

const sink = new Writable({
  write(chunk, _enc, cb) {
    logLines.push(chunk.toString());
    cb();
  },
});

beforeAll(async () => {
  svc = await startService(config({ SESSIONGATE_LOGIN_TOKEN: LOGIN_TOKEN, SESSIONGATE_LOG_LEVEL: 'debug' }), createLogger('debug', sink));
  base = `http://127.0.0.1:${svc.ports.http}`;
});
afterAll(() => svc?.close());

const json = (body: unknown, token = LOGIN_TOKEN, extra: Array<[string, string]> = []) => ({
  method: 'POST',
  headers: [['Authorization', `Bearer ${token}`], ['Content-Type', 'application/json'], ...extra] as Array<[string, string]>,
  body: typeof body === 'string' ? body : JSON.stringify(body),
});

describe('POST /~session', () => {
  it('creates a session: 201, Set-Cookie with the configured attributes, expiry in the body', async () => {
    const before = Date.now();
    const r = await send(`${base}/~session`, json({ user_id: 'alice', roles: ['admin'], attributes: { email: 'a@x' } }));
    expect(r.status).toBe(201);
    expect(r.headers['cache-control']).toBe('no-store');
    expect(r.cookies).toHaveLength(1);
    expect(r.cookies[0]).toMatch(
      /^sessiongate=[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{43}; Max-Age=43200; Path=\/; Expires=[^;]+; HttpOnly; Secure; SameSite=Lax$/,
    );
    const body = r.json<{ user_id: string; expires_at: string; idle_expires_at: string }>();
    expect(body.user_id).toBe('alice');
    const expires = Date.parse(body.expires_at);
    expect(expires).toBeGreaterThanOrEqual(before + 12 * 3600_000);
    expect(expires).toBeLessThan(before + 12 * 3600_000 + 60_000);
    expect(Date.parse(body.idle_expires_at) - Date.parse(body.expires_at)).toBeLessThan(0);
  });

  it('never reuses a cookie the caller presents (no fixation)', async () => {
    const first = cookiePair((await send(`${base}/~session`, json({ user_id: 'a' }))).cookies[0]!);
    const again = await send(`${base}/~session`, json({ user_id: 'a' }, LOGIN_TOKEN, [['Cookie', first]]));
    expect(cookiePair(again.cookies[0]!)).not.toBe(first);
  });

  it.each([
    ['no Authorization', []],
    ['wrong token', [['Authorization', 'Bearer wrong-token-0123456789']]],
    ['token prefix', [['Authorization', `Bearer ${LOGIN_TOKEN.slice(0, -1)}`]]],
    ['token with a suffix', [['Authorization', `Bearer ${LOGIN_TOKEN}x`]]],
    ['Basic scheme', [['Authorization', `Basic ${LOGIN_TOKEN}`]]],
    ['empty bearer', [['Authorization', 'Bearer ']]],
  ] as Array<[string, Array<[string, string]>]>)('refuses %s with 401 and creates nothing', async (_n, auth) => {
    const r = await send(`${base}/~session`, { method: 'POST', headers: [...auth, ['Content-Type', 'application/json']], body: '{"user_id":"mallory"}' });
    expect(r.status).toBe(401);
    expect(r.headers['www-authenticate']).toContain('Bearer');
    expect(r.cookies).toEqual([]);
    expect(r.json()).toEqual({ error: 'invalid_login_token' });
  });

  it.each([
    ['invalid JSON', '{"user_id": ', 400, 'invalid_json'],
    ['missing user_id', { roles: [] }, 400, 'invalid_body'],
    ['empty user_id', { user_id: '' }, 400, 'invalid_body'],
    ['user_id not a string', { user_id: 42 }, 400, 'invalid_body'],
    ['CR/LF in user_id', { user_id: 'a\r\nX-Admin: 1' }, 400, 'invalid_body'],
    ['CR/LF in an attribute', { user_id: 'a', attributes: { email: 'a@x\r\nSet-Cookie: y=1' } }, 400, 'invalid_body'],
    ['NUL deep in attributes', { user_id: 'a', attributes: { a: { b: ['ok', 'x\u0000'] } } }, 400, 'invalid_body'],
    ['control char in an attribute key', { user_id: 'a', attributes: { 'k\n': 'v' } }, 400, 'invalid_body'],
    ['a role with a comma', { user_id: 'a', roles: ['a,admin'] }, 400, 'invalid_body'],
    ['attributes not an object', { user_id: 'a', attributes: [1] }, 400, 'invalid_body'],
    ['unknown field', { user_id: 'a', admin: true }, 400, 'invalid_body'],
    ['deep nesting', { user_id: 'a', attributes: { a: { b: { c: { d: { e: { f: 1 } } } } } } }, 400, 'invalid_body'],
    ['a JSON string', '"alice"', 400, 'invalid_json'],
    ['oversize body', { user_id: 'a', attributes: { blob: 'x'.repeat(20_000) } }, 413, 'body_too_large'],
  ])('refuses %s', async (_n, body, status, error) => {
    const r = await send(`${base}/~session`, json(body));
    expect(r.status).toBe(status);
    expect(r.json()).toMatchObject({ error });
    expect(r.cookies).toEqual([]);
  });

  it('refuses a body that is not JSON', async () => {
    const r = await send(`${base}/~session`, {
      method: 'POST',
      headers: [
        ['Authorization', `Bearer ${LOGIN_TOKEN}`],
        ['Content-Type', 'text/plain'],
      ],
      body: 'user_id=a',
    });
    expect(r.status).toBe(415);
  });

  it('says where the problems are', async () => {
    const r = await send(`${base}/~session`, json({ user_id: 'a', attributes: { email: 'x\ny' } }));
    expect(r.json()).toEqual({ error: 'invalid_body', problems: ['attributes.email: control characters are not allowed'] });
  });
});

describe('GET and DELETE /~session', () => {
  async function login(): Promise<string> {
    return cookiePair((await send(`${base}/~session`, json({ user_id: 'bob', roles: ['r'], attributes: { team: 'x' } }))).cookies[0]!);
  }

  it('shows the public fields of the session, never its ID', async () => {
    const cookie = await login();
    const r = await send(`${base}/~session`, { headers: [['Cookie', cookie]] });
    expect(r.status).toBe(200);
    const body = r.json<Record<string, unknown>>();
    expect(Object.keys(body).sort()).toEqual(['attributes', 'created_at', 'expires_at', 'idle_expires_at', 'roles', 'user_id']);
    expect(body).toMatchObject({ user_id: 'bob', roles: ['r'], attributes: { team: 'x' } });
    expect(r.body).not.toContain(cookie.split('=')[1]!.split('.')[0]!);
  });

  it('answers 401 with a reason when there is no usable session', async () => {
    expect((await send(`${base}/~session`)).json()).toEqual({ error: 'unauthenticated', reason: 'no_session' });
    expect((await send(`${base}/~session`, { headers: [['Cookie', 'sessiongate=x']] })).json()).toEqual({
      error: 'unauthenticated',
      reason: 'malformed_cookie',
    });
  });

  it('logs out: 204, an expiring cookie, and the session is gone; again is still 204', async () => {
    const cookie = await login();
    const out = await send(`${base}/~session`, { method: 'DELETE', headers: [['Cookie', cookie]] });
    expect(out.status).toBe(204);
    expect(out.cookies).toEqual(['sessiongate=; Max-Age=0; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; Secure; SameSite=Lax']);
    expect((await send(`${base}/~session`, { headers: [['Cookie', cookie]] })).status).toBe(401);
    const auth = await send(`${base}/auth`, {
      headers: [
        ['X-Original-URI', '/'],
        ['Cookie', cookie],
      ],
    });
    expect(auth.status).toBe(401);
    expect((await send(`${base}/~session`, { method: 'DELETE', headers: [['Cookie', cookie]] })).status).toBe(204);
    expect((await send(`${base}/~session`, { method: 'DELETE' })).status).toBe(204);
  });

  it('never writes a cookie, token or session ID to the log', async () => {
    const cookie = await login();
    await send(`${base}/auth`, {
      headers: [
        ['X-Original-URI', '/'],
        ['Cookie', cookie],
      ],
    });
    await send(`${base}/auth`, {
      headers: [
        ['X-Original-URI', '/'],
        ['Cookie', `${cookie}x`],
      ],
    });
    await send(`${base}/~session`, { method: 'DELETE', headers: [['Cookie', cookie]] });
    const all = logLines.join('');
    expect(all).toContain('"msg":"decision"'); // debug logging was on: allowed decisions were logged too
    const [id, mac] = cookie.split('=')[1]!.split('.') as [string, string];
    for (const secret of [id, mac, LOGIN_TOKEN, SECRET]) expect(all).not.toContain(secret);
  });
});

describe('session creation disabled', () => {
  it('answers 403 when no login token is configured, saying what to do instead', async () => {
    const s = await startService(config({}), createLogger('silent'));
    try {
      const r = await send(`http://127.0.0.1:${s.ports.http}/~session`, json({ user_id: 'a' }, 'anything-at-all-12345'));
      expect(r.status).toBe(403);
      const body = r.json<{ error: string; detail: string }>();
      expect(body.error).toBe('session_creation_disabled');
      for (const hint of ['SESSIONGATE_LOGIN_TOKEN or SESSIONGATE_LOGIN_TOKEN_FILE', 'npm run demo', 'dev_login: true', 'GET /~session/dev'])
        expect(body.detail).toContain(hint);
    } finally {
      await s.close();
    }
  });
});
