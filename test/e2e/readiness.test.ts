/**
 * Readiness tells the truth: while a real Redis Cluster reports cluster_state:fail (one slot
 * unassigned on every node, as during a master's failover: every node still answers PING, but
 * every keyed command is refused), decisions are store errors, and /readyz, gRPC health and
 * sessiongate_store_up all say so. When the Cluster is whole again, all three say ready and the
 * session created before is served.
 */
import { type Client, credentials, loadPackageDefinition } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSession, send } from '../../harness/http.js';
import { type RunningService, startService, waitFor } from '../../harness/processes.js';
import { type RedisCluster, redisCli, startCluster } from '../../harness/redis.js';

const SECRET = 'readiness-secret-0123456789abcdef0123456789';
const LOGIN_TOKEN = 'readiness-login-token-0123456789';

type HealthClient = Client & { check(req: { service: string }, cb: (err: Error | null, res?: { status: string }) => void): void };

let cluster: RedisCluster;
let sg: RunningService;
let health: HealthClient;

beforeAll(async () => {
  cluster = await startCluster();
  sg = await startService({ env: { SESSIONGATE_SECRET: SECRET, SESSIONGATE_LOGIN_TOKEN: LOGIN_TOKEN, SESSIONGATE_STORE: cluster.url } });
  const def = loadSync(healthProtoPath, { keepCase: true, enums: String, defaults: true });
  const pkg = loadPackageDefinition(def) as unknown as {
    grpc: { health: { v1: { Health: new (a: string, c: ReturnType<typeof credentials.createInsecure>) => HealthClient } } };
  };
  health = new pkg.grpc.health.v1.Health(`127.0.0.1:${sg.grpcPort}`, credentials.createInsecure());
}, 60_000);

afterAll(async () => {
  health?.close();
  await sg?.stop();
  await cluster?.stop();
});

const auth = (cookie: string) =>
  send(`${sg.url}/auth`, {
    headers: [
      ['X-Original-URI', '/app'],
      ['Cookie', cookie],
    ],
  });
const readyz = async () => (await send(`http://127.0.0.1:${sg.adminPort}/readyz`)).status;
const grpcStatus = () => new Promise<string>((res, rej) => health.check({ service: '' }, (e, v) => (e ? rej(e) : res(v!.status))));
const storeUp = async () => Number(/^sessiongate_store_up (\d+)$/m.exec((await send(`http://127.0.0.1:${sg.adminPort}/metrics`)).body)?.[1]);
const clusterState = (port: number) => /cluster_state:(\w+)/.exec(redisCli(port, 'CLUSTER', 'INFO'))?.[1];

/** The node that serves a slot, from CLUSTER NODES. */
function ownerOfSlot(slot: number): number {
  for (const line of redisCli(cluster.nodes[0]!.port, 'CLUSTER', 'NODES').trim().split('\n')) {
    const f = line.split(' ');
    for (const range of f.slice(8)) {
      const [lo, hi] = range.split('-').map(Number) as [number, number | undefined];
      if (slot >= lo && slot <= (hi ?? lo)) return Number(f[1]!.split('@')[0]!.split(':')[1]);
    }
  }
  throw new Error(`no owner for slot ${slot}`);
}

describe('readiness follows what decisions can do', () => {
  it('a Cluster in cluster_state:fail: decisions fail, and /readyz, gRPC health and store_up all say not ready; then all recover', async () => {
    const cookie = await createSession(sg.url, LOGIN_TOKEN, 'uma', ['user']);
    expect((await auth(cookie)).status).toBe(200);
    expect(await readyz()).toBe(200);
    expect(await grpcStatus()).toBe('SERVING');
    expect(await storeUp()).toBe(1);

    const slot = 1000;
    const owner = ownerOfSlot(slot);
    try {
      for (const n of cluster.nodes) redisCli(n.port, 'CLUSTER', 'DELSLOTS', String(slot));
      expect(await waitFor(() => cluster.nodes.every((n) => clusterState(n.port) === 'fail'), 10_000)).toBe(true);
      for (const n of cluster.nodes) expect(redisCli(n.port, 'PING').trim()).toBe('PONG'); // every node answers

      expect(await waitFor(async () => (await auth(cookie)).status === 500, 10_000)).toBe(true);
      expect((await auth(cookie)).headers['x-sessiongate-reason']).toBe('store_unavailable');
      expect(await waitFor(async () => (await readyz()) === 503, 5000)).toBe(true);
      expect(await waitFor(async () => (await grpcStatus()) === 'NOT_SERVING', 5000)).toBe(true);
      expect(await waitFor(async () => (await storeUp()) === 0, 5000)).toBe(true);
    } finally {
      redisCli(owner, 'CLUSTER', 'ADDSLOTS', String(slot));
    }
    expect(await waitFor(() => cluster.nodes.every((n) => clusterState(n.port) === 'ok'), 10_000)).toBe(true);
    expect(await waitFor(async () => (await auth(cookie)).status === 200, 10_000)).toBe(true);
    expect(await waitFor(async () => (await readyz()) === 200 && (await grpcStatus()) === 'SERVING' && (await storeUp()) === 1, 5000)).toBe(true);
  });
});
