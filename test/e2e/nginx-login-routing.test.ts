/**
 * The shipped nginx config routes the OpenID Connect login endpoints (/~login, /~login/callback,
 * /~logout, /~login/backchannel-logout) to sessiongate: exact paths, the methods each serves,
 * the client's Host with its port, X-Forwarded-Proto/-For, X-Request-Id, a body only on the
 * back-channel endpoint, never through auth_request, and a logout redirect as long as an ID
 * token with many groups makes it. What is proven is nginx's routing, so a recorder stands on
 * sessiongate's port; the login itself is proven against a real provider elsewhere.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send } from '../../harness/http.js';
import { type EchoUpstream, type RunningNginx, startEchoUpstream, startNginx } from '../../harness/processes.js';
import { type Recorder, startRecorder } from '../../harness/recorder.js';

let sg: Recorder;
let app: EchoUpstream;
let nginx: RunningNginx;

beforeAll(async () => {
  // Everything, /auth included, answers a redirect: what is proven here is where nginx sends what.
  sg = await startRecorder({ auth: { status: 302, headers: { Location: '/' } } });
  app = await startEchoUpstream();
  nginx = await startNginx({ sessiongatePort: sg.port, appPort: app.port });
});

afterAll(async () => {
  await nginx?.stop();
  await app?.close();
  await sg?.close();
});

/** A request through nginx; what the sessiongate stand-in received, if anything. */
async function through(method: string, path: string, opts: { headers?: Array<[string, string]>; body?: string } = {}) {
  const before = sg.seen.length;
  const authBefore = sg.seen.filter((s) => s.url.startsWith('/auth')).length;
  const reply = await send(nginx.url, { method, path, headers: opts.headers ?? [], body: opts.body });
  const got = sg.seen.slice(before);
  return { reply, seen: got.at(-1), authCalls: sg.seen.filter((s) => s.url.startsWith('/auth')).length - authBefore };
}

const ROUTES: Array<{ path: string; allowed: string[]; refused: string[] }> = [
  { path: '/~login', allowed: ['GET'], refused: ['POST', 'PUT', 'DELETE'] },
  { path: '/~login/callback', allowed: ['GET'], refused: ['POST', 'PUT', 'DELETE'] },
  { path: '/~logout', allowed: ['GET', 'POST'], refused: ['PUT', 'DELETE', 'PATCH'] },
  { path: '/~login/backchannel-logout', allowed: ['POST'], refused: ['GET', 'PUT', 'DELETE'] },
];

describe('OpenID Connect login endpoints through the shipped nginx', () => {
  describe.each(ROUTES)('$path', ({ path, allowed, refused }) => {
    it.each(allowed)('%s reaches sessiongate unchecked, with the client Host (port included) and the forwarded headers', async (method) => {
      const host = `app.example.com:${nginx.port}`;
      const { reply, seen, authCalls } = await through(method, `${path}?rd=%2Fdocs%2F&state=s1`, {
        headers: [
          ['Host', host],
          ['Cookie', 'sessiongate_login_abcdefghijkl=flow'],
          // What a client claims is replaced by what nginx saw.
          ['X-Forwarded-Proto', 'https'],
          ['X-Forwarded-For', '203.0.113.9'],
          ['X-Request-Id', 'forged'],
        ],
        body: method === 'GET' ? undefined : '',
      });
      expect(reply.status).toBe(302);
      expect(authCalls, 'no auth_request for the login itself').toBe(0);
      expect(seen).toBeDefined();
      expect(seen!.method).toBe(method);
      expect(seen!.url).toBe(`${path}?rd=%2Fdocs%2F&state=s1`);
      expect(seen!.headers['host']).toBe(host);
      expect(seen!.headers['x-forwarded-proto']).toBe('http');
      expect(seen!.headers['x-forwarded-for']).toBe('127.0.0.1');
      expect(seen!.headers['x-request-id']).toMatch(/^[0-9a-f]{32}$/);
      expect(seen!.headers['cookie']).toBe('sessiongate_login_abcdefghijkl=flow');
    });

    it.each(refused)('%s is refused by nginx and never reaches sessiongate', async (method) => {
      const { reply, seen } = await through(method, path, { body: method === 'GET' ? undefined : '' });
      expect(reply.status).toBe(403);
      expect(seen).toBeUndefined();
    });
  });

  it('passes the back-channel logout_token form body', async () => {
    const body = 'logout_token=eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4In0.c2ln';
    const { reply, seen } = await through('POST', '/~login/backchannel-logout', {
      headers: [['Content-Type', 'application/x-www-form-urlencoded']],
      body,
    });
    expect(reply.status).toBe(302);
    expect(seen!.body).toBe(body);
    expect(seen!.headers['content-type']).toBe('application/x-www-form-urlencoded');
  });

  it('passes no body on POST /~logout', async () => {
    const { seen } = await through('POST', '/~logout?rd=%2F', {
      headers: [['Content-Type', 'application/x-www-form-urlencoded']],
      body: 'rd=https%3A%2F%2Fevil.example.net%2F&x=1',
    });
    expect(seen!.body).toBe('');
    expect(seen!.headers['content-length']).toBeUndefined();
    expect(seen!.headers['content-type']).toBeUndefined();
  });

  it('hands the browser a logout redirect carrying a large id_token_hint', async () => {
    // An ID token with 200 group IDs is over 10 kB; nginx's default 4k/8k header buffer would
    // refuse the answer (502). (Node's client takes at most 16 kB of headers.)
    const hint = 'a'.repeat(12_000);
    sg.other.headers['Location'] = `https://idp.example.com/logout?id_token_hint=${hint}&post_logout_redirect_uri=https%3A%2F%2Fapp.example.com%2F`;
    try {
      const { reply } = await through('GET', '/~logout');
      expect(reply.status).toBe(302);
      expect(reply.headers['location']).toBe(sg.other.headers['Location']);
    } finally {
      sg.other.headers['Location'] = '/';
    }
  });

  it('sends other paths under /~login and /~logout through auth_request, like any application path', async () => {
    for (const path of ['/~login/other', '/~logout/x', '/~loginx', '/~login/callback/x']) {
      const { authCalls } = await through('GET', path);
      expect(authCalls, path).toBe(1);
    }
  });
});
