/**
 * What reaches the application, over every transport: a real nginx and a real Caddy running the
 * shipped configs (the echoing upstream shows what the application really received), Envoy gRPC Check and Envoy
 * HTTP ext_authz (the client's headers with the answer's mutations applied as Envoy applies them).
 *
 * - sessiongate's own credential never does: no session cookie (in any spelling, or renamed), no
 *   Authorization carrying one of its tokens; every other cookie arrives byte for byte, in order;
 * - `x-sessiongate-degraded` only ever comes from sessiongate;
 * - two different identities never arrive as the same header value;
 * - identity that cannot be a header is refused when the session is created.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { APPEND_ACTION } from '../../harness/envoy-wire.js';
import { cookiePair, send } from '../../harness/http.js';
import { switchableStore } from '../support/service.js';
import { type Harness, LOGIN_TOKEN, type Outcome, startHarness, TRANSPORTS } from './harness.js';

let store: ReturnType<typeof switchableStore>;
let h: Harness;
/** The same, with `upstream.pass_credentials: true`. */
let passing: Harness;
beforeAll(async () => {
  // failure_mode: open, so a store outage is an allow whose answer must still strip the cookie.
  h = await startHarness({ store: (clock) => (store = switchableStore(clock)), configure: (c) => ({ ...c, policy: { ...c.policy, failureMode: 'open' } }) });
  passing = await startHarness({ configure: (c) => ({ ...c, policy: { ...c.policy, passCredentials: true } }) });
});
afterAll(async () => {
  await h?.close();
  await passing?.close();
});

const API: [string, string] = ['Accept', 'application/json'];
const value = (pair: string) => pair.slice(pair.indexOf('=') + 1);

/** A session created the way a login service creates one; its cookie pair and its bare token. */
async function session(harness: Harness, body: Record<string, unknown>): Promise<{ pair: string; token: string }> {
  const r = await send(`${harness.http()}/~session`, {
    method: 'POST',
    headers: [
      ['Authorization', `Bearer ${LOGIN_TOKEN}`],
      ['Content-Type', 'application/json'],
    ],
    body: JSON.stringify({ roles: ['user'], ...body }),
  });
  expect(r.status, r.body).toBe(201);
  const pair = cookiePair(r.cookies[0]!);
  return { pair, token: value(pair) };
}

/** The single Cookie header the application received, or undefined when it got none. */
function upstreamCookie(o: Outcome): string | undefined {
  const v = o.upstream?.['cookie'];
  if (v === undefined) return undefined;
  expect(v, 'one Cookie header').toHaveLength(1);
  return v[0];
}

