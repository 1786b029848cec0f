/**
 * Existing sessions end to end: Express applications using the real express-session and
 * connect-redis write their sessions into a real redis-server; sessiongate (in-process, the
 * shipped example config plus `external_sessions`) reads them; a real nginx running the shipped
 * config asks sessiongate, and an echoing upstream shows what reached the application. The
 * generic adapter reads records the test writes as a home-grown login would.
 */

import { createHash, createHmac } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { RedisStore } from 'connect-redis';
import express from 'express';
import session from 'express-session';
import { Redis } from 'ioredis';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { cookiePair, type Reply, send } from '../../harness/http.js';
import { type Echoed, type EchoUpstream, ROOT, type RunningNginx, startEchoUpstream, startNginx, tempDir, waitFor } from '../../harness/processes.js';
import { type RedisProcess, startRedisServer } from '../../harness/redis.js';
import { loadConfig } from '../../src/config.js';
import { signatureOf } from '../../src/external/express-session.js';
import { type Service, startService } from '../../src/main.js';
import { createLogger } from '../../src/ops/logger.js';
import { createTokenCodec } from '../../src/session/token.js';

const NEW_SECRET = 'app secret, signing since the rotation';
const OLD_SECRET = 'app secret from before the rotation';
const TOUCH_SECRET = 'the touching app secret';
const HOUR = 3600_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface App {
  readonly url: string;
  /** Logs a user in the app's own way; returns the `connect.sid=…` pair the browser keeps. */
  login(user: string, opts?: { maxAge?: number }): Promise<string>;
  logout(cookie: string): Promise<void>;
  whoami(cookie: string): Promise<string | null>;
  close(): Promise<void>;
}

/** A small Express application with express-session and connect-redis (node-redis client). */
async function startApp(redisPort: number, opts: { secret: string | string[]; name?: string; prefix?: string }): Promise<App> {
  const client = createClient({ url: `redis://127.0.0.1:${redisPort}` });
  client.on('error', () => {});
  await client.connect();
  const app = express();
  app.use(
    session({
      store: new RedisStore({ client, prefix: opts.prefix ?? 'sess:' }),
      secret: opts.secret,
      ...(opts.name ? { name: opts.name } : {}),
      resave: false,
      saveUninitialized: false,
      cookie: { secure: false, httpOnly: true, maxAge: HOUR },
    }),
  );
  app.post('/login', (req, res, next) => {
    req.session.regenerate((err) => {
      if (err) return next(err);
      const user = String(req.query['user']);
      // What passport's serializeUser leaves, plus the app's own profile data.
      Object.assign(req.session, { passport: { user }, profile: { email: `${user}@example.com` }, roles: ['user', 'editor'] });
      if (req.query['maxAge']) req.session.cookie.maxAge = Number(req.query['maxAge']);
      req.session.save((e) => (e ? next(e) : res.json({ ok: true })));
    });
  });
  app.post('/logout', (req, res, next) => req.session.destroy((err) => (err ? next(err) : res.json({ ok: true }))));
  app.get('/whoami', (req, res) => res.json({ user: (req.session as unknown as { passport?: { user: string } }).passport?.user ?? null }));
  const server: Server = await new Promise((r) => {
    const s = app.listen(0, '127.0.0.1', () => r(s));
  });
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return {
    url,
    async login(user, o = {}) {
      const r = await send(`${url}/login?user=${encodeURIComponent(user)}${o.maxAge ? `&maxAge=${o.maxAge}` : ''}`, { method: 'POST' });
      expect(r.status).toBe(200);
      expect(r.cookies).toHaveLength(1);
      return cookiePair(r.cookies[0]!);
    },
    async logout(cookie) {
      expect((await send(`${url}/logout`, { method: 'POST', headers: [['Cookie', cookie]] })).status).toBe(200);
    },
    async whoami(cookie) {
      return (await send(`${url}/whoami`, { headers: [['Cookie', cookie]] })).json<{ user: string | null }>().user;
    },
    async close() {
      await new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      });
      client.destroy();
    },
  };
}

