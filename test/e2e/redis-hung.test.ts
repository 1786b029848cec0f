/**
 * The local cache is trusted only while invalidations can reach it. Two built replicas share a
 * real Redis, their caches warm (cache.ttl 60 s, so a cache that keeps trusting itself shows).
 * Redis hung with SIGSTOP: the connections stay open and silent. A replica cut off from Redis
 * without a TCP reset (a relay that stops passing bytes, as a partition does, and delivers them
 * when it heals): a logout on the other replica cannot reach it. Either way the replica stops
 * answering from its cache (store_unavailable, never a stale allow), readiness drops, no
 * session is lost, and it recovers without a restart.
 */
import { writeFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createSession, type Reply, send } from '../../harness/http.js';
import { type RunningService, startService, tempDir, waitFor } from '../../harness/processes.js';
import { type RedisProcess, startRedisServer } from '../../harness/redis.js';

const SECRET = 'redis-hung-secret-0123456789abcdef0123456789';
const LOGIN_TOKEN = 'redis-hung-login-token-0123456789';

/** A TCP relay to Redis that can stop passing bytes without closing anything, then heal. */
interface Relay {
  readonly port: number;
  cut(): void;
  heal(): void;
  close(): Promise<void>;
}

async function startRelay(target: number): Promise<Relay> {
  let cut = false;
  const held: Array<() => void> = [];
  const sockets = new Set<Socket>();
  const pass = (from: Socket, to: Socket) =>
    from.on('data', (chunk: Buffer) => {
      if (cut) held.push(() => to.write(chunk));
      else to.write(chunk);
    });
  const server: Server = createServer((client) => {
    const upstream = connect(target, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => {
        sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    pass(client, upstream);
    pass(upstream, client);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as { port: number }).port,
    cut: () => void (cut = true),
    heal() {
      cut = false;
      for (const f of held.splice(0)) f();
    },
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

let redis: RedisProcess;
let relay: Relay;
let a: RunningService;
let b: RunningService;

function configFile(): string {
  const file = join(tempDir('sg-hung-'), 'sessiongate.yaml');
  writeFileSync(file, `cache: { ttl: 60s }\nlogin_token: ${LOGIN_TOKEN}\n`);
  return file;
}

beforeAll(async () => {
  redis = await startRedisServer();
  relay = await startRelay(redis.port);
  const config = configFile();
  [a, b] = await Promise.all([
    startService({ config, env: { SESSIONGATE_SECRET: SECRET, SESSIONGATE_STORE: `redis://127.0.0.1:${redis.port}` } }),
    // B reaches Redis through the relay (commands and subscription alike).
    startService({ config, env: { SESSIONGATE_SECRET: SECRET, SESSIONGATE_STORE: `redis://127.0.0.1:${relay.port}` } }),
  ]);
}, 60_000);

afterEach(() => {
  // Whatever happened, Redis runs and the relay passes bytes for the next test.
  redis.child.kill('SIGCONT');
  relay.heal();
});

afterAll(async () => {
  redis?.child.kill('SIGCONT');
  await a?.stop();
  await b?.stop();
  await relay?.close();
  await redis?.stop();
});

const auth = (sg: RunningService, cookie: string): Promise<Reply> =>
  send(`${sg.url}/auth`, {
    headers: [
      ['X-Original-URI', '/app'],
      ['Cookie', cookie],
    ],
  });
const ready = async (sg: RunningService) => (await send(`http://127.0.0.1:${sg.adminPort}/readyz`)).status;
const login = (user: string) => createSession(a.url, LOGIN_TOKEN, user, ['user']);

/** Serves the cookie from the replica until its cache answers (a hit on /metrics). */
async function warm(sg: RunningService, cookie: string): Promise<void> {
  const hits = async () =>
    Number(/^sessiongate_store_cache_requests_total\{result="hit"\} (\d+)$/m.exec((await send(`http://127.0.0.1:${sg.adminPort}/metrics`)).body)?.[1] ?? 0);
  const before = await hits();
  expect(await waitFor(async () => (await auth(sg, cookie)).status === 200 && (await hits()) > before, 5000)).toBe(true);
}

/** Polls until the replica stops allowing the cookie; every answer seen after that is kept. */
async function untilNotAllowed(sg: RunningService, cookie: string, ms = 5000): Promise<Reply[]> {
  const seen: Reply[] = [];
  await waitFor(async () => {
    const r = await auth(sg, cookie);
    if (r.status !== 200 || seen.length > 0) seen.push(r);
    return seen.length >= 5;
  }, ms);
  return seen;
}

describe('Redis hung (SIGSTOP): the connections stay open, nothing answers', () => {
  it('a warm cache stops answering: store_unavailable, readiness drops; after SIGCONT the session is back, no restart', async () => {
    const cookie = await login('hana');
    await warm(b, cookie);
    expect(await ready(b)).toBe(200);

    redis.child.kill('SIGSTOP');
    const after = await untilNotAllowed(b, cookie);
    expect(after.length).toBe(5); // it stopped allowing, and did not start again
    for (const r of after) {
      expect(r.status).toBe(500);
      expect(r.headers['x-sessiongate-reason']).toBe('store_unavailable');
    }
    expect(await waitFor(async () => (await ready(b)) === 503 && (await ready(a)) === 503, 5000)).toBe(true);

    redis.child.kill('SIGCONT');
    expect(await waitFor(async () => (await auth(b, cookie)).status === 200, 10_000)).toBe(true); // nothing lost
    expect(await waitFor(async () => (await ready(b)) === 200, 5000)).toBe(true);
    await warm(b, cookie); // the cache is in use again
  });
});

describe('a replica cut off from Redis without a reset', () => {
  it('never allows a session logged out on the other replica meanwhile; heals by itself', async () => {
    const [cookie, other] = [await login('ivan'), await login('jade')];
    await warm(b, cookie);
    await warm(b, other);

    relay.cut();
    // The logout on A is done and published; B cannot hear it.
    expect((await send(`${a.url}/~session`, { method: 'DELETE', headers: [['Cookie', cookie]] })).status).toBe(204);
    const after = await untilNotAllowed(b, cookie);
    expect(after.length).toBe(5);
    for (const r of after) expect(r.headers['x-sessiongate-reason']).toBe('store_unavailable');
    expect(await waitFor(async () => (await ready(b)) === 503, 5000)).toBe(true);
    expect(await ready(a)).toBe(200);

    relay.heal();
    expect(await waitFor(async () => (await auth(b, cookie)).status === 401, 10_000)).toBe(true);
    expect((await auth(b, other)).status).toBe(200);
    expect(await waitFor(async () => (await ready(b)) === 200, 5000)).toBe(true);
    // B's cache serves again, and still hears invalidations.
    await warm(b, other);
    expect((await send(`${a.url}/~session`, { method: 'DELETE', headers: [['Cookie', other]] })).status).toBe(204);
    expect((await auth(b, other)).status).toBe(401);
  });
});
