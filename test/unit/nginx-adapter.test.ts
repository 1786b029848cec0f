/** The nginx adapter's translation: proxy headers in, HTTP answer out. */
import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import type { AllowDecision, Decision } from '../../src/core/types.js';
import { isAuthPath } from '../../src/transport/http-server.js';
import { httpAnswer, nginxAuthRequest } from '../../src/transport/nginx.js';

const msg = (headers: Record<string, string>) => ({ headers }) as unknown as IncomingMessage;

describe('nginxAuthRequest', () => {
  it('reads what nginx auth_request sends', () => {
    const r = nginxAuthRequest(
      msg({
        'x-original-method': 'post',
        'x-original-uri': '/a?b=1',
        'x-forwarded-proto': 'HTTPS',
        'x-forwarded-host': 'app.example.com:8443',
        host: 'sessiongate',
        'x-request-id': 'abc',
        'x-real-ip': '10.0.0.1',
      }),
    );
    expect(r).toMatchObject({
      transport: 'nginx',
      method: 'POST',
      uri: '/a?b=1',
      scheme: 'https',
      host: 'app.example.com:8443',
      requestId: 'abc',
      clientAddress: '10.0.0.1',
    });
  });

  it('reads what Traefik and Caddy forward-auth send', () => {
    const r = nginxAuthRequest(
      msg({
        'x-forwarded-method': 'DELETE',
        'x-forwarded-uri': '/x',
        'x-forwarded-proto': 'http',
        'x-forwarded-host': 'h',
        'x-forwarded-for': '1.2.3.4, 5.6.7.8',
      }),
    );
    expect(r).toMatchObject({ method: 'DELETE', uri: '/x', scheme: 'http', host: 'h', clientAddress: '1.2.3.4' });
  });

  it("refuses X-Original-* and X-Forwarded-* that disagree (a forward-auth proxy passes the client's copy of the other)", () => {
    // Traefik sets X-Forwarded-Uri and passes a client's X-Original-URI on: neither may win.
    expect(nginxAuthRequest(msg({ 'x-original-uri': '/~assets/x', 'x-forwarded-uri': '/admin/x', 'x-forwarded-method': 'GET' })).uri).toBeUndefined();
    expect(nginxAuthRequest(msg({ 'x-original-uri': '/admin/x', 'x-forwarded-uri': '/~assets/x' })).uri).toBeUndefined();
    expect(nginxAuthRequest(msg({ 'x-original-method': 'GET', 'x-forwarded-method': 'DELETE', 'x-original-uri': '/real' })).uri).toBeUndefined();
    // The same in both (any case for the method): read as usual.
    expect(
      nginxAuthRequest(msg({ 'x-original-method': 'get', 'x-forwarded-method': 'GET', 'x-original-uri': '/real', 'x-forwarded-uri': '/real' })),
    ).toMatchObject({ method: 'GET', uri: '/real' });
  });

  it('leaves the URI undefined when the proxy sent none (the core denies bad_request)', () => {
    expect(nginxAuthRequest(msg({ host: 'h' })).uri).toBeUndefined();
  });

  it('uses the first hop of a forwarded list and falls back to Host', () => {
    expect(nginxAuthRequest(msg({ 'x-forwarded-proto': 'https, http', host: 'h:1' }))).toMatchObject({ scheme: 'https', host: 'h:1' });
  });
});

describe('httpAnswer', () => {
  const base = { spoofed: [] as string[] };
  it.each<[string, Decision, number, Array<[string, string]>]>([
    ['allow', { ...base, result: 'allow', reason: 'authenticated', identity: [['X-User-Id', 'a']], headersToRemove: [] }, 200, [['X-User-Id', 'a']]],
    [
      'allow with rotation',
      { ...base, result: 'allow', reason: 'authenticated', identity: [['X-User-Id', 'a']], headersToRemove: [], setCookie: 'sg=x' },
      200,
      [
        ['X-User-Id', 'a'],
        ['Set-Cookie', 'sg=x'],
      ],
    ],
    ['deny with redirect', { ...base, result: 'deny', reason: 'no_session', status: 401, location: 'https://l/?rd=x' }, 401, [['Location', 'https://l/?rd=x']]],
    [
      'bearer deny',
      { ...base, result: 'deny', reason: 'bad_signature', status: 401, wwwAuthenticate: 'Bearer realm="sessiongate"' },
      401,
      [['WWW-Authenticate', 'Bearer realm="sessiongate"']],
    ],
    ['forbidden', { ...base, result: 'deny', reason: 'forbidden_role', status: 403 }, 403, []],
    ['store error', { ...base, result: 'error', reason: 'store_unavailable' }, 500, []],
  ])('%s', (_n, d, status, headers) => {
    const answer = httpAnswer(d);
    expect(answer.status).toBe(status);
    expect([...answer.headers].sort()).toEqual([...headers, ['X-Sessiongate-Reason', d.reason]].sort());
  });
});

describe('httpAnswer: what the application gets of Cookie and Authorization (protect.conf sets both from the answer)', () => {
  const allow = (over: Partial<AllowDecision> = {}): AllowDecision => ({
    spoofed: [],
    result: 'allow',
    reason: 'public',
    identity: [],
    headersToRemove: [],
    ...over,
  });
  const pick = (d: Decision, request: Record<string, string>) => httpAnswer(d, request).headers.filter(([n]) => n === 'Cookie' || n === 'Authorization');

  it.each<[string, AllowDecision, Record<string, string>, Array<[string, string]>]>([
    [
      "echoes the client's own",
      allow(),
      { cookie: 'a=1; b=2', authorization: 'Basic x' },
      [
        ['Cookie', 'a=1; b=2'],
        ['Authorization', 'Basic x'],
      ],
    ],
    ['says nothing when the client sent nothing', allow(), {}, []],
    ["sends the decision's Cookie instead", allow({ upstreamCookie: 'a=1' }), { cookie: 'a=1; sessiongate=t' }, [['Cookie', 'a=1']]],
    ['sends an empty Cookie when none is left', allow({ upstreamCookie: '' }), { cookie: 'sessiongate=t' }, [['Cookie', '']]],
    [
      'sends an empty Authorization for one that carried a token of ours',
      allow({ dropAuthorization: true }),
      { authorization: 'Bearer t', cookie: 'a=1' },
      [
        ['Cookie', 'a=1'],
        ['Authorization', ''],
      ],
    ],
  ])('%s', (_n, d, request, expected) => {
    expect(pick(d, request)).toEqual(expected);
  });

  it('never on a deny or an error', () => {
    const request = { cookie: 'a=1', authorization: 'Basic x' };
    expect(pick({ spoofed: [], result: 'deny', reason: 'no_session', status: 401 }, request)).toEqual([]);
    expect(pick({ spoofed: [], result: 'error', reason: 'store_unavailable' }, request)).toEqual([]);
  });
});

describe('isAuthPath', () => {
  it.each([
    ['/auth', true],
    ['/auth?x=1', true],
    ['/auth/', false],
    ['/authx', false],
    ['/~session', false],
    [undefined, false],
  ])('%s', (url, expected) => expect(isAuthPath(url)).toBe(expected));
});