let redis: RedisProcess;
let db: Redis;
let svc: Service;
let nginx: RunningNginx;
let upstream: EchoUpstream;
/** Secrets [new, old]: signs with the new one. */
let app: App;
/** The same app before the secret rotation: signs with the old secret. */
let oldApp: App;
/** Another application on the same Redis and cookie name, with its own secret. */
let otherApp: App;
/** An app whose sessions sessiongate keeps alive (`touch: true`). */
let touchApp: App;
/** sessiongate's log: a denied decision's line carries its reason (nginx does not pass it on). */
const logLines: string[] = [];
let dir: string | undefined;

beforeAll(async () => {
  redis = await startRedisServer();
  db = new Redis({ host: '127.0.0.1', port: redis.port });
  app = await startApp(redis.port, { secret: [NEW_SECRET, OLD_SECRET] });
  oldApp = await startApp(redis.port, { secret: OLD_SECRET });
  otherApp = await startApp(redis.port, { secret: 'an unrelated application secret' });
  touchApp = await startApp(redis.port, { secret: TOUCH_SECRET, name: 'touch.sid', prefix: 'tsess:' });

  dir = tempDir('sg-external-');
  const secretFile = join(dir, 'app-secrets');
  writeFileSync(secretFile, `${NEW_SECRET}\n${OLD_SECRET}\n`);
  const store = `redis://127.0.0.1:${redis.port}`;
  const config = parse(readFileSync(join(ROOT, 'deploy/config.example.yaml'), 'utf8')) as Record<string, unknown>;
  config['headers'] = { 'X-User-Id': 'user_id', 'X-User-Roles': 'roles', 'X-User-Email': 'attributes.profile.email' };
  config['external_sessions'] = [
    { kind: 'express-session', store, secret_file: secretFile, roles: 'roles' },
    { kind: 'express-session', cookie: 'touch.sid', store, secrets: [TOUCH_SECRET], prefix: 'tsess:', touch: true },
    { kind: 'generic', cookie: 'app_token', store, key: 'session:{sha256}', user_id: 'user.id', roles: 'user.roles', expires_at: 'exp' },
    { kind: 'generic', cookie: 'legacy_sid', store, key: 'legacy:{token}', format: 'string' },
  ];
  const file = join(dir, 'sessiongate.yaml');
  writeFileSync(file, stringify(config));
  const loaded = loadConfig({
    file,
    env: {
      SESSIONGATE_HTTP_PORT: '0',
      SESSIONGATE_GRPC_PORT: '0',
      SESSIONGATE_ADMIN_PORT: '0',
      SESSIONGATE_API_PORT: '0',
      SESSIONGATE_SECRET: 'external-e2e-secret-0123456789abcdef0123',
    },
  });
  if (!loaded.ok) throw new Error(loaded.problems.join('\n'));
  svc = await startService(loaded.config, createLogger('info', new Writable({ write: (c: Buffer, _e, cb) => (logLines.push(c.toString()), cb()) })));
  upstream = await startEchoUpstream();
  nginx = await startNginx({ sessiongatePort: svc.ports.http, appPort: upstream.port });
  // sessiongate's connection to the app's Redis comes up in the background.
  await db.set('legacy:ready-check-token-0000', 'ready');
  const ready = await waitFor(async () => (await through([['Cookie', 'legacy_sid=ready-check-token-0000']])).reply.status === 200, 10_000);
  await db.del('legacy:ready-check-token-0000');
  expect(ready).toBe(true);
});