describe.each(Object.entries(TRANSPORTS))('what reaches the application over %s', (transportName, transport) => {
  it("never gets sessiongate's cookie; other cookies arrive byte for byte, in order", async () => {
    const { pair } = await session(h, { user_id: 'alice' });
    const cases: Array<[string, Array<[string, string]>, string | undefined]> = [
      ['between others', [['Cookie', `theme=dark; ${pair}; other=1`]], 'theme=dark; other=1'],
      ['first', [['Cookie', `${pair}; theme=dark`]], 'theme=dark'],
      ['last', [['Cookie', `theme=dark;${pair}`]], 'theme=dark'],
      ['alone: no Cookie header at all', [['Cookie', pair]], undefined],
      [
        'in a second Cookie header',
        [
          ['Cookie', 'a=1; b=2'],
          ['Cookie', `${pair}; c=3`],
        ],
        'a=1; b=2; c=3',
      ],
      ['twice', [['Cookie', `${pair}; a=1; ${pair}`]], 'a=1'],
      ['quoted', [['Cookie', `a=1; sessiongate="${value(pair)}"`]], 'a=1'],
      [
        'with its other spellings (prefix, case, spaces)',
        [['Cookie', `a=1; __Host-${pair}; __Secure-sessiongate=x; SessionGate=y; ${pair}; sessiongate =z; b=2`]],
        'a=1; b=2',
      ],
      ['renamed: a live token under another name', [['Cookie', `a=1; ${pair}; old_session=${value(pair)}`]], 'a=1'],
      [
        'odd but valid cookies untouched',
        [['Cookie', `flag; empty=; eq=a=b; pct=%E2%9C%93; q="x y"; ${pair}; sessiongate-theme=blue; Z=9`]],
        'flag; empty=; eq=a=b; pct=%E2%9C%93; q="x y"; sessiongate-theme=blue; Z=9',
      ],
    ];
    for (const [what, headers, expected] of cases) {
      const o = await transport(h, { path: '/app', headers: [API, ...headers] });
      expect(o.result, `${what} ${o.reason}`).toBe('allow');
      expect(upstreamCookie(o), what).toBe(expected);
    }
  });

  it('strips it on public, anonymous and authenticated paths alike, and for bearer callers', async () => {
    const { pair, token } = await session(h, { user_id: 'alice' });
    for (const path of ['/~assets/app.css', '/blog/post', '/app']) {
      const o = await transport(h, { path, headers: [API, ['Cookie', `a=1; ${pair}`]] });
      expect(o.result, path).toBe('allow');
      expect(upstreamCookie(o), path).toBe('a=1');
    }
    // Without a session the cookies are the application's own: unchanged.
    const anon = await transport(h, { path: '/blog/post', headers: [API, ['Cookie', 'a=1; b=2']] });
    expect(upstreamCookie(anon)).toBe('a=1; b=2');
    // A forged or expired sessiongate cookie on an anonymous path is not the application's either.
    const forged = await transport(h, {
      path: '/blog/post',
      headers: [API, ['Cookie', `a=1; sessiongate=${'A'.repeat(43)}.${'B'.repeat(43)}.${'C'.repeat(43)}`]],
    });
    expect(upstreamCookie(forged)).toBe('a=1');

    // An API token in Authorization: never passed on, in any case of the scheme.
    for (const auth of [`Bearer ${token}`, `bearer ${token}`, `BEARER   ${token}  `]) {
      const o = await transport(h, { path: '/app', headers: [API, ['Authorization', auth], ['Cookie', 'a=1']] });
      expect(o.result, auth).toBe('allow');
      expect(o.upstream?.['authorization'], auth).toBeUndefined();
      expect(upstreamCookie(o), auth).toBe('a=1');
    }
    // The application's own Authorization is its own.
    for (const auth of ['Basic dXNlcjpwYXNz', 'Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl']) {
      const o = await transport(h, { path: '/app', headers: [API, ['Authorization', auth], ['Cookie', pair]] });
      expect(o.result, auth).toBe('allow');
      expect(o.upstream?.['authorization'], auth).toEqual([auth]);
      expect(upstreamCookie(o), auth).toBeUndefined();
    }
  });

  it('passes a large cookie header on whole', async () => {
    const { pair } = await session(h, { user_id: 'alice' });
    const big = Array.from({ length: 60 }, (_, i) => `c${i}=${'v'.repeat(90)}`).join('; ');
    const o = await transport(h, { path: '/app', headers: [API, ['Cookie', `${big}; ${pair}`]] });
    expect(o.result).toBe('allow');
    expect(upstreamCookie(o)).toBe(big);
  });

  it('strips it when the store is down and failure_mode: open lets the request on', async () => {
    const { pair } = await session(h, { user_id: 'alice' });
    store.down = true;
    try {
      const o = await transport(h, { path: '/app', headers: [API, ['Cookie', `a=1; ${pair}`]] });
      expect(o.result).toBe('allow');
      expect(upstreamCookie(o)).toBe('a=1');
      expect(o.upstream?.['x-sessiongate-degraded']).toEqual(['store_unavailable']);
      expect(o.upstream?.['x-user-id']).toBeUndefined();
    } finally {
      store.down = false;
    }
  });

  it('passes both on with upstream.pass_credentials: true', async () => {
    const { pair, token } = await session(passing, { user_id: 'alice' });
    const o = await transport(passing, { path: '/app', headers: [API, ['Cookie', `a=1; ${pair}`], ['Authorization', `Bearer ${token}`]] });
    expect(o.result).toBe('allow');
    expect(upstreamCookie(o)).toBe(`a=1; ${pair}`);
    expect(o.upstream?.['authorization']).toEqual([`Bearer ${token}`]);
  });

  it('x-sessiongate-degraded comes from sessiongate only', async () => {
    const { pair } = await session(h, { user_id: 'alice' });
    for (const name of ['X-Sessiongate-Degraded', 'x-sessiongate-degraded']) {
      const anon = await transport(h, { path: '/blog/post', headers: [API, [name, 'store_unavailable']] });
      expect(anon.result, name).toBe('allow');
      expect(anon.upstream?.['x-sessiongate-degraded'], name).toBeUndefined();
      const pub = await transport(h, { path: '/~assets/app.css', headers: [API, ['Cookie', pair], [name, 'store_unavailable']] });
      expect(pub.result, name).toBe('allow');
      expect(pub.upstream?.['x-sessiongate-degraded'], name).toBeUndefined();
      // On a path that needs a session it is a spoofed identity header like any other (the
      // shipped Caddyfile removes it before asking: an allow, without it).
      const authd = await transport(h, { path: '/app', headers: [API, ['Cookie', pair], [name, 'store_unavailable']] });
      if (transportName === 'caddy') {
        expect(authd.result, name).toBe('allow');
        expect(authd.upstream?.['x-sessiongate-degraded'], name).toBeUndefined();
      } else {
        expect(authd.result, name).toBe('deny');
        expect(authd.upstream, name).toBeUndefined();
      }
    }
  });

  it('two different identities never arrive as one header value', async () => {
    const seen = new Map<string, string>();
    const ids = ['alice', ' alice', 'alice ', '  alice', 'al ice', 'josé', 'jos%C3%A9', 'jos%25C3%25A9', 'a,b', 'a%2Cb', '%20alice'];
    for (const user_id of ids) {
      const { pair } = await session(h, { user_id });
      const o = await transport(h, { path: '/app', headers: [API, ['Cookie', pair]] });
      expect(o.result, user_id).toBe('allow');
      const got = o.upstream?.['x-user-id'];
      expect(got, user_id).toHaveLength(1);
      expect(seen.get(got![0]!), `${JSON.stringify(user_id)} arrives as ${got![0]}`).toBeUndefined();
      seen.set(got![0]!, user_id);
      // The documented decoding gives the user ID back.
      expect(decodeURIComponent(got![0]!), user_id).toBe(user_id);
    }
    // Mapped attributes too, lists included: ["a", "b"] is not "a,b".
    const emails = new Map<string, unknown>();
    for (const email of ['a,b@example.com', ['a', 'b@example.com'], 'zoë@example.com', 'zo%C3%AB@example.com', ' x@example.com']) {
      const { pair } = await session(h, { user_id: 'mail', attributes: { email } });
      const o = await transport(h, { path: '/app', headers: [API, ['Cookie', pair]] });
      const got = o.upstream?.['x-user-email']?.[0];
      expect(got, JSON.stringify(email)).toBeDefined();
      expect(emails.get(got!), `${JSON.stringify(email)} arrives as ${got}`).toBeUndefined();
      emails.set(got!, email);
    }
  });
});

