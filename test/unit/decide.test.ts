/**
 * decide() as tables: every access kind, every reason code, expiry edges, rotation. The core
 * is pure, so each row is a request, what the store said, and the time.
 */
import { describe, expect, it } from 'vitest';
import { decide, evaluate, type Lookup, loginRedirect, needsLookup } from '../../src/core/decide.js';
import { ALL_REASONS } from '../../src/core/reasons.js';
import type { Decision } from '../../src/core/types.js';
import { createTokenCodec } from '../../src/session/token.js';
import { H, M, OTHER_SECRET, record, request, S, SECRET, T0, TIMES, testPolicy } from '../support/fixtures.js';

const policy = testPolicy();
const codec = createTokenCodec([SECRET]);
const good = codec.issue();
const forged = createTokenCodec([OTHER_SECRET]).issue();
const cookie = (t: string) => ({ cookie: `other=1; sessiongate=${t}` });
const HTML = { accept: 'text/html,application/xhtml+xml' };

type Row = {
  name: string;
  uri?: string | undefined;
  routePolicy?: string;
  method?: string;
  headers?: Record<string, string>;
  lookup?: Lookup;
  now?: number;
  expect: Partial<Decision> & { result: Decision['result'] };
  policy?: typeof policy;
};

const found = (over = {}, issued = T0): Lookup => ({ kind: 'found', record: record(over, issued) });

