/**
 * Which listener serves what, on the built service: the admin port has health, readiness and
 * metrics and nothing that changes state; the token API (`/tokens`) has a listener of its own,
 * on 127.0.0.1 by default even when the admin port is bound to every address, and a
 * non-loopback address for it is refused unless `listen.api_allow_remote` says so. The CLI's
 * token commands find it from the configuration.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send } from '../../harness/http.js';
import { type RunningService, startService } from '../../harness/processes.js';
import { run } from '../../src/cli/index.js';
import { loadConfig } from '../../src/config.js';

const LOGIN_TOKEN = 'listeners-login-token-0123456789';
const SECRET = 'listeners-secret-0123456789abcdef0123456789';
const bearer: Array<[string, string]> = [['Authorization', `Bearer ${LOGIN_TOKEN}`]];

/** True when a TCP connection to host:port is accepted. */
function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect(port, host);
    sock.once('connect', () => (sock.destroy(), resolve(true)));
    sock.once('error', () => resolve(false));
  });
}

let sg: RunningService;
beforeAll(async () => {
  // The admin port on every address, as a cluster deployment binds it for probes and scrapes.
  sg = await startService({ env: { SESSIONGATE_SECRET: SECRET, SESSIONGATE_LOGIN_TOKEN: LOGIN_TOKEN, SESSIONGATE_ADMIN_HOST: '0.0.0.0' } });
});
afterAll(async () => {
  await sg?.stop();
});

describe('the admin listener and the token API listener', () => {
  it('the token API answers on its own port, and is a JSON 404 on the admin port', async () => {
    const created = await send(`http://127.0.0.1:${sg.apiPort}/tokens`, {
      method: 'POST',
      headers: [...bearer, ['Content-Type', 'application/json']],
      body: '{"user_id":"svc-listeners"}',
    });
    expect(created.status, created.body).toBe(201);
    const id = created.json<{ id: string }>().id;
    const listed = await send(`http://127.0.0.1:${sg.apiPort}/tokens`, { headers: bearer });
    expect(listed.json<Array<{ id: string }>>().map((t) => t.id)).toContain(id);

    for (const [method, path] of [
      ['GET', '/tokens'],
      ['POST', '/tokens'],
      ['DELETE', `/tokens/${id}`],
    ] as const) {
      const r = await send(`http://127.0.0.1:${sg.adminPort}${path}`, {
        method,
        headers: [...bearer, ['Content-Type', 'application/json']],
        ...(method === 'POST' ? { body: '{"user_id":"svc-admin-port"}' } : {}),
      });
      expect(r.status, `${method} ${path} on the admin port`).toBe(404);
      expect(r.json(), `${method} ${path}`).toEqual({ error: 'not_found' });
    }
    // The DELETE on the admin port revoked nothing.
    expect((await send(`http://127.0.0.1:${sg.apiPort}/tokens`, { headers: bearer })).json<Array<{ id: string }>>().map((t) => t.id)).toContain(id);
  });

  it('/healthz, /readyz and /metrics answer on the admin port only', async () => {
    expect((await send(`http://127.0.0.1:${sg.adminPort}/healthz`)).json()).toMatchObject({ status: 'ok' });
    expect((await send(`http://127.0.0.1:${sg.adminPort}/readyz`)).status).toBe(200);
    expect((await send(`http://127.0.0.1:${sg.adminPort}/metrics`)).body).toMatch(/^sessiongate_store_up 1$/m);
    for (const path of ['/healthz', '/readyz', '/metrics']) {
      const r = await send(`http://127.0.0.1:${sg.apiPort}${path}`);
      expect(r.status, `${path} on the token API port`).toBe(404);
      expect(r.json()).toEqual({ error: 'not_found' });
    }
  });

  it('with admin_host 0.0.0.0, the token API still listens on 127.0.0.1 only', async () => {
    const line = sg.logs().find((l) => l.includes('"msg":"listening"'))!;
    expect(JSON.parse(line)).toMatchObject({ api_host: '127.0.0.1', api_port: sg.apiPort, admin_port: sg.adminPort });
    // 127.0.0.2 is this machine too, but not the address 127.0.0.1: a wildcard bind accepts
    // there, a bind to 127.0.0.1 does not. The admin port (0.0.0.0) shows the probe works.
    expect(await accepts('127.0.0.2', sg.adminPort)).toBe(true);
    expect(await accepts('127.0.0.2', sg.apiPort)).toBe(false);
    expect(await accepts('127.0.0.1', sg.apiPort)).toBe(true);
  });

  it('sessiongate token finds the token API from the configuration (SESSIONGATE_API_PORT)', async () => {
    let out = '';
    let err = '';
    const env = { SESSIONGATE_LOGIN_TOKEN: LOGIN_TOKEN, SESSIONGATE_SECRET: SECRET, SESSIONGATE_API_PORT: String(sg.apiPort) };
    expect(await run(['token', 'list'], env, { out: (s) => (out += s), err: (s) => (err += s) }), err).toBe(0);
    expect(out).toMatch(/svc-listeners/);
    // The admin port is no longer where tokens are: the old flag says where they went.
    err = '';
    expect(await run(['token', 'list', '--admin-url', `http://127.0.0.1:${sg.adminPort}`], env, { out: () => {}, err: (s) => (err += s) })).toBe(2);
    expect(err).toContain('--admin-url is gone: the token API has its own listener (listen.api_port, default 9183); use --api-url');
  });
});

