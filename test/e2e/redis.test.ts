/**
 * sessiongate on real Redis, as deployed: the built service (child processes) against a
 * standalone server, a Cluster and a Sentinel group. Revocation across replicas with warm
 * caches; Redis killed while requests flow; Sentinel failover; recovery without a restart.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cookiePair, type Reply, send } from '../../harness/http.js';
import { ROOT, type RunningService, startService, waitFor } from '../../harness/processes.js';
import { type RedisProcess, redisCli, startCluster, startRedisServer, startSentinelGroup } from '../../harness/redis.js';

const SECRET = 'redis-e2e-secret-0123456789abcdef0123456789';
const LOGIN_TOKEN = 'redis-e2e-login-token-0123456789';
const BIN = join(ROOT, 'bin/sessiongate.js');

function env(store: string, extra: Record<string, string> = {}): Record<string, string> {
  return { SESSIONGATE_STORE: store, SESSIONGATE_SECRET: SECRET, SESSIONGATE_LOGIN_TOKEN: LOGIN_TOKEN, ...extra };
}

async function login(sg: RunningService, user = 'alice'): Promise<string> {
  const r = await send(`${sg.url}/~session`, {
    method: 'POST',
    headers: [
      ['Authorization', `Bearer ${LOGIN_TOKEN}`],
      ['Content-Type', 'application/json'],
    ],
    body: JSON.stringify({ user_id: user, roles: ['user'] }),
  });
  expect(r.status).toBe(201);
  return cookiePair(r.cookies[0]!);
}

/** B's local cache counters, from its /metrics. */
async function cacheCounts(sg: RunningService): Promise<Record<string, number>> {
  const text = (await send(`http://127.0.0.1:${sg.adminPort}/metrics`)).body;
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^sessiongate_store_cache_requests_total\{result="(\w+)"\} (\d+)$/gm)) out[m[1]!] = Number(m[2]);
  return out;
}

/** Serves the cookie from B a few times and proves B's cache, not Redis, answered. */
async function warm(sg: RunningService, cookie: string): Promise<void> {
  const before = await cacheCounts(sg);
  for (let i = 0; i < 3; i++) expect((await auth(sg, cookie)).status).toBe(200);
  const after = await cacheCounts(sg);
  expect(after['hit']! - before['hit']!).toBeGreaterThanOrEqual(2);
  expect(after['bypass']).toBe(before['bypass']);
}

const auth = (sg: RunningService, cookie: string, path = '/app'): Promise<Reply> =>
  send(`${sg.url}/auth`, {
    headers: [
      ['X-Original-URI', path],
      ['Cookie', cookie],
    ],
  });
const reason = (r: Reply) => r.headers['x-sessiongate-reason'];

