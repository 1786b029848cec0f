/**
 * `sessiongate doctor` against a real nginx: the shipped config passes every check; a
 * deliberately broken one (client copies of X-User-Id kept, underscores passed, the client's
 * X-Original-URI trusted) fails, and the failing checks are named. The shipped HAProxy config
 * passes every check too, and one that keeps the client's identity headers fails.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningHaproxy, startHaproxy } from '../../harness/haproxy.js';
import { cookiePair, send } from '../../harness/http.js';
import { type EchoUpstream, type RunningNginx, startEchoUpstream, startNginx } from '../../harness/processes.js';
import { run } from '../../src/cli/index.js';
import { type Service, startService } from '../../src/main.js';
import { quietLogger, testConfig } from '../support/service.js';

const LOGIN_TOKEN = 'doctor-login-token-0123456789';
let svc: Service;
let app: EchoUpstream;
let good: RunningNginx;
let broken: RunningNginx;
let haproxy: RunningHaproxy;
let brokenHaproxy: RunningHaproxy;

/** Edits a file of the nginx copy, insisting the text to replace is there. */
function edit(file: string, from: string, to: string): void {
  const text = readFileSync(file, 'utf8');
  if (!text.includes(from)) throw new Error(`${file} no longer contains ${from}`);
  writeFileSync(file, text.replace(from, to));
}

beforeAll(async () => {
  svc = await startService(
    testConfig({ SESSIONGATE_SECRET: 'doctor-secret-0123456789abcdef0123456789ab', SESSIONGATE_LOGIN_TOKEN: LOGIN_TOKEN }, { example: true }),
    quietLogger(),
  );
  app = await startEchoUpstream();
  good = await startNginx({ sessiongatePort: svc.ports.http, appPort: app.port });
  broken = await startNginx({
    sessiongatePort: svc.ports.http,
    appPort: app.port,
    mutate: (dir) => {
      // Three classic mistakes: the identity header is not overwritten, names with `_` are
      // passed on, and the auth subrequest takes the URI the client claims.
      edit(join(dir, 'sessiongate/protect.conf'), 'proxy_set_header X-User-Id    $sessiongate_user_id;', '');
      edit(join(dir, 'nginx.conf'), 'underscores_in_headers off;', 'underscores_in_headers on;');
      // (the way a config "behind another proxy" keeps an upstream proxy's header, from anyone)
      edit(
        join(dir, 'nginx.conf'),
        'underscores_in_headers on;',
        'underscores_in_headers on;\n    map $http_x_original_uri $sg_original_uri { "" $request_uri; default $http_x_original_uri; }',
      );
      edit(join(dir, 'sessiongate/endpoints.conf'), 'proxy_set_header X-Original-URI $request_uri;', 'proxy_set_header X-Original-URI $sg_original_uri;');
    },
  });
  haproxy = await startHaproxy({ sessiongatePort: svc.ports.http, appPort: app.port });
  brokenHaproxy = await startHaproxy({
    sessiongatePort: svc.ports.http,
    appPort: app.port,
    // The protected list handed to the Lua action loses X-User-Id: its client copies stay.
    mutate: (cfg) => {
      const from = '"X-User-Id X-User-Roles';
      if (!cfg.includes(from)) throw new Error(`haproxy.cfg no longer contains ${from}`);
      return cfg.replace(from, '"X-User-Roles');
    },
  });
});

afterAll(async () => {
  await good?.stop();
  await broken?.stop();
  await haproxy?.stop();
  await brokenHaproxy?.stop();
  await app?.close();
  await svc?.close();
});

async function login(): Promise<string> {
  const r = await send(`http://127.0.0.1:${svc.ports.http}/~session`, {
    method: 'POST',
    headers: [
      ['Authorization', `Bearer ${LOGIN_TOKEN}`],
      ['Content-Type', 'application/json'],
    ],
    body: JSON.stringify({ user_id: 'doc', roles: ['user'], attributes: { email: 'doc@example.com' } }),
  });
  expect(r.status).toBe(201);
  return cookiePair(r.cookies[0]!).slice('sessiongate='.length);
}

async function doctor(url: string, ...more: string[]): Promise<{ code: number; out: string }> {
  let out = '';
  const code = await run(['doctor', '--url', url, ...more], {}, { out: (s) => (out += s), err: (s) => void process.stderr.write(s) });
  return { code, out };
}

describe('sessiongate doctor', () => {
  it('the shipped nginx config: every check passes, with and without a session', async () => {
    const anon = await doctor(good.url);
    expect(anon.out, anon.out).toMatch(/\n(\d+) passed, 0 failed, 1 skipped\n$/);
    expect(anon.code).toBe(0);
    const withSession = await doctor(good.url, `--cookie=${await login()}`);
    expect(withSession.out, withSession.out).toMatch(/ 0 failed, 0 skipped\n$/);
    expect(withSession.out).toMatch(/session: upstream receives its identity\s+.*X-User-Id: doc.*PASS/);
    expect(withSession.code).toBe(0);
    expect(Number(/(\d+) passed/.exec(withSession.out)![1])).toBeGreaterThan(60);
  });

  it('a broken config: non-zero exit, the failing checks named', async () => {
    const r = await doctor(broken.url, `--cookie=${await login()}`);
    expect(r.code).toBe(1);
    const failed = r.out.split('\n').filter((l) => /\bFAIL\b/.test(l));
    const names = failed.map((l) => l.slice(0, 44).trim());
    // The identity header itself reaches the upstream on the public path (next to a session,
    // sessiongate's own spoof guard still refuses it).
    expect(names).toContain('spoofed X-User-Id, no session');
    // Underscore aliases now reach the upstream.
    expect(names).toContain('spoofed x_user_id, no session');
    // The client's X-Original-URI decides.
    expect(names).toContain('forwarded header X-Original-URI');
    // And what stayed right still passes.
    expect(r.out).toMatch(/private probe needs a session\s.*PASS/);
    expect(r.out).toMatch(/forged cookie: garbage\s.*PASS/);
  });

  it('the shipped HAProxy config: every check passes, with and without a session', async () => {
    const anon = await doctor(haproxy.url);
    expect(anon.out, anon.out).toMatch(/\n(\d+) passed, 0 failed, 1 skipped\n$/);
    expect(anon.code).toBe(0);
    const withSession = await doctor(haproxy.url, `--cookie=${await login()}`);
    expect(withSession.out, withSession.out).toMatch(/ 0 failed, 0 skipped\n$/);
    expect(withSession.out).toMatch(/session: upstream receives its identity\s+.*X-User-Id: doc.*PASS/i); // HAProxy sends header names in lower case
    expect(withSession.code).toBe(0);
    expect(Number(/(\d+) passed/.exec(withSession.out)![1])).toBeGreaterThan(60);
  });

  it('an HAProxy config that keeps client copies of X-User-Id: non-zero exit, the check named', async () => {
    const r = await doctor(brokenHaproxy.url, `--cookie=${await login()}`);
    expect(r.code).toBe(1);
    const names = r.out
      .split('\n')
      .filter((l) => /\bFAIL\b/.test(l))
      .map((l) => l.slice(0, 44).trim());
    expect(names).toContain('spoofed X-User-Id, no session');
    expect(names).toContain('spoofed x_user_id, no session');
    expect(r.out).toMatch(/private probe needs a session\s.*PASS/);
  });

  it('a URL without the probe routed: exit 2 with what to do', async () => {
    const r = await run(['doctor', '--url', `http://127.0.0.1:${app.port}`], {}, { out: () => {}, err: () => {} });
    expect(r).toBe(2);
  });
});
