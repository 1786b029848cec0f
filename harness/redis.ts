/**
 * Real Redis for the tests and the soak: standalone servers, a Sentinel group (master, replica,
 * three sentinels) and a three-master Cluster, each on free loopback ports in a temporary folder,
 * stopped by the caller.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import type { RedisStoreOptions } from '../src/store/redis.js';
import { parseStoreUrl } from '../src/store/url.js';
import { freePort, tempDir, waitFor } from './processes.js';

export interface RedisProcess {
  readonly port: number;
  readonly child: ChildProcess;
  /** SIGKILL: a crash, not a shutdown. */
  kill(): Promise<void>;
  /** Starts it again on the same port and folder. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once('exit', () => r())));
}

/** One command on a fresh connection that never queues or retries (the server may be down). */
export async function redisOnce(port: number, args: readonly string[], connectTimeout = 1000): Promise<unknown> {
  const c = new Redis({
    port,
    host: '127.0.0.1',
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout,
    commandTimeout: 2000,
  });
  c.on('error', () => {});
  try {
    await c.connect();
    return await c.call(args[0]!, ...args.slice(1));
  } finally {
    c.disconnect();
  }
}

async function ping(port: number): Promise<boolean> {
  return redisOnce(port, ['PING'], 500).then(
    (r) => r === 'PONG',
    () => false,
  );
}

export function redisCli(port: number, ...args: string[]): string {
  const r = spawnSync('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) throw new Error(`redis-cli ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

type Args = string[] | ((port: number) => string[]);

/**
 * Starts redis-server with `args` (or a config file's text) and waits for PING. A free port can
 * be taken by another process before redis-server binds it (tests start many servers at once):
 * then it tries again on another port.
 */
export async function startRedisServer(opts: { args?: Args; config?: string; sentinel?: boolean; dir?: string } = {}): Promise<RedisProcess> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startRedisOn(await freePort(), opts);
    } catch (err) {
      if (attempt >= 3) throw err;
    }
  }
}

async function startRedisOn(port: number, opts: { args?: Args; config?: string; sentinel?: boolean; dir?: string }): Promise<RedisProcess> {
  const dir = opts.dir ?? tempDir('sg-redis-');
  mkdirSync(dir, { recursive: true });
  const launch = () => {
    const base = [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--save',
      '',
      '--appendonly',
      'no',
      '--protected-mode',
      'no',
      '--logfile',
      join(dir, `redis-${port}.log`),
    ];
    let argv: string[];
    if (opts.config !== undefined) {
      const file = join(dir, `redis-${port}.conf`);
      writeFileSync(file, `port ${port}\nbind 127.0.0.1\ndir ${dir}\nprotected-mode no\nlogfile ${join(dir, `redis-${port}.log`)}\n${opts.config}`);
      argv = [file, ...(opts.sentinel ? ['--sentinel'] : [])];
    } else argv = [...base, ...(typeof opts.args === 'function' ? opts.args(port) : (opts.args ?? []))];
    return spawn('redis-server', argv, { stdio: 'ignore' });
  };
  let child = launch();
  if (
    !(await waitFor(
      () => ping(port),
      10_000,
      () => child.exitCode !== null,
    ))
  ) {
    child.kill('SIGKILL');
    throw new Error(`redis-server on ${port} did not start (see ${dir})`);
  }
  const proc: RedisProcess = {
    port,
    get child() {
      return child;
    },
    async kill() {
      child.kill('SIGKILL');
      await exited(child);
    },
    async restart() {
      child = launch();
      if (
        !(await waitFor(
          () => ping(port),
          10_000,
          () => child.exitCode !== null,
        ))
      )
        throw new Error(`redis-server on ${port} did not restart`);
    },
    async stop() {
      child.kill('SIGKILL');
      await exited(child);
      if (!opts.dir) rmSync(dir, { recursive: true, force: true });
    },
  };
  return proc;
}