const rows: Row[] = [
  // public
  { name: 'public path, no cookie', uri: '/~assets/app.css', expect: { result: 'allow', reason: 'public' } },
  { name: 'public path ignores a forged cookie', uri: '/~assets/app.css', headers: cookie(forged.token), expect: { result: 'allow', reason: 'public' } },
  {
    name: 'public path with spoofed header is allowed (proxy strips)',
    uri: '/~assets/x',
    headers: { 'x-user-id': 'root' },
    expect: { result: 'allow', reason: 'public', spoofed: ['x-user-id'] },
  },
  // traversal out of the public prefix is refused outright (403 bad_path), never public
  { name: 'traversal ../', uri: '/~assets/../admin/', expect: { result: 'deny', reason: 'bad_path', status: 403 } },
  { name: 'traversal %2e%2e', uri: '/~assets/%2e%2e/admin', expect: { result: 'deny', reason: 'bad_path', status: 403 } },
  // `//x` is host x to WHATWG URL and urlsplit; `;` is cut by some stacks and not by others
  { name: 'double slash', uri: '//admin', expect: { result: 'deny', reason: 'bad_path', status: 403 } },
  { name: 'path params', uri: '/admin;x', expect: { result: 'deny', reason: 'bad_path', status: 403 } },
  { name: 'query holding a public prefix', uri: '/private?x=/~assets/', expect: { result: 'deny', reason: 'no_session' } },
  { name: 'upper-case public prefix is not public', uri: '/~ASSETS/app.css', expect: { result: 'deny', reason: 'no_session' } },
  { name: 'encoded slash', uri: '/~assets/..%2fadmin', expect: { result: 'deny', reason: 'bad_path', status: 403 } },
  { name: 'NUL', uri: '/~assets/x%00', expect: { result: 'deny', reason: 'bad_path', status: 403 } },
  { name: 'no original URI from the proxy', uri: undefined, expect: { result: 'deny', reason: 'bad_request', status: 403 } },
  // anonymous
  { name: 'anonymous path, no cookie', uri: '/blog/post', expect: { result: 'allow', reason: 'anonymous', identity: [] } },
  {
    name: 'anonymous path, forged cookie: still anonymous',
    uri: '/blog/post',
    headers: cookie(forged.token),
    expect: { result: 'allow', reason: 'anonymous', identity: [] },
  },
  {
    name: 'anonymous path, unknown session',
    uri: '/blog/',
    headers: cookie(good.token),
    lookup: { kind: 'missing' },
    expect: { result: 'allow', reason: 'anonymous' },
  },
  {
    name: 'anonymous path with a session: identity',
    uri: '/blog/',
    headers: cookie(good.token),
    lookup: found(),
    expect: {
      result: 'allow',
      reason: 'authenticated',
      userId: 'alice',
      identity: [
        ['X-User-Id', 'alice'],
        ['X-User-Roles', 'user'],
        ['X-User-Email', 'alice@example.com'],
      ],
    },
  },
  {
    name: 'anonymous path with spoofed header: allowed, flagged',
    uri: '/blog/',
    headers: { x_user_id: 'root' },
    expect: { result: 'allow', reason: 'anonymous', spoofed: ['x_user_id'] },
  },
  {
    name: 'anonymous path, store down, closed',
    uri: '/blog/',
    headers: cookie(good.token),
    lookup: { kind: 'failed' },
    expect: { result: 'error', reason: 'store_unavailable' },
  },
  // authenticated
  { name: 'no cookie', expect: { result: 'deny', reason: 'no_session', status: 401, location: undefined } },
  {
    name: 'no cookie, browser: login redirect',
    headers: HTML,
    uri: '/x?y=1',
    expect: { result: 'deny', reason: 'no_session', status: 401, location: 'https://login.example.com/login?rd=https%3A%2F%2Fapp.example.com%2Fx%3Fy%3D1' },
  },
  {
    name: 'no cookie, XHR: no redirect',
    headers: { ...HTML, 'x-requested-with': 'XMLHttpRequest' },
    expect: { result: 'deny', reason: 'no_session', location: undefined },
  },
  { name: 'malformed cookie', headers: cookie('garbage'), expect: { result: 'deny', reason: 'malformed_cookie', status: 401 } },
  { name: 'empty cookie', headers: cookie(''), expect: { result: 'deny', reason: 'malformed_cookie', status: 401 } },
  { name: 'forged cookie', headers: cookie(forged.token), expect: { result: 'deny', reason: 'bad_signature', status: 401 } },
  {
    name: 'good and forged cookie: the good one counts',
    headers: { cookie: `sessiongate=${forged.token}; sessiongate=${good.token}` },
    lookup: found(),
    expect: { result: 'allow', reason: 'authenticated' },
  },
  {
    name: 'two valid cookies: ambiguous',
    headers: { cookie: `sessiongate=${good.token}; sessiongate=${codec.issue().token}` },
    expect: { result: 'deny', reason: 'duplicate_cookie', status: 401 },
  },
  { name: 'unknown session', headers: cookie(good.token), lookup: { kind: 'missing' }, expect: { result: 'deny', reason: 'unknown_session', status: 401 } },
  {
    name: 'valid session',
    headers: cookie(good.token),
    lookup: found(),
    expect: { result: 'allow', reason: 'authenticated', userId: 'alice', sessionState: 'active' },
  },
  {
    name: 'one ms before absolute expiry',
    headers: cookie(good.token),
    lookup: found({ idle_expires_at: T0 + 13 * H }),
    now: T0 + 12 * H - 1,
    expect: { result: 'allow', reason: 'authenticated' },
  },
  {
    name: 'at absolute expiry',
    headers: cookie(good.token),
    lookup: found({ idle_expires_at: T0 + 13 * H }),
    now: T0 + 12 * H,
    expect: { result: 'deny', reason: 'expired', status: 401 },
  },
  {
    name: 'one ms before idle expiry',
    headers: cookie(good.token),
    lookup: found(),
    now: T0 + 30 * M - 1,
    expect: { result: 'allow', reason: 'authenticated' },
  },
  { name: 'at idle expiry', headers: cookie(good.token), lookup: found(), now: T0 + 30 * M, expect: { result: 'deny', reason: 'idle_timeout', status: 401 } },
  {
    name: 'rotated away, inside grace',
    headers: cookie(good.token),
    lookup: found({ grace_until: T0 + 10 * S }),
    now: T0 + 10 * S - 1,
    expect: { result: 'allow', reason: 'authenticated', sessionState: 'grace' },
  },
  {
    name: 'rotated away, grace over',
    headers: cookie(good.token),
    lookup: found({ grace_until: T0 + 10 * S }),
    now: T0 + 10 * S,
    expect: { result: 'deny', reason: 'rotated', status: 401 },
  },
  { name: 'store down, closed mode', headers: cookie(good.token), lookup: { kind: 'failed' }, expect: { result: 'error', reason: 'store_unavailable' } },
  {
    name: 'store down, open mode',
    headers: cookie(good.token),
    lookup: { kind: 'failed' },
    policy: testPolicy({ failureMode: 'open' }),
    expect: { result: 'allow', reason: 'store_unavailable_open', identity: [['X-Sessiongate-Degraded', 'store_unavailable']] },
  },
  {
    name: 'open mode still refuses a forged cookie',
    headers: cookie(forged.token),
    policy: testPolicy({ failureMode: 'open' }),
    expect: { result: 'deny', reason: 'bad_signature' },
  },
  // spoofing
  {
    name: 'spoofed X-User-Id',
    headers: { ...cookie(good.token), 'x-user-id': 'root' },
    expect: { result: 'deny', reason: 'spoofed_header', status: 403, spoofed: ['x-user-id'] },
  },
  { name: 'spoofed x_user_id', headers: { x_user_id: 'root' }, expect: { result: 'deny', reason: 'spoofed_header', spoofed: ['x_user_id'] } },
  { name: 'spoofed X.User.Id', headers: { 'x.user.id': 'root' }, expect: { result: 'deny', reason: 'spoofed_header', spoofed: ['x.user.id'] } },
  { name: 'spoofed strip_headers entry', headers: { 'x-auth-user': 'root' }, expect: { result: 'deny', reason: 'spoofed_header' } },
  {
    name: 'spoofed, strip mode: allowed, flagged',
    headers: { ...cookie(good.token), 'x-user-roles': 'admin' },
    lookup: found(),
    policy: testPolicy({ spoofGuard: 'strip' }),
    expect: { result: 'allow', reason: 'authenticated', spoofed: ['x-user-roles'] },
  },
  // roles and methods
  {
    name: 'admin without role',
    uri: '/admin/',
    headers: cookie(good.token),
    lookup: found(),
    expect: { result: 'deny', reason: 'forbidden_role', status: 403, userId: 'alice' },
  },
  {
    name: 'admin with role',
    uri: '/admin/users',
    headers: cookie(good.token),
    lookup: found({ roles: ['user', 'admin'] }),
    expect: {
      result: 'allow',
      reason: 'authenticated',
      identity: [
        ['X-User-Id', 'alice'],
        ['X-User-Roles', 'user,admin'],
        ['X-User-Email', 'alice@example.com'],
      ],
    },
  },
  { name: 'admin without trailing slash', uri: '/admin', headers: cookie(good.token), lookup: found(), expect: { result: 'deny', reason: 'forbidden_role' } },
  { name: 'admin in upper case', uri: '/ADMIN/x', headers: cookie(good.token), lookup: found(), expect: { result: 'deny', reason: 'forbidden_role' } },
  {
    name: 'administrator is not admin',
    uri: '/administrator',
    headers: cookie(good.token),
    lookup: found(),
    expect: { result: 'allow', reason: 'authenticated' },
  },
  {
    name: 'admin, method not listed',
    uri: '/admin/x',
    method: 'DELETE',
    headers: cookie(good.token),
    expect: { result: 'deny', reason: 'method_not_allowed', status: 403 },
  },
  // per-route policies (Envoy context_extensions), which replace path rules
  {
    name: 'named policy replaces path rules',
    uri: '/~assets/x',
    routePolicy: 'admin',
    headers: cookie(good.token),
    lookup: found(),
    expect: { result: 'deny', reason: 'forbidden_role' },
  },
  {
    name: 'named policy admits',
    uri: '/anything',
    routePolicy: 'admin',
    headers: cookie(good.token),
    lookup: found({ roles: ['admin'] }),
    expect: { result: 'allow', reason: 'authenticated' },
  },
  { name: 'named public policy', uri: '/admin/', routePolicy: 'everyone', expect: { result: 'allow', reason: 'public' } },
  {
    name: 'unknown named policy',
    uri: '/~assets/x',
    routePolicy: 'nope',
    headers: cookie(good.token),
    expect: { result: 'deny', reason: 'unknown_policy', status: 403 },
  },
  { name: 'named policy still refuses a bad path', uri: '/a/..%2f', routePolicy: 'everyone', expect: { result: 'deny', reason: 'bad_path' } },
  // bearer
  { name: 'bearer session token', headers: { authorization: `Bearer ${good.token}` }, lookup: found(), expect: { result: 'allow', reason: 'authenticated' } },
  {
    name: 'bad bearer: challenge, never a redirect',
    headers: { ...HTML, authorization: `Bearer ${forged.token}` },
    expect: { result: 'deny', reason: 'bad_signature', status: 401, location: undefined, wwwAuthenticate: 'Bearer realm="sessiongate", error="invalid_token"' },
  },
  {
    name: "someone else's bearer is not ours",
    headers: { authorization: 'Bearer eyJhbGciOi.x.y' },
    expect: { result: 'deny', reason: 'no_session', wwwAuthenticate: 'Bearer realm="sessiongate"', location: undefined },
  },
];

