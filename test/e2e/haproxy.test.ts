/**
 * The shipped haproxy/ config (haproxy.cfg and sessiongate.lua, ports substituted) in a real
 * HAProxy. What is proven here is HAProxy's side of the contract, so a recorder stands on
 * sessiongate's port and answers as told: the endpoint surface of test/support/endpoint-surface.ts
 * (exact paths, methods, a body only on the back-channel endpoint, nothing else of sessiongate),
 * the /auth request HAProxy builds (its own X-Original-*, never the client's), how each answer
 * becomes the client's (302 login redirect, 401 with its challenge, 403, Set-Cookie on an allow,
 * 500 when sessiongate is down or hung), the identity headers in every spelling HAProxy passes,
 * and connection reuse to sessiongate. The decisions themselves run over HAProxy in the case
 * tables (test/e2e/transports.test.ts, test/adversarial/transports.test.ts).
 */
import { createServer as createNetServer, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningHaproxy, startHaproxy } from '../../harness/haproxy.js';
import { send } from '../../harness/http.js';
import { type Echoed, type EchoUpstream, freePort, startEchoUpstream } from '../../harness/processes.js';
import { rawRequest } from '../../harness/raw-http.js';
import { type Recorder, type RecorderAnswer, startRecorder } from '../../harness/recorder.js';
import { EXPOSED_ENDPOINTS, NEVER_EXPOSED, TRIED_METHODS } from '../support/endpoint-surface.js';

let sg: Recorder;
let app: EchoUpstream;
let haproxy: RunningHaproxy;

beforeAll(async () => {
  sg = await startRecorder({ other: { status: 302, headers: { Location: '/', 'Set-Cookie': ['a=1; Path=/', 'b=2; Path=/'] } } });
  app = await startEchoUpstream();
  haproxy = await startHaproxy({ sessiongatePort: sg.port, appPort: app.port });
});

afterAll(async () => {
  await haproxy?.stop();
  await app?.close();
  await sg?.close();
});

const allowWith = (headers: Record<string, string | string[]> = {}): RecorderAnswer => ({ status: 200, headers });

/** A request through HAProxy, written byte for byte; what sessiongate's stand-in and the application received. */
async function through(method: string, target: string, opts: { headers?: Array<[string, string]>; body?: string; auth?: RecorderAnswer } = {}) {
  sg.auth = opts.auth ?? allowWith();
  const before = sg.seen.length;
  const appBefore = app.seen.length;
  const reply = await rawRequest(haproxy.port, { method, target, headers: opts.headers ?? [], body: opts.body });
  const got = sg.seen.slice(before);
  return {
    reply,
    auth: got.filter((s) => s.url === '/auth'),
    direct: got.filter((s) => s.url !== '/auth'),
    upstream: app.seen.slice(appBefore) as Echoed[],
  };
}

const refusedMethods = (allowed: readonly string[]) => TRIED_METHODS.filter((m) => !allowed.includes(m));

