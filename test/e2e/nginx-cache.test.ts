/**
 * The proxy-side decision cache through a real nginx (the shipped decision-cache.conf): answers
 * are reused within sessiongate's X-Accel-Expires, never across cookies or rules, and a logout
 * reaches the cached proxy only when the cached allow runs out. Requests built so that their
 * fields would run together into another request's key are decided afresh.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cookiePair, send } from '../../harness/http.js';
import {
  type EchoUpstream,
  type RunningNginx,
  type RunningService,
  startEchoUpstream,
  startNginx,
  startService,
  tempDir,
  waitFor,
} from '../../harness/processes.js';
import { rawRequest } from '../../harness/raw-http.js';

const TOKEN = 'cache-login-token-0123456789';
let sg: RunningService;
let nginx: RunningNginx;
let app: EchoUpstream;

beforeAll(async () => {
  const dir = tempDir('sg-cache-');
  const config = join(dir, 'sessiongate.yaml');
  writeFileSync(
    config,
    `proxy_cache: { ttl: 3s }
login_token: ${TOKEN}
strip_headers: [X-Auth-User]
rules:
  - { path: /admin/, access: roles, roles: [admin] }
  - { path: /, access: authenticated }
`,
  );
  app = await startEchoUpstream();
  sg = await startService({ config, env: { SESSIONGATE_SECRET: 'c'.repeat(40) } });
  nginx = await startNginx({ sessiongatePort: sg.httpPort, appPort: app.port, decisionCache: true });
});
afterAll(async () => {
  await nginx?.stop();
  await sg?.stop();
  await app?.close();
});

async function login(user: string, roles: string[] = ['user']): Promise<string> {
  const r = await send(`${sg.url}/~session`, {
    method: 'POST',
    headers: [
      ['Authorization', `Bearer ${TOKEN}`],
      ['Content-Type', 'application/json'],
    ],
    body: JSON.stringify({ user_id: user, roles }),
  });
  return cookiePair(r.cookies[0]!);
}

/** How many decisions sessiongate has made, from its metrics. */
async function decisions(): Promise<number> {
  const text = (await send(`http://127.0.0.1:${sg.adminPort}/metrics`)).body;
  return [...text.matchAll(/^sessiongate_decisions_total\{[^}]*transport="nginx"[^}]*\} (\d+)$/gm)].reduce((a, m) => a + Number(m[1]), 0);
}

const get = (path: string, cookie: string) => send(nginx.url, { path, headers: [['Cookie', cookie]] });

/** Exactly these bytes through nginx; the status, and whether the application was reached. */
async function raw(target: string, headers: Array<[string, string]>, method = 'GET'): Promise<{ status: number; reached: boolean }> {
  const before = app.seen.length;
  const r = await rawRequest(nginx.port, { method, target, headers });
  return { status: r.status, reached: app.seen.length > before };
}