describe('decide', () => {
  it.each(rows)('$name', (row) => {
    const p = row.policy ?? policy;
    const req = request({ uri: 'uri' in row ? row.uri : '/', method: row.method ?? 'GET', headers: row.headers ?? {}, policy: row.routePolicy });
    const e = evaluate(req, p);
    const lookup = row.lookup ?? { kind: needsLookup(e, p) ? 'missing' : 'skipped' };
    if (row.lookup) expect(needsLookup(e, p)).toBe(true);
    const { decision } = decide(e, lookup, p, row.now ?? T0 + S);
    expect(decision).toMatchObject(row.expect);
    expect(ALL_REASONS).toContain(decision.reason);
  });

  it('covers every reason code in its table', () => {
    const seen = new Set<string>();
    for (const row of rows) seen.add(row.expect.reason!);
    const untested = ALL_REASONS.filter((r) => !seen.has(r) && r !== 'internal_error');
    expect(untested).toEqual([]);
  });

  it('asks the store only when a session can change the answer', () => {
    const needs = (r: ReturnType<typeof request>) => needsLookup(evaluate(r, policy), policy);
    expect(needs(request({ headers: cookie(forged.token) }))).toBe(false);
    expect(needs(request({ headers: cookie('x') }))).toBe(false);
    expect(needs(request({ uri: '/~assets/a', headers: cookie(good.token) }))).toBe(false);
    expect(needs(request({ headers: { ...cookie(good.token), 'x-user-id': 'root' } }))).toBe(false);
    expect(needs(request({ uri: '/admin/', method: 'DELETE', headers: cookie(good.token) }))).toBe(false);
    expect(needs(request({ headers: cookie(good.token) }))).toBe(true);
  });

  it('never echoes a spoofed value into the decision', () => {
    const e = evaluate(request({ headers: { 'x-user-id': 'root-spoof-value' } }), policy);
    const { decision } = decide(e, { kind: 'skipped' }, policy, T0);
    expect(JSON.stringify(decision)).not.toContain('root-spoof-value');
  });

  describe('session upkeep', () => {
    const at = (now: number, over = {}) => decide(evaluate(request({ headers: cookie(good.token) }), policy), found(over), policy, now);

    it('asks for nothing inside the touch interval', () => {
      expect(at(T0 + TIMES.touchInterval - 1).effect).toBeUndefined();
    });

    it('asks for a touch once the touch interval passed, capped at the absolute expiry', () => {
      const now = T0 + TIMES.touchInterval;
      expect(at(now).effect).toEqual({ kind: 'touch', key: good.key, touchedAt: now, idleExpiresAt: now + TIMES.idleTtl });
      const late = at(T0 + 12 * H - 10 * M, { issued_at: T0 + 12 * H - 20 * M, touched_at: T0 + 12 * H - 20 * M, idle_expires_at: T0 + 12 * H }).effect;
      expect(late).toMatchObject({ kind: 'touch', idleExpiresAt: T0 + 12 * H });
    });

    it('asks for a rotation once rotate_after passed (touched meanwhile)', () => {
      const now = T0 + TIMES.rotateAfter;
      expect(at(now, { touched_at: now - 1000, idle_expires_at: now + 20 * M }).effect).toMatchObject({ kind: 'rotate', key: good.key });
    });

    it('neither touches nor rotates an ID in its grace window', () => {
      expect(at(T0 + 40 * M, { grace_until: T0 + 41 * M, idle_expires_at: T0 + 50 * M }).effect).toBeUndefined();
    });

    it('asks for nothing on a denied request', () => {
      const e = evaluate(request({ uri: '/admin/', headers: cookie(good.token) }), policy);
      expect(decide(e, found(), policy, T0 + TIMES.rotateAfter).effect).toBeUndefined();
    });
  });
});

