/**
 * API tokens through their whole life, on two replicas sharing a real Redis (local caches on):
 * created on one, used on the other over nginx-style /auth and gRPC, never redirected, never
 * touched or rotated, expired on time, revoked on one and refused on the other at once; the
 * store holds no token and no user name in the clear. Plus the CLI, and the development login.
 */

import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GRPC, RawEnvoyClient } from '../../harness/envoy-wire.js';
import { cookiePair, send } from '../../harness/http.js';
import { type RunningService, startService as startBuilt, waitFor } from '../../harness/processes.js';
import { type RedisProcess, startRedisServer } from '../../harness/redis.js';
import { run } from '../../src/cli/index.js';
import { loadConfig } from '../../src/config.js';
import { type Service, startService } from '../../src/main.js';
import { quietLogger, testConfig } from '../support/service.js';

const LOGIN_TOKEN = 'token-tests-login-token-0123456789';
const SECRET = 'token-tests-secret-0123456789abcdef01234567';
const M = 60_000;
const clock = { now: Date.UTC(2026, 6, 1, 9, 0, 0) };
let redis: RedisProcess;
let a: Service;
let b: Service;

beforeAll(async () => {
  redis = await startRedisServer();
  const env = { SESSIONGATE_SECRET: SECRET, SESSIONGATE_LOGIN_TOKEN: LOGIN_TOKEN, SESSIONGATE_STORE: `redis://127.0.0.1:${redis.port}` };
  a = await startService(testConfig(env, { example: true }), quietLogger(), { clock: () => clock.now });
  b = await startService(testConfig(env, { example: true }), quietLogger(), { clock: () => clock.now });
});
afterAll(async () => {
  await a?.close();
  await b?.close();
  await redis?.stop();
});

const tokenApi = (s: Service, method: string, path: string, body?: unknown, token = LOGIN_TOKEN) =>
  send(`http://127.0.0.1:${s.ports.api}${path}`, {
    method,
    headers: [['Authorization', `Bearer ${token}`], ...(body ? ([['Content-Type', 'application/json']] as Array<[string, string]>) : [])],
    ...(body ? { body: JSON.stringify(body) } : {}),
  });

async function create(
  body: Record<string, unknown> = { user_id: 'svc-build', roles: ['ci'], ttl: '90d', name: 'build bot' },
): Promise<{ token: string; id: string }> {
  const r = await tokenApi(a, 'POST', '/tokens', body);
  expect(r.status, r.body).toBe(201);
  return r.json();
}

const auth = (s: Service, token: string, more: Array<[string, string]> = []) =>
  send(`http://127.0.0.1:${s.ports.http}/auth`, {
    headers: [['X-Original-URI', '/app/build'], ['X-Forwarded-Host', 'app.example.com'], ['Authorization', `Bearer ${token}`], ...more],
  });

