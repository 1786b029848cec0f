/**
 * The processes under test: two backends (standalone Redis with AOF, a Sentinel group), each
 * with two sessiongate replicas, nginx in front of replica A and a gRPC client to replica B.
 * Watched for deaths and memory during the run; afterwards their metrics and logs are read.
 */
import { existsSync, readFileSync } from 'node:fs';
import { RawEnvoyClient } from '../../harness/envoy-wire.js';
import { startNginx, startService } from '../../harness/processes.js';
import { type RedisProcess, type SentinelGroup, startRedisServer, startSentinelGroup } from '../../harness/redis.js';
import { faultWindow } from './checker.js';
import { inc, type SoakContext } from './context.js';
import type { Backend, Instance } from './model.js';
import { createInitialSessions } from './sessions.js';
import { httpCall, startApp } from './transports.js';

export function rss(pid: number | undefined): number {
  if (!pid) return NaN;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}

function alive(pid: number | undefined): boolean {
  if (!pid || !existsSync(`/proc/${pid}`)) return false;
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

async function startInstance(ctx: SoakContext, name: string, store: string): Promise<Instance> {
  const { config, secret, loginToken } = ctx.opts;
  const sg = await startService({
    config,
    env: { SESSIONGATE_STORE: store, SESSIONGATE_SECRET: secret, SESSIONGATE_LOGIN_TOKEN: loginToken, SESSIONGATE_LOG_LEVEL: 'info' },
  });
  ctx.cleanups.push(() => sg.stop());
  const r = rss(sg.pid);
  return { name, sg, rssStart: r, rssMax: r, rssEnd: NaN };
}

async function startBackend(
  ctx: SoakContext,
  name: Backend['name'],
  url: string,
  appPort: number,
  extra: { redis?: RedisProcess; group?: SentinelGroup },
): Promise<Backend> {
  const [a, b] = await Promise.all([startInstance(ctx, `${name} A`, url), startInstance(ctx, `${name} B`, url)]);
  const nginx = await startNginx({ sessiongatePort: a.sg.httpPort, appPort });
  ctx.cleanups.push(() => nginx.stop());
  const grpc = new RawEnvoyClient(`127.0.0.1:${b.sg.grpcPort}`);
  ctx.cleanups.push(() => grpc.close());
  return { name, url, a, b, nginx, grpc, ...extra, sessions: [], live: [], destroyed: [], uncertain: [], faults: [], seq: 0, toggle: 0 };
}

export interface Topology {
  readonly standalone: Backend;
  readonly sentinel: Backend;
  readonly backends: readonly Backend[];
  readonly instances: readonly Instance[];
}

/** Starts everything and creates the initial sessions; memory is measured from there on. */
export async function setUp(ctx: SoakContext): Promise<Topology> {
  ctx.log(`set-up: standalone Redis (appendonly yes, appendfsync everysec) and a Sentinel group`);
  const [redis, group, app] = await Promise.all([
    startRedisServer({ args: ['--appendonly', 'yes', '--appendfsync', 'everysec'] }),
    startSentinelGroup('soakmaster'),
    startApp(ctx),
  ]);
  ctx.cleanups.push(() => redis.stop());
  ctx.cleanups.push(() => group.stop());
  const [standalone, sentinel] = await Promise.all([
    startBackend(ctx, 'standalone', `redis://127.0.0.1:${redis.port}`, app.port, { redis }),
    startBackend(ctx, 'sentinel', group.url, app.port, { group }),
  ]);
  const backends = [standalone, sentinel];
  const instances = backends.flatMap((b) => [b.a, b.b]);
  ctx.log(`set-up: ${ctx.opts.initialSessions} sessions per backend`);
  for (const b of backends) await createInitialSessions(ctx, b);
  for (const i of instances) i.rssStart = i.rssMax = rss(i.sg.pid);
  return { standalone, sentinel, backends, instances };
}

/**
 * Watches the service processes: a death is a crash (nothing stops them before the end), and
 * RSS is sampled (max, and once at half the traffic time). Returns the function that stops it.
 */
export function watchProcesses(ctx: SoakContext, instances: readonly Instance[]): () => void {
  const watch = setInterval(() => {
    for (const i of instances) {
      if (i.diedAt === undefined && !alive(i.sg.pid)) {
        i.diedAt = ctx.now();
        ctx.log(`CRASH: ${i.name} (pid ${i.sg.pid}) is gone`);
      }
    }
  }, 500);
  const rssTimer = setInterval(() => {
    for (const i of instances) {
      const r = rss(i.sg.pid) || 0;
      i.rssMax = Math.max(i.rssMax, r);
      if (i.rssMid === undefined && ctx.now() - ctx.trafficStart >= ctx.opts.trafficMs / 2) i.rssMid = r;
    }
  }, 5000);
  const stop = () => (clearInterval(watch), clearInterval(rssTimer));
  ctx.cleanups.push(stop);
  return stop;
}

const CRASH_PATTERN = /unhandled|uncaught|FATAL ERROR|out of memory|Segmentation fault|Aborted/i;

export interface LogSummary {
  crashLines: string[];
  nonJson: string[];
  errorLines: Map<string, number>;
  storeUnreachable: number;
  storeReachable: number;
  /** Failed decisions the service logged outside every fault window of its backend. */
  errorsOutside: string[];
}

function summariseLogs(ctx: SoakContext, i: Instance, b: Backend): LogSummary {
  const out: LogSummary = { crashLines: [], nonJson: [], errorLines: new Map(), storeUnreachable: 0, storeReachable: 0, errorsOutside: [] };
  for (const chunk of i.sg.logs()) {
    for (const line of chunk.split('\n')) {
      if (!line.trim()) continue;
      if (CRASH_PATTERN.test(line)) out.crashLines.push(line.slice(0, 300));
      let j: { level?: number; msg?: string; time?: number; result?: string; reason?: string; transport?: string; duration_us?: number } | undefined;
      try {
        j = JSON.parse(line) as typeof j & object;
      } catch {
        out.nonJson.push(line.slice(0, 300));
        continue;
      }
      if (j.msg === 'store unreachable') out.storeUnreachable++;
      if (j.msg === 'store reachable again') out.storeReachable++;
      if ((j.level ?? 0) >= 50) inc(out.errorLines, `${j.level} ${j.msg ?? ''}`);
      if (j.msg === 'decision' && j.result === 'error' && typeof j.time === 'number' && !faultWindow(b, j.time - ctx.t0)) {
        out.errorsOutside.push(`${ctx.secs(j.time - ctx.t0)} ${j.transport} ${j.reason} after ${((j.duration_us ?? 0) / 1000).toFixed(1)} ms`);
      }
    }
  }
  return out;
}

/** sessiongate_decisions_total of one replica, as "transport|result|reason" → count (non-zero only). */
async function scrapeDecisions(ctx: SoakContext, i: Instance): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  try {
    const text = (await httpCall(ctx, i.sg.adminPort, '/metrics')).body;
    for (const m of text.matchAll(/^sessiongate_decisions_total\{([^}]*)\} ([\d.e+]+)$/gm)) {
      const labels = Object.fromEntries([...m[1]!.matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1]!, x[2]!]));
      const v = Number(m[2]);
      if (v > 0) out.set(`${labels['transport']}|${labels['result']}|${labels['reason']}`, v);
    }
  } catch (err) {
    out.set(`metrics scrape failed: ${(err as Error).message}||`, NaN);
  }
  return out;
}