describe('loginRedirect', () => {
  const base = request({ uri: '/x' });
  it.each([
    ['plain', base, 'https://l/login?rd=https%3A%2F%2Fapp.example.com%2Fx'],
    ['host with port', { ...base, host: 'app.example.com:8443' }, 'https://l/login?rd=https%3A%2F%2Fapp.example.com%3A8443%2Fx'],
    ['bad host: no rd', { ...base, host: 'evil.com/@x' }, 'https://l/login'],
    ['host with CRLF: no rd', { ...base, host: 'a\r\nSet-Cookie: x' }, 'https://l/login'],
    ['odd scheme: no rd', { ...base, scheme: 'javascript' }, 'https://l/login'],
    ['scheme-relative URI: no rd', { ...base, uri: '//evil.com/' }, 'https://l/login'],
  ])('%s', (_n, req, expected) => {
    expect(loginRedirect('https://l/login', req)).toBe(expected);
  });

  it('appends to a login URL that already has a query', () => {
    expect(loginRedirect('https://l/login?client=a', base)).toBe('https://l/login?client=a&rd=https%3A%2F%2Fapp.example.com%2Fx');
  });
});

describe('proxy decision cache lifetime', () => {
  const cached = testPolicy({ proxyCacheTtl: 60 * S });
  const at = (now: number, over = {}, p = cached, uri = '/') => decide(evaluate(request({ uri, headers: cookie(good.token) }), p), found(over), p, now);

  it('is absent when proxy caching is off', () => {
    expect(at(T0 + S, {}, policy).decision).toMatchObject({ result: 'allow', cacheFor: undefined });
  });

  it('is the configured TTL for a fresh session', () => {
    expect(at(T0 + S).decision).toMatchObject({ result: 'allow', cacheFor: 60 });
  });

  it('never outlives the idle deadline, the rotation point or the absolute expiry', () => {
    // idle: 30 min after T0; 20 s before it only 20 s are left.
    expect(at(T0 + 30 * M - 20 * S, { touched_at: T0 + 30 * M - 20 * S - 1, issued_at: T0 + 30 * M - 20 * S - 1 }).decision).toMatchObject({ cacheFor: 20 });
    expect(at(T0 + 10 * S, { issued_at: T0 - 30 * M + 15 * S, idle_expires_at: T0 + H }).decision).toMatchObject({ cacheFor: 5 });
    expect(at(T0 + S, { expires_at: T0 + 8 * S }).decision).toMatchObject({ cacheFor: 7 });
  });

  it('is 0 when the answer asks for a touch or a rotation, or comes from a rotated-away ID', () => {
    expect(at(T0 + 2 * M).decision).toMatchObject({ cacheFor: 0 }); // touch due
    expect(at(T0 + 30 * M, { touched_at: T0 + 29 * M, idle_expires_at: T0 + 59 * M }).decision).toMatchObject({ cacheFor: 0 }); // rotation due
    expect(at(T0 + S, { grace_until: T0 + 10 * S }).decision).toMatchObject({ sessionState: 'grace', cacheFor: 0 });
  });

  it('is the TTL for public and anonymous answers, 0 for degraded ones, and absent on denies', () => {
    expect(decide(evaluate(request({ uri: '/~assets/a' }), cached), { kind: 'skipped' }, cached, T0).decision).toMatchObject({
      reason: 'public',
      cacheFor: 60,
    });
    expect(decide(evaluate(request({ uri: '/blog/' }), cached), { kind: 'skipped' }, cached, T0).decision).toMatchObject({ reason: 'anonymous', cacheFor: 60 });
    const open = testPolicy({ proxyCacheTtl: 60 * S, failureMode: 'open' });
    expect(decide(evaluate(request({ headers: cookie(good.token) }), open), { kind: 'failed' }, open, T0).decision).toMatchObject({
      reason: 'store_unavailable_open',
      cacheFor: 0,
    });
    expect(decide(evaluate(request(), cached), { kind: 'skipped' }, cached, T0).decision).not.toHaveProperty('cacheFor');
  });
});