afterAll(async () => {
  await nginx?.stop();
  await upstream?.close();
  await svc?.close();
  for (const a of [app, oldApp, otherApp, touchApp]) await a?.close();
  db?.disconnect();
  await redis?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A protected request through nginx; the reply and what the upstream saw (if it was reached). */
async function through(headers: Array<[string, string]>, path = '/app/page'): Promise<{ reply: Reply; seen: Echoed | undefined }> {
  const before = upstream.seen.length;
  const reply = await send(nginx.url, { path, headers: [['Accept', 'application/json'], ...headers] });
  return { reply, seen: upstream.seen.length > before ? upstream.seen[upstream.seen.length - 1] : undefined };
}

function identity(seen: Echoed | undefined): Record<string, unknown> {
  return { id: seen?.headers['x-user-id'], roles: seen?.headers['x-user-roles'], email: seen?.headers['x-user-email'] };
}

async function expectDenied(headers: Array<[string, string]>, reason: string): Promise<void> {
  const logged = logLines.length;
  const { reply, seen } = await through(headers);
  expect(reply.status).toBe(401);
  expect(seen).toBeUndefined();
  const decisions = logLines
    .slice(logged)
    .map((l) => JSON.parse(l) as { msg: string; reason?: string })
    .filter((l) => l.msg === 'decision');
  expect(decisions.map((d) => d.reason)).toEqual([reason]);
}

/** The session ID in a `connect.sid=s%3A<sid>.<sig>` pair. */
function sidOf(pair: string): string {
  const raw = decodeURIComponent(pair.slice(pair.indexOf('=') + 1));
  return raw.slice(2, raw.lastIndexOf('.'));
}

/** Every key with its value and remaining TTL. */
async function snapshot(): Promise<Map<string, { value: string | null; pttl: number }>> {
  const out = new Map<string, { value: string | null; pttl: number }>();
  // DUMP: the serialised value, whatever its type.
  for (const key of (await db.keys('*')).sort()) out.set(key, { value: (await db.dumpBuffer(key))?.toString('hex') ?? null, pttl: await db.pttl(key) });
  return out;
}

/** Calls per command since the server started (INFO commandstats). */
async function commandCalls(): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const m of (await db.info('commandstats')).matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) out.set(m[1]!, Number(m[2]));
  return out;
}

