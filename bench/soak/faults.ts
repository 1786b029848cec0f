/**
 * Fault injection on a schedule: the standalone redis-server SIGKILLed and restarted (it reloads
 * its AOF), and the Sentinel group's master SIGKILLed until the sentinels promote the replica,
 * then restarted to rejoin as a replica. Each fault records when the store and both sessiongate
 * replicas were back.
 */
import { waitFor } from '../../harness/processes.js';
import { redisOnce, type SentinelGroup } from '../../harness/redis.js';
import { type SoakContext, sleep } from './context.js';
import type { Backend, Fault, Instance } from './model.js';
import { httpCall } from './transports.js';

/** One command on a fresh connection that never queues or retries (Redis may be down). */
const redisCmd = (port: number, ...args: string[]) => redisOnce(port, args);

const infoField = (info: string, field: string) => new RegExp(`^${field}:(.*)$`, 'm').exec(info)?.[1]?.trim();

/** Both replicas of the backend answer /readyz 200 within `timeoutMs`. */
export async function readyBoth(ctx: SoakContext, b: Backend, timeoutMs: number): Promise<boolean> {
  const ready = async (i: Instance) => {
    try {
      return (await httpCall(ctx, i.sg.adminPort, '/readyz')).status === 200;
    } catch {
      return false;
    }
  };
  return waitFor(async () => (await ready(b.a)) && (await ready(b.b)), timeoutMs);
}

function newFault(ctx: SoakContext, b: Backend, kind: Fault['kind'], detail: string): Fault {
  const f: Fault = { n: ctx.faults.length + 1, backend: b.name, kind, at: ctx.now(), detail, errors: 0 };
  ctx.faults.push(f);
  b.faults.push(f);
  return f;
}

async function dbsize(port: number): Promise<string> {
  try {
    return String(await redisCmd(port, 'DBSIZE'));
  } catch {
    return '?';
  }
}

/** SIGKILL the standalone redis-server, leave it down for `downMs`, start it again (it reloads its AOF). */
async function killStandalone(ctx: SoakContext, b: Backend, downMs: number): Promise<void> {
  const redis = b.redis!;
  const keysBefore = await dbsize(redis.port);
  const f = newFault(ctx, b, 'redis-kill', `SIGKILL redis-server :${redis.port}, down ${(downMs / 1000).toFixed(1)} s`);
  ctx.log(`fault #${f.n}: ${f.detail}`);
  await redis.kill();
  await sleep(downMs);
  try {
    await redis.restart();
    f.storeBackAt = ctx.now();
    f.detail += `; keys ${keysBefore} before the kill, ${await dbsize(redis.port)} after the restart (AOF reloaded)`;
    if (await readyBoth(ctx, b, 30_000)) f.readyAt = ctx.now();
    else f.error = 'sessiongate replicas not ready 30 s after the restart';
  } catch (err) {
    f.error = `restart failed: ${(err as Error).message}`;
  }
  ctx.log(`fault #${f.n}: redis back ${ctx.secs(f.storeBackAt)}, sessiongate ready ${ctx.secs(f.readyAt)}${f.error ? `, ERROR ${f.error}` : ''}`);
}

async function sentinelMaster(g: SentinelGroup): Promise<number | undefined> {
  for (const s of g.sentinels) {
    try {
      const r = (await redisCmd(s.port, 'SENTINEL', 'get-master-addr-by-name', g.masterName)) as [string, string] | null;
      if (r) return Number(r[1]);
    } catch {
      /* try the next sentinel */
    }
  }
  return undefined;
}

/** True when the node at `port` is a replica of `masterPort` with its link up. */
async function isReplicaOf(port: number, masterPort: number): Promise<boolean> {
  try {
    const info = String(await redisCmd(port, 'INFO', 'replication'));
    return infoField(info, 'role') === 'slave' && Number(infoField(info, 'master_port')) === masterPort && infoField(info, 'master_link_status') === 'up';
  } catch {
    return false;
  }
}

