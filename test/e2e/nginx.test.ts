/**
 * End to end through a real nginx running the shipped nginx/ config, the built sessiongate
 * running deploy/config.example.yaml (session times shortened), and an upstream that echoes
 * what it receives. What the upstream saw is the proof: identity set by sessiongate, never by
 * the client.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { cookiePair, type Reply, send } from '../../harness/http.js';
import {
  type Echoed,
  type EchoUpstream,
  ROOT,
  type RunningNginx,
  type RunningService,
  startEchoUpstream,
  startNginx,
  startService,
  tempDir,
} from '../../harness/processes.js';
import { canonicalHeaderName } from '../../src/core/headers.js';

const SECRET = 'e2e-secret-0123456789abcdef0123456789abcdef';
const LOGIN_TOKEN = 'e2e-login-token-0123456789';
const PROTECTED = new Set(['x-user-id', 'x-user-roles', 'x-user-email', 'x-auth-user']);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let sg: RunningService;
let nginx: RunningNginx;
let app: EchoUpstream;

beforeAll(async () => {
  const dir = tempDir('sg-e2e-');
  const config = parse(readFileSync(join(ROOT, 'deploy/config.example.yaml'), 'utf8')) as Record<string, unknown>;
  // Short lifetimes so expiry and rotation happen within the test.
  config['session'] = { absolute_ttl: '1h', idle_ttl: '3s', touch_interval: '1s', rotate_after: '2s', rotation_grace: '2s' };
  const configPath = join(dir, 'sessiongate.yaml');
  writeFileSync(configPath, stringify(config));
  app = await startEchoUpstream();
  sg = await startService({ config: configPath, env: { SESSIONGATE_SECRET: SECRET, SESSIONGATE_LOGIN_TOKEN: LOGIN_TOKEN } });
  nginx = await startNginx({ sessiongatePort: sg.httpPort, appPort: app.port });
});

afterAll(async () => {
  await nginx?.stop();
  await sg?.stop();
  await app?.close();
});

/** Logs in the way a login service does: straight to sessiongate, with the login token. */
async function login(user = 'alice', roles = ['user'], attributes: Record<string, unknown> = { email: `${user}@example.com` }): Promise<string> {
  const r = await send(`${sg.url}/~session`, {
    method: 'POST',
    headers: [
      ['Authorization', `Bearer ${LOGIN_TOKEN}`],
      ['Content-Type', 'application/json'],
    ],
    body: JSON.stringify({ user_id: user, roles, attributes }),
  });
  expect(r.status).toBe(201);
  expect(r.cookies).toHaveLength(1);
  return cookiePair(r.cookies[0]!);
}

/** A request through nginx; returns the reply and what the upstream saw (if anything). */
async function through(path: string, headers: Array<[string, string]> = [], method = 'GET'): Promise<{ reply: Reply; seen: Echoed | undefined }> {
  const before = app.seen.length;
  const reply = await send(nginx.url, { method, path, headers });
  return { reply, seen: app.seen.length > before ? app.seen[app.seen.length - 1] : undefined };
}

/** Every header the upstream received whose name is a protected header or an alias of one. */
function identityHeadersSeen(seen: Echoed): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (let i = 0; i < seen.rawHeaders.length; i += 2) {
    if (PROTECTED.has(canonicalHeaderName(seen.rawHeaders[i]!))) out.push([seen.rawHeaders[i]!, seen.rawHeaders[i + 1]!]);
  }
  return out;
}