describe.each([
  [
    'standalone',
    async () => {
      const r = await startRedisServer();
      return { url: `redis://127.0.0.1:${r.port}`, stop: r.stop };
    },
  ],
  [
    'cluster',
    async () => {
      const c = await startCluster();
      return { url: c.url, stop: c.stop };
    },
  ],
])('two replicas sharing Redis %s, caches warm', (_name, start) => {
  let redis: { url: string; stop: () => Promise<void> };
  let a: RunningService;
  let b: RunningService;
  beforeAll(async () => {
    redis = await start();
    [a, b] = await Promise.all([startService({ env: env(redis.url) }), startService({ env: env(redis.url) })]);
  }, 60_000);
  afterAll(async () => {
    await a?.stop();
    await b?.stop();
    await redis?.stop();
  });

  it('a session created on one replica is honoured by the other', async () => {
    const cookie = await login(a);
    expect((await auth(b, cookie)).status).toBe(200);
    expect((await auth(a, cookie)).headers['x-user-id']).toBe('alice');
  });

  it('a logout on one replica is honoured by the other on the very next request', async () => {
    const cookie = await login(a);
    await warm(b, cookie);
    expect((await send(`${a.url}/~session`, { method: 'DELETE', headers: [['Cookie', cookie]] })).status).toBe(204);
    const next = await auth(b, cookie);
    expect(next.status).toBe(401);
    expect(reason(next)).toBe('unknown_session');
  });

  it('revoking a user on one replica ends all their sessions on the other at once', async () => {
    const [c1, c2, other] = [await login(a, 'mallory'), await login(b, 'mallory'), await login(a, 'trent')];
    for (const c of [c1, c2, other]) await warm(b, c);
    const r = await send(`${a.url}/~session/user/mallory`, { method: 'DELETE', headers: [['Authorization', `Bearer ${LOGIN_TOKEN}`]] });
    expect(r.json()).toEqual({ user_id: 'mallory', revoked: 2 });
    expect((await auth(b, c1)).status).toBe(401);
    expect((await auth(b, c2)).status).toBe(401);
    expect((await auth(b, other)).status).toBe(200);
  });

  it('sessiongate revoke-user does the same from the command line', async () => {
    const cookie = await login(a, 'eve');
    await warm(b, cookie);
    const cli = spawnSync(process.execPath, [BIN, 'revoke-user', 'eve'], {
      env: { PATH: process.env['PATH'] ?? '', ...env(redis.url) },
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(cli.stderr).toBe('');
    expect(cli.stdout).toBe('sessiongate: revoked 1 session of "eve"\n');
    expect(cli.status).toBe(0);
    expect((await auth(b, cookie)).status).toBe(401);
  });

  it('keeps no identity or usable cookie in Redis', async () => {
    const cookie = await login(a, 'confidential-user@example.com');
    const [id, secret] = cookie.split('=')[1]!.split('.') as [string, string];
    const ports = [...redis.url.matchAll(/:(\d+)/g)].map((m) => Number(m[1]));
    let text = '';
    let sessions = 0;
    for (const port of ports) {
      for (const key of redisCli(port, '--scan', '--pattern', 'sg:*').split('\n').filter(Boolean)) {
        const type = redisCli(port, 'TYPE', key).trim();
        text += `${key}\n${redisCli(port, type === 'hash' ? 'HGETALL' : type === 'set' ? 'SMEMBERS' : 'GET', key)}`;
        if (type === 'hash') sessions++;
      }
    }
    expect(sessions).toBeGreaterThan(0);
    expect(text).toContain('data');
    for (const s of ['confidential', 'example.com', id, secret]) expect(text).not.toContain(s);
  });
});

describe('Redis standalone dies while requests flow', () => {
  let redis: RedisProcess;
  let sg: RunningService;
  beforeAll(async () => {
    // Persisted on every write, so the sessions survive a SIGKILL and the restart.
    redis = await startRedisServer({ args: ['--appendonly', 'yes', '--appendfsync', 'always'] });
    sg = await startService({ env: env(`redis://127.0.0.1:${redis.port}`, { SESSIONGATE_LOG_LEVEL: 'info' }) });
  }, 60_000);
  afterAll(async () => {
    await sg?.stop();
    await redis?.stop();
  });

  it('turns decisions into store_unavailable errors (never an allow, never a logout), and recovers by itself', async () => {
    const cookie = await login(sg);
    const seen: Array<{ status: number; reason: unknown; phase: string }> = [];
    let phase = 'before';
    let stop = false;
    const flow = (async () => {
      while (!stop) {
        const r = await auth(sg, cookie);
        seen.push({ status: r.status, reason: reason(r), phase });
      }
    })();
    await waitFor(() => seen.length > 20, 5000);
    phase = 'down';
    await redis.kill();
    await waitFor(() => seen.filter((s) => s.phase === 'down' && s.status === 500).length > 20, 10_000);
    const ready = await send(`http://127.0.0.1:${sg.adminPort}/readyz`);
    expect(ready.status).toBe(503);
    expect((await send(`http://127.0.0.1:${sg.adminPort}/healthz`)).status).toBe(200);
    await redis.restart();
    phase = 'after';
    await waitFor(() => seen.filter((s) => s.phase === 'after' && s.status === 200).length > 20, 15_000);
    stop = true;
    await flow;

    const down = seen.filter((s) => s.phase === 'down');
    // While Redis is gone: answers keep coming (no hang), each an allow from before the kill
    // landed or a store_unavailable error; never a deny, so nobody is logged out.
    expect(down.filter((s) => s.status === 500).length).toBeGreaterThan(20);
    for (const s of down) expect([200, 500]).toContain(s.status);
    for (const s of down.filter((x) => x.status === 500)) expect(s.reason).toBe('store_unavailable');
    expect(seen.some((s) => s.status === 401 || s.status === 403)).toBe(false);
    // Back without a restart of sessiongate, with the session created before the kill.
    expect(seen.filter((s) => s.phase === 'after').at(-1)).toMatchObject({ status: 200, reason: 'authenticated' });
    expect((await send(`http://127.0.0.1:${sg.adminPort}/readyz`)).status).toBe(200);
    // No crash and no unhandled rejection.
    expect(sg.logs().join('\n')).not.toMatch(/unhandled|UnhandledPromiseRejection|uncaught/i);
    expect((await auth(sg, cookie)).status).toBe(200);
  });
});

describe('Redis Sentinel failover', () => {
  let group: Awaited<ReturnType<typeof startSentinelGroup>>;
  let sg: RunningService;
  beforeAll(async () => {
    group = await startSentinelGroup();
    sg = await startService({ env: env(group.url) });
  }, 60_000);
  afterAll(async () => {
    await sg?.stop();
    await group?.stop();
  });

  it('answers store_unavailable while the master is gone, then serves sessions created before the kill', async () => {
    const cookies = [await login(sg, 'u1'), await login(sg, 'u2')];
    for (const c of cookies) expect((await auth(sg, c)).status).toBe(200);
    // The replica has every write before the master dies.
    expect(await waitFor(() => Number(redisCli(group.replica.port, 'DBSIZE').trim()) >= Number(redisCli(group.master.port, 'DBSIZE').trim()), 5000)).toBe(true);
    const oldMaster = group.currentMasterPort();
    await group.master.kill();

    const statuses: number[] = [];
    const failedOver = await waitFor(async () => {
      const r = await auth(sg, cookies[0]!);
      statuses.push(r.status);
      if (r.status === 500) expect(reason(r)).toBe('store_unavailable');
      return r.status === 200 && group.currentMasterPort() !== oldMaster;
    }, 30_000);
    expect(failedOver).toBe(true);
    expect(group.currentMasterPort()).toBe(group.replica.port);
    expect(statuses.every((s) => s === 200 || s === 500)).toBe(true);
    for (const c of cookies) expect((await auth(sg, c)).status).toBe(200);
    // And it writes to the new master: a new session works.
    const fresh = await login(sg, 'u3');
    expect((await auth(sg, fresh)).status).toBe(200);
  });
});
