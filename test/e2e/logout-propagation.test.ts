/**
 * How long a logout or revocation takes to reach the other replicas, measured. Two built
 * replicas (separate processes) on a real three-master Cluster, local caches on, both busy
 * serving other requests. Each try: a session is created on A and served from B's cache; it
 * is logged out (or its user revoked) on A; the moment A acknowledges, B is asked. B must
 * refuse it on that very request. Every stale allow is counted, with how long B kept allowing.
 *
 * The channel has 1000 more subscribers (a large fleet), subscribed after B and before A:
 * Redis 7 writes the publisher's reply first and then subscribers newest first, so B's copy
 * goes out last, milliseconds after A has its reply and its own copy. An acknowledgement on
 * either of those alone would answer the logout before B heard of it.
 */
import { writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSession, type Reply, send } from '../../harness/http.js';
import { type RunningService, startService, tempDir, waitFor } from '../../harness/processes.js';
import { type RedisCluster, redisCli, startCluster } from '../../harness/redis.js';

const SECRET = 'propagation-secret-0123456789abcdef0123456';
const LOGIN_TOKEN = 'propagation-login-token-0123456789';
const TRIES = { logout: 100, revoke: 40 };

const FLEET = 1000;

let cluster: RedisCluster;
let a: RunningService;
let b: RunningService;
const fleet: Socket[] = [];

/** The port of the master serving the invalidation channel's slot. */
function channelNode(): number {
  const slot = Number(redisCli(cluster.nodes[0]!.port, 'CLUSTER', 'KEYSLOT', 'sg:invalidate').trim());
  for (const line of redisCli(cluster.nodes[0]!.port, 'CLUSTER', 'NODES').trim().split('\n')) {
    const f = line.split(' ');
    for (const range of f.slice(8)) {
      const [lo, hi] = range.split('-').map(Number) as [number, number | undefined];
      if (slot >= lo && slot <= (hi ?? lo)) return Number(f[1]!.split('@')[0]!.split(':')[1]);
    }
  }
  throw new Error('no owner for the channel');
}

/** Plain subscribers of the channel that read and ignore everything. */
async function subscribeFleet(port: number): Promise<void> {
  const cmd = '*2\r\n$10\r\nSSUBSCRIBE\r\n$13\r\nsg:invalidate\r\n';
  const ready: Array<Promise<void>> = [];
  for (let i = 0; i < FLEET; i++) {
    const s = connect(port, '127.0.0.1');
    s.on('error', () => {});
    fleet.push(s);
    ready.push(new Promise((r) => s.once('data', () => r())));
    s.on('connect', () => s.write(cmd));
    s.resume();
  }
  await Promise.all(ready);
}

beforeAll(async () => {
  cluster = await startCluster();
  const file = join(tempDir('sg-propagation-'), 'sessiongate.yaml');
  // A generous command timeout: the load must not turn into store errors on a shared machine.
  writeFileSync(file, `cache: { ttl: 60s }\nredis: { command_timeout: 2s }\nlogin_token: ${LOGIN_TOKEN}\n`);
  const env = { SESSIONGATE_SECRET: SECRET, SESSIONGATE_STORE: cluster.url };
  b = await startService({ config: file, env });
  expect(await waitFor(async () => (await send(`http://127.0.0.1:${b.adminPort}/readyz`)).status === 200, 10_000)).toBe(true);
  await subscribeFleet(channelNode());
  a = await startService({ config: file, env });
}, 60_000);

afterAll(async () => {
  for (const s of fleet) s.destroy();
  await a?.stop();
  await b?.stop();
  await cluster?.stop();
});

const auth = (sg: RunningService, cookie: string): Promise<Reply> =>
  send(`${sg.url}/auth`, {
    headers: [
      ['X-Original-URI', '/app'],
      ['Cookie', cookie],
    ],
  });
const hits = async (sg: RunningService) =>
  Number(/^sessiongate_store_cache_requests_total\{result="hit"\} (\d+)$/m.exec((await send(`http://127.0.0.1:${sg.adminPort}/metrics`)).body)?.[1] ?? 0);

/** Keeps both replicas busy (cache hits on another session) until stopped: a loaded event loop is where a late invalidation shows. */
async function load(): Promise<() => Promise<void>> {
  const cookie = await createSession(a.url, LOGIN_TOKEN, 'background', ['user']);
  let stop = false;
  const loops = [a, b, b, b].map(async (sg) => {
    while (!stop) await auth(sg, cookie);
  });
  return async () => {
    stop = true;
    await Promise.all(loops);
  };
}

/** Runs the tries under load; for each stale allow, how many milliseconds B kept allowing. */
async function measure(kind: 'logout' | 'revoke', tries: number): Promise<number[]> {
  const stale: number[] = [];
  const stopLoad = await load();
  try {
    await tryAll(kind, tries, stale);
  } finally {
    await stopLoad();
  }
  return stale;
}

async function tryAll(kind: 'logout' | 'revoke', tries: number, stale: number[]): Promise<void> {
  const hitsBefore = await hits(b);
  for (let i = 0; i < tries; i++) {
    const user = `${kind}-${i}`;
    const cookie = await createSession(a.url, LOGIN_TOKEN, user, ['user']);
    for (let j = 0; j < 2; j++) expect((await auth(b, cookie)).status).toBe(200); // the second from B's cache
    const done =
      kind === 'logout'
        ? await send(`${a.url}/~session`, { method: 'DELETE', headers: [['Cookie', cookie]] })
        : await send(`${a.url}/~session/user/${user}`, { method: 'DELETE', headers: [['Authorization', `Bearer ${LOGIN_TOKEN}`]] });
    expect(done.status).toBe(kind === 'logout' ? 204 : 200);
    const acked = performance.now();
    const first = await auth(b, cookie);
    if (first.status === 200) {
      await waitFor(async () => (await auth(b, cookie)).status !== 200, 30_000);
      stale.push(performance.now() - acked);
    } else expect(first.status).toBe(401);
  }
  // B's cache really answered the warm requests (the tries measured the cache, not Redis).
  expect((await hits(b)) - hitsBefore).toBeGreaterThanOrEqual(tries);
}

describe('a logout reaches the other replica before its next request (Cluster, caches warm)', () => {
  it(`logout: ${TRIES.logout} tries, no stale allow`, async () => {
    const stale = await measure('logout', TRIES.logout);
    if (stale.length > 0) console.log(`logout: ${stale.length}/${TRIES.logout} stale, longest ${Math.max(...stale).toFixed(1)} ms`);
    expect(stale).toEqual([]);
  }, 60_000);

  it(`revoke-user: ${TRIES.revoke} tries, no stale allow`, async () => {
    const stale = await measure('revoke', TRIES.revoke);
    if (stale.length > 0) console.log(`revoke: ${stale.length}/${TRIES.revoke} stale, longest ${Math.max(...stale).toFixed(1)} ms`);
    expect(stale).toEqual([]);
  }, 60_000);
});
