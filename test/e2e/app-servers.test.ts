/**
 * Real application servers behind the shipped nginx config and sessiongate (the example
 * config: `/~assets/` public, `/admin/` roles [admin] with GET and POST only): Tomcat 10 from
 * Debian's packages, express 4 and 5 with method-override, Python's http.server on urlsplit,
 * and node:http applications routing on WHATWG URL, NFKC, IIS/.NET case folding and segment
 * trimming. Each serves a secret at /admin/secret. The path and method tables go through every
 * one of them: the secret never comes back to anyone but an admin, and no method but GET and
 * POST ever runs. Each row is also sent to the applications directly, to prove the form is one
 * that some of them really do read as /admin/secret (or run as DELETE): none of it is theory.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSession } from '../../harness/http.js';
import { type RunningNginx, startNginx } from '../../harness/processes.js';
import { type RawReply, rawRequest } from '../../harness/raw-http.js';
import { type Service, startService } from '../../src/main.js';
import { EXPRESS_VERSIONS, RAN, startExpressApp } from '../support/apps/express-app.js';
import { READINGS, type RunningApp, startReadingApp, startUrlsplitApp } from '../support/apps/readings.js';
import { startTomcat } from '../support/apps/tomcat.js';
import { quietLogger, testConfig } from '../support/service.js';

const SECRET = `SECRET-${randomBytes(8).toString('hex')}`;
const LOGIN_TOKEN = 'app-servers-login-token-0123456789';

const TOMCAT = 'tomcat 10';
const PYTHON = 'python-urlsplit';
const EXPRESS = Object.keys(EXPRESS_VERSIONS);
const APPS = [TOMCAT, PYTHON, ...Object.keys(READINGS), ...EXPRESS];

let svc: Service;
const running = new Map<string, { app: RunningApp; nginx: RunningNginx }>();
let admin: string;
let user: string;

beforeAll(async () => {
  svc = await startService(
    testConfig({ SESSIONGATE_SECRET: 'app-servers-secret-0123456789abcdef0123456789', SESSIONGATE_LOGIN_TOKEN: LOGIN_TOKEN }, { example: true }),
    quietLogger(),
  );
  const apps = await Promise.all([
    startTomcat(SECRET),
    startUrlsplitApp(SECRET),
    ...Object.entries(READINGS).map(([name, r]) => startReadingApp(name, r.read, SECRET)),
    ...EXPRESS.map((name) => startExpressApp(name, SECRET)),
  ]);
  for (const app of apps) running.set(app.name, { app, nginx: await startNginx({ sessiongatePort: svc.ports.http, appPort: app.port }) });
  const http = `http://127.0.0.1:${svc.ports.http}`;
  admin = await createSession(http, LOGIN_TOKEN, 'root', ['admin']);
  user = await createSession(http, LOGIN_TOKEN, 'alice', ['user']);
}, 120_000);

afterAll(async () => {
  await Promise.all([...running.values()].map(async ({ app, nginx }) => (await nginx.stop(), await app.stop())));
  await svc?.close();
});

interface Req {
  method?: string;
  target: string;
  headers?: Array<[string, string]>;
  body?: string;
}

function ask(port: number, req: Req, cookie?: string): Promise<RawReply> {
  const headers: Array<[string, string]> = [...(req.headers ?? [])];
  if (cookie !== undefined) headers.push(['Cookie', cookie]);
  return rawRequest(port, { method: req.method, target: req.target, headers, body: req.body });
}

const through = (app: string, req: Req, cookie?: string) => ask(running.get(app)!.nginx.port, req, cookie);
const direct = (app: string, req: Req) => ask(running.get(app)!.app.port, req);

// ---------------------------------------------------------------------------------------------
// Paths: forms that reach /admin/secret for some backend. `readers` names the applications
// here that read the form as /admin/secret when asked directly (at least those).
// ---------------------------------------------------------------------------------------------

const PATHS: Array<{ target: string; what: string; readers: string[] }> = [
  { target: '/admin/secret', what: 'the protected path itself', readers: APPS },
  { target: '/ADMIN/secret', what: 'upper case', readers: ['dotnet', ...EXPRESS] },
  { target: '/%61dmin/secret', what: 'an encoded unreserved letter', readers: ['whatwg', 'nfkc'] },
  { target: '/admin//secret', what: 'a repeated slash', readers: [TOMCAT, 'nfkc'] },
  // `;` and its encodings
  { target: '/~assets/..;/admin/secret', what: 'Tomcat ..;', readers: [TOMCAT] },
  { target: '/admin;x/secret', what: 'a ;param', readers: [TOMCAT, 'decode-then-params'] },
  { target: '/admin/secret;jsessionid=1', what: 'a jsessionid', readers: [TOMCAT, PYTHON, 'decode-then-params'] },
  { target: '/~assets/..%3b/admin/secret', what: 'encoded ..; (%3b)', readers: ['decode-then-params'] },
  { target: '/~assets/..%3B/admin/secret', what: 'encoded ..; (%3B)', readers: ['decode-then-params'] },
  { target: '/admin%3b/secret', what: 'an encoded ; after the protected segment', readers: ['decode-then-params'] },
  // `//` at the start
  { target: '//~assets/admin/secret', what: '// before the public prefix', readers: ['whatwg', PYTHON] },
  { target: '///admin/secret', what: '/// at the start', readers: [PYTHON, TOMCAT] },
  { target: '//x/admin/secret', what: '// and a made-up host', readers: ['whatwg', PYTHON] },
  // Unicode folded to ASCII
  { target: '/~assets/%ef%bc%8e%ef%bc%8e/admin/secret', what: 'fullwidth dots', readers: ['nfkc'] },
  { target: '/~assets/%e2%80%a5/admin/secret', what: 'the two-dot leader', readers: ['nfkc'] },
  { target: '/~assets/%e2%80%a4%e2%80%a4/admin/secret', what: 'two one-dot leaders', readers: ['nfkc'] },
  { target: '/~assets/%ef%bc%8e%ef%bc%8e%ef%bc%8fadmin/secret', what: 'fullwidth dots and solidus', readers: ['nfkc'] },
  { target: '/%ef%bd%81dmin/secret', what: 'a fullwidth letter', readers: ['nfkc'] },
  { target: '/adm%c4%b1n/secret', what: 'dotless i', readers: ['dotnet'] },
  { target: '/admin/%c5%bfecret', what: 'long s', readers: ['dotnet'] },
  // Segments that matchers trim
  { target: '/admin%20/secret', what: 'a trailing space', readers: ['dotnet', 'trimming'] },
  { target: '/%20admin/secret', what: 'a leading space', readers: ['trimming'] },
  { target: '/admin+/secret', what: "a trailing '+' (a space to form decoding)", readers: ['trimming'] },
  { target: '/admin./secret', what: 'a trailing dot', readers: ['dotnet'] },
  { target: '/admin%2e/secret', what: 'a trailing encoded dot', readers: ['dotnet'] },
  { target: '/admin.%20/secret', what: 'a trailing dot and space', readers: ['dotnet'] },
  // Traversal, refused before: regressions
  { target: '/~assets/%2e%2e/admin/secret', what: 'encoded ..', readers: ['whatwg', 'nfkc', 'dotnet', 'decode-then-params'] },
  { target: '/~assets/../admin/secret', what: '..', readers: [TOMCAT, 'whatwg', 'nfkc', 'dotnet', 'trimming', 'decode-then-params'] },
];

describe('real applications behind the shipped nginx config', () => {
  it.each(APPS)('%s serves the secret to an admin through nginx, and to nobody else at /admin/secret', async (app) => {
    const ok = await through(app, { target: '/admin/secret' }, admin);
    expect(ok.status).toBe(200);
    expect(ok.body).toContain(SECRET);
    for (const cookie of [undefined, user]) {
      const r = await through(app, { target: '/admin/secret' }, cookie);
      expect([401, 403]).toContain(r.status);
      expect(r.body).not.toContain(SECRET);
    }
  });

  it.each(PATHS)('path $target ($what): read as /admin/secret by $readers, never served through nginx without the admin role', async ({ target, readers }) => {
    for (const app of APPS) {
      const d = await direct(app, { target });
      if (readers.includes(app)) expect(d.body, `${app} reads ${target} directly`).toContain(SECRET);
      for (const [who, cookie] of [
        ['nobody', undefined],
        ['a user', user],
      ] as const) {
        const r = await through(app, { target }, cookie);
        expect(r.body, `${app} served ${target} to ${who} (${r.status})`).not.toContain(SECRET);
        expect(r.status, `${app} ${target} ${who}`).not.toBe(200);
      }
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Methods: an admin session, whose rule admits GET and POST only. `runs` is true when the
// express applications, asked directly, really run a method other than GET or POST.
// ---------------------------------------------------------------------------------------------

const TEXT: [string, string] = ['Content-Type', 'text/plain'];
const METHODS: Array<{ what: string; req: Req; runs: boolean }> = [
  { what: 'DELETE', req: { method: 'DELETE', target: '/admin/secret' }, runs: true },
  {
    what: 'X-HTTP-Method-Override: DELETE',
    req: { method: 'POST', target: '/admin/secret', headers: [TEXT, ['X-HTTP-Method-Override', 'DELETE']], body: 'x' },
    runs: true,
  },
  {
    what: 'X-HTTP-Method-Override: put',
    req: { method: 'POST', target: '/admin/secret', headers: [TEXT, ['X-HTTP-Method-Override', 'put']], body: 'x' },
    runs: true,
  },
  {
    what: 'X-HTTP-Method-Override: DELETE, GET',
    req: { method: 'POST', target: '/admin/secret', headers: [TEXT, ['X-HTTP-Method-Override', 'DELETE, GET']], body: 'x' },
    runs: true,
  },
  { what: 'x-http-method-override on a GET', req: { target: '/admin/secret', headers: [['x-http-method-override', 'DELETE']] }, runs: true },
  { what: 'X-HTTP-Method: PATCH', req: { method: 'POST', target: '/admin/secret', headers: [TEXT, ['X-HTTP-Method', 'PATCH']], body: 'x' }, runs: true },
  {
    what: 'X-Method-Override: DELETE',
    req: { method: 'POST', target: '/admin/secret', headers: [TEXT, ['X-Method-Override', 'DELETE']], body: 'x' },
    runs: true,
  },
  { what: '?_method=DELETE on a GET', req: { target: '/admin/secret?_method=DELETE' }, runs: true },
  { what: '?_method=delete on a POST', req: { method: 'POST', target: '/admin/secret?_method=delete', headers: [TEXT], body: 'x' }, runs: true },
  { what: '?%5Fmethod=PUT', req: { target: '/admin/secret?%5Fmethod=PUT' }, runs: true },
  { what: '?x=1&_method=PATCH', req: { target: '/admin/secret?x=1&_method=PATCH' }, runs: true },
  {
    what: '_method=DELETE in a form body',
    req: { method: 'POST', target: '/admin/secret', headers: [['Content-Type', 'application/x-www-form-urlencoded']], body: '_method=DELETE' },
    runs: true,
  },
  {
    what: '_method in a JSON body',
    req: { method: 'POST', target: '/admin/secret', headers: [['Content-Type', 'application/json']], body: '{"_method":"PUT"}' },
    runs: true,
  },
  // Rack (Rails) parses a POST body without a Content-Type as a form; express does not.
  { what: '_method=DELETE in a body without Content-Type', req: { method: 'POST', target: '/admin/secret', body: '_method=DELETE' }, runs: false },
];

describe('method overrides through express 4 and 5 with method-override', () => {
  it.each(EXPRESS)('%s: an admin GETs and POSTs, and an override to an allowed method is fine', async (app) => {
    for (const req of <Req[]>[
      { target: '/admin/secret' },
      { method: 'POST', target: '/admin/secret', headers: [TEXT], body: 'x' },
      { method: 'POST', target: '/admin/secret?_method=GET', headers: [TEXT, ['X-HTTP-Method-Override', 'POST']], body: 'x' },
    ]) {
      const r = await through(app, req, admin);
      expect(r.status, JSON.stringify(req)).toBe(200);
      expect(r.body).toContain(SECRET);
      expect(r.body).not.toContain(RAN);
    }
  });

  it.each(METHODS)('$what: never run through nginx, for an admin whose rule admits GET and POST', async ({ req, runs }) => {
    for (const app of EXPRESS) {
      if (runs) expect((await direct(app, req)).body, `${app} runs it directly`).toContain(RAN);
      const r = await through(app, req, admin);
      expect(r.body, `${app} ran it through nginx (${r.status})`).not.toContain(RAN);
      expect(r.status, app).toBe(403);
    }
    // The other applications take the method as sent: nothing comes back from them either.
    for (const app of APPS.filter((a) => !EXPRESS.includes(a))) expect((await through(app, req, admin)).status, app).toBe(403);
  });
});
