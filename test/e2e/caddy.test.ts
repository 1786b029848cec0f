/**
 * The shipped caddy/Caddyfile, run by a real Caddy (ports substituted) in front of a real
 * sessiongate and an upstream that echoes what it receives: the endpoint surface every proxy
 * config exposes (test/support/endpoint-surface.ts), what the application gets on an allow (no
 * placeholder text for a header the answer lacks, the client's Cookie without sessiongate's),
 * the rotation cookie reaching the browser, the login redirect, a 5xx when sessiongate is down,
 * connection reuse towards sessiongate, and `sessiongate doctor` passing every check.
 */
import { createServer as createNetServer, type Server as NetServer, connect as netConnect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningCaddy, startCaddy } from '../../harness/caddy.js';
import { cookiePair, send } from '../../harness/http.js';
import { type Echoed, type EchoUpstream, freePort, startEchoUpstream } from '../../harness/processes.js';
import { type Recorder, startRecorder } from '../../harness/recorder.js';
import { run } from '../../src/cli/index.js';
import { type Service, startService } from '../../src/main.js';
import { EXPOSED_ENDPOINTS, NEVER_EXPOSED, TRIED_METHODS } from '../support/endpoint-surface.js';
import { quietLogger, testConfig } from '../support/service.js';

const LOGIN_TOKEN = 'caddy-login-token-0123456789';
const SECRET = 'caddy-secret-0123456789abcdef0123456789abcd';
const HOST = 'app.example.com';
const M = 60_000;
const clock = { now: Date.UTC(2026, 5, 1, 8, 0, 0) };

/** A TCP relay in front of sessiongate that counts the connections Caddy opens to it. */
function startCountingRelay(target: number): Promise<{ port: number; connections: () => number; close(): Promise<void> }> {
  let count = 0;
  const server: NetServer = createNetServer((client) => {
    count++;
    const upstream = netConnect(target, '127.0.0.1');
    client.pipe(upstream).pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({
        port: (server.address() as { port: number }).port,
        connections: () => count,
        close: () => new Promise((r) => server.close(() => r())),
      }),
    ),
  );
}

let svc: Service;
let app: EchoUpstream;
let caddy: RunningCaddy;
const http = () => `http://127.0.0.1:${svc.ports.http}`;

beforeAll(async () => {
  svc = await startService(testConfig({ SESSIONGATE_SECRET: SECRET, SESSIONGATE_LOGIN_TOKEN: LOGIN_TOKEN }, { example: true }), quietLogger(), {
    clock: () => clock.now,
  });
  app = await startEchoUpstream();
  caddy = await startCaddy({ sessiongatePort: svc.ports.http, appPort: app.port });
});

afterAll(async () => {
  await caddy?.stop();
  await app?.close();
  await svc?.close();
});

/** A session as the login service creates it (POST /~session); no e-mail address unless given. */
async function login(user: string, roles: string[], attributes: Record<string, unknown> = {}): Promise<string> {
  const r = await send(`${http()}/~session`, {
    method: 'POST',
    headers: [
      ['Authorization', `Bearer ${LOGIN_TOKEN}`],
      ['Content-Type', 'application/json'],
    ],
    body: JSON.stringify({ user_id: user, roles, attributes }),
  });
  expect(r.status).toBe(201);
  return cookiePair(r.cookies[0]!);
}

/** A request through Caddy; what the application received, when it did. */
async function through(path: string, headers: Array<[string, string]> = [], opts: { method?: string; body?: string } = {}) {
  const before = app.seen.length;
  const reply = await send(caddy.url, { method: opts.method ?? 'GET', path, headers: [['Host', HOST], ...headers], body: opts.body });
  const seen: Echoed | undefined = app.seen.slice(before).at(-1);
  return { reply, seen };
}