export interface ServiceReadings {
  /** Replica name → its sessiongate_decisions_total. */
  readonly decisions: Map<string, Map<string, number>>;
  /** Replica name → what its log showed. */
  readonly logs: Map<string, LogSummary>;
  /** Backend name → nginx's error log. */
  readonly nginxLog: Map<string, string>;
}

/** Final memory, metrics and logs of every replica; then stops them, recording their exit codes. */
export async function readAndStop(ctx: SoakContext, t: Topology, stopWatching: () => void): Promise<ServiceReadings> {
  const decisions = new Map<string, Map<string, number>>();
  for (const i of t.instances) {
    i.rssEnd = rss(i.sg.pid);
    i.rssMax = Math.max(i.rssMax, i.rssEnd || 0);
    decisions.set(i.name, await scrapeDecisions(ctx, i));
  }
  const logs = new Map(t.backends.flatMap((b) => [b.a, b.b].map((i) => [i.name, summariseLogs(ctx, i, b)] as const)));
  const nginxLog = new Map(t.backends.map((b) => [b.name, b.nginx.errorLog()]));
  // Stop watching first: from here on the processes are stopped on purpose, one by one.
  stopWatching();
  for (const i of t.instances) if (i.diedAt === undefined && !alive(i.sg.pid)) i.diedAt = ctx.now();
  for (const i of t.instances) if (i.diedAt === undefined) i.exitOnStop = await i.sg.stop();
  return { decisions, logs, nginxLog };
}