describe('the endpoint surface through the shipped HAProxy config', () => {
  describe.each(EXPOSED_ENDPOINTS)('$path', ({ path, methods, body }) => {
    it.each(methods)('%s reaches sessiongate unchecked, with the client Host (port included) and headers HAProxy sets', async (method) => {
      const host = `app.example.com:${haproxy.port}`;
      const { reply, auth, direct, upstream } = await through(method, `${path}?rd=%2Fdocs%2F&state=s1`, {
        headers: [
          ['Host', host],
          ['Cookie', 'sessiongate_login_abcdefghijkl=flow'],
          ['Content-Type', 'application/x-www-form-urlencoded'],
          // What a client claims is replaced by what HAProxy saw.
          ['X-Forwarded-Proto', 'https'],
          ['X-Forwarded-For', '203.0.113.9'],
          ['X-Request-Id', 'forged'],
        ],
        body: method === 'GET' ? undefined : 'logout_token=eyJhbGciOiJSUzI1NiJ9.e30.c2ln',
      });
      expect(reply.status).toBe(302);
      expect(reply.headers['location']).toEqual([sg.other.headers['Location']]);
      // Every cookie the answer sets reaches the browser (the callback sets one and clears another).
      expect(reply.headers['set-cookie']).toEqual(['a=1; Path=/', 'b=2; Path=/']);
      expect(auth, 'no /auth for the login itself').toHaveLength(0);
      expect(upstream, 'never the application').toHaveLength(0);
      expect(direct).toHaveLength(1);
      const seen = direct[0]!;
      expect(seen.method).toBe(method);
      expect(seen.url).toBe(`${path}?rd=%2Fdocs%2F&state=s1`);
      expect(seen.headers['host']).toBe(host);
      expect(seen.headers['x-forwarded-proto']).toBe('http');
      expect(seen.headers['x-forwarded-for']).toBe('127.0.0.1');
      expect(seen.headers['x-request-id']).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      expect(seen.headers['cookie']).toBe('sessiongate_login_abcdefghijkl=flow');
      if (body) {
        expect(seen.body).toBe('logout_token=eyJhbGciOiJSUzI1NiJ9.e30.c2ln');
        expect(seen.headers['content-type']).toBe('application/x-www-form-urlencoded');
      } else {
        expect(seen.body).toBe('');
        expect(seen.headers['content-type']).toBeUndefined();
        expect(seen.headers['transfer-encoding']).toBeUndefined();
        expect(Number(seen.headers['content-length'] ?? 0)).toBe(0);
      }
    });

    it.each(refusedMethods(methods))('%s is refused by HAProxy and never reaches sessiongate', async (method) => {
      const { reply, auth, direct, upstream } = await through(method, path, { body: method === 'GET' ? undefined : '' });
      expect(reply.status).toBe(403);
      expect([...auth, ...direct, ...upstream]).toHaveLength(0);
    });
  });

  it.each(NEVER_EXPOSED)('$method $path never reaches sessiongate: an application path, decided by /auth', async ({ method, path }) => {
    const { reply, auth, direct, upstream } = await through(method, path, { body: method === 'GET' || method === 'DELETE' ? undefined : '' });
    expect(direct).toHaveLength(0);
    expect(auth).toHaveLength(1);
    expect(auth[0]!.headers['x-original-uri']).toBe(path);
    expect(reply.status).toBe(200);
    expect(upstream.map((u) => u.url)).toEqual([path]);
  });

  it('routes the doctor probe to sessiongate after /auth, like an application path', async () => {
    const { auth, direct, upstream } = await through('GET', '/~sessiongate/probe/public');
    expect(auth).toHaveLength(1);
    expect(direct.map((d) => d.url)).toEqual(['/~sessiongate/probe/public']);
    expect(upstream).toHaveLength(0);
  });

  it('hands the browser a logout redirect carrying a large id_token_hint', async () => {
    // An ID token with 200 group IDs is over 10 kB (Node's client takes at most 16 kB of headers).
    const hint = 'a'.repeat(12_000);
    sg.other.headers['Location'] = `https://idp.example.com/logout?id_token_hint=${hint}&post_logout_redirect_uri=https%3A%2F%2Fapp.example.com%2F`;
    try {
      const { reply } = await through('GET', '/~logout');
      expect(reply.status).toBe(302);
      expect(reply.headers['location']).toEqual([sg.other.headers['Location']]);
    } finally {
      sg.other.headers['Location'] = '/';
    }
  });
});

