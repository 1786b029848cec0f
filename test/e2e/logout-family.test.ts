/**
 * Logout ends the whole family, in both directions, everywhere: two sessiongate replicas with
 * their local caches warm share a real Redis, each behind a real nginx running the shipped
 * config. A session is rotated (the injected clock moves), every ID of it is in use on both
 * replicas, then a logout with any one of them (the newest, the oldest, one in the middle)
 * must leave none of them valid on either replica, the one that answered the logout included.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cookiePair, createSession, type Reply, send } from '../../harness/http.js';
import { type EchoUpstream, type RunningNginx, startEchoUpstream, startNginx } from '../../harness/processes.js';
import { type RedisProcess, startRedisServer } from '../../harness/redis.js';
import { type Service, startService } from '../../src/main.js';
import { quietLogger, testConfig } from '../support/service.js';

const SECRET = 'logout-family-secret-0123456789abcdef012345';
const LOGIN_TOKEN = 'logout-family-login-token-0123456789';
const M = 60_000;

let redis: RedisProcess;
let app: EchoUpstream;
const clock = { now: Date.UTC(2026, 5, 1, 8, 0, 0) };
const replicas: Array<{ svc: Service; nginx: RunningNginx }> = [];

beforeAll(async () => {
  redis = await startRedisServer();
  app = await startEchoUpstream();
  for (let i = 0; i < 2; i++) {
    // deploy/config.example.yaml: idle 30m, touch 1m, rotation after 30m with 30s of grace;
    // the local cache on (10 s), so a missed invalidation shows as a cached allow.
    const config = testConfig(
      { SESSIONGATE_SECRET: SECRET, SESSIONGATE_LOGIN_TOKEN: LOGIN_TOKEN, SESSIONGATE_STORE: `redis://127.0.0.1:${redis.port}` },
      { example: true },
    );
    const svc = await startService(config, quietLogger(), { clock: () => clock.now });
    replicas.push({ svc, nginx: await startNginx({ sessiongatePort: svc.ports.http, appPort: app.port }) });
  }
}, 60_000);

afterAll(async () => {
  for (const r of replicas) {
    await r.nginx.stop();
    await r.svc.close();
  }
  await app?.close();
  await redis?.stop();
});

const [A, B] = [0, 1];
const page = (replica: number, cookie: string): Promise<Reply> => send(`${replicas[replica]!.nginx.url}/app`, { headers: [['Cookie', cookie]] });
const logout = (replica: number, cookie: string): Promise<Reply> =>
  send(`${replicas[replica]!.nginx.url}/~session`, { method: 'DELETE', headers: [['Cookie', cookie]] });

/** A session rotated `rotations` times through nginx: its cookies, oldest first, every one still valid and cached on both replicas. */
async function family(rotations: number): Promise<string[]> {
  const cookies = [await createSession(`http://127.0.0.1:${replicas[A]!.svc.ports.http}`, LOGIN_TOKEN, 'fay', ['user'])];
  for (let i = 0; i < rotations; i++) {
    clock.now += 20 * M; // touched (idle 30m) ...
    expect((await page(A, cookies.at(-1)!)).status).toBe(200);
    clock.now += 10 * M; // ... then due for rotation (30m): the answer carries the new cookie
    const r = await page(A, cookies.at(-1)!);
    expect(r.status).toBe(200);
    const set = ([] as string[]).concat(r.headers['set-cookie'] ?? []);
    expect(set[0]).toMatch(/^sessiongate=/);
    cookies.push(cookiePair(set[0]!));
    clock.now += 1000; // the predecessor is now in its 30 s grace window
  }
  return cookies;
}

/** Serves each cookie on the replica, so its cache holds what the store had. */
async function warm(replica: number, cookies: readonly string[]): Promise<void> {
  for (const c of cookies) await page(replica, c);
}

describe('logout ends every ID of the session on every replica', () => {
  it('with the newest cookie: the pre-rotation cookie, still in its grace window, ends too', async () => {
    const [old, current] = (await family(1)) as [string, string];
    await warm(A, [old, current]);
    await warm(B, [old, current]);
    expect((await page(B, old)).status).toBe(200); // in grace, cached
    expect((await logout(A, current)).status).toBe(204);
    for (const replica of [A, B]) {
      expect((await page(replica, old)).status).toBe(401);
      expect((await page(replica, current)).status).toBe(401);
    }
  });

  it('with the pre-rotation cookie: the successor ends, on the replica that answered as well', async () => {
    const [old, current] = (await family(1)) as [string, string];
    // Replica A holds only the successor (what the browser now sends); B holds both.
    await warm(A, [current]);
    await warm(B, [old, current]);
    expect((await page(A, current)).status).toBe(200);
    expect((await logout(A, old)).status).toBe(204);
    for (const replica of [A, B]) {
      expect((await page(replica, current)).status).toBe(401);
      expect((await page(replica, old)).status).toBe(401);
    }
  });

  it('a chain of three: a logout with the middle cookie ends the newest (and the oldest record)', async () => {
    const cookies = await family(2);
    await warm(A, [cookies[2]!]);
    await warm(B, cookies);
    expect((await page(B, cookies[1]!)).status).toBe(200); // the middle one, in grace
    expect((await page(B, cookies[2]!)).status).toBe(200);
    expect((await logout(A, cookies[1]!)).status).toBe(204);
    for (const replica of [A, B]) for (const c of cookies) expect((await page(replica, c)).status).toBe(401);
  });
});