describe('API tokens', () => {
  it('created once (shown once), listed without the token, used on another replica', async () => {
    const { token, id } = await create();
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{43}$/);
    expect(id).toMatch(/^tok_[A-Za-z0-9_-]{16}$/);
    const list = await tokenApi(b, 'GET', '/tokens');
    expect(list.status).toBe(200);
    const entry = list.json<Array<Record<string, unknown>>>().find((t) => t['id'] === id);
    expect(entry).toMatchObject({ id, user_id: 'svc-build', roles: ['ci'], name: 'build bot' });
    expect(list.body).not.toContain(token.split('.')[1]);

    const r = await auth(b, token);
    expect(r.status).toBe(200);
    expect(r.headers['x-user-id']).toBe('svc-build');
    expect(r.headers['x-user-roles']).toBe('ci');
    expect(r.cookies).toEqual([]);

    const grpc = new RawEnvoyClient(`127.0.0.1:${b.ports.grpc}`);
    try {
      const out = await grpc.check({ method: 'GET', path: '/app/build', host: 'app.example.com', headers: { authorization: `Bearer ${token}` } });
      expect('response' in out && out.response.code).toBe(GRPC.OK);
    } finally {
      grpc.close();
    }
  });

  it('is never touched or rotated, and outlives the idle timeout of sessions', async () => {
    const { token } = await create({ user_id: 'svc-idle', roles: ['ci'], ttl: '2d' });
    clock.now += 45 * M; // past idle_ttl (30m) and rotate_after (30m)
    const r = await auth(a, token);
    expect(r.status).toBe(200);
    expect(r.cookies).toEqual([]); // no rotation
    clock.now += 45 * M;
    expect((await auth(b, token)).status).toBe(200);
  });

  it('expires at its TTL', async () => {
    const { token } = await create({ user_id: 'svc-short', ttl: '1h' });
    expect((await auth(a, token)).status).toBe(200);
    clock.now += 61 * M;
    const r = await auth(a, token, [['Accept', 'application/json']]);
    expect(r.status).toBe(401);
    expect(r.headers['x-sessiongate-reason']).toBe('expired');
  });

  it('revoked on one replica: refused on the other at once, with a Bearer challenge and no redirect', async () => {
    const { token, id } = await create({ user_id: 'svc-revoked', roles: ['ci'] });
    expect((await auth(b, token)).status).toBe(200); // cached on b now
    const del = await tokenApi(a, 'DELETE', `/tokens/${id}`);
    expect(del.status).toBe(204);
    expect(await waitFor(async () => (await auth(b, token)).status === 401, 2000)).toBe(true);
    const r = await auth(b, token, [['Accept', 'text/html']]); // a browser-looking bearer caller
    expect(r.status).toBe(401);
    expect(r.headers['location']).toBeUndefined();
    expect(r.headers['www-authenticate']).toBe('Bearer realm="sessiongate", error="invalid_token"');
    expect((await tokenApi(b, 'GET', '/tokens')).json<Array<{ id: string }>>().map((t) => t.id)).not.toContain(id);
    expect((await tokenApi(a, 'DELETE', `/tokens/${id}`)).status).toBe(404);
  });

  it('a token with a wrong MAC, or another secret, is refused as bad_signature (checked in constant time)', async () => {
    const { token } = await create({ user_id: 'svc-mac' });
    // A character inside the MAC (the last one carries two padding bits that may not matter).
    const at = token.length - 10;
    const flipped = token.slice(0, at) + (token[at] === 'A' ? 'B' : 'A') + token.slice(at + 1);
    const r = await auth(a, flipped, [['Accept', 'application/json']]);
    expect(r.status).toBe(401);
    expect(r.headers['x-sessiongate-reason']).toBe('bad_signature');
    // Timing cannot be asserted; that every MAC comparison is timingSafeEqual without early exit can.
    const { readFileSync } = await import('node:fs');
    const src = readFileSync(new URL('../../src/session/token.ts', import.meta.url), 'utf8');
    expect(src).toMatch(/for \(const key of keys\) ok = timingSafeEqual\(mac\(key, body\), given\) \|\| ok;/);
  });

  it('the store holds no token, no token ID part and no user name in the clear', async () => {
    const { token } = await create({ user_id: 'svc-secret-name', roles: ['ci'], name: 'visible-name-check' });
    const r = new Redis({ port: redis.port });
    try {
      const keys = await r.keys('*');
      let dump = keys.join('\n');
      for (const k of keys) {
        const type = await r.type(k);
        if (type === 'hash') dump += JSON.stringify(await r.hgetall(k));
        else if (type === 'set') dump += (await r.smembers(k)).join(',');
        else if (type === 'string') dump += await r.get(k);
      }
      for (const part of [...token.split('.'), 'svc-secret-name', 'visible-name-check']) expect(dump).not.toContain(part);
    } finally {
      r.disconnect();
    }
  });

  it('the token API wants the login token, and refuses bad input with every problem', async () => {
    const wrong = await tokenApi(a, 'GET', '/tokens', undefined, 'x'.repeat(LOGIN_TOKEN.length));
    expect(wrong.status).toBe(401);
    expect(wrong.json()).toEqual({ error: 'invalid_login_token' });
    const bad = await tokenApi(a, 'POST', '/tokens', { user_id: '', roles: ['a b'], ttl: 'forever', extra: 1 });
    expect(bad.status).toBe(400);
    const problems = bad.json<{ problems: string[] }>().problems.join('\n');
    for (const k of ['user_id', 'roles.0', 'ttl', 'extra']) expect(problems).toContain(k);
  });

  it('the CLI: create prints the token once, list shows it, revoke ends it', async () => {
    let out = '';
    let err = '';
    const env = { SESSIONGATE_LOGIN_TOKEN: LOGIN_TOKEN, SESSIONGATE_SECRET: SECRET };
    const url = ['--api-url', `http://127.0.0.1:${a.ports.api}`];
    expect(
      await run(['token', 'create', '--user', 'svc-cli', '--roles', 'ci,deploy', '--ttl', '30d', '--name', 'cli', ...url], env, {
        out: (s) => (out += s),
        err: (s) => (err += s),
      }),
    ).toBe(0);
    const token = out.trim();
    expect((await auth(b, token)).headers['x-user-roles']).toBe('ci,deploy');
    const id = /token (tok_\S+) for svc-cli/.exec(err)![1]!;
    out = '';
    expect(await run(['token', 'list', ...url], env, { out: (s) => (out += s), err: (s) => (err += s) })).toBe(0);
    expect(out).toMatch(new RegExp(`${id}\\s+svc-cli\\s+ci,deploy`));
    expect(out).not.toContain(token);
    expect(await run(['token', 'revoke', id, ...url], env, { out: () => {}, err: (s) => (err += s) })).toBe(0);
    expect(await waitFor(async () => (await auth(b, token)).status === 401, 2000)).toBe(true);
    expect(await run(['token', 'revoke', id, ...url], env, { out: () => {}, err: () => {} })).toBe(1);
  });

  it("the CLI's --ttl takes the configuration's durations (1h30m)", async () => {
    let err = '';
    const env = { SESSIONGATE_LOGIN_TOKEN: LOGIN_TOKEN, SESSIONGATE_SECRET: SECRET };
    const code = await run(['token', 'create', '--user', 'svc-ttl', '--ttl', '1h30m', '--api-url', `http://127.0.0.1:${a.ports.api}`], env, {
      out: () => {},
      err: (s) => (err += s),
    });
    expect(code, err).toBe(0);
    const id = /token (tok_\S+) for svc-ttl/.exec(err)![1]!;
    const t = (await tokenApi(a, 'GET', '/tokens')).json<Array<{ id: string; created_at: string; expires_at: string }>>().find((x) => x.id === id)!;
    expect(Date.parse(t.expires_at) - Date.parse(t.created_at)).toBe(90 * 60_000);
  });
});