describe('listen.api_host, listen.api_port: configuration', () => {
  const problems = (env: Record<string, string>) => {
    const r = loadConfig({ env });
    return r.ok ? [] : r.problems;
  };

  it('defaults to 127.0.0.1:9183 whatever host and admin_host are', () => {
    const r = loadConfig({ env: { SESSIONGATE_HOST: '0.0.0.0', SESSIONGATE_ADMIN_HOST: '0.0.0.0' } });
    expect(r.ok && r.config.listen).toMatchObject({ host: '0.0.0.0', adminHost: '0.0.0.0', apiHost: '127.0.0.1', apiPort: 9183 });
  });

  it('refuses a non-loopback api_host unless api_allow_remote is true, and then warns', () => {
    expect(problems({ SESSIONGATE_API_HOST: '0.0.0.0' })).toEqual([
      'listen.api_host (from SESSIONGATE_API_HOST): refused: 0.0.0.0 is not a loopback address; the token API creates credentials for any user, so it listens on 127.0.0.1, ::1 or localhost unless listen.api_allow_remote is true',
    ]);
    for (const host of ['127.0.0.1', '::1', 'localhost', '127.0.0.53']) expect(problems({ SESSIONGATE_API_HOST: host }), host).toEqual([]);
    const allowed = loadConfig({ env: { SESSIONGATE_API_HOST: '10.1.2.3', SESSIONGATE_API_ALLOW_REMOTE: 'true' } });
    expect(allowed.ok && allowed.config.listen.apiHost).toBe('10.1.2.3');
    expect(allowed.warnings.join('\n')).toContain(
      'listen.api_host is 10.1.2.3 (api_allow_remote): the token API, which creates credentials for any user, is reachable beyond this machine',
    );
    expect(problems({ SESSIONGATE_API_ALLOW_REMOTE: 'yes' })).toEqual([
      expect.stringMatching(/^listen\.api_allow_remote \(from SESSIONGATE_API_ALLOW_REMOTE\): /),
    ]);
  });

  it('api_port must differ from the other ports (0, a free one, excepted)', () => {
    expect(problems({ SESSIONGATE_API_PORT: '9182' })).toEqual(['listen: http_port, grpc_port, admin_port and api_port must differ']);
    expect(problems({ SESSIONGATE_API_PORT: '9180' })).toEqual(['listen: http_port, grpc_port, admin_port and api_port must differ']);
    expect(problems({ SESSIONGATE_API_PORT: '0', SESSIONGATE_ADMIN_PORT: '0' })).toEqual([]);
    expect(problems({ SESSIONGATE_API_PORT: 'x' })).toEqual([
      'listen.api_port (from SESSIONGATE_API_PORT): must be a port number (0-65535; 0 picks a free one)',
    ]);
  });
});
