/**
 * `npm run soak`: a resilience soak. For a fixed time, mixed traffic goes to sessiongate
 * through a real nginx (the shipped config, auth_request), through gRPC Check (CheckRequests
 * shaped as Envoy sends them) and straight to `/auth` (the nginx protocol, which shows the
 * X-Sessiongate-Reason header), against two replicas of sessiongate sharing (a) a standalone
 * Redis and (b) a Sentinel group, while faults are injected on a schedule:
 *
 * - the standalone redis-server is SIGKILLed and restarted on the same port and folder. It runs
 *   with appendonly yes + appendfsync everysec: an acknowledged write is in the AOF file (the
 *   kernel's page cache) before the reply, unless Redis postponed a write behind a slow fsync
 *   (at most ~2 s), so a SIGKILL loses at most the last ~2 s of writes;
 * - the Sentinel group's current master is SIGKILLed, the sentinels promote the replica, and
 *   the old master is restarted afterwards (empty: the group's data nodes run without
 *   persistence) so that the sentinels turn it into a replica of the new master.
 *
 * What must hold: forged, garbage, tampered, duplicate and missing credentials, role and
 * spoofing violations, and destroyed sessions (after the destroy answered) are never allowed;
 * valid sessions are allowed, or get a `store_unavailable` error while the store is away
 * (counted apart, never as an allow); every session created at least 2 s before a fault still
 * resolves once everything has recovered; no sessiongate process dies or logs an unhandled
 * rejection. Sessions are created (POST /~session with the login token) and destroyed (DELETE
 * /~session, through nginx or straight to the other replica) throughout.
 *
 *   node dist-bench/bench/soak.js [--minutes M] [--rate R] [--sessions N] [--config FILE] [--keep-logs] [--smoke]
 *
 * --minutes: traffic time (default 10); --rate: target decisions per second over everything
 * (default 150: a correctness soak, not a load test); --sessions: sessions per backend created
 * before the traffic starts; --config: the sessiongate configuration the replicas run (default
 * deploy/config.example.yaml; its rules must keep /~assets/ public and /admin/ for the admin
 * role); --keep-logs: keep the services' logs even when all went well (they are kept, in a
 * temporary folder named in the report, whenever something needs a closer look). --smoke: 18 s
 * of traffic with one fault of each kind and fewer sessions (about 30 s in all); the report is
 * printed but not written.
 *
 * Prints a report and (except --smoke) writes it to bench/results/soak.md. Exits non-zero on a
 * wrong allow, a lost session, a crashed service, or a fault that could not be injected.
 *
 * The parts live in bench/soak/: context (options, clock, log, tallies), services (the processes
 * and their watch), sessions, traffic, transports, faults, checker (wrong allows, lost sessions)
 * and report. This file only runs them in order.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../harness/processes.js';
import { finalCheck, judgeAllowsAfterDestroy } from './soak/checker.js';
import { createContext, parseOptions, type SoakContext } from './soak/context.js';
import { readyBoth } from './soak/faults.js';
import { buildReport } from './soak/report.js';
import { readAndStop, setUp, watchProcesses } from './soak/services.js';
import { retryUncertainDestroys } from './soak/sessions.js';
import { runTraffic } from './soak/traffic.js';

async function main(ctx: SoakContext): Promise<number> {
  const topology = await setUp(ctx);
  const stopWatching = watchProcesses(ctx, topology.instances);
  const traffic = await runTraffic(ctx, topology);
  // Recovery: both replicas of both backends ready, then the destroys left uncertain are retried.
  const recovered = (await Promise.all(topology.backends.map((b) => readyBoth(ctx, b, 30_000)))).every(Boolean);
  const uncertainLeft = await retryUncertainDestroys(ctx, topology.backends);
  ctx.log('final check: every session on both replicas');
  const final = await finalCheck(ctx, topology.backends);
  const resurrected = judgeAllowsAfterDestroy(ctx, topology.backends, traffic.end);
  const services = await readAndStop(ctx, topology, stopWatching);
  const report = buildReport(ctx, { topology, traffic, recovered, uncertainLeft, final, resurrected, services });
  process.stdout.write(`\n${report.text}`);
  if (!ctx.opts.smoke) {
    mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
    writeFileSync(join(ROOT, 'bench/results/soak.md'), report.text);
    ctx.log('report written to bench/results/soak.md');
  }
  return report.failed ? 1 : 0;
}

const opts = parseOptions();
if (typeof opts === 'string') {
  process.stderr.write(`soak: ${opts}\n`);
  process.exit(2);
}
const ctx = createContext(opts);

/** Runs the clean-ups once (a signal can arrive while they run), then exits. */
function exitOnce(ctx: SoakContext): (code: number) => Promise<never> {
  let exiting = false;
  return async (code) => {
    if (!exiting) {
      exiting = true;
      ctx.stopping = true;
      for (const c of ctx.cleanups.reverse()) await Promise.resolve(c()).catch(() => {});
      ctx.agent.destroy();
    }
    process.exit(code);
  };
}
const finish = exitOnce(ctx);

process.once('SIGINT', () => void finish(130));
process.once('SIGTERM', () => void finish(143));

main(ctx)
  .then(
    (code) => code,
    (err) => {
      process.stderr.write(`soak: ${(err as Error).stack ?? String(err)}\n`);
      return 1;
    },
  )
  .then((code) => finish(code));
