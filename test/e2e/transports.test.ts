/**
 * One case table, every transport: every row runs over nginx `/auth`, Envoy gRPC Check (raw
 * bytes encoded by field number, independent of proto/), Envoy HTTP ext_authz, and a real Caddy
 * and a real HAProxy running the shipped caddy/Caddyfile and haproxy/ config in front of an
 * upstream that echoes what it received, against the service started in-process with
 * deploy/config.example.yaml and an injected clock (expiry and rotation without sleeping). Every
 * transport must reach the same decision; where a proxy itself does something else, the row says
 * what and why for that proxy.
 */
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningCaddy, startCaddy } from '../../harness/caddy.js';
import { APPEND_ACTION, type DecodedCheckResponse, GRPC, RawEnvoyClient } from '../../harness/envoy-wire.js';
import { type RunningHaproxy, startHaproxy } from '../../harness/haproxy.js';
import { cookiePair, createSession, send } from '../../harness/http.js';
import { type Echoed, type EchoUpstream, startEchoUpstream } from '../../harness/processes.js';
import { rawRequest } from '../../harness/raw-http.js';
import { type Service, startService } from '../../src/main.js';
import { createLogger } from '../../src/ops/logger.js';
import { testConfig } from '../support/service.js';

const LOGIN_TOKEN = 'table-login-token-0123456789';
const SECRET = 'table-secret-0123456789abcdef0123456789abc';
const HOST = 'app.example.com';
const M = 60_000;
const clock = { now: Date.UTC(2026, 5, 1, 8, 0, 0) };

let svc: Service;
let grpc: RawEnvoyClient;
let app: EchoUpstream;
let caddy: RunningCaddy;
let haproxyRunning: RunningHaproxy;
const http = () => `http://127.0.0.1:${svc.ports.http}`;
/** sessiongate's decision log lines: behind a real proxy the client sees no reason, the log does. */
const decisions: Array<{ result: string; reason: string; transport: string }> = [];
const decisionLog = new Writable({
  write(chunk: Buffer, _e, cb) {
    for (const line of chunk.toString().split('\n')) {
      if (!line) continue;
      const j = JSON.parse(line) as { msg?: string; result: string; reason: string; transport: string };
      if (j.msg === 'decision') decisions.push({ result: j.result, reason: j.reason, transport: j.transport });
    }
    cb();
  },
});

beforeAll(async () => {
  svc = await startService(
    testConfig({ SESSIONGATE_SECRET: SECRET, SESSIONGATE_LOGIN_TOKEN: LOGIN_TOKEN }, { example: true }),
    createLogger('debug', decisionLog),
    { clock: () => clock.now },
  );
  grpc = new RawEnvoyClient(`127.0.0.1:${svc.ports.grpc}`);
  app = await startEchoUpstream();
  caddy = await startCaddy({ sessiongatePort: svc.ports.http, appPort: app.port });
  haproxyRunning = await startHaproxy({ sessiongatePort: svc.ports.http, appPort: app.port });
});
afterAll(async () => {
  grpc?.close();
  await caddy?.stop();
  await haproxyRunning?.stop();
  await app?.close();
  await svc?.close();
});

const login = (roles: string[] = ['user'], user = 'alice'): Promise<string> => createSession(http(), LOGIN_TOKEN, user, roles);

/** The original request, as the client sent it. */
interface Req {
  method?: string;
  path: string;
  headers?: Array<[string, string]>;
}

/** What every transport's answer is reduced to, so they can be compared. */
interface Outcome {
  result: 'allow' | 'deny' | 'error';
  reason: string;
  /** The HTTP status the client would see (Envoy: denied_response status; nginx: after error_page). */
  status: number;
  location?: string | undefined;
  identity: Record<string, string>;
  setCookie?: string | undefined;
}

type Transport = (req: Req) => Promise<Outcome>;

function identityOf(pairs: Array<[string, string]>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of pairs) if (/^x-user-/i.test(k)) out[k.toLowerCase()] = v;
  return out;
}