describe('express-session + connect-redis', () => {
  it('the app cookie is s:<sid>.<base64 HMAC-SHA256 without padding>, URL-encoded', async () => {
    const cookie = await app.login('lena');
    const raw = decodeURIComponent(cookie.slice('connect.sid='.length));
    const sid = sidOf(cookie);
    expect(raw).toBe(`s:${sid}.${createHmac('sha256', NEW_SECRET).update(sid).digest('base64').replace(/=+$/, '')}`);
  });

  it('lets the app session through with its identity, and the app agrees who it is', async () => {
    const cookie = await app.login('alice');
    expect(await app.whoami(cookie)).toBe('alice');
    const { reply, seen } = await through([['Cookie', `theme=dark; ${cookie}`]]);
    expect(reply.status).toBe(200);
    expect(identity(seen)).toEqual({ id: 'alice', roles: 'user,editor', email: 'alice@example.com' });
  });

  it('a stale or forged sessiongate cookie left in the browser does not hide the live app session', async () => {
    const cookie = await app.login('mona');
    // Well-formed and signed with sessiongate's secret, but no such session (logged out, idle).
    const stale = createTokenCodec([Buffer.from('external-e2e-secret-0123456789abcdef0123')]).issue().token;
    const forged = `${'A'.repeat(43)}.${'B'.repeat(43)}.${'C'.repeat(43)}`;
    for (const own of [stale, forged]) {
      const { reply, seen } = await through([['Cookie', `sessiongate=${own}; ${cookie}`]]);
      expect(reply.status).toBe(200);
      expect(identity(seen).id).toBe('mona');
    }
    // Without the app cookie, the stale one is still what it is.
    await expectDenied([['Cookie', `sessiongate=${stale}`]], 'unknown_session');
  });

  it('accepts a cookie signed with the older of the rotated secrets', async () => {
    const cookie = await oldApp.login('olga');
    expect(await app.whoami(cookie)).toBe('olga'); // express-session itself accepts it too
    const { reply, seen } = await through([['Cookie', cookie]]);
    expect(reply.status).toBe(200);
    expect(seen?.headers['x-user-id']).toBe('olga');
  });

  it('denies a tampered cookie, and a real session signed with another secret', async () => {
    const cookie = await app.login('mallory');
    const sid = sidOf(cookie);
    const sig = decodeURIComponent(cookie).split('.').at(-1)!;
    const victim = await app.login('victim');
    // The victim's session ID under mallory's signature.
    await expectDenied([['Cookie', `connect.sid=${encodeURIComponent(`s:${sidOf(victim)}.${sig}`)}`]], 'bad_signature');
    const flipped = sig.at(-1) === 'A' ? `${sig.slice(0, -1)}B` : `${sig.slice(0, -1)}A`;
    await expectDenied([['Cookie', `connect.sid=${encodeURIComponent(`s:${sid}.${flipped}`)}`]], 'bad_signature');
    await expectDenied([['Cookie', `connect.sid=${sid}`]], 'malformed_cookie'); // unsigned

    const foreign = await otherApp.login('eve');
    expect(await db.exists(`sess:${sidOf(foreign)}`)).toBe(1);
    expect(await app.whoami(foreign)).toBeNull();
    await expectDenied([['Cookie', foreign]], 'bad_signature');
  });

  it('honours a logout done by the app on the next request', async () => {
    const cookie = await app.login('bob');
    expect((await through([['Cookie', cookie]])).reply.status).toBe(200);
    await app.logout(cookie);
    expect(await app.whoami(cookie)).toBeNull();
    await expectDenied([['Cookie', cookie]], 'unknown_session');
  });

  it('denies a session past its cookie.expires, even while its key is still there', async () => {
    const cookie = await app.login('carol', { maxAge: 1500 });
    expect((await through([['Cookie', cookie]])).seen?.headers['x-user-id']).toBe('carol');
    // As with connect-redis' disableTTL: the key outlives the cookie.
    await db.persist(`sess:${sidOf(cookie)}`);
    await sleep(1600);
    expect(await db.exists(`sess:${sidOf(cookie)}`)).toBe(1);
    await expectDenied([['Cookie', cookie]], 'unknown_session');
  });

  it('passes no control character from the app session into a header', async () => {
    const cookie = await app.login('dave');
    const key = `sess:${sidOf(cookie)}`;
    const stored = JSON.parse((await db.get(key))!) as Record<string, unknown>;
    await db.set(key, JSON.stringify({ ...stored, profile: { email: 'dave@example.com\r\nX-User-Roles: admin' } }), 'KEEPTTL');
    const { reply, seen } = await through([['Cookie', cookie]]);
    expect(reply.status).toBe(200);
    expect(identity(seen)).toEqual({ id: 'dave', roles: 'user,editor', email: undefined });
    await db.set(key, JSON.stringify({ ...stored, passport: { user: 'dave\r\nX-User-Roles: admin' } }), 'KEEPTTL');
    await expectDenied([['Cookie', cookie]], 'unknown_session');
  });
});

describe('generic sessions', () => {
  it('reads a JSON record at session:{sha256}', async () => {
    const token = 'Zq3v9Xb2Lm7Np4Rt8Ws1Yu6Ki5Oj0Hg2';
    const key = `session:${createHash('sha256').update(token).digest('hex')}`;
    await db.set(
      key,
      JSON.stringify({ user: { id: 'erin', roles: ['admin'] }, exp: Math.floor(Date.now() / 1000) + 3600, profile: { email: 'erin@example.com' } }),
    );
    const { reply, seen } = await through([['Cookie', `app_token=${token}`]], '/admin/panel');
    expect(reply.status).toBe(200);
    expect(identity(seen)).toEqual({ id: 'erin', roles: 'admin', email: 'erin@example.com' });
    expect(await db.exists(`session:${token}`)).toBe(0); // looked up by hash, not by the token

    await db.set(key, JSON.stringify({ user: { id: 'erin', roles: ['admin'] }, exp: Math.floor(Date.now() / 1000) - 1 }));
    await expectDenied([['Cookie', `app_token=${token}`]], 'unknown_session');
  });

  it('reads a string record at legacy:{token} as the user ID', async () => {
    const token = '6f1e2d3c4b5a69788796a5b4c3d2e1f0';
    await db.set(`legacy:${token}`, 'frank');
    const { reply, seen } = await through([['Cookie', `legacy_sid=${token}`]]);
    expect(reply.status).toBe(200);
    expect(identity(seen)).toEqual({ id: 'frank', roles: undefined, email: undefined });
    // A user without the admin role is refused by the rule, with its roles from the record (none).
    expect((await through([['Cookie', `legacy_sid=${token}`]], '/admin/')).reply.status).toBe(403);
  });

  it('treats a key of another type as no session, not as an outage', async () => {
    const token = 'Hh4sh4sh4sh4sh4sh4sh4sh4sh4sh4sh';
    await db.hset(`legacy:${token}`, 'user', 'mallory');
    await expectDenied([['Cookie', `legacy_sid=${token}`]], 'unknown_session');
    await db.del(`legacy:${token}`);
  });

  it('refuses a malformed token as malformed_cookie', async () => {
    await expectDenied([['Cookie', 'legacy_sid=short']], 'malformed_cookie');
    await expectDenied([['Cookie', `legacy_sid=${'a'.repeat(20)}*`]], 'malformed_cookie');
  });
});