describe('an allow through the shipped Caddyfile', () => {
  it('the application gets the identity from the answer only, and never a placeholder for a header the answer lacks', async () => {
    // No roles, no e-mail: sessiongate's answer has X-User-Id only.
    const c = await login('plain', []);
    const { reply, seen } = await through('/app', [
      ['Cookie', c],
      ['X-User-Email', 'FORGED'],
      ['X-User-Roles', 'FORGED'],
      ['X-Sessiongate-Degraded', 'FORGED'],
    ]);
    expect(reply.status).toBe(200);
    expect(seen!.headers['x-user-id']).toBe('plain');
    expect(seen!.headers['x-user-email']).toBeUndefined();
    expect(seen!.headers['x-user-roles']).toBeUndefined();
    expect(seen!.headers['x-sessiongate-degraded']).toBeUndefined();
    // Nothing else that the answer lacked: no Cookie (only sessiongate's was sent), no Authorization.
    expect(seen!.headers['cookie']).toBeUndefined();
    expect(seen!.headers['authorization']).toBeUndefined();
    expect(JSON.stringify(seen!.rawHeaders)).not.toContain('{http.');
    expect(reply.cookies).toEqual([]);
    expect(JSON.stringify(reply.headers)).not.toContain('{http.');
    // sessiongate's reason stays between Caddy and sessiongate.
    expect(reply.headers['x-sessiongate-reason']).toBeUndefined();
  });

  it('the application gets the client Cookie without sessiongate cookie, and the client Authorization', async () => {
    const c = await login('alice', ['user', 'admin'], { email: 'alice@example.com' });
    const { seen } = await through('/app', [
      ['Cookie', `theme=dark; ${c}; lang=en`],
      ['Cookie', 'second=1'],
      ['Authorization', 'Basic YXBwOnNlY3JldA=='],
    ]);
    expect(seen!.headers['cookie']).toBe('theme=dark; lang=en; second=1');
    expect(seen!.headers['authorization']).toBe('Basic YXBwOnNlY3JldA==');
    expect(seen!.headers['x-user-id']).toBe('alice');
    expect(seen!.headers['x-user-roles']).toBe('user,admin');
    expect(seen!.headers['x-user-email']).toBe('alice@example.com');
  });

  it('every spelling of a protected header is removed before sessiongate is asked (and never reaches the application)', async () => {
    const c = await login('bob', ['user']);
    const spoofs: Array<[string, string]> = [
      ['X-User-Id', 'FORGED'],
      ['x-user-id', 'FORGED'],
      ['X-USER-ROLES', 'FORGED'],
      ['x_user_id', 'FORGED'],
      ['X.User.Id', 'FORGED'],
      ['X_User.Email', 'FORGED'],
      ['X-Auth-User', 'FORGED'],
    ];
    // Removed before asking: sessiongate's spoof guard sees nothing, so the protected path is an allow as bob.
    const { reply, seen } = await through('/app', [['Cookie', c], ...spoofs]);
    expect(reply.status).toBe(200);
    expect(seen!.headers['x-user-id']).toBe('bob');
    expect(JSON.stringify(seen!.rawHeaders)).not.toContain('FORGED');
    // The public path: reached without any identity.
    const pub = await through('/~assets/app.css', spoofs);
    expect(pub.reply.status).toBe(200);
    expect(JSON.stringify(pub.seen!.rawHeaders)).not.toContain('FORGED');
  });

  it('the request body reaches the application whole (sessiongate is asked without it)', async () => {
    const c = await login('carol', ['user']);
    const body = JSON.stringify({ big: 'x'.repeat(100_000) });
    const before = app.seen.length;
    const r = await send(caddy.url, {
      method: 'POST',
      path: '/app/items',
      headers: [
        ['Host', HOST],
        ['Cookie', c],
        ['Content-Type', 'application/json'],
      ],
      body,
    });
    expect(r.status).toBe(200);
    expect(app.seen.length).toBe(before + 1);
    expect(app.seen.at(-1)!.headers['content-length']).toBe(String(body.length));
  });

  it('a rotated session: the new cookie reaches the browser on the allow', async () => {
    const c = await login('dave', ['user']);
    clock.now += 20 * M;
    expect((await through('/app', [['Cookie', c]])).reply.cookies).toEqual([]); // touched
    clock.now += 10 * M; // rotate_after 30m
    const { reply, seen } = await through('/app', [['Cookie', c]]);
    expect(reply.status).toBe(200);
    expect(seen!.headers['x-user-id']).toBe('dave');
    expect(reply.cookies).toHaveLength(1);
    expect(reply.cookies[0]).toMatch(/^sessiongate=[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{43}; Max-Age=/);
    expect(cookiePair(reply.cookies[0]!)).not.toBe(c);
    // The new cookie works through Caddy.
    const next = await through('/app', [['Cookie', cookiePair(reply.cookies[0]!)]]);
    expect(next.seen!.headers['x-user-id']).toBe('dave');
  });
});

describe('a deny through the shipped Caddyfile', () => {
  it('a browser navigation without a session: 302 to the login page, the application not reached', async () => {
    const { reply, seen } = await through('/app/page?q=1', [['Accept', 'text/html,application/xhtml+xml']]);
    expect(reply.status).toBe(302);
    expect(reply.headers['location']).toBe(`https://login.example.com/login?rd=${encodeURIComponent(`http://${HOST}/app/page?q=1`)}`);
    expect(seen).toBeUndefined();
    expect(reply.headers['x-sessiongate-reason']).toBeUndefined();
  });

  it('an API client without a session: 401, with the challenge when it sent a bearer token', async () => {
    const plain = await through('/app', [['Accept', 'application/json']]);
    expect(plain.reply.status).toBe(401);
    expect(plain.reply.headers['location']).toBeUndefined();
    expect(plain.seen).toBeUndefined();
    const { reply, seen } = await through('/app', [
      ['Accept', 'application/json'],
      ['Authorization', 'Bearer not-a-token'],
    ]);
    expect(reply.status).toBe(401);
    expect(reply.headers['www-authenticate']).toBe('Bearer realm="sessiongate"');
    expect(reply.headers['x-sessiongate-reason']).toBeUndefined();
    expect(reply.headers['location']).toBeUndefined();
    expect(seen).toBeUndefined();
  });

  it('a role denial: 403', async () => {
    const c = await login('erin', ['user']);
    const { reply, seen } = await through('/admin/users', [['Cookie', c]]);
    expect(reply.status).toBe(403);
    expect(reply.headers['x-sessiongate-reason']).toBeUndefined();
    expect(seen).toBeUndefined();
  });

  it('sessiongate down: 502, never an allow', async () => {
    const down = await startCaddy({ sessiongatePort: await freePort(), appPort: app.port });
    try {
      const before = app.seen.length;
      for (const path of ['/app', '/~assets/app.css', '/blog/']) {
        const r = await send(down.url, { path, headers: [['Host', HOST]] });
        expect(r.status, path).toBe(502);
      }
      expect(app.seen.length).toBe(before);
    } finally {
      await down.stop();
    }
  });
});

describe('connections to sessiongate', () => {
  it('Caddy reuses its connection to sessiongate across requests (answers without a body)', async () => {
    const relay = await startCountingRelay(svc.ports.http);
    const viaRelay = await startCaddy({ sessiongatePort: relay.port, appPort: app.port });
    try {
      const c = await login('frank', ['user']);
      for (let i = 0; i < 20; i++) {
        const r = await send(viaRelay.url, {
          path: `/app/${i}`,
          headers: [
            ['Host', HOST],
            ['Cookie', c],
          ],
        });
        expect(r.status).toBe(200);
      }
      // 20 sequential checks: one connection (a new one per request would be 20).
      expect(relay.connections()).toBe(1);
    } finally {
      await viaRelay.stop();
      await relay.close();
    }
  });
});

describe('the endpoint surface through the shipped Caddyfile (a recorder on sessiongate port)', () => {
  let sg: Recorder;
  let proxy: RunningCaddy;
  beforeAll(async () => {
    sg = await startRecorder({ auth: { status: 200, headers: { 'X-User-Id': 'recorded' } } });
    proxy = await startCaddy({ sessiongatePort: sg.port, appPort: app.port });
  });
  afterAll(async () => {
    await proxy?.stop();
    await sg?.close();
  });

  const cases = EXPOSED_ENDPOINTS.flatMap((e) => TRIED_METHODS.map((method) => ({ ...e, method, listed: e.methods.includes(method) })));

  it.each(cases)('$method $path: reaches sessiongate iff listed, without /auth', async ({ path, method, listed, body }) => {
    const before = sg.seen.length;
    const appBefore = app.seen.length;
    const sent = method === 'GET' ? undefined : 'logout_token=abc&x=1';
    const r = await send(proxy.url, {
      method,
      path: `${path}?rd=%2Fdocs%2F`,
      headers: [
        ['Host', `${HOST}:${proxy.port}`],
        ['X-Forwarded-Proto', 'https'],
        ['X-Forwarded-For', '203.0.113.9'],
        ['X-Request-Id', 'forged'],
        ...(sent ? ([['Content-Type', 'application/x-www-form-urlencoded']] as Array<[string, string]>) : []),
      ],
      body: sent,
    });
    const got = sg.seen.slice(before);
    expect(app.seen.length, 'never the application').toBe(appBefore);
    if (!listed) {
      expect(r.status).toBe(405);
      expect(r.headers['allow']).toBe(EXPOSED_ENDPOINTS.find((e) => e.path === path)!.methods.join(', '));
      expect(got).toEqual([]);
      return;
    }
    expect(r.status).toBe(302);
    expect(got).toHaveLength(1);
    const seen = got[0]!;
    // Caddy can drop a body only by asking with GET: POST /~logout reaches sessiongate as GET.
    expect(seen.method).toBe(path === '/~logout' ? 'GET' : method);
    expect(seen.url).toBe(`${path}?rd=%2Fdocs%2F`);
    expect(seen.headers['host']).toBe(`${HOST}:${proxy.port}`);
    // What the client claims is replaced by what Caddy saw.
    expect(seen.headers['x-forwarded-proto']).toBe('http');
    expect(seen.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(seen.headers['x-real-ip']).toBe('127.0.0.1');
    expect(seen.headers['x-request-id']).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    if (sent !== undefined) {
      // The back-channel gets its body; /~logout none. Caddy drops a body only by asking with GET,
      // so DELETE /~session passes one on, as nginx does (sessiongate reads none there).
      if (path === '/~logout') {
        expect(seen.body).toBe('');
        expect(seen.headers['content-type']).toBeUndefined();
      } else expect(seen.body).toBe(body || path === '/~session' ? sent : '');
    }
  });

  it.each(NEVER_EXPOSED)('$method $path never reaches sessiongate: it is decided, then goes to the application', async ({ method, path }) => {
    const before = sg.seen.length;
    const appBefore = app.seen.length;
    const r = await send(proxy.url, { method, path, headers: [['Host', HOST]] });
    expect(r.status).toBe(200);
    const got = sg.seen.slice(before);
    expect(got.map((s) => `${s.method} ${s.url}`)).toEqual(['GET /auth']);
    expect(got[0]!.headers['x-forwarded-method']).toBe(method);
    expect(got[0]!.headers['x-forwarded-uri']).toBe(path);
    expect(app.seen.slice(appBefore).map((s) => `${s.method} ${s.url}`)).toEqual([`${method} ${path}`]);
  });

  it('the check carries what Caddy saw, never what the client claims', async () => {
    const before = sg.seen.length;
    const r = await send(proxy.url, {
      method: 'POST',
      path: '/app/x?y=1',
      headers: [
        ['Host', HOST],
        ['X-Forwarded-Method', 'GET'],
        ['X-Forwarded-Uri', '/~assets/x.css'],
        ['X-Original-Method', 'GET'],
        ['X-Original-URI', '/~assets/x.css'],
        ['X-Forwarded-Host', 'evil.example.net'],
        ['X-Forwarded-Proto', 'https'],
        ['X-Real-IP', '203.0.113.9'],
        ['Content-Type', 'text/plain'],
      ],
      body: 'the body',
    });
    expect(r.status).toBe(200);
    const auth = sg.seen.slice(before);
    expect(auth).toHaveLength(1);
    const h = auth[0]!.headers;
    expect(auth[0]!.method).toBe('GET');
    expect(auth[0]!.body).toBe('');
    expect(h['x-forwarded-method']).toBe('POST');
    expect(h['x-forwarded-uri']).toBe('/app/x?y=1');
    expect(h['x-original-method']).toBeUndefined();
    expect(h['x-original-uri']).toBeUndefined();
    expect(h['x-forwarded-host']).toBe(HOST);
    expect(h['host']).toBe(HOST);
    expect(h['x-forwarded-proto']).toBe('http');
    expect(h['x-real-ip']).toBe('127.0.0.1');
    expect(h['x-forwarded-for']).toBe('127.0.0.1');
  });
});

describe('sessiongate doctor against the shipped Caddyfile', () => {
  async function doctor(...args: string[]): Promise<{ code: number; out: string }> {
    let out = '';
    const code = await run(['doctor', '--url', caddy.url, ...args], {}, { out: (s) => (out += s), err: (s) => void process.stderr.write(s) });
    return { code, out };
  }

  it('every check passes, with and without a session', async () => {
    const anon = await doctor();
    expect(anon.out, anon.out).toMatch(/\n(\d+) passed, 0 failed, 1 skipped\n$/);
    expect(anon.code).toBe(0);
    const c = await login('doc', ['user'], { email: 'doc@example.com' });
    const withSession = await doctor(`--cookie=${c.slice('sessiongate='.length)}`);
    expect(withSession.out, withSession.out).toMatch(/ 0 failed, 0 skipped\n$/);
    expect(withSession.out).toMatch(/session: upstream receives its identity\s+.*X-User-Id: d.*PASS/);
    expect(withSession.code).toBe(0);
    expect(Number(/(\d+) passed/.exec(withSession.out)![1])).toBeGreaterThan(60);
  });
});
