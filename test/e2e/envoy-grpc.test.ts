/**
 * Envoy ext_authz over gRPC, field by field. Requests are encoded and responses decoded by
 * Envoy's published field numbers (harness/envoy-wire.ts), never through proto/, so these
 * tests also prove the service's definitions wire-identical. The store can be taken down to
 * prove errors are gRPC statuses and health follows the store.
 */
import { connect } from 'node:net';
import { Writable } from 'node:stream';
import { type Client, credentials, loadPackageDefinition, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { APPEND_ACTION, type DecodedCheckResponse, type EnvoyRequest, encodeCheckRequest, F, GRPC, RawEnvoyClient } from '../../harness/envoy-wire.js';
import { cookiePair, send } from '../../harness/http.js';
import { waitFor } from '../../harness/processes.js';
import { type Service, startService } from '../../src/main.js';
import { createLogger } from '../../src/ops/logger.js';
import type { SessionStore } from '../../src/store/types.js';
import { quietLogger, switchableStore, testConfig } from '../support/service.js';

const LOGIN_TOKEN = 'grpc-login-token-0123456789';
const SECRET = 'grpc-secret-0123456789abcdef0123456789abcdef';
const HOST = 'app.example.com';
interface Running {
  svc: Service;
  client: RawEnvoyClient;
  store: SessionStore & { down: boolean };
  login(roles?: string[]): Promise<string>;
  close(): Promise<void>;
}

async function start(env: Record<string, string> = {}): Promise<Running> {
  const store = switchableStore();
  const svc = await startService(testConfig({ SESSIONGATE_SECRET: SECRET, SESSIONGATE_LOGIN_TOKEN: LOGIN_TOKEN, ...env }, { example: true }), quietLogger(), {
    store,
  });
  const client = new RawEnvoyClient(`127.0.0.1:${svc.ports.grpc}`);
  return {
    svc,
    client,
    store,
    async login(roles = ['user']) {
      const res = await send(`http://127.0.0.1:${svc.ports.http}/~session`, {
        method: 'POST',
        headers: [
          ['Authorization', `Bearer ${LOGIN_TOKEN}`],
          ['Content-Type', 'application/json'],
        ],
        body: JSON.stringify({ user_id: 'alice', roles, attributes: { email: 'alice@example.com' } }),
      });
      return cookiePair(res.cookies[0]!);
    },
    async close() {
      client.close();
      await svc.close();
    },
  };
}

let main: Running;
beforeAll(async () => {
  main = await start();
});
afterAll(() => main?.close());

const req = (over: Partial<EnvoyRequest> = {}): EnvoyRequest => ({ method: 'GET', path: '/app', host: HOST, ...over });

async function ok(r: EnvoyRequest, running = main): Promise<DecodedCheckResponse> {
  const out = await running.client.check(r);
  if ('error' in out) throw new Error(`gRPC error ${out.error.code}: ${out.error.details}`);
  return out.response;
}

async function grpcError(r: EnvoyRequest | Uint8Array, running = main): Promise<ServiceError> {
  const out = r instanceof Uint8Array ? await running.client.checkBytes(r) : await running.client.check(r);
  if (!('error' in out)) throw new Error(`expected a gRPC error, got status ${out.response.code}`);
  return out.error;
}

describe('allowed: OK with ok_response', () => {
  it('sets identity headers with OVERWRITE_IF_EXISTS_OR_ADD and never the deprecated append', async () => {
    const cookie = await main.login();
    const r = await ok(req({ path: '/app/page?x=1', headers: { cookie, accept: 'text/html' } }));
    expect(r.code).toBe(GRPC.OK);
    expect(r.denied).toBeUndefined();
    expect(r.ok!.headers).toEqual([
      { key: 'x-user-id', value: 'alice', appendAction: APPEND_ACTION.OVERWRITE_IF_EXISTS_OR_ADD, hasAppend: false },
      { key: 'x-user-roles', value: 'user', appendAction: APPEND_ACTION.OVERWRITE_IF_EXISTS_OR_ADD, hasAppend: false },
      { key: 'x-user-email', value: 'alice@example.com', appendAction: APPEND_ACTION.OVERWRITE_IF_EXISTS_OR_ADD, hasAppend: false },
    ]);
    // Protected headers it does not set are removed; the ones it sets are overwritten, not listed.
    // The session cookie was the only cookie: the upstream gets no Cookie header at all.
    expect(r.ok!.headersToRemove).toEqual(['x-auth-user', 'x-sessiongate-degraded', 'cookie']);
    expect(r.ok!.responseHeadersToAdd).toEqual([]);
    // Only fields Envoy defines for OkHttpResponse (2 headers, 5 headers_to_remove, 6 response_headers_to_add).
    expect(
      r.ok!.fieldNumbers.every((n) =>
        [F.OkHttpResponse.headers, F.OkHttpResponse.headers_to_remove, F.OkHttpResponse.response_headers_to_add].includes(n as 2),
      ),
    ).toBe(true);
    expect(r.metadata).toEqual({ user_id: 'alice', session_state: 'active', reason: 'authenticated' });
  });

  it('never puts the session ID or token in the response', async () => {
    const cookie = await main.login();
    const r = await ok(req({ headers: { cookie } }));
    const token = cookie.split('=')[1]!;
    const bytes = Buffer.from(encodeCheckRequest(req())).toString('latin1');
    expect(JSON.stringify(r.metadata)).not.toContain(token.split('.')[0]);
    expect(bytes).not.toContain(token);
    expect(JSON.stringify(r.ok)).not.toContain(token.split('.')[0]);
  });

  it('removes every client copy and alias on an anonymous path', async () => {
    const r = await ok(req({ path: '/blog/post', headers: { 'x-user-id': 'root', x_user_id: 'root', 'x.user.id': 'root', 'x-user-roles': 'admin' } }));
    expect(r.code).toBe(GRPC.OK);
    expect(r.ok!.headers).toEqual([]);
    expect([...r.ok!.headersToRemove].sort()).toEqual(
      ['x-auth-user', 'x-sessiongate-degraded', 'x-user-email', 'x-user-id', 'x-user-roles', 'x.user.id', 'x_user_id'].sort(),
    );
    expect(r.metadata).toEqual({ reason: 'anonymous', session_state: 'none' });
  });

  it('reads the target from HttpRequest.path (field 4), method (2) and host (5), not only from pseudo-headers', async () => {
    // Envoy sends both and they agree; here the pseudo-headers are empty, so only the fields can
    // explain the answer. Where both are there and differ, the answer is bad_request
    // (test/adversarial/grpc.test.ts).
    const none = { ':path': '', ':method': '', ':authority': '', accept: 'text/html' };
    const r = await ok(req({ method: 'DELETE', path: '/admin/x', host: 'real.example.com', headers: none }));
    expect(r.message).toBe('method_not_allowed');
    const browser = await ok(req({ path: '/app?a=1', host: 'real.example.com', headers: none }));
    expect(browser.denied!.headers.find((h) => h.key === 'location')?.value).toContain(encodeURIComponent('https://real.example.com/app?a=1'));
    const differ = await ok(
      req({ method: 'DELETE', path: '/admin/x', host: 'real.example.com', headers: { ':path': '/~assets/x', ':method': 'GET', accept: 'text/html' } }),
    );
    expect(differ.message).toBe('bad_request');
  });

  it('reads a realistic, large header map: a dozen browser headers and a 1 kB cookie header', async () => {
    const cookie = await main.login();
    const others = Array.from({ length: 28 }, (_, i) => `_ga${i}=GA1.2.${'9'.repeat(20)}`).join('; ');
    const headers: Record<string, string> = {
      accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8',
      'accept-encoding': 'gzip, deflate, br',
      'accept-language': 'en-GB,en;q=0.9',
      'cache-control': 'max-age=0',
      cookie: `${others}; ${cookie}; theme=dark`,
      'sec-fetch-dest': 'document',
      'sec-fetch-mode': 'navigate',
      'sec-fetch-site': 'same-origin',
      'upgrade-insecure-requests': '1',
      'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0 Safari/537.36',
      'x-forwarded-for': '203.0.113.7',
      'x-envoy-internal': 'true',
    };
    for (let i = 0; i < 60; i++) headers[`x-trace-${i}`] = `${i}`.repeat(20);
    expect(headers['cookie']!.length).toBeGreaterThan(1000);
    const r = await ok(req({ path: '/app/page?utm_source=x&q=%2Fsearch', headers }));
    expect(r.code).toBe(GRPC.OK);
    expect(r.metadata['user_id']).toBe('alice');
  });

  it('reads the headers Envoy sends raw (encode_raw_headers: header_map with raw_value)', async () => {
    const cookie = await main.login();
    const r = await ok(
      req({
        rawHeaders: [
          [':authority', HOST],
          [':method', 'GET'],
          [':path', '/app'],
          ['cookie', 'theme=dark'],
          ['cookie', cookie],
        ],
      }),
    );
    expect(r.code).toBe(GRPC.OK);
    expect(r.metadata['user_id']).toBe('alice');
  });

  describe('a header an HTTP/1.1 client sent on two lines (two Cookie: lines)', () => {
    // How Envoy builds the CheckRequest (source/extensions/filters/common/ext_authz/
    // check_request_utils.cc, setHttpRequest): without encode_raw_headers the two lines become one
    // `headers` entry joined with a bare `,` ("Merge duplicate headers"); with it, two
    // `header_map` entries with raw_value.
    const mallory = async () =>
      cookiePair(
        (
          await send(`http://127.0.0.1:${main.svc.ports.http}/~session`, {
            method: 'POST',
            headers: [
              ['Authorization', `Bearer ${LOGIN_TOKEN}`],
              ['Content-Type', 'application/json'],
            ],
            body: '{"user_id":"mallory","roles":["user"]}',
          })
        ).cookies[0]!,
      );

    it('header_map (encode_raw_headers, shipped): both cookies read, the upstream keeps the other one', async () => {
      const cookie = await main.login();
      const r = await ok(
        req({
          rawHeaders: [
            [':authority', HOST],
            [':method', 'GET'],
            [':path', '/app'],
            ['cookie', 'theme=dark'],
            ['cookie', cookie],
          ],
        }),
      );
      expect(r.code).toBe(GRPC.OK);
      expect(r.metadata['user_id']).toBe('alice');
      expect(r.ok!.headers.find((h) => h.key === 'cookie')?.value).toBe('theme=dark');
    });

    it('headers joined with `,` (no encode_raw_headers): no session is found, never an allow', async () => {
      const cookie = await main.login();
      // `theme=dark,sessiongate=…` is one cookie named theme to any cookie parser.
      const after = await ok(req({ headers: { cookie: `theme=dark,${cookie}`, accept: 'application/json' } }));
      expect(after.code).toBe(GRPC.UNAUTHENTICATED);
      expect(after.message).toBe('no_session');
      // `sessiongate=<token>,theme=dark`: the value is not a token.
      const before = await ok(req({ headers: { cookie: `${cookie},theme=dark`, accept: 'application/json' } }));
      expect(before.code).not.toBe(GRPC.OK);
      expect(before.metadata['user_id']).toBeUndefined();
    });

    it('two session cookies of different users: refused in either shape, whichever comes first', async () => {
      const alice = await main.login();
      const other = await mallory();
      for (const [a, b] of [
        [alice, other],
        [other, alice],
      ] as const) {
        const raw = await ok(
          req({
            rawHeaders: [
              [':authority', HOST],
              [':method', 'GET'],
              [':path', '/app'],
              ['cookie', a],
              ['cookie', b],
            ],
          }),
        );
        expect(raw.code).toBe(GRPC.UNAUTHENTICATED);
        expect(raw.message).toBe('duplicate_cookie');
        const joined = await ok(req({ headers: { cookie: `${a},${b}` } }));
        expect(joined.code).not.toBe(GRPC.OK);
        expect(joined.metadata['user_id']).toBeUndefined();
      }
    });

    it('a forged session cookie beside the real one does not win, in either shape', async () => {
      const alice = await main.login();
      const [name, token] = alice.split('=') as [string, string];
      const forged = `${name}=${token.slice(0, -4)}AAAA`;
      for (const [a, b] of [
        [alice, forged],
        [forged, alice],
      ] as const) {
        // Raw: the real one is read; the forged one is only a bad signature beside it, and the
        // upstream gets neither.
        const raw = await ok(
          req({
            rawHeaders: [
              [':authority', HOST],
              [':method', 'GET'],
              [':path', '/app'],
              ['cookie', a],
              ['cookie', b],
            ],
          }),
        );
        expect(raw.code).toBe(GRPC.OK);
        expect(raw.metadata['user_id']).toBe('alice');
        expect(raw.ok!.headersToRemove).toContain('cookie');
        // Joined: neither is read.
        const joined = await ok(req({ headers: { cookie: `${a},${b}` } }));
        expect(joined.code).not.toBe(GRPC.OK);
        expect(joined.metadata['user_id']).toBeUndefined();
      }
    });
  });

  it('adds Set-Cookie for the client, appended, when the session rotates', async () => {
    const clock = { now: Date.now() };
    const svc = await startService(testConfig({ SESSIONGATE_SECRET: SECRET, SESSIONGATE_LOGIN_TOKEN: LOGIN_TOKEN }, { example: true }), quietLogger(), {
      clock: () => clock.now,
    });
    const client = new RawEnvoyClient(`127.0.0.1:${svc.ports.grpc}`);
    try {
      const login = await send(`http://127.0.0.1:${svc.ports.http}/~session`, {
        method: 'POST',
        headers: [
          ['Authorization', `Bearer ${LOGIN_TOKEN}`],
          ['Content-Type', 'application/json'],
        ],
        body: '{"user_id":"bob"}',
      });
      const cookie = cookiePair(login.cookies[0]!);
      clock.now += 20 * 60_000;
      await client.check(req({ headers: { cookie } }));
      clock.now += 10 * 60_000;
      const out = await client.check(req({ headers: { cookie } }));
      if ('error' in out) throw out.error;
      const added = out.response.ok!.responseHeadersToAdd;
      expect(added).toHaveLength(1);
      expect(added[0]).toMatchObject({ key: 'set-cookie', appendAction: APPEND_ACTION.APPEND_IF_EXISTS_OR_ADD });
      expect(added[0]!.value).toMatch(
        /^sessiongate=[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{43}; Max-Age=\d+; Path=\/; Expires=[^;]+; HttpOnly; Secure; SameSite=Lax$/,
      );
      expect(out.response.metadata['session_state']).toBe('rotated');
    } finally {
      client.close();
      await svc.close();
    }
  });
});

describe('denied: UNAUTHENTICATED or PERMISSION_DENIED with denied_response', () => {
  it('401 for an API client, with a short body and no Location', async () => {
    const r = await ok(req({ headers: { accept: 'application/json' } }));
    expect(r.code).toBe(GRPC.UNAUTHENTICATED);
    expect(r.message).toBe('no_session');
    expect(r.ok).toBeUndefined();
    expect(r.denied).toEqual({
      status: 401,
      headers: [
        { key: 'content-type', value: 'text/plain; charset=utf-8', appendAction: APPEND_ACTION.OVERWRITE_IF_EXISTS_OR_ADD, hasAppend: false },
        { key: 'cache-control', value: 'no-store', appendAction: APPEND_ACTION.OVERWRITE_IF_EXISTS_OR_ADD, hasAppend: false },
      ],
      body: 'Unauthorized\n',
    });
    expect(r.metadata).toEqual({ reason: 'no_session' });
  });

  it('302 to login_url with rd for a browser navigation', async () => {
    const r = await ok(req({ path: '/app/page?q=1', headers: { accept: 'text/html' } }));
    expect(r.code).toBe(GRPC.UNAUTHENTICATED);
    expect(r.denied!.status).toBe(302);
    expect(r.denied!.headers.find((h) => h.key === 'location')?.value).toBe(
      `https://login.example.com/login?rd=${encodeURIComponent(`https://${HOST}/app/page?q=1`)}`,
    );
  });

  it('401 with WWW-Authenticate for a bearer request, never a redirect', async () => {
    const r = await ok(req({ headers: { accept: 'text/html', authorization: `Bearer ${'A'.repeat(43)}.${'B'.repeat(43)}.${'C'.repeat(43)}` } }));
    expect(r.denied!.status).toBe(401);
    expect(r.denied!.headers.find((h) => h.key === 'www-authenticate')?.value).toBe('Bearer realm="sessiongate", error="invalid_token"');
    expect(r.denied!.headers.find((h) => h.key === 'location')).toBeUndefined();
  });

  it('403 PERMISSION_DENIED for a spoofed identity header', async () => {
    const cookie = await main.login();
    const r = await ok(req({ headers: { cookie, 'x-user-id': 'root' } }));
    expect(r.code).toBe(GRPC.PERMISSION_DENIED);
    expect(r.message).toBe('spoofed_header');
    expect(r.denied).toMatchObject({ status: 403, body: 'Forbidden\n' });
  });

  it('applies a per-route policy named in context_extensions, in place of the path rules', async () => {
    const user = await main.login(['user']);
    // /~assets/ is public by path; the route's policy (deploy/config.example.yaml: admin) decides instead.
    const denied = await ok(req({ path: '/~assets/app.css', headers: { cookie: user }, contextExtensions: { policy: 'admin' } }));
    expect(denied.code).toBe(GRPC.PERMISSION_DENIED);
    expect(denied.message).toBe('forbidden_role');
    const admin = await main.login(['admin']);
    expect((await ok(req({ path: '/~assets/app.css', headers: { cookie: admin }, contextExtensions: { policy: 'admin' } }))).code).toBe(GRPC.OK);
    const unknown = await ok(req({ path: '/app', headers: { cookie: admin }, contextExtensions: { policy: 'nonesuch' } }));
    expect(unknown.code).toBe(GRPC.PERMISSION_DENIED);
    expect(unknown.message).toBe('unknown_policy');
  });
});

describe('malformed requests are denied, never allowed, and the server keeps serving', () => {
  it.each([
    ['an empty CheckRequest', req({ omitAttributes: true })],
    ['attributes without request.http', req({ omitHttp: true })],
    ['a request without a path', req({ path: '', headers: { ':path': '' } })],
  ])('%s: PERMISSION_DENIED bad_request', async (_n, r) => {
    const out = await ok(r);
    expect(out.code).toBe(GRPC.PERMISSION_DENIED);
    expect(out.message).toBe('bad_request');
  });

  it('a header map over the limit: bad_request', async () => {
    const headers: Record<string, string> = {};
    for (let i = 0; i < 600; i++) headers[`x-filler-${i}`] = 'v';
    const out = await ok(req({ headers }));
    expect(out.message).toBe('bad_request');
  });

  it('a message over the size limit: RESOURCE_EXHAUSTED', async () => {
    const err = await grpcError(req({ headers: { 'x-big': 'x'.repeat(1_200_000) } }));
    expect(err.code).toBe(GRPC.RESOURCE_EXHAUSTED);
  });

  it('bytes that are not a CheckRequest: an error, not an allow', async () => {
    const err = await grpcError(Uint8Array.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]));
    expect(err.code).not.toBe(GRPC.OK);
  });

  it('garbage on the port, then many concurrent checks: all answered', async () => {
    await new Promise<void>((resolve) => {
      const sock = connect(main.svc.ports.grpc, '127.0.0.1', () => sock.end(Buffer.from('GET / HTTP/1.1\r\n\r\n\x00\x01\x02garbage')));
      sock.on('close', () => resolve());
      sock.on('error', () => resolve());
      sock.resume();
    });
    const cookie = await main.login();
    const results = await Promise.all(Array.from({ length: 300 }, (_, i) => ok(req({ path: `/app/${i}`, headers: i % 2 ? { cookie } : {} }))));
    expect(results.filter((r) => r.code === GRPC.OK)).toHaveLength(150);
    expect(results.filter((r) => r.code === GRPC.UNAUTHENTICATED)).toHaveLength(150);
  });
});