/** Object.prototype's own names, and strings that are no token ID at all. */
const NOT_IDS = [
  '__proto__',
  'constructor',
  'hasOwnProperty',
  'toString',
  'valueOf',
  'isPrototypeOf',
  '__defineGetter__',
  'propertyIsEnumerable',
  'tok_',
  'tok_AAAAAAAAAAAAAAAA%00',
];

describe('token API: what it refuses, and how', () => {
  it('IDs that are Object.prototype names (or no token ID): a JSON 404 on every route, nothing else', async () => {
    const { id } = await create({ user_id: 'svc-proto' });
    for (const bad of NOT_IDS) {
      const del = await tokenApi(a, 'DELETE', `/tokens/${bad}`);
      expect(del.status, bad).toBe(404);
      expect(del.json(), bad).toEqual({ error: 'no_such_token' });
      for (const method of ['GET', 'POST', 'PUT', 'PATCH']) {
        const r = await tokenApi(a, method, `/tokens/${bad}`, method === 'GET' ? undefined : {});
        expect(r.status, `${method} ${bad}`).toBe(404);
        expect(r.headers['content-type'], `${method} ${bad}`).toMatch(/^application\/json/);
        expect(r.json(), `${method} ${bad}`).toEqual({ error: 'not_found' });
      }
    }
    // Nothing was harmed: the list and the real token are there.
    const list = await tokenApi(b, 'GET', '/tokens');
    expect(list.status).toBe(200);
    expect(list.json<Array<{ id: string }>>().map((t) => t.id)).toContain(id);
  });

  it('a body naming Object.prototype properties is an unknown field, not a prototype', async () => {
    for (const body of ['{"user_id":"svc-p","__proto__":{"roles":["admin"]}}', '{"user_id":"svc-p","constructor":{"prototype":{"roles":["admin"]}}}']) {
      const r = await send(`http://127.0.0.1:${a.ports.api}/tokens`, {
        method: 'POST',
        headers: [
          ['Authorization', `Bearer ${LOGIN_TOKEN}`],
          ['Content-Type', 'application/json'],
        ],
        body,
      });
      expect(r.status, body).toBe(400);
      expect(r.json<{ error: string }>().error).toBe('invalid_body');
    }
  });
});

