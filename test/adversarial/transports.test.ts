/**
 * The bypasses this kind of service keeps shipping, thrown at every transport: a real nginx, a
 * real Caddy and a real HAProxy running the shipped configs, Envoy gRPC Check and Envoy HTTP
 * ext_authz. Each row states the decision, and every row, allowed or not, proves that the
 * upstream never saw a forged identity. Where a proxy itself does something else with the bytes,
 * the row says so for that proxy (`proxies`), and what it does instead is asserted.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cookiePair, send } from '../../harness/http.js';
import { createTokenCodec } from '../../src/session/token.js';
import { expectNoForgedIdentity, FORGED, type Harness, HOST, M, type Req, STATUS_ONLY, startHarness, TRANSPORTS } from './harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

const API: [string, string] = ['Accept', 'application/json'];
const BROWSER: [string, string] = ['Accept', 'text/html,application/xhtml+xml'];
const ALICE = { 'x-user-id': 'alice', 'x-user-roles': 'user', 'x-user-email': 'alice@example.com' };
const cookie = (v: string): [string, string] => ['Cookie', `theme=dark; ${v}; lang=en`];
const value = (pair: string) => pair.slice('sessiongate='.length);
const flip = (s: string, at: number) => s.slice(0, at) + (s[at] === 'A' ? 'B' : 'A') + s.slice(at + 1);

/** A well-formed token signed under a secret this service does not hold. */
function otherSecretToken(): string {
  return createTokenCodec([Buffer.from('a-different-secret-0123456789abcdef01234567')]).issue().token;
}

interface Row {
  name: string;
  request: () => Promise<Req>;
  /** The decision; `deny` rows may name the reasons that are acceptable. */
  expect: 'allow' | 'deny';
  reasons?: string[];
  /** For allowed rows: the identity the upstream must see (nothing else). */
  identity?: Record<string, string>;
  /** What a transport does with the row instead, keyed by transport name. */
  proxies?: Record<string, Note>;
}

/** A transport's own handling of a row, with the reason. */
type Note =
  /** The proxy may refuse the request outright (400, the upstream not reached): as safe. */
  | { mayRefuse: string }
  /** The proxy always refuses it (400); the upstream is not reached. */
  | { refuses: string }
  /** The proxy removes the header before anyone sees it: an allow as the session's user, no forged identity. */
  | { allowsAsUser: string }
  /** The row cannot be sent over this transport. */
  | { notSent: string };

const NOT_HTTP = 'Node refuses to send these bytes; the row is about what the proxy in front does with them';
const NGINX_DROPS = 'nginx drops names with `_` or `.` (underscores_in_headers off, ignore_invalid_headers on)';
const CADDY_REMOVES = 'the shipped Caddyfile removes every spelling of a protected header before asking';
const GO_FOLDS = "Caddy (Go) folds a line that starts with a space into the previous header's value (obs-fold)";
const GO_REFUSES = 'Caddy (Go) answers 400 to a header name with a space';
const HAPROXY_SPACED = 'HAProxy answers 400 to a header name with a space before the colon';
// RFC 9112 obs-fold: HAProxy joins a line starting with a space to the header before it (here the
// Cookie), so no such header exists; with a valid session that is an allow as its user.
const HAPROXY_FOLDS = 'HAProxy folds a line starting with a space into the header before it';

async function pastState(state: 'destroyed' | 'expired' | 'idle' | 'rotated'): Promise<string> {
  let c = await h.login();
  if (state === 'destroyed') {
    const r = await send(`${h.http()}/~session`, { method: 'DELETE', headers: [['Cookie', c]] });
    expect(r.status).toBe(204);
  } else if (state === 'idle') {
    h.clock.now += 31 * M; // idle_ttl 30m
  } else if (state === 'expired') {
    const end = h.clock.now + 12 * 60 * M; // absolute_ttl 12h, active all along
    while (h.clock.now + 20 * M < end) {
      h.clock.now += 20 * M;
      const r = await send(`${h.http()}/auth`, {
        headers: [
          ['X-Original-URI', '/app'],
          ['Cookie', c],
        ],
      });
      expect(r.status).toBe(200);
      if (r.cookies[0]) c = cookiePair(r.cookies[0]);
    }
    h.clock.now = end + 1000;
  } else {
    h.clock.now += 20 * M; // touched, then rotated at rotate_after 30m
    await send(`${h.http()}/auth`, {
      headers: [
        ['X-Original-URI', '/app'],
        ['Cookie', c],
      ],
    });
    h.clock.now += 10 * M;
    const r = await send(`${h.http()}/auth`, {
      headers: [
        ['X-Original-URI', '/app'],
        ['Cookie', c],
      ],
    });
    expect(r.cookies[0]).toMatch(/^sessiongate=/);
    h.clock.now += 31_000; // rotation_grace 30s
  }
  return c;
}