describe('store failures', () => {
  let down: Running;
  beforeAll(async () => {
    down = await start();
  });
  afterAll(() => down?.close());

  it('answers UNAVAILABLE (not a deny) while the store is down, and recovers when it returns', async () => {
    const cookie = await down.login();
    down.store.down = true;
    const err = await grpcError(req({ headers: { cookie } }), down);
    expect(err.code).toBe(GRPC.UNAVAILABLE);
    expect(err.details).toBe('store_unavailable');
    down.store.down = false;
    expect((await ok(req({ headers: { cookie } }), down)).code).toBe(GRPC.OK);
  });

  it('still denies what needs no store while it is down', async () => {
    down.store.down = true;
    try {
      expect((await ok(req({ headers: { accept: 'application/json' } }), down)).code).toBe(GRPC.UNAUTHENTICATED);
      expect((await ok(req({ path: '/~assets/x' }), down)).code).toBe(GRPC.OK);
    } finally {
      down.store.down = false;
    }
  });

  it('in failure_mode open, answers OK with the marker header instead', async () => {
    const config = testConfig({ SESSIONGATE_SECRET: SECRET, SESSIONGATE_LOGIN_TOKEN: LOGIN_TOKEN }, { example: true });
    const store = switchableStore();
    const svc = await startService({ ...config, policy: { ...config.policy, failureMode: 'open' } }, quietLogger(), { store });
    const client = new RawEnvoyClient(`127.0.0.1:${svc.ports.grpc}`);
    try {
      const forgedCookie = `sessiongate=${'A'.repeat(43)}.${'B'.repeat(43)}.${'C'.repeat(43)}`; // right shape, wrong MAC
      store.down = true;
      const login = await send(`http://127.0.0.1:${svc.ports.http}/~session`, {
        method: 'POST',
        headers: [
          ['Authorization', `Bearer ${LOGIN_TOKEN}`],
          ['Content-Type', 'application/json'],
        ],
        body: '{"user_id":"x"}',
      });
      expect(login.status).toBe(503);
      store.down = false;
      const real = await send(`http://127.0.0.1:${svc.ports.http}/~session`, {
        method: 'POST',
        headers: [
          ['Authorization', `Bearer ${LOGIN_TOKEN}`],
          ['Content-Type', 'application/json'],
        ],
        body: '{"user_id":"x"}',
      });
      const good = cookiePair(real.cookies[0]!);
      store.down = true;
      const out = await client.check(req({ headers: { cookie: good } }));
      if ('error' in out) throw out.error;
      expect(out.response.code).toBe(GRPC.OK);
      expect(out.response.ok!.headers).toEqual([
        { key: 'x-sessiongate-degraded', value: 'store_unavailable', appendAction: APPEND_ACTION.OVERWRITE_IF_EXISTS_OR_ADD, hasAppend: false },
      ]);
      expect(out.response.ok!.headersToRemove).toEqual(expect.arrayContaining(['x-user-id', 'x-user-roles', 'x-user-email', 'x-auth-user']));
      expect(out.response.metadata['reason']).toBe('store_unavailable_open');
      // A forged cookie is still refused: only the store's failure opens the gate.
      const forged = await client.check(req({ headers: { cookie: forgedCookie } }));
      if ('error' in forged) throw forged.error;
      expect(forged.response.code).toBe(GRPC.UNAUTHENTICATED);
    } finally {
      client.close();
      await svc.close();
    }
  });
});