const nginx: Transport = async (req) => {
  const r = await send(`${http()}/auth`, {
    headers: [
      ['X-Original-Method', req.method ?? 'GET'],
      ['X-Original-URI', req.path],
      ['X-Forwarded-Proto', 'https'],
      ['X-Forwarded-Host', HOST],
      ...(req.headers ?? []),
    ],
  });
  const result = r.status === 200 ? 'allow' : r.status >= 500 ? 'error' : 'deny';
  expect(r.headers['content-length']).toBe('0'); // keepalive with nginx
  const location = r.headers['location'] as string | undefined;
  return {
    result,
    reason: r.headers['x-sessiongate-reason'] as string,
    // nginx's error_page 401 turns a 401 with Location into the 302 the browser sees.
    status: r.status === 401 && location ? 302 : r.status,
    location,
    identity: identityOf(Object.entries(r.headers).map(([k, v]) => [k, String(v)])),
    setCookie: r.cookies[0],
  };
};

const envoyGrpc: Transport = async (req) => {
  const lower: Record<string, string> = {};
  for (const [k, v] of req.headers ?? []) {
    const key = k.toLowerCase();
    lower[key] = lower[key] === undefined ? v : `${lower[key]}${key === 'cookie' ? '; ' : ','}${v}`;
  }
  const out = await grpc.check({ method: req.method ?? 'GET', path: req.path, host: HOST, headers: lower });
  if ('error' in out) return { result: 'error', reason: out.error.details, status: 503, identity: {} };
  const r: DecodedCheckResponse = out.response;
  if (r.code === GRPC.OK) {
    for (const h of r.ok!.headers) expect(h.appendAction, h.key).toBe(APPEND_ACTION.OVERWRITE_IF_EXISTS_OR_ADD);
    return {
      result: 'allow',
      reason: r.metadata['reason']!,
      status: 200,
      identity: identityOf(r.ok!.headers.map((h) => [h.key, h.value])),
      setCookie: r.ok!.responseHeadersToAdd.find((h) => h.key === 'set-cookie')?.value,
    };
  }
  expect([GRPC.UNAUTHENTICATED, GRPC.PERMISSION_DENIED]).toContain(r.code);
  expect(r.code).toBe(r.denied!.status === 403 ? GRPC.PERMISSION_DENIED : GRPC.UNAUTHENTICATED);
  return {
    result: 'deny',
    reason: r.message,
    status: r.denied!.status,
    location: r.denied!.headers.find((h) => h.key === 'location')?.value,
    identity: {},
  };
};

const envoyHttp: Transport = async (req) => {
  // The raw target (a URL object would resolve `..` on the client side).
  const r = await send(http(), {
    path: `/envoy${req.path}`,
    method: req.method ?? 'GET',
    headers: [['Host', HOST], ['X-Forwarded-Proto', 'https'], ...(req.headers ?? [])],
  });
  const result = r.status === 200 ? 'allow' : r.status >= 500 ? 'error' : 'deny';
  return {
    result,
    reason: r.headers['x-sessiongate-reason'] as string,
    status: r.status,
    location: r.headers['location'] as string | undefined,
    identity: identityOf(Object.entries(r.headers).map(([k, v]) => [k, String(v)])),
    setCookie: r.cookies[0],
  };
};