describe('nginx auth_request end to end', () => {
  it('logs in and reaches the upstream with the right identity headers', async () => {
    const cookie = await login('alice', ['user', 'editor']);
    const { reply, seen } = await through('/app/page?x=1', [['Cookie', `theme=dark; ${cookie}; other=1`]]);
    expect(reply.status).toBe(200);
    expect(seen?.url).toBe('/app/page?x=1');
    expect(identityHeadersSeen(seen!).sort()).toEqual(
      [
        ['X-User-Email', 'alice@example.com'],
        ['X-User-Id', 'alice'],
        ['X-User-Roles', 'user,editor'],
      ].sort(),
    );
  });

  it('answers 401 without a cookie, and redirects a browser to login_url with rd', async () => {
    const api = await through('/app', [['Accept', 'application/json']]);
    expect(api.reply.status).toBe(401);
    expect(api.seen).toBeUndefined();

    const browser = await through('/app/page?q=1', [['Accept', 'text/html,application/xhtml+xml']]);
    expect(browser.reply.status).toBe(302);
    expect(browser.reply.headers['location']).toBe(`https://login.example.com/login?rd=${encodeURIComponent(`http://127.0.0.1:${nginx.port}/app/page?q=1`)}`);
    expect(browser.seen).toBeUndefined();
  });

  it('challenges a bearer caller instead of redirecting', async () => {
    const r = await through('/app', [
      ['Accept', 'text/html'],
      ['Authorization', `Bearer ${'A'.repeat(43)}.${'B'.repeat(43)}.${'C'.repeat(43)}`],
    ]);
    expect(r.reply.status).toBe(401);
    expect(r.reply.headers['www-authenticate']).toContain('Bearer realm="sessiongate"');
    expect(r.seen).toBeUndefined();
  });

  it('accepts the session token as a bearer token', async () => {
    const cookie = await login('bob');
    const { reply, seen } = await through('/app', [['Authorization', `Bearer ${cookie.split('=')[1]}`]]);
    expect(reply.status).toBe(200);
    expect(seen?.headers['x-user-id']).toBe('bob');
  });

  it('denies forged, malformed and foreign cookies', async () => {
    const good = await login();
    const [name, value] = good.split('=') as [string, string];
    const forged = `${name}=${value.slice(0, 44)}${value[44] === 'A' ? 'B' : 'A'}${value.slice(45)}`;
    for (const cookie of [forged, `${name}=garbage`, `${name}=`, `${name}=${'A'.repeat(43)}.${'B'.repeat(43)}.${'C'.repeat(43)}`]) {
      const r = await through('/app', [['Cookie', cookie]]);
      expect(r.reply.status, cookie).toBe(401);
      expect(r.seen).toBeUndefined();
    }
  });

  it('denies an idle-expired session', async () => {
    const cookie = await login();
    expect((await through('/app', [['Cookie', cookie]])).reply.status).toBe(200);
    await sleep(3200); // idle_ttl is 3s in this run
    const r = await through('/app', [['Cookie', cookie]]);
    expect(r.reply.status).toBe(401);
    expect(r.seen).toBeUndefined();
    expect(await sg.waitForLog('"reason":"idle_timeout"')).toBe(true);
  });

  it('refuses requests carrying X-User-Id in any case, and never lets an alias reach the upstream', async () => {
    const cookie = await login('carol');
    for (const name of ['X-User-Id', 'x-user-id', 'X-USER-ID', 'x-User-iD', 'X-User-Roles', 'X-Auth-User']) {
      const r = await through('/app', [
        ['Cookie', cookie],
        [name, 'root'],
      ]);
      expect(r.reply.status, name).toBe(403);
      expect(r.seen, name).toBeUndefined();
    }
    // `_` and `.` spellings are invalid header names to nginx: dropped before sessiongate or
    // the upstream could see them. The request goes on with the real identity only.
    for (const name of ['x_user_id', 'X_User_Id', 'X.User.Id', 'x.user.id', 'X-User_Id']) {
      const r = await through('/app', [
        ['Cookie', cookie],
        [name, 'root'],
      ]);
      expect(r.reply.status, name).toBe(200);
      expect(identityHeadersSeen(r.seen!), name).toEqual(expect.arrayContaining([['X-User-Id', 'carol']]));
      expect(
        identityHeadersSeen(r.seen!).every(([, v]) => v !== 'root'),
        name,
      ).toBe(true);
    }
  });

  it('never passes client identity headers to the upstream on public and anonymous paths', async () => {
    const spoof: Array<[string, string]> = [
      ['X-User-Id', 'root'],
      ['x-user-roles', 'admin'],
      ['X-Auth-User', 'root'],
      ['x_user_id', 'root'],
      ['X.User.Id', 'root'],
    ];
    const pub = await through('/~assets/app.css', spoof);
    expect(pub.reply.status).toBe(200);
    expect(identityHeadersSeen(pub.seen!)).toEqual([]);

    const anon = await through('/blog/post', spoof);
    expect(anon.reply.status).toBe(200);
    expect(identityHeadersSeen(anon.seen!)).toEqual([]);

    const cookie = await login('dave');
    const named = await through('/blog/post', [['Cookie', cookie], ...spoof]);
    expect(named.reply.status).toBe(200);
    expect(identityHeadersSeen(named.seen!).sort()).toEqual(
      [
        ['X-User-Email', 'dave@example.com'],
        ['X-User-Id', 'dave'],
        ['X-User-Roles', 'user'],
      ].sort(),
    );
  });

  it('serves the public path without a session', async () => {
    const r = await through('/~assets/app.css');
    expect(r.reply.status).toBe(200);
    expect(r.seen?.url).toBe('/~assets/app.css');
  });

  it('does not treat traversal tricks as the public path', async () => {
    const user = await login('erin', ['user']);
    for (const path of [
      '/~assets/../admin/',
      '/~assets/%2e%2e/admin/',
      '/~assets/%2E%2E/admin',
      '//admin/',
      '/admin;x',
      '/~assets/..;/admin/',
      '/~assets/..%2fadmin/',
      '/ADMIN/',
    ]) {
      const anon = await through(path);
      expect([401, 403], `${path} anonymous`).toContain(anon.reply.status);
      expect(anon.seen, path).toBeUndefined();
      const notAdmin = await through(path, [['Cookie', user]]);
      expect(notAdmin.reply.status, `${path} as a non-admin`).toBe(403);
      expect(notAdmin.seen, path).toBeUndefined();
    }
  });

  it('lets an admin into /admin/ with the listed methods only', async () => {
    const admin = await login('root', ['admin']);
    expect((await through('/admin/users', [['Cookie', admin]])).reply.status).toBe(200);
    // A POST whose body an application may read `_method` from is refused on a rule with methods.
    expect(
      (
        await through(
          '/admin/users',
          [
            ['Cookie', admin],
            ['Content-Type', 'text/plain'],
          ],
          'POST',
        )
      ).reply.status,
    ).toBe(200);
    const del = await through('/admin/users', [['Cookie', admin]], 'DELETE');
    expect(del.reply.status).toBe(403);
    expect(del.seen).toBeUndefined();
  });

  it('shows the session at GET /~session and refuses session creation through nginx', async () => {
    const cookie = await login('frank', ['user'], { email: 'f@example.com', team: 'x' });
    const who = await send(`${nginx.url}/~session`, { headers: [['Cookie', cookie]] });
    expect(who.status).toBe(200);
    expect(who.json()).toMatchObject({ user_id: 'frank', roles: ['user'], attributes: { email: 'f@example.com', team: 'x' } });
    expect(who.body).not.toContain(cookie.split('=')[1]!.split('.')[0]!);

    const post = await send(`${nginx.url}/~session`, {
      method: 'POST',
      headers: [
        ['Authorization', `Bearer ${LOGIN_TOKEN}`],
        ['Content-Type', 'application/json'],
      ],
      body: JSON.stringify({ user_id: 'mallory' }),
    });
    expect(post.status).toBe(403);
  });

  it('logs out through nginx: the cookie is cleared and the session ends', async () => {
    const cookie = await login('gina');
    expect((await through('/app', [['Cookie', cookie]])).reply.status).toBe(200);
    const out = await send(`${nginx.url}/~session`, { method: 'DELETE', headers: [['Cookie', cookie]] });
    expect(out.status).toBe(204);
    expect(out.cookies[0]).toMatch(/^sessiongate=; Max-Age=0;/);
    const after = await through('/app', [['Cookie', cookie]]);
    expect(after.reply.status).toBe(401);
    expect(after.seen).toBeUndefined();
  });

  it('rotates a session: the new cookie reaches the browser through nginx, the old one lasts the grace window', async () => {
    const old = await login('hana');
    await sleep(2100); // rotate_after is 2s
    const rotated = await through('/app', [['Cookie', old]]);
    expect(rotated.reply.status).toBe(200);
    expect(rotated.reply.cookies).toHaveLength(1);
    expect(rotated.reply.cookies[0]).toMatch(
      /^sessiongate=[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{43}; Max-Age=\d+; Path=\/; Expires=[^;]+; HttpOnly; Secure; SameSite=Lax$/,
    );
    const fresh = cookiePair(rotated.reply.cookies[0]!);
    expect(fresh).not.toBe(old);
    // Session cookies are never passed on to the application as identity.
    expect(rotated.seen?.headers['x-user-id']).toBe('hana');

    const viaNew = await through('/app', [['Cookie', fresh]]);
    expect(viaNew.reply.status).toBe(200);
    expect(viaNew.reply.cookies).toEqual([]);
    expect(viaNew.seen?.headers['x-user-id']).toBe('hana');
    const viaOld = await through('/app', [['Cookie', old]]);
    expect(viaOld.reply.status).toBe(200); // a request in flight during rotation is not logged out

    await sleep(2100); // rotation_grace is 2s
    const late = await through('/app', [['Cookie', old]]);
    expect(late.reply.status).toBe(401);
    expect(await sg.waitForLog('"reason":"rotated"')).toBe(true);
    const still = await through('/app', [['Cookie', fresh]]);
    expect(still.reply.status).toBe(200);
  });

  it('leaves nothing alarming in the nginx error log', () => {
    const errors = nginx
      .errorLog()
      .split('\n')
      .filter((l) => /\[(error|crit|alert|emerg)\]/.test(l))
      // limit_except refusing POST /~session is logged at error level by design.
      .filter((l) => !l.includes('access forbidden by rule'));
    expect(errors).toEqual([]);
  });
});