describe('grpc.health.v1.Health on the gRPC port', () => {
  type HealthClient = Client & {
    check(r: { service: string }, cb: (e: ServiceError | null, v?: { status: string }) => void): void;
    watch(r: { service: string }): NodeJS.EventEmitter & { cancel(): void };
  };
  function healthClient(port: number): HealthClient {
    const def = loadSync(healthProtoPath, { keepCase: true, enums: String, defaults: true });
    const pkg = loadPackageDefinition(def) as unknown as {
      grpc: { health: { v1: { Health: new (a: string, c: ReturnType<typeof credentials.createInsecure>) => HealthClient } } };
    };
    return new pkg.grpc.health.v1.Health(`127.0.0.1:${port}`, credentials.createInsecure());
  }
  const check = (c: HealthClient, service: string) => new Promise<string>((res, rej) => c.check({ service }, (e, v) => (e ? rej(e) : res(v!.status))));

  it('reports SERVING, and NOT_SERVING while the store is unreachable (Check and Watch)', async () => {
    const running = await start();
    const c = healthClient(running.svc.ports.grpc);
    const seen: string[] = [];
    const watch = c.watch({ service: 'envoy.service.auth.v3.Authorization' });
    watch.on('data', (m: { status: string }) => seen.push(m.status));
    watch.on('error', () => {});
    try {
      expect(await check(c, '')).toBe('SERVING');
      expect(await check(c, 'envoy.service.auth.v3.Authorization')).toBe('SERVING');
      running.store.down = true;
      expect(await waitFor(async () => (await check(c, '')) === 'NOT_SERVING', 8000)).toBe(true);
      expect(await check(c, 'envoy.service.auth.v3.Authorization')).toBe('NOT_SERVING');
      running.store.down = false;
      expect(await waitFor(async () => (await check(c, '')) === 'SERVING', 8000)).toBe(true);
      expect(await waitFor(() => seen.join() === 'SERVING,NOT_SERVING,SERVING', 2000)).toBe(true);
    } finally {
      watch.cancel();
      c.close();
      await running.close();
    }
  });
});

