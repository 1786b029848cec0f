/**
 * A revocation interrupted by a store error is not undone by the cache. A real three-master
 * Cluster, two built replicas with warm caches (cache.ttl 60 s). One master, holding some of
 * the user's sessions but neither the invalidation channel nor the user's index, is hung
 * (SIGSTOP) while the revocation runs: it fails (503) after deleting what the other masters
 * hold. No replica may keep allowing any of the sessions from its cache, and once the master
 * is back a retry ends the rest: every session refused on both replicas.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSession, type Reply, send } from '../../harness/http.js';
import { type RunningService, startService, tempDir, waitFor } from '../../harness/processes.js';
import { type RedisCluster, type RedisProcess, redisCli, startCluster } from '../../harness/redis.js';

const SECRET = 'revoke-interrupted-secret-0123456789abcdef01';
const LOGIN_TOKEN = 'revoke-interrupted-login-token-0123456789';

let cluster: RedisCluster;
let a: RunningService;
let b: RunningService;
let hung: RedisProcess | undefined;

beforeAll(async () => {
  cluster = await startCluster();
  const file = join(tempDir('sg-revoke-'), 'sessiongate.yaml');
  writeFileSync(file, `cache: { ttl: 60s }\nlogin_token: ${LOGIN_TOKEN}\n`);
  const env = { SESSIONGATE_SECRET: SECRET, SESSIONGATE_STORE: cluster.url };
  [a, b] = await Promise.all([startService({ config: file, env }), startService({ config: file, env })]);
}, 60_000);

afterAll(async () => {
  hung?.child.kill('SIGCONT');
  await a?.stop();
  await b?.stop();
  await cluster?.stop();
});

/** The master that serves a key's slot. */
function ownerOf(key: string): RedisProcess {
  const slot = Number(redisCli(cluster.nodes[0]!.port, 'CLUSTER', 'KEYSLOT', key).trim());
  for (const line of redisCli(cluster.nodes[0]!.port, 'CLUSTER', 'NODES').trim().split('\n')) {
    const f = line.split(' ');
    const port = Number(f[1]!.split('@')[0]!.split(':')[1]);
    for (const range of f.slice(8)) {
      const [lo, hi] = range.split('-').map(Number) as [number, number | undefined];
      if (slot >= lo && slot <= (hi ?? lo)) return cluster.nodes.find((n) => n.port === port)!;
    }
  }
  throw new Error(`no owner for slot ${slot}`);
}

const auth = (sg: RunningService, cookie: string): Promise<Reply> =>
  send(`${sg.url}/auth`, {
    headers: [
      ['X-Original-URI', '/app'],
      ['Cookie', cookie],
    ],
  });
const revoke = (sg: RunningService, user: string) =>
  send(`${sg.url}/~session/user/${user}`, { method: 'DELETE', headers: [['Authorization', `Bearer ${LOGIN_TOKEN}`]] });
/** The store key's hash tag of a session cookie: the first 8 characters of its ID. */
const tagOf = (cookie: string) => `{${cookie.split('=')[1]!.slice(0, 8)}}`;

describe('revoke-user interrupted by a hung Cluster master', () => {
  it('leaves no session allowed from any cache, and the retry ends the rest', async () => {
    const user = 'rita';
    const first = await createSession(a.url, LOGIN_TOKEN, user, ['user']);
    const indexKey = [...cluster.nodes.flatMap((n) => redisCli(n.port, '--scan', '--pattern', 'sg:u:*').split('\n').filter(Boolean))];
    expect(indexKey).toHaveLength(1);
    const spared = new Set([ownerOf('sg:invalidate').port, ownerOf(indexKey[0]!).port]);
    const target = cluster.nodes.find((n) => !spared.has(n.port))!;
    // Sessions until the hung master holds several and the others several too.
    const cookies = [first];
    const onTarget = (c: string) => ownerOf(tagOf(c)).port === target.port;
    while ((cookies.filter(onTarget).length < 3 || cookies.filter((c) => !onTarget(c)).length < 3) && cookies.length < 60)
      cookies.push(await createSession(a.url, LOGIN_TOKEN, user, ['user']));
    // Warm: both replicas answer every session from their caches.
    for (const sg of [a, b]) for (const c of cookies) for (let i = 0; i < 2; i++) expect((await auth(sg, c)).status).toBe(200);

    hung = target;
    target.child.kill('SIGSTOP');
    let interrupted: Reply;
    try {
      interrupted = await revoke(a, user);
      // No replica allows any of them any more: the deleted ones are refused, the ones on the
      // hung master are store errors, never a cached allow.
      const allowed = async () => {
        let n = 0;
        for (const sg of [a, b]) for (const c of cookies) if ((await auth(sg, c)).status === 200) n++;
        return n;
      };
      expect(await waitFor(async () => (await allowed()) === 0, 5000)).toBe(true);
    } finally {
      target.child.kill('SIGCONT');
      hung = undefined;
    }
    expect(interrupted.status).toBe(503);
    expect(interrupted.json()).toEqual({ error: 'store_unavailable' });

    // Back: the retry finds what is left (its index entries survived) and ends it.
    let retry: Reply | undefined;
    expect(await waitFor(async () => (retry = await revoke(a, user)).status === 200, 15_000)).toBe(true);
    expect(retry!.json()).toMatchObject({ user_id: user });
    for (const sg of [a, b]) for (const c of cookies) expect(await waitFor(async () => (await auth(sg, c)).status === 401, 5000)).toBe(true);
    // The index is gone with the sessions.
    expect(redisCli(ownerOf(indexKey[0]!).port, 'EXISTS', indexKey[0]!).trim()).toBe('0');
  });
});