describe('token API errors from the built service: JSON with a reason, nothing echoed or logged', () => {
  let sg: RunningService;
  beforeAll(async () => {
    sg = await startBuilt({ env: { SESSIONGATE_SECRET: SECRET, SESSIONGATE_LOGIN_TOKEN: LOGIN_TOKEN } });
  });
  afterAll(async () => {
    await sg?.stop();
  });
  const MARKER = 'RAW-BODY-MARKER-7f3a';
  const post = (path: string, body: string, type = 'application/json') =>
    send(`http://127.0.0.1:${sg.apiPort}${path}`, {
      method: 'POST',
      headers: [
        ['Authorization', `Bearer ${LOGIN_TOKEN}`],
        ['Content-Type', type],
      ],
      body,
    });

  function clean(r: { status: number; headers: Record<string, unknown>; body: string }, error: string): void {
    expect(r.headers['content-type']).toMatch(/^application\/json/);
    expect(JSON.parse(r.body)).toEqual({ error });
    for (const leak of [MARKER, 'node_modules', 'SyntaxError', '    at ', '<html', '<pre>']) expect(r.body).not.toContain(leak);
  }

  it('broken JSON: 400 invalid_json; the raw body is neither answered nor logged', async () => {
    for (const body of [`{"user_id": "${MARKER}", `, `{"user_id": ${MARKER}}`, `${MARKER}`, '{"a":1}}']) {
      const r = await post('/tokens', body);
      expect(r.status, body).toBe(400);
      clean(r, 'invalid_json');
    }
    const big = await post('/tokens', JSON.stringify({ user_id: MARKER, name: 'x'.repeat(8192) }));
    expect(big.status).toBe(413);
    clean(big, 'body_too_large');
    const encoded = await send(`http://127.0.0.1:${sg.apiPort}/tokens`, {
      method: 'POST',
      headers: [
        ['Authorization', `Bearer ${LOGIN_TOKEN}`],
        ['Content-Type', 'application/json'],
        ['Content-Encoding', 'x-unknown'],
      ],
      body: `{"user_id":"${MARKER}"}`,
    });
    expect(encoded.status).toBe(415);
    clean(encoded, 'unsupported_encoding');
    // Logs arrive through a pipe after the answer: give them a moment to show up, if they would.
    await sg.waitForLog(MARKER, 300);
    expect(sg.logs().join('\n')).not.toContain(MARKER);
    expect(sg.logs().join('\n')).not.toContain('node_modules');
  });

  it('a path that is not valid percent-encoding, and an unknown path: JSON, not an HTML page', async () => {
    const bad = await send(`http://127.0.0.1:${sg.apiPort}/tokens/%E0%A4%A`, { method: 'DELETE', headers: [['Authorization', `Bearer ${LOGIN_TOKEN}`]] });
    expect(bad.status).toBe(400);
    clean(bad, 'bad_request');
    for (const port of [sg.apiPort, sg.adminPort]) {
      const unknown = await send(`http://127.0.0.1:${port}/nothing-here`);
      expect(unknown.status).toBe(404);
      clean(unknown, 'not_found');
    }
  });
});

describe('development login', () => {
  it('is off by default, and refused at start-up unless bound to loopback', () => {
    const def = loadConfig({ env: {} });
    expect(def.ok && def.config.devLogin).toBe(false);
    const open = loadConfig({ env: { SESSIONGATE_DEV_LOGIN: 'true', SESSIONGATE_HOST: '0.0.0.0' } });
    expect(open.ok).toBe(false);
    expect(!open.ok && open.problems.join('\n')).toMatch(/^dev_login \(from SESSIONGATE_DEV_LOGIN\): refused: listen.host is 0.0.0.0/);
    const local = loadConfig({ env: { SESSIONGATE_DEV_LOGIN: 'true' } });
    expect(local.ok && local.warnings.join('\n')).toMatch(/DEVELOPMENT LOGIN IS ON/);
  });

  it('answers 404 when off', async () => {
    const r = await send(`http://127.0.0.1:${a.ports.http}/~session/dev?user=alice`);
    expect(r.status).toBe(404);
    expect(r.cookies).toEqual([]);
  });

  it('when on: creates a session and redirects back; a bad rd or user is refused', async () => {
    const dev = await startService(testConfig({ SESSIONGATE_SECRET: SECRET, SESSIONGATE_DEV_LOGIN: 'true' }, { example: true }), quietLogger());
    try {
      const base = `http://127.0.0.1:${dev.ports.http}`;
      const r = await send(`${base}/~session/dev?user=alice&roles=admin,ops&rd=%2Fadmin%2Fusers`);
      expect(r.status).toBe(302);
      expect(r.headers['location']).toBe('/admin/users');
      const who = await send(`${base}/~session`, { headers: [['Cookie', cookiePair(r.cookies[0]!)]] });
      expect(who.json()).toMatchObject({ user_id: 'alice', roles: ['admin', 'ops'] });
      expect((await send(`${base}/~session/dev?user=alice&rd=%2F%2Fevil.example.net`)).status).toBe(400);
      expect((await send(`${base}/~session/dev?user=`)).status).toBe(400);
      expect((await send(`${base}/~session/dev?user=eve%0d%0aX-User-Id:%20root`)).status).toBe(400);
    } finally {
      await dev.close();
    }
  });
});