describe('the /auth request HAProxy builds', () => {
  it('describes the request with headers HAProxy sets, never the client copies, and passes the client credentials', async () => {
    const { auth, upstream } = await through('POST', '/app/x?y=1&z=%2F', {
      headers: [
        ['Host', 'app.example.com'],
        ['Cookie', 'theme=dark; sessiongate=abc'],
        ['Cookie', 'lang=en'],
        ['Authorization', 'Bearer client-token'],
        ['Accept', 'text/html'],
        ['X-Original-URI', '/~assets/x.css'],
        ['X-Original-Method', 'GET'],
        ['X-Forwarded-Uri', '/~assets/x.css'],
        ['X-Forwarded-Method', 'GET'],
        ['X-Forwarded-Host', 'evil.example.net'],
        ['X-Forwarded-Proto', 'https'],
        ['X-Forwarded-For', '203.0.113.9'],
        ['X-Real-IP', '203.0.113.9'],
        ['X-Request-Id', 'forged'],
      ],
      body: 'a=b',
    });
    expect(auth).toHaveLength(1);
    const h = auth[0]!;
    expect(h.method).toBe('GET');
    expect(h.body).toBe('');
    const once = (name: string) => h.rawHeaders.filter((_, i) => i % 2 === 0 && h.rawHeaders[i]!.toLowerCase() === name).length;
    for (const name of ['x-original-uri', 'x-original-method', 'x-forwarded-host', 'x-forwarded-proto', 'x-forwarded-for', 'x-real-ip', 'x-request-id', 'host'])
      expect(once(name), name).toBe(1);
    expect(h.headers['x-original-uri']).toBe('/app/x?y=1&z=%2F');
    expect(h.headers['x-original-method']).toBe('POST');
    expect(h.headers['x-forwarded-uri']).toBeUndefined();
    expect(h.headers['x-forwarded-method']).toBeUndefined();
    expect(h.headers['host']).toBe('app.example.com');
    expect(h.headers['x-forwarded-host']).toBe('app.example.com');
    expect(h.headers['x-forwarded-proto']).toBe('http');
    expect(h.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(h.headers['x-real-ip']).toBe('127.0.0.1');
    expect(h.headers['cookie']).toBe('theme=dark; sessiongate=abc; lang=en');
    expect(h.headers['authorization']).toBe('Bearer client-token');
    expect(h.headers['accept']).toBe('text/html');
    // The same request id reaches the application, and neither is the client's.
    expect(h.headers['x-request-id']).not.toBe('forged');
    expect(upstream[0]!.headers['x-request-id']).toBe(h.headers['x-request-id']);
  });
});

describe("sessiongate's answer, as the client and the application get it", () => {
  const SPELLINGS: Array<[string, string]> = [
    ['X-User-Id', 'FORGED-1'],
    ['x_user_id', 'FORGED-2'],
    ['X.User.Id', 'FORGED-3'],
    ['x-user_roles', 'FORGED-4'],
    ['X_User.Email', 'FORGED-5'],
    ['X-AUTH-USER', 'FORGED-6'],
    ['x_sessiongate_degraded', 'FORGED-7'],
  ];

  it('HAProxy passes `_` and `.` spellings on to sessiongate (its spoof guard sees them)', async () => {
    const { auth } = await through('GET', '/app', { headers: SPELLINGS, auth: { status: 403, headers: {} } });
    expect(auth[0]!.headers['x_user_id']).toBe('FORGED-2');
    expect(auth[0]!.headers['x.user.id']).toBe('FORGED-3');
  });

  it('an allow: every protected spelling removed, identity, Cookie and Authorization from the answer only, Set-Cookie to the browser', async () => {
    const { reply, upstream } = await through('GET', '/app', {
      headers: [...SPELLINGS, ['Cookie', 'theme=dark; sessiongate=secret'], ['Authorization', 'Bearer sessiongate-token']],
      auth: allowWith({
        'X-User-Id': 'alice',
        'X-User-Roles': 'user,admin',
        Cookie: 'theme=dark',
        Authorization: '',
        'Set-Cookie': 'sessiongate=rotated; Path=/; HttpOnly',
        'X-Sessiongate-Reason': 'authenticated',
      }),
    });
    expect(reply.status).toBe(200);
    expect(reply.headers['set-cookie']).toEqual(['sessiongate=rotated; Path=/; HttpOnly']);
    const raw = upstream[0]!.rawHeaders;
    const names = raw.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
    expect(raw.join('\n')).not.toContain('FORGED');
    expect(names.filter((n) => /user|auth|degraded/.test(n)).sort()).toEqual(['x-user-id', 'x-user-roles']);
    expect(upstream[0]!.headers['x-user-id']).toBe('alice');
    expect(upstream[0]!.headers['x-user-roles']).toBe('user,admin');
    expect(upstream[0]!.headers['cookie']).toBe('theme=dark');
    expect(upstream[0]!.headers['authorization']).toBeUndefined();
    // sessiongate's reason stays between the two.
    expect(upstream[0]!.headers['x-sessiongate-reason']).toBeUndefined();
    expect(reply.headers['x-sessiongate-reason']).toBeUndefined();
  });

  it('an allow that names no Cookie or Authorization: the application gets none', async () => {
    const { upstream } = await through('GET', '/app', {
      headers: [
        ['Cookie', 'sessiongate=secret'],
        ['Authorization', 'Bearer x'],
      ],
    });
    expect(upstream[0]!.headers['cookie']).toBeUndefined();
    expect(upstream[0]!.headers['authorization']).toBeUndefined();
  });

  it('401 with a Location: 302 to it, nothing else of the answer', async () => {
    const { reply, upstream } = await through('GET', '/app', {
      auth: { status: 401, headers: { Location: 'https://login.example.com/login?rd=x', 'WWW-Authenticate': 'Bearer', 'Set-Cookie': 'x=1' } },
    });
    expect(reply.status).toBe(302);
    expect(reply.headers['location']).toEqual(['https://login.example.com/login?rd=x']);
    expect(reply.headers['set-cookie']).toBeUndefined();
    expect(upstream).toHaveLength(0);
  });

  it('401 without one: 401 with its challenge', async () => {
    const { reply } = await through('GET', '/app', { auth: { status: 401, headers: { 'WWW-Authenticate': 'Bearer realm="app"' } } });
    expect(reply.status).toBe(401);
    expect(reply.headers['www-authenticate']).toEqual(['Bearer realm="app"']);
    const bare = await through('GET', '/app', { auth: { status: 401, headers: {} } });
    expect(bare.reply.status).toBe(401);
    expect(bare.reply.headers['www-authenticate']).toBeUndefined();
  });

  it('403 passes through, with a challenge when there is one', async () => {
    const { reply, upstream } = await through('GET', '/app', { auth: { status: 403, headers: { 'WWW-Authenticate': 'Bearer error="insufficient_scope"' } } });
    expect(reply.status).toBe(403);
    expect(reply.headers['www-authenticate']).toEqual(['Bearer error="insufficient_scope"']);
    expect(upstream).toHaveLength(0);
  });

  it.each([500, 503, 204, 302, 404])('%i from sessiongate: 500, never the application', async (status) => {
    const { reply, upstream } = await through('GET', '/app', { auth: { status, headers: { Location: '/x' } } });
    expect(reply.status).toBe(500);
    expect(upstream).toHaveLength(0);
  });

  it('400 from sessiongate (a request it could not read): 400, never the application', async () => {
    const { reply, upstream } = await through('GET', '/app', { auth: { status: 400, headers: {} } });
    expect(reply.status).toBe(400);
    expect(upstream).toHaveLength(0);
  });
});

describe('request header size', () => {
  it('up to 12 kB of headers: the answer echoing them fits; more: 431 before sessiongate is asked', async () => {
    const echo = (req: string) => allowWith({ Cookie: req, 'X-User-Id': 'alice', 'Set-Cookie': `sessiongate=${'x'.repeat(130)}; Path=/; HttpOnly; Secure` });
    const fits = `c=${'a'.repeat(12_000)}`;
    const ok = await through('GET', '/app', { headers: [['Cookie', fits]], auth: echo(fits) });
    expect(ok.reply.status).toBe(200);
    expect(ok.upstream[0]!.headers['cookie']).toBe(fits);
    const big = `c=${'a'.repeat(12_300)}`;
    const refused = await through('GET', '/app', { headers: [['Cookie', big]], auth: echo(big) });
    expect(refused.reply.status).toBe(431);
    expect(refused.auth).toHaveLength(0);
  });
});

describe('connections to sessiongate', () => {
  it('are reused: sequential requests share one keep-alive connection', async () => {
    // An observation, not a timing: HAProxy 2.6's HTTP client returns its connection to the
    // server's idle pool, and the next request takes it.
    const opened = sg.connections;
    for (let i = 0; i < 50; i++) {
      const { reply } = await through('GET', `/app/${i}`);
      expect(reply.status).toBe(200);
    }
    expect(sg.connections - opened).toBeLessThanOrEqual(1);
  });
});

describe('sessiongate down or hung', () => {
  it('nothing listening: 500, never the application', async () => {
    const upstream = await startEchoUpstream();
    const down = await startHaproxy({ sessiongatePort: await freePort(), appPort: upstream.port });
    try {
      const r = await send(`${down.url}/app`, { headers: [['Cookie', 'sessiongate=x']] });
      expect(r.status).toBe(500);
      // An endpoint gets HAProxy's own 503 (its client could not connect).
      const endpoint = await send(`${down.url}/~session`);
      expect(endpoint.status).toBeGreaterThanOrEqual(500);
      expect(upstream.seen).toHaveLength(0);
    } finally {
      await down.stop();
      await upstream.close();
    }
  });

  it('accepting but never answering: 500 once the client gives up, never the application', async () => {
    const sockets: Socket[] = [];
    const hung = createNetServer((s) => {
      s.on('error', () => {});
      sockets.push(s);
    });
    await new Promise<void>((r) => hung.listen(0, '127.0.0.1', r));
    const upstream = await startEchoUpstream();
    const slow = await startHaproxy({ sessiongatePort: (hung.address() as { port: number }).port, appPort: upstream.port });
    try {
      const r = await send(`${slow.url}/app`);
      expect(r.status).toBe(500);
      expect(upstream.seen).toHaveLength(0);
      // HAProxy 2.6's client tried more than once (its retries are fixed), each attempt its own connection.
      expect(sockets.length).toBeGreaterThan(1);
    } finally {
      await slow.stop();
      await upstream.close();
      for (const s of sockets) s.destroy();
      await new Promise((r) => hung.close(r));
    }
  }, 30_000);
});