describe('Envoy gRPC with encode_raw_headers (header_map)', () => {
  it('strips the cookie from HTTP/2 cookie crumbs, one header_map entry each', async () => {
    const { pair } = await session(h, { user_id: 'alice' });
    const out = await h.grpc.check({
      method: 'GET',
      path: '/app',
      host: 'app.example.com',
      rawHeaders: [
        [':authority', 'app.example.com'],
        [':method', 'GET'],
        [':path', '/app'],
        ['cookie', 'a=1'],
        ['cookie', pair],
        ['cookie', 'b=2'],
        ['authorization', 'Basic dXNlcg=='],
      ],
    });
    if ('error' in out) throw out.error;
    expect(out.response.ok!.headers.filter((x) => x.key === 'cookie').map((x) => [x.value, x.appendAction])).toEqual([
      ['a=1; b=2', APPEND_ACTION.OVERWRITE_IF_EXISTS_OR_ADD],
    ]);
    expect(out.response.ok!.headersToRemove).not.toContain('cookie');
    expect(out.response.ok!.headersToRemove).not.toContain('authorization');
  });
});

describe('identity that cannot be a header is refused when the session is created', () => {
  const post = (url: string, auth: string, body: unknown) =>
    send(url, {
      method: 'POST',
      headers: [
        ['Authorization', `Bearer ${auth}`],
        ['Content-Type', 'application/json'],
      ],
      // JSON.stringify writes a lone surrogate as its \ud800 escape: valid JSON.
      body: JSON.stringify(body),
    });

  it.each([
    ['a lone high surrogate in user_id', { user_id: 'jos\ud800' }],
    ['a lone low surrogate in user_id', { user_id: '\udc00alice' }],
    ['a reversed pair in user_id', { user_id: 'a\udc00\ud800' }],
    ['a lone surrogate in an attribute', { user_id: 'alice', attributes: { email: 'a\ud800@example.com' } }],
    ['a lone surrogate deep in an attribute', { user_id: 'alice', attributes: { org: { names: ['ok', '\udfff'] } } }],
    ['a lone surrogate in an attribute name', { user_id: 'alice', attributes: { ['e\ud800']: 'x' } }],
  ])('POST /~session: %s is a 400, and no session', async (_n, body) => {
    const r = await post(`${h.http()}/~session`, LOGIN_TOKEN, body);
    expect(r.status).toBe(400);
    expect(r.json<{ error: string }>().error).toBe('invalid_body');
    expect(r.cookies).toEqual([]);
  });

  it('POST /~session still takes any well-formed text, astral characters included', async () => {
    const { pair } = await session(h, { user_id: 'zoë 😀', attributes: { email: '😀@example.com' } });
    const o = await TRANSPORTS['nginx']!(h, { path: '/app', headers: [API, ['Cookie', pair]] });
    expect(o.upstream?.['x-user-id']).toEqual(['zo%C3%AB %F0%9F%98%80']);
    expect(o.upstream?.['x-user-email']).toEqual(['%F0%9F%98%80@example.com']);
  });

  it.each([
    ['user_id', { user_id: 'svc\ud800' }],
    ['name', { user_id: 'svc', name: 'build \udbff' }],
  ])('POST /tokens: a lone surrogate in %s is a 400, and no token', async (_n, body) => {
    const r = await post(`http://127.0.0.1:${h.svc.ports.api}/tokens`, LOGIN_TOKEN, body);
    expect(r.status).toBe(400);
    expect(r.json<{ error: string }>().error).toBe('invalid_body');
    const list = await send(`http://127.0.0.1:${h.svc.ports.api}/tokens`, { headers: [['Authorization', `Bearer ${LOGIN_TOKEN}`]] });
    expect(list.json<unknown[]>()).toEqual([]);
  });
});