describe('what sessiongate writes to the application store', () => {
  it('nothing: values and TTLs are as the applications left them, and only GET was called', async () => {
    const cookies = [await app.login('gina'), await oldApp.login('hal')];
    const token = 'Ab3Cd5Ef7Gh9Ij1Kl3Mn5Op7Qr9St1Uv';
    await db.set(`legacy:${token}`, 'ivan', 'EX', 600);
    const before = await snapshot();
    const calls = await commandCalls();
    for (const cookie of cookies) expect((await through([['Cookie', cookie]])).reply.status).toBe(200);
    expect((await through([['Cookie', `legacy_sid=${token}`]])).reply.status).toBe(200);
    await expectDenied([['Cookie', `legacy_sid=${token.replace('A', 'B')}`]], 'unknown_session');
    const after = await commandCalls();
    const changed = [...after].filter(([cmd, n]) => n !== (calls.get(cmd) ?? 0)).map(([cmd]) => cmd);
    expect(changed.sort()).toEqual(['get', 'info']); // info: this test's own INFO commandstats
    const now = await snapshot();
    expect([...now.keys()]).toEqual([...before.keys()]);
    for (const [key, v] of before) {
      expect(now.get(key)!.value, key).toBe(v.value);
      if (v.pttl < 0) expect(now.get(key)!.pttl, key).toBe(v.pttl);
      else expect(now.get(key)!.pttl, key).toBeLessThanOrEqual(v.pttl);
    }
  });

  it('with touch: true, refreshes the TTL as express-session would, at most once a minute, and nothing else', async () => {
    const cookie = await touchApp.login('judy');
    const key = `tsess:${sidOf(cookie)}`;
    const value = await db.get(key);
    await db.expire(key, 100); // as if the session had been idle for most of its hour
    const { reply, seen } = await through([['Cookie', cookie]]);
    expect(reply.status).toBe(200);
    expect(seen?.headers['x-user-id']).toBe('judy');
    expect(await waitFor(async () => (await db.ttl(key)) > 3500, 2000)).toBe(true);
    expect(await db.get(key)).toBe(value);

    await db.expire(key, 100);
    expect((await through([['Cookie', cookie]])).reply.status).toBe(200);
    await sleep(200);
    expect(await db.ttl(key)).toBeLessThanOrEqual(100); // touched less than a minute ago

    // A logout by the app still ends it at once.
    await touchApp.logout(cookie);
    await expectDenied([['Cookie', cookie]], 'unknown_session');
    expect(await db.exists(key)).toBe(0);
  });

  it('with touch: true, never gives a TTL to a key the app keeps without one', async () => {
    const cookie = await touchApp.login('ken');
    const key = `tsess:${sidOf(cookie)}`;
    await db.persist(key);
    expect((await through([['Cookie', cookie]])).reply.status).toBe(200);
    await sleep(200);
    expect(await db.ttl(key)).toBe(-1);
  });
});