const rows: Row[] = [
  // Cookies.
  { name: 'cookie: missing', request: async () => ({ path: '/app', headers: [API] }), expect: 'deny', reasons: ['no_session'] },
  {
    name: 'cookie: empty value',
    request: async () => ({ path: '/app', headers: [cookie('sessiongate='), API] }),
    expect: 'deny',
    reasons: ['malformed_cookie', 'no_session'],
  },
  {
    name: 'cookie: 8 kB value',
    request: async () => ({ path: '/app', headers: [cookie(`sessiongate=${'A'.repeat(8192)}`), API] }),
    expect: 'deny',
    reasons: ['malformed_cookie', 'proxy'],
  },
  {
    name: 'cookie: wrong signature',
    request: async () => ({ path: '/app', headers: [cookie(flip(await h.login(), 140)), API] }),
    expect: 'deny',
    reasons: ['bad_signature'],
  },
  {
    name: 'cookie: signed with another secret',
    request: async () => ({ path: '/app', headers: [cookie(`sessiongate=${otherSecretToken()}`), API] }),
    expect: 'deny',
    reasons: ['bad_signature'],
  },
  {
    name: 'cookie: truncated',
    request: async () => ({ path: '/app', headers: [cookie((await h.login()).slice(0, -10)), API] }),
    expect: 'deny',
    reasons: ['malformed_cookie', 'bad_signature'],
  },
  {
    name: 'cookie: not base64url',
    request: async () => ({ path: '/app', headers: [cookie((await h.login()).replace(/.(?=\.)/, '+')), API] }),
    expect: 'deny',
    reasons: ['malformed_cookie', 'bad_signature'],
  },
  {
    name: 'cookie: the name twice, forged value first',
    request: async () => {
      const good = await h.login();
      return { path: '/app', headers: [['Cookie', `sessiongate=${flip(value(good), 100)}; ${good}`], API] };
    },
    expect: 'allow',
    identity: ALICE,
  },
  {
    name: 'cookie: the name twice, forged value second',
    request: async () => {
      const good = await h.login();
      return { path: '/app', headers: [['Cookie', `${good}; sessiongate=${flip(value(good), 100)}`], API] };
    },
    expect: 'allow',
    identity: ALICE,
  },
  {
    name: "cookie: two users' valid cookies",
    request: async () => ({ path: '/app', headers: [['Cookie', `${await h.login('mallory')}; ${await h.login('root', ['admin'])}`], API] }),
    expect: 'deny',
    reasons: ['duplicate_cookie'],
  },
  {
    name: 'cookie: in a second Cookie header',
    request: async () => ({
      path: '/app',
      headers: [
        ['Cookie', 'theme=dark'],
        ['Cookie', await h.login()],
      ],
    }),
    expect: 'allow',
    identity: ALICE,
  },
  {
    name: 'cookie: forged in a second Cookie header',
    request: async () => ({ path: '/app', headers: [['Cookie', 'theme=dark'], ['Cookie', flip(await h.login(), 60)], API] }),
    expect: 'deny',
    reasons: ['bad_signature'],
  },
  ...(
    [
      ['NUL', '\u0000'],
      ['CR', '\r'],
      ['LF', '\n'],
      ['non-ASCII', 'é\u00ff'],
    ] as const
  ).map(
    ([what, bytes]): Row => ({
      name: `cookie: ${what} bytes in the value`,
      request: async () => {
        const good = await h.login();
        return { path: '/app', headers: [['Cookie', `${good.slice(0, 60)}${bytes}${good.slice(60)}`], API] };
      },
      expect: 'deny',
      reasons: ['malformed_cookie', 'bad_signature', 'proxy', 'client_refused'],
      proxies: what === 'non-ASCII' ? undefined : { 'envoy HTTP': { notSent: NOT_HTTP } },
    }),
  ),
  ...(['destroyed', 'expired', 'idle', 'rotated'] as const).map(
    (state): Row => ({
      name: `cookie: valid signature, session ${state}`,
      request: async () => ({ path: '/app', headers: [cookie(await pastState(state)), API] }),
      expect: 'deny',
      reasons: [{ destroyed: 'unknown_session', expired: 'expired', idle: 'idle_timeout', rotated: 'rotated' }[state]],
    }),
  ),

  // Identity headers: every alias, on protected, public and anonymous paths, with and without a session.
  ...['X-User-Id', 'x-user-id', 'X-USER-ID', 'x_user_id', 'X.User.Id', 'x-user_roles', 'X_User.Email', 'X-Auth-User', ' X-User-Id', 'X-User-Id '].flatMap(
    (name): Row[] => {
      const spaced = /^\s|\s$/.test(name);
      const notSent: Record<string, Note> = spaced ? { 'envoy HTTP': { notSent: NOT_HTTP } } : {};
      const mayRefuse: Record<string, Note> = {
        nginx: { mayRefuse: 'nginx answers 400 to some of these bytes' },
        ...(spaced ? { caddy: { mayRefuse: GO_REFUSES } } : {}),
        ...(/\s$/.test(name) ? { haproxy: { refuses: HAPROXY_SPACED } } : {}),
      };
      return [
        {
          name: `spoof ${JSON.stringify(name)} with a session, protected path`,
          request: async () => ({ path: '/app', headers: [cookie(await h.login()), [name, FORGED]] }),
          expect: 'deny',
          reasons: ['spoofed_header', 'proxy'],
          proxies: {
            ...notSent,
            ...(/[_.]/.test(name) ? { nginx: { allowsAsUser: NGINX_DROPS } } : {}),
            // A trailing space: Caddy refuses the request (400), the row's own deny.
            ...(/^\s/.test(name) ? { caddy: { allowsAsUser: GO_FOLDS } } : spaced ? {} : { caddy: { allowsAsUser: CADDY_REMOVES } }),
            ...(/^\s/.test(name) ? { haproxy: { allowsAsUser: HAPROXY_FOLDS } } : {}),
            ...(/\s$/.test(name) ? { haproxy: { refuses: HAPROXY_SPACED } } : {}),
          },
        },
        {
          name: `spoof ${JSON.stringify(name)} repeated, no session, public path`,
          request: async () => ({
            path: '/~assets/app.css',
            headers: [
              [name, FORGED],
              [name, `${FORGED}-2`],
            ],
          }),
          expect: 'allow',
          identity: {},
          proxies: { ...mayRefuse, ...notSent },
        },
        {
          name: `spoof ${JSON.stringify(name)} with a session, anonymous path`,
          request: async () => ({ path: '/blog/post', headers: [cookie(await h.login()), [name, FORGED]] }),
          expect: 'allow',
          identity: ALICE,
          proxies: { ...mayRefuse, ...notSent },
        },
      ];
    },
  ),
  {
    name: 'spoof: every alias at once, no session, anonymous path',
    request: async () => ({
      path: '/blog/',
      headers: [
        ['X-User-Id', FORGED],
        ['x_user_id', FORGED],
        ['X.User.Id', FORGED],
        ['x-user-roles', FORGED],
      ],
    }),
    expect: 'allow',
    identity: {},
  },

  // Paths.
  ...[
    '/~assets/../admin/',
    '/~assets/%2e%2e/admin/',
    '/~assets/%2E%2E/admin/',
    '/~assets/..;/admin/',
    '//admin/',
    '/admin;x=1/',
    '/./admin/',
    '/~assets/./../admin/',
    '/ADMIN/',
    '/admin/#frag',
    '/~assets/#/../admin/',
  ].map(
    (path): Row => ({
      name: `path ${path} as a user: not public, not let past the admin rule`,
      request: async () => ({ path, headers: [cookie(await h.login()), API] }),
      expect: 'deny',
      reasons: ['forbidden_role', 'bad_path', 'proxy'],
    }),
  ),
  ...[
    '/~assets/..%2fapp',
    '/~assets/%2e%2e%2fapp',
    '/~assets/..%5capp',
    '/~assets/%00/../app',
    '/~assets/%c0%ae%c0%ae/app',
    '/~assets/%e0%80%ae%e0%80%ae/app',
    '/~ASSETS/x.css',
    '/~Assets/x.css',
    '/app?x=/~assets/',
    '/app#/~assets/',
    '/%7eassets/../app',
    '/~assets/%252e%252e/app',
  ].map(
    (path): Row => ({
      name: `path ${path} without a session: never public`,
      request: async () => ({ path, headers: [API] }),
      expect: 'deny',
      reasons: ['no_session', 'bad_path', 'proxy'],
    }),
  ),
  {
    name: 'path: the public prefix itself stays public',
    request: async () => ({ path: '/~assets/app.css?x=/admin/', headers: [API] }),
    expect: 'allow',
    identity: {},
  },

  // Forwarded headers sent by the client describe a different request: ignored.
  ...(
    [
      ['X-Original-URI', '/~assets/x.css'],
      ['X-Forwarded-Uri', '/~assets/x.css'],
      ['X-Original-Url', '/~assets/x.css'],
      ['X-Rewrite-Url', '/~assets/x.css'],
      ['X-Original-Method', 'OPTIONS'],
      ['X-Forwarded-Method', 'OPTIONS'],
      ['X-Forwarded-Prefix', '/~assets'],
    ] as const
  ).map(
    ([name, v]): Row => ({
      name: `forwarded header ${name}: ${v} from the client`,
      request: async () => ({ path: '/app', headers: [[name, v], API] }),
      expect: 'deny',
      reasons: ['no_session'],
    }),
  ),
  {
    name: 'forwarded header X-Forwarded-Host from the client: no redirect to it',
    request: async () => ({ path: '/app', headers: [['X-Forwarded-Host', 'evil.example.net'], BROWSER] }),
    expect: 'deny',
    reasons: ['no_session'],
  },

  // Login redirects: rd names only the request's own, allowed, host and a plain path.
  ...(
    [
      ['Host outside allowed_redirect_hosts', '/app', 'evil.example.net'],
      ['scheme-relative path', '//evil.example.net/x', HOST],
      ['backslash path', '/\\evil.example.net/x', HOST],
      ['encoded CR LF', '/app%0d%0aSet-Cookie:%20x=1', HOST],
      ['encoded tab', '/app%09x', HOST],
    ] as const
  ).map(
    ([what, path, host]): Row => ({
      name: `login redirect: ${what}`,
      request: async () => ({ path, host, headers: [BROWSER] }),
      expect: 'deny',
      reasons: ['no_session', 'bad_path', 'proxy'],
    }),
  ),
];