export interface SentinelGroup {
  readonly master: RedisProcess;
  readonly replica: RedisProcess;
  readonly sentinels: readonly RedisProcess[];
  readonly masterName: string;
  /** redis+sentinel://… for this group. */
  readonly url: string;
  /** The port the sentinels currently call master. */
  currentMasterPort(): number;
  stop(): Promise<void>;
}

export async function startSentinelGroup(masterName = 'sgmaster'): Promise<SentinelGroup> {
  const dir = tempDir('sg-sentinel-');
  const master = await startRedisServer({ dir });
  const replica = await startRedisServer({ dir, args: ['--replicaof', '127.0.0.1', String(master.port)] });
  const sentinels: RedisProcess[] = [];
  for (let i = 0; i < 3; i++) {
    sentinels.push(
      await startRedisServer({
        dir,
        sentinel: true,
        config: [
          `sentinel monitor ${masterName} 127.0.0.1 ${master.port} 2`,
          `sentinel down-after-milliseconds ${masterName} 1000`,
          `sentinel failover-timeout ${masterName} 4000`,
          `sentinel parallel-syncs ${masterName} 1`,
        ].join('\n'),
      }),
    );
  }
  const group: SentinelGroup = {
    master,
    replica,
    sentinels,
    masterName,
    url: `redis+sentinel://${sentinels.map((s) => `127.0.0.1:${s.port}`).join(',')}/${masterName}`,
    currentMasterPort() {
      const out = redisCli(sentinels[0]!.port, 'SENTINEL', 'get-master-addr-by-name', masterName).trim().split('\n');
      return Number(out[1]);
    },
    async stop() {
      for (const p of [...sentinels, replica, master]) await p.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  // Ready when every sentinel knows the replica and the other sentinels.
  const known = () =>
    sentinels.every((s) => {
      try {
        const info = redisCli(s.port, 'SENTINEL', 'master', masterName);
        const field = (name: string) => Number(info.split('\n')[info.split('\n').indexOf(name) + 1]);
        return field('num-slaves') >= 1 && field('num-other-sentinels') >= 2;
      } catch {
        return false;
      }
    });
  if (!(await waitFor(known, 20_000))) throw new Error('sentinel group did not form');
  return group;
}

export interface RedisCluster {
  readonly nodes: readonly RedisProcess[];
  /** redis+cluster://… for this cluster. */
  readonly url: string;
  stop(): Promise<void>;
}

export async function startCluster(size = 3): Promise<RedisCluster> {
  const dir = tempDir('sg-cluster-');
  const nodes: RedisProcess[] = [];
  for (let i = 0; i < size; i++) {
    nodes.push(
      await startRedisServer({
        dir,
        args: (port) => ['--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${port}.conf`), '--cluster-node-timeout', '2000'],
      }),
    );
  }
  redisCli(nodes[0]!.port, '--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes');
  const ok = () => nodes.every((n) => redisCli(n.port, 'CLUSTER', 'INFO').includes('cluster_state:ok'));
  if (!(await waitFor(ok, 20_000))) throw new Error('cluster did not reach cluster_state:ok');
  return {
    nodes,
    url: `redis+cluster://${nodes.map((n) => `127.0.0.1:${n.port}`).join(',')}`,
    async stop() {
      for (const n of nodes) await n.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Store options for a test URL, with a key prefix of this process's own. */
export function redisOptions(url: string, clock: () => number, over: Partial<RedisStoreOptions> = {}): RedisStoreOptions {
  const parsed = parseStoreUrl(url);
  if (typeof parsed === 'string' || parsed.kind === 'memory') throw new Error(`bad test url ${url}: ${String(parsed)}`);
  return {
    url: parsed,
    displayUrl: url,
    keyPrefix: `sgtest${process.pid}:`,
    commandTimeout: 1000,
    connectTimeout: 1000,
    maxRetriesPerRequest: 1,
    clock,
    ...over,
  };
}