describe('what reaches the application from its own sessions', () => {
  /** Stores an express-session record for `sid` as connect-redis would, and returns the browser's cookie pair. */
  async function expressSession(sid: string, sess: Record<string, unknown>): Promise<string> {
    await db.set(
      `sess:${sid}`,
      JSON.stringify({ cookie: { originalMaxAge: HOUR, expires: new Date(Date.now() + HOUR).toISOString(), httpOnly: true, path: '/' }, ...sess }),
      'EX',
      3600,
    );
    return `connect.sid=${encodeURIComponent(`s:${sid}.${signatureOf(sid, NEW_SECRET)}`)}`;
  }

  it('a user ID with a lone surrogate is no session, not a 500', async () => {
    // "\ud800" is valid JSON for a string no header (and no gRPC message) can carry.
    await db.set('sess:lone-surrogate-sid', '{"passport":{"user":"jos\\ud800"},"cookie":{"originalMaxAge":3600000}}', 'EX', 3600);
    const cookie = `connect.sid=${encodeURIComponent(`s:lone-surrogate-sid.${signatureOf('lone-surrogate-sid', NEW_SECRET)}`)}`;
    await expectDenied([['Cookie', cookie]], 'unknown_session');
    const token = 'Lone5urrogateT0kenLone5urrogate00';
    await db.set(`session:${createHash('sha256').update(token).digest('hex')}`, `{"user":{"id":"\\udc00"},"exp":${Math.floor(Date.now() / 1000) + 3600}}`);
    await expectDenied([['Cookie', `app_token=${token}`]], 'unknown_session');
  });

  it('a mapped attribute with a lone surrogate is left out, the session stands', async () => {
    const cookie = await expressSession('surrogate-email-sid', { passport: { user: 'lena' }, profile: { email: 'x\ud800@example.com' } });
    const { reply, seen } = await through([['Cookie', cookie]]);
    expect(reply.status).toBe(200);
    expect(identity(seen)).toEqual({ id: 'lena', roles: undefined, email: undefined });
  });

  it('two different users never arrive as one, whatever the source', async () => {
    const seen = new Map<string, string>();
    const users = ['maya', ' maya', 'maya ', 'josé', 'jos%C3%A9'];
    for (const [i, user] of users.entries()) {
      const r = await through([['Cookie', await expressSession(`distinct-user-sid-${i}`, { passport: { user } })]]);
      expect(r.reply.status, user).toBe(200);
      const id = String(r.seen?.headers['x-user-id']);
      expect(seen.get(id), `${JSON.stringify(user)} arrives as ${id}`).toBeUndefined();
      seen.set(id, user);
      expect(decodeURIComponent(id)).toBe(user);
    }
    const token = 'D1stinctUsersGenericT0kenD1stinct';
    await db.set(
      `session:${createHash('sha256').update(token).digest('hex')}`,
      JSON.stringify({ user: { id: 'jos%C3%A9' }, exp: Math.floor(Date.now() / 1000) + 3600 }),
    );
    const generic = await through([['Cookie', `app_token=${token}`]]);
    expect(generic.seen?.headers['x-user-id']).toBe('jos%25C3%25A9');
  });

  it("the application's own cookie reaches it; sessiongate's never does", async () => {
    const cookie = await app.login('nina');
    const forged = `sessiongate=${createTokenCodec([Buffer.from('another-secret-0123456789abcdef0123456789ab')]).issue().token}`;
    const { reply, seen } = await through([['Cookie', `theme=dark; ${forged}; ${cookie}`]]);
    expect(reply.status).toBe(200);
    expect(seen?.headers['cookie']).toBe(`theme=dark; ${cookie}`);
  });
});

describe('the application store down', () => {
  it('is an error for the proxy, not a logout', async () => {
    const cookie = await app.login('kim');
    await redis.kill();
    const logged = logLines.length;
    const { reply, seen } = await through([['Cookie', cookie]]);
    expect(reply.status).toBe(500);
    expect(seen).toBeUndefined();
    expect(logLines.slice(logged).map((l) => (JSON.parse(l) as { reason?: string }).reason)).toContain('store_unavailable');
    await redis.restart();
  });
});