describe("log lines join Envoy's and the application's", () => {
  it('carry the x-request-id the CheckRequest carried, not attributes.request.http.id (the stream number)', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const out = new Writable({
      write(chunk: Buffer, _e, cb) {
        for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
        cb();
      },
    });
    const svc = await startService(
      testConfig({ SESSIONGATE_SECRET: SECRET, SESSIONGATE_LOGIN_TOKEN: LOGIN_TOKEN }, { example: true }),
      createLogger('info', out),
    );
    const client = new RawEnvoyClient(`127.0.0.1:${svc.ports.grpc}`);
    try {
      const requestId = '5e0f2a1c-4b7d-4c2e-9a61-0d3c8e2b7f14';
      for (const r of [
        req({ id: '12345', headers: { 'x-request-id': requestId, accept: 'application/json' } }),
        req({
          id: '12346',
          rawHeaders: [
            [':authority', HOST],
            [':method', 'GET'],
            [':path', '/app'],
            ['x-request-id', requestId],
          ],
        }),
      ]) {
        const res = await client.check(r);
        if ('error' in res) throw res.error;
        expect(res.response.message).toBe('no_session');
      }
      await waitFor(() => lines.filter((l) => l['msg'] === 'decision').length >= 2, 5000);
      const decisions = lines.filter((l) => l['msg'] === 'decision');
      expect(decisions.map((l) => [l['transport'], l['reason'], l['request_id']])).toEqual([
        ['envoy_grpc', 'no_session', requestId],
        ['envoy_grpc', 'no_session', requestId],
      ]);
      // Without an x-request-id there is no ID to join on: the stream number is not logged as one.
      const bare = await client.check(req({ id: '777' }));
      if ('error' in bare) throw bare.error;
      await waitFor(() => lines.filter((l) => l['msg'] === 'decision').length >= 3, 5000);
      expect(lines.filter((l) => l['msg'] === 'decision')[2]!['request_id']).toBeUndefined();
    } finally {
      client.close();
      await svc.close();
    }
  });
});