/** Through the real Caddy: the status and cookies the client got, the identity the application got, the reason from the log. */
const caddyProxy: Transport = async (req) => {
  const before = decisions.length;
  const appBefore = app.seen.length;
  const r = await send(`http://127.0.0.1:${caddy.port}`, { method: req.method ?? 'GET', path: req.path, headers: [['Host', HOST], ...(req.headers ?? [])] });
  const decided = decisions.slice(before);
  expect(decided, 'one decision per request').toHaveLength(1);
  const seen = app.seen.slice(appBefore);
  expect(seen.length, 'the application is reached on an allow only').toBe(r.status === 200 ? 1 : 0);
  const pairs: Array<[string, string]> = [];
  const raw = seen[0]?.rawHeaders ?? [];
  for (let i = 0; i < raw.length; i += 2) pairs.push([raw[i]!, raw[i + 1]!]);
  const location = r.headers['location'] as string | undefined;
  return {
    result: r.status === 200 ? 'allow' : r.status >= 500 ? 'error' : 'deny',
    reason: decided[0]!.reason,
    status: r.status,
    // Caddy serves plain HTTP here: its rd names http://; the rows (and the other transports) say https.
    location: location?.replace('rd=http%3A%2F%2F', 'rd=https%3A%2F%2F'),
    identity: identityOf(pairs),
    setCookie: r.cookies.find((c) => c.startsWith('sessiongate=')),
  };
};

/** Through the real HAProxy: what the client saw, what the application received, sessiongate's logged reason. */
const haproxy: Transport = async (req) => {
  const before = decisions.length;
  const r = await rawRequest(haproxyRunning.port, { method: req.method, target: req.path, headers: [['Host', HOST], ...(req.headers ?? [])] });
  // One /auth call per request (HAProxy retries only a failed connection).
  const logged = decisions.slice(before);
  expect(logged.map((d) => d.transport)).toEqual(['nginx']);
  const seen = r.status === 200 ? (JSON.parse(r.body) as Echoed) : undefined;
  const pairs: Array<[string, string]> = [];
  for (let i = 0; seen && i < seen.rawHeaders.length; i += 2) pairs.push([seen.rawHeaders[i]!, seen.rawHeaders[i + 1]!]);
  const location = r.headers['location']?.[0];
  return {
    result: r.status === 200 ? 'allow' : r.status >= 500 ? 'error' : 'deny',
    reason: logged[0]!.reason,
    status: r.status,
    // HAProxy serves plain HTTP here (it sets X-Forwarded-Proto, never the client): its rd names http://.
    location: location?.replace('rd=http%3A%2F%2F', 'rd=https%3A%2F%2F'),
    identity: identityOf(pairs),
    setCookie: r.headers['set-cookie']?.[0],
  };
};

const TRANSPORTS: Record<string, Transport> = { nginx, 'envoy gRPC': envoyGrpc, 'envoy HTTP': envoyHttp, caddy: caddyProxy, haproxy };

const BROWSER: [string, string] = ['Accept', 'text/html,application/xhtml+xml'];
const API: [string, string] = ['Accept', 'application/json'];
const withCookie = (c: string, ...more: Array<[string, string]>): Array<[string, string]> => [['Cookie', `theme=dark; ${c}`], ...more];
const forge = (c: string) => c.slice(0, -2) + (c.endsWith('AA') ? 'BA' : 'AA');
const rd = (path: string) => `https://login.example.com/login?rd=${encodeURIComponent(`https://${HOST}${path}`)}`;

interface Row {
  name: string;
  /** Prepares state (sessions, time) and returns the request; runs once per transport. */
  request: () => Promise<Req>;
  expect: Omit<Outcome, 'identity'> & { identity?: Record<string, string> };
  /** What a proxy does instead, keyed by transport name, and why (still asserted, never skipped). */
  proxies?: Record<string, { expect: Row['expect']; why: string }>;
}

const ALICE = { 'x-user-id': 'alice', 'x-user-roles': 'user', 'x-user-email': 'alice@example.com' };
const CADDY_REMOVES =
  'the shipped Caddyfile removes every spelling of a protected header before asking: sessiongate sees none, the application gets only the session identity';