describe.each(Object.entries(TRANSPORTS))('adversarial table over %s', (transportName, transport) => {
  it.each(rows)('$name', async (row) => {
    const note = row.proxies?.[transportName];
    if (note && 'notSent' in note) return;
    const o = await transport(h, await row.request());
    if (note && ('refuses' in note || ('mayRefuse' in note && o.status === 400))) {
      expect(o.status, `${o.reason} (${o.status})`).toBe(400);
      expect(o.upstream).toBeUndefined();
      return;
    }
    if (note && 'allowsAsUser' in note) {
      expect(o.result, note.allowsAsUser).toBe('allow');
      expectNoForgedIdentity(o, ALICE);
      return;
    }
    expect(o.result, `${o.reason} (${o.status})`).toBe(row.expect);
    if (row.expect === 'deny') {
      // Through a real proxy the client sees only the status (sessiongate's reason stays between the two).
      if (row.reasons && !STATUS_ONLY.has(transportName)) expect(row.reasons).toContain(o.reason);
      expect(o.upstream).toBeUndefined();
      // A login redirect never sends the browser anywhere but the login page with its own URL.
      if (o.location !== undefined) {
        expect(o.location.startsWith('https://login.example.com/login')).toBe(true);
        const rd = new URL(o.location).searchParams.get('rd');
        if (rd !== null) {
          expect(rd).toMatch(new RegExp(`^https?://${HOST.replace(/\./g, '\\.')}/`));
          expect(rd).not.toMatch(/[\s\\]|%0[0-9a-f]|%09|%5c/i);
          expect(new URL(rd).host).toBe(HOST);
        }
      }
    }
    expectNoForgedIdentity(o, row.identity ?? {});
  });
});

describe('login redirect keeps a good return URL', () => {
  it.each(Object.entries(TRANSPORTS))('over %s', async (_n, transport) => {
    const o = await transport(h, { path: '/app/page?q=1', headers: [BROWSER] });
    expect(o.result).toBe('deny');
    // The scheme is the one the request came in with (plain HTTP to nginx and Envoy HTTP here).
    const scheme = transport === TRANSPORTS['envoy gRPC'] ? 'https' : 'http';
    expect(o.location).toBe(`https://login.example.com/login?rd=${encodeURIComponent(`${scheme}://${HOST}/app/page?q=1`)}`);
  });
});