describe('nginx decision cache', () => {
  it('reuses an allow: repeated requests reach sessiongate once', async () => {
    const alice = await login('alice');
    const before = await decisions();
    for (let i = 0; i < 5; i++) {
      const r = await get('/app/page', alice);
      expect(r.status).toBe(200);
      expect(app.seen.at(-1)?.headers['x-user-id']).toBe('alice');
    }
    expect((await decisions()) - before).toBe(1);
  });

  it("never serves one cookie's answer to another cookie or another rule", async () => {
    const alice = await login('alice2');
    const bob = await login('bob');
    expect((await get('/app/x', alice)).status).toBe(200);
    const asBob = await get('/app/x', bob);
    expect(asBob.status).toBe(200);
    expect(app.seen.at(-1)?.headers['x-user-id']).toBe('bob');
    // Same cookie, a path under a stricter rule: decided afresh, and refused.
    expect((await get('/admin/x', alice)).status).toBe(403);
    // A second session cookie beside the cached one changes the key, and the decision.
    expect((await get('/app/x', `${alice}; ${bob}`)).status).toBe(401);
    // No cookie at all: not the cached allow.
    expect((await send(nginx.url, { path: '/app/x' })).status).toBe(401);
  });

  it('lets a logout through only when the cached allow runs out (proxy_cache.ttl)', async () => {
    const carol = await login('carol');
    expect((await get('/app/bye', carol)).status).toBe(200);
    const out = await send(`${nginx.url}/~session`, { method: 'DELETE', headers: [['Cookie', carol]] });
    expect(out.status).toBe(204);
    // The trade-off: this nginx still has the allow...
    expect((await get('/app/bye', carol)).status).toBe(200);
    // ...for at most the 3 s TTL.
    expect(await waitFor(async () => (await get('/app/bye', carol)).status === 401, 6000)).toBe(true);
  });

  // The key joins fields a client controls. Each pair below would make one key if a separator the
  // client can send (`|`) joined them: the first request is allowed and cached, the second is
  // one sessiongate refuses, and must not be answered with the first one's allow.
  it('a role rule holds when the path and the Cookie shift a separator between them', async () => {
    const alice = await login('alice-shift');
    // `/admin|z` is not under /admin/ (the segment is `admin|z`): an authenticated path.
    expect((await raw('/admin|z', [['Cookie', `x=1; ${alice}`]])).status).toBe(200);
    const shifted = await raw('/admin', [['Cookie', `z|x=1; ${alice}`]]);
    expect(shifted.status).toBe(403);
    expect(shifted.reached).toBe(false);
  });

  it('the .. refusal holds when the path and the Cookie shift a separator between them', async () => {
    const alice = await login('alice-dots');
    expect((await raw('/app/', [['Cookie', `/../../admin/x|a=1; ${alice}`]])).status).toBe(200);
    const shifted = await raw('/app/|/../../admin/x', [['Cookie', `a=1; ${alice}`]]);
    expect(shifted.status).not.toBe(200);
    expect(shifted.reached).toBe(false);
  });

  it('a bad cookie stays refused when the Cookie and Authorization shift a separator between them', async () => {
    const alice = await login('alice-auth');
    const forged = `sessiongate=${'A'.repeat(43)}.${'B'.repeat(43)}.${'C'.repeat(43)}`;
    // One forged and one good session cookie: the good one decides.
    expect((await raw('/app/auth', [['Cookie', `${forged}|; ${alice}`]])).status).toBe(200);
    const shifted = await raw('/app/auth', [
      ['Cookie', forged],
      ['Authorization', `; ${alice}|`],
    ]);
    expect(shifted.status).toBe(401);
    expect(shifted.reached).toBe(false);
  });

  it('spoofed identity headers are judged by sessiongate, not answered from the cache', async () => {
    const alice = await login('alice-spoof');
    expect((await raw('/app/spoof', [['Cookie', alice]])).status).toBe(200);
    for (const [name, value] of [
      ['X-User-Id', 'admin'],
      ['X-User-Roles', 'admin'],
      ['X-User-Id', '0'],
      ['X-Auth-User', 'admin'],
    ] as const) {
      const r = await raw('/app/spoof', [
        ['Cookie', alice],
        [name, value],
      ]);
      expect(r.status, `${name}: ${value}`).toBe(403);
      expect(r.reached).toBe(false);
    }
  });

  it('method overrides and the content type reach sessiongate instead of the cached allow', async () => {
    const alice = await login('alice-override');
    expect((await raw('/app/override', [['Cookie', alice]])).status).toBe(200);
    for (const name of ['X-HTTP-Method-Override', 'X-HTTP-Method', 'X-Method-Override']) {
      for (const value of ['DELETE', '0']) {
        const before = await decisions();
        expect(
          (
            await raw('/app/override', [
              ['Cookie', alice],
              [name, value],
            ])
          ).status,
        ).toBe(200);
        expect((await decisions()) - before, `${name}: ${value}`).toBe(1);
      }
    }
    // POST with one content type is cached; with another it is decided again.
    const json = await raw(
      '/app/form',
      [
        ['Cookie', alice],
        ['Content-Type', 'application/json'],
      ],
      'POST',
    );
    expect(json.status).toBe(200);
    const before = await decisions();
    expect(
      (
        await raw(
          '/app/form',
          [
            ['Cookie', alice],
            ['Content-Type', 'application/x-www-form-urlencoded'],
          ],
          'POST',
        )
      ).status,
    ).toBe(200);
    expect((await decisions()) - before).toBe(1);
  });
});