const rows: Row[] = [
  {
    name: 'allow with a session',
    request: async () => ({ path: '/app?x=1', headers: withCookie(await login()) }),
    expect: { result: 'allow', reason: 'authenticated', status: 200, identity: ALICE },
  },
  { name: 'no cookie, API client', request: async () => ({ path: '/app', headers: [API] }), expect: { result: 'deny', reason: 'no_session', status: 401 } },
  {
    name: 'no cookie, browser: login redirect',
    request: async () => ({ path: '/app/page?q=1', headers: [BROWSER] }),
    expect: { result: 'deny', reason: 'no_session', status: 302, location: rd('/app/page?q=1') },
  },
  {
    name: 'forged cookie',
    request: async () => ({ path: '/app', headers: withCookie(forge(await login()), API) }),
    expect: { result: 'deny', reason: 'bad_signature', status: 401 },
  },
  {
    name: 'malformed cookie',
    request: async () => ({ path: '/app', headers: withCookie('sessiongate=%00garbage', API) }),
    expect: { result: 'deny', reason: 'malformed_cookie', status: 401 },
  },
  {
    name: 'expired session',
    request: async () => {
      // Stay active (touching, following rotations) until the 12h absolute lifetime is over.
      let c = await login();
      const end = clock.now + 12 * 60 * M;
      while (clock.now + 20 * M < end) {
        clock.now += 20 * M;
        const o = await nginx({ path: '/app', headers: withCookie(c) });
        expect(o.result).toBe('allow');
        if (o.setCookie) c = cookiePair(o.setCookie);
      }
      clock.now = end;
      return { path: '/app', headers: withCookie(c, API) };
    },
    expect: { result: 'deny', reason: 'expired', status: 401 },
  },
  {
    name: 'idle-timed-out session',
    request: async () => {
      const c = await login();
      clock.now += 30 * M; // idle_ttl 30m
      return { path: '/app', headers: withCookie(c, API) };
    },
    expect: { result: 'deny', reason: 'idle_timeout', status: 401 },
  },
  {
    name: 'rotated-away cookie past its grace window',
    request: async () => {
      const old = await login();
      clock.now += 20 * M;
      await nginx({ path: '/app', headers: withCookie(old) }); // touch
      clock.now += 10 * M; // rotate_after 30m
      const rotated = await nginx({ path: '/app', headers: withCookie(old) });
      expect(rotated.setCookie).toMatch(/^sessiongate=/);
      clock.now += 31_000; // rotation_grace 30s
      return { path: '/app', headers: withCookie(old, API) };
    },
    expect: { result: 'deny', reason: 'rotated', status: 401 },
  },
  {
    name: 'rotation due: new cookie for the client',
    request: async () => {
      const c = await login();
      clock.now += 20 * M;
      await nginx({ path: '/app', headers: withCookie(c) });
      clock.now += 10 * M;
      return { path: '/app', headers: withCookie(c) };
    },
    expect: {
      result: 'allow',
      reason: 'authenticated',
      status: 200,
      identity: ALICE,
      setCookie: expect.stringMatching(/^sessiongate=[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{43}; Max-Age=/) as unknown as string,
    },
  },
  {
    name: 'public path, no session',
    request: async () => ({ path: '/~assets/app.css' }),
    expect: { result: 'allow', reason: 'public', status: 200, identity: {} },
  },
  {
    name: 'anonymous path, no session',
    request: async () => ({ path: '/blog/post', headers: [BROWSER] }),
    expect: { result: 'allow', reason: 'anonymous', status: 200, identity: {} },
  },
  {
    name: 'anonymous path with a session',
    request: async () => ({ path: '/blog/post', headers: withCookie(await login()) }),
    expect: { result: 'allow', reason: 'authenticated', status: 200, identity: ALICE },
  },
  {
    name: 'role denied',
    request: async () => ({ path: '/admin/users', headers: withCookie(await login(['user']), BROWSER) }),
    expect: { result: 'deny', reason: 'forbidden_role', status: 403 },
  },
  {
    name: 'role granted',
    request: async () => ({ path: '/admin/users', headers: withCookie(await login(['admin'], 'root')) }),
    expect: {
      result: 'allow',
      reason: 'authenticated',
      status: 200,
      identity: { 'x-user-id': 'root', 'x-user-roles': 'admin', 'x-user-email': 'root@example.com' },
    },
  },
  {
    name: 'method not listed on the rule',
    request: async () => ({ method: 'DELETE', path: '/admin/users', headers: withCookie(await login(['admin'])) }),
    expect: { result: 'deny', reason: 'method_not_allowed', status: 403 },
  },
  ...(['X-User-Id', 'x-user-id', 'X-USER-ID', 'x_user_id', 'X.User.Id', 'x-user_roles', 'X-Auth-User'] as const).map(
    (name): Row => ({
      name: `spoofed ${name} on a protected path`,
      request: async () => ({ path: '/app', headers: withCookie(await login(), [name, 'root']) }),
      expect: { result: 'deny', reason: 'spoofed_header', status: 403 },
      proxies: { caddy: { expect: { result: 'allow', reason: 'authenticated', status: 200, identity: ALICE }, why: CADDY_REMOVES } },
    }),
  ),
  {
    name: 'spoofed header on a public path: allowed, no identity',
    request: async () => ({ path: '/~assets/x.js', headers: [['X-User-Id', 'root']] }),
    expect: { result: 'allow', reason: 'public', status: 200, identity: {} },
  },
  ...['/ADMIN/', '/./admin/', '/admin//'].map(
    (path): Row => ({
      name: `${path} is the admin path`,
      request: async () => ({ path, headers: withCookie(await login(['user'])) }),
      expect: { result: 'deny', reason: 'forbidden_role', status: 403 },
    }),
  ),
  // Read as another path by some backend (`//admin/` is host admin to WHATWG URL; `;` is cut by some stacks only): refused.
  ...['//admin/', '/admin;x'].map(
    (path): Row => ({
      name: `${path} is refused`,
      request: async () => ({ path, headers: withCookie(await login(['user'])) }),
      expect: { result: 'deny', reason: 'bad_path', status: 403 },
    }),
  ),
  ...['/~assets/../admin/', '/~assets/%2e%2e/admin/', '/~assets/..;/admin/', '/app/../~assets/x'].map(
    (path): Row => ({
      name: `traversal ${path} is refused`,
      request: async () => ({ path, headers: withCookie(await login(['user'])) }),
      expect: { result: 'deny', reason: 'bad_path', status: 403 },
    }),
  ),
  { name: 'encoded slash', request: async () => ({ path: '/~assets/..%2fadmin/' }), expect: { result: 'deny', reason: 'bad_path', status: 403 } },
];

describe.each(Object.entries(TRANSPORTS))('case table over %s', (name, transport) => {
  it.each(rows)('$name', async (row) => {
    const outcome = await transport(await row.request());
    expect(outcome).toMatchObject({ identity: {}, ...(row.proxies?.[name]?.expect ?? row.expect) });
  });
});

describe('the transports agree', () => {
  it('gives the same decision on every transport for one request', async () => {
    const cookie = await login(['user', 'admin']);
    // Per proxy, what it does instead (and why), asserted in place of the common outcome.
    const cases: Array<{ req: Req; proxies?: Record<string, { outcome: Partial<Outcome>; why: string }> }> = [
      { req: { path: '/app', headers: withCookie(cookie) } },
      { req: { path: '/admin/', headers: withCookie(cookie) } },
      { req: { path: '/blog/', headers: [BROWSER] } },
      {
        req: { path: '/x', headers: [BROWSER, ['x.user.id', 'root']] },
        proxies: { caddy: { outcome: { result: 'deny', reason: 'no_session', status: 302 }, why: CADDY_REMOVES } },
      },
    ];
    for (const { req, proxies } of cases) {
      // One after another: the Caddy transport reads the reason from the decision log.
      const outcomes: Array<[string, Outcome]> = [];
      for (const [name, t] of Object.entries(TRANSPORTS)) outcomes.push([name, await t(req)]);
      const common = outcomes.find(([name]) => !proxies?.[name])![1];
      for (const [name, o] of outcomes) {
        if (proxies?.[name]) expect(o, name).toMatchObject(proxies[name].outcome);
        else expect({ ...o, setCookie: undefined }, name).toEqual({ ...common, setCookie: undefined });
      }
    }
  });
});