/** Kills the Sentinel group's master, waits for the promotion, restarts the old master and waits for it to rejoin as a replica. */
async function failover(ctx: SoakContext, b: Backend): Promise<void> {
  const g = b.group!;
  const masterPort = await sentinelMaster(g);
  const nodes = [g.master, g.replica];
  const victim = nodes.find((n) => n.port === masterPort);
  const other = nodes.find((n) => n.port !== masterPort)!;
  if (!victim) {
    const f = newFault(ctx, b, 'sentinel-failover', 'not injected');
    f.error = `sentinels name master :${masterPort}, not a node of the group`;
    return;
  }
  // A failover needs a replica in sync to promote.
  if (!(await waitFor(() => isReplicaOf(other.port, victim.port), 30_000))) {
    const f = newFault(ctx, b, 'sentinel-failover', 'not injected');
    f.error = `replica :${other.port} not linked to master :${victim.port}`;
    return;
  }
  const f = newFault(ctx, b, 'sentinel-failover', `SIGKILL master :${victim.port}`);
  ctx.log(`fault #${f.n}: ${f.detail}`);
  await victim.kill();
  const promoted = await waitFor(async () => (await sentinelMaster(g)) === other.port, 30_000);
  if (!promoted) {
    f.error = 'no failover within 30 s';
    await victim.restart().catch(() => {});
    return;
  }
  f.storeBackAt = ctx.now();
  f.detail += `; sentinels promoted :${other.port}`;
  await sleep(1000);
  try {
    await victim.restart();
    f.restartedAt = ctx.now();
  } catch (err) {
    f.error = `old master did not restart: ${(err as Error).message}`;
  }
  if (await readyBoth(ctx, b, 30_000)) f.readyAt = ctx.now();
  else f.error ??= 'sessiongate replicas not ready 30 s after the failover';
  ctx.log(
    `fault #${f.n}: promoted ${ctx.secs(f.storeBackAt)}, old master restarted ${ctx.secs(f.restartedAt)}, sessiongate ready ${ctx.secs(f.readyAt)}${f.error ? `, ERROR ${f.error}` : ''}`,
  );
  if (f.restartedAt !== undefined) {
    // The sentinels turn it into a replica of the new master (they wait about 8 s before doing so).
    if (await waitFor(() => isReplicaOf(victim.port, other.port), 45_000)) {
      f.rejoinedAt = ctx.now();
      f.detail += `; :${victim.port} restarted and rejoined as replica`;
      ctx.log(`fault #${f.n}: old master :${victim.port} rejoined as replica ${ctx.secs(f.rejoinedAt)}`);
    } else f.error ??= `old master :${victim.port} did not rejoin as a replica within 45 s`;
  }
}

interface Planned {
  /** Milliseconds after the traffic started. */
  at: number;
  run: () => Promise<void>;
}

function schedule(ctx: SoakContext, standalone: Backend, sentinel: Backend): { standalone: Planned[]; sentinel: Planned[] } {
  if (ctx.opts.smoke) {
    return {
      // The Sentinel fault first: the sentinels take 10–16 s to turn the restarted old master
      // into a replica, and the run waits for that before its final check.
      standalone: [{ at: 5_000, run: () => killStandalone(ctx, standalone, 2_000) }],
      sentinel: [{ at: 3_000, run: () => failover(ctx, sentinel) }],
    };
  }
  const s: Planned[] = [];
  const f: Planned[] = [];
  const last = ctx.opts.trafficMs - 40_000;
  for (let t = 20_000; t <= last; t += 60_000) {
    s.push({ at: t, run: () => killStandalone(ctx, standalone, 1_000 + Math.round(Math.random() * 5_000)) });
    if (t + 30_000 <= last) f.push({ at: t + 30_000, run: () => failover(ctx, sentinel) });
  }
  if (f.length === 0 && last >= 10_000) f.push({ at: 10_000, run: () => failover(ctx, sentinel) });
  return { standalone: s, sentinel: f };
}

async function runPlan(ctx: SoakContext, plan: Planned[]): Promise<void> {
  for (const p of plan) {
    await sleep(ctx.trafficStart + p.at - ctx.now());
    if (ctx.stopping) return;
    await p.run();
  }
}

/** Starts both backends' fault schedules (relative to ctx.trafficStart); resolves when both are done. */
export function runFaults(ctx: SoakContext, standalone: Backend, sentinel: Backend): Promise<unknown> {
  const plan = schedule(ctx, standalone, sentinel);
  return Promise.all([runPlan(ctx, plan.standalone), runPlan(ctx, plan.sentinel)]);
}
