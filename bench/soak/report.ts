/**
 * The soak's report (Markdown): set-up, summary and verdict, faults, decisions per transport and
 * reason, service-side counts, sessions, service processes, and the details worth a look. The
 * summary lines are what test/e2e/soak-smoke.test.ts reads.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { nginxBinary, ROOT, tempDir } from '../../harness/processes.js';
import { durabilityFault, type FinalCheck } from './checker.js';
import type { SoakContext } from './context.js';
import { type Cls, type Fault, MUST_DENY, type Session, TRANSPORTS, type Transport } from './model.js';
import type { ServiceReadings, Topology } from './services.js';
import { type TrafficRun, WEIGHTS } from './traffic.js';

export interface SoakResults {
  readonly topology: Topology;
  readonly traffic: TrafficRun;
  /** Every replica ready again after the traffic. */
  readonly recovered: boolean;
  readonly uncertainLeft: number;
  readonly final: FinalCheck;
  readonly resurrected: readonly Session[];
  readonly services: ServiceReadings;
}

const mb = (bytes: number) => (Number.isFinite(bytes) ? (bytes / 1048576).toFixed(1) : '?');

function version(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return `${r.stderr ?? ''}${r.stdout ?? ''}`.split('\n')[0]!.trim();
}

/** The report's text and the verdict: failed on a wrong allow, a lost session, a crash, a fault error or no recovery. */
export function buildReport(ctx: SoakContext, r: SoakResults): { text: string; failed: boolean } {
  const { opts, stats, faults, secs } = ctx;
  const { backends, instances } = r.topology;
  const { final, resurrected, traffic } = r;
  const { decisions: decisionsAfter, logs, nginxLog } = r.services;
  const windowS = opts.durabilityWindowMs / 1000;

  let internalErrors = 0;
  for (const m of decisionsAfter.values()) for (const [k, v] of m) if (k.endsWith('|internal_error')) internalErrors += v;
  const crashed = instances.filter((i) => i.diedAt !== undefined);
  const crashLines = instances.reduce((a, i) => a + logs.get(i.name)!.crashLines.length, 0);
  const crashes = crashed.length + (crashLines > 0 && crashed.length === 0 ? 1 : 0);
  const count = (t: string, b: string, k: string) => stats.decisions.get(`${t}|${b}|${k}`) ?? 0;
  const served = (t: Transport) => backends.reduce((a, b) => a + count(t, b.name, 'allow') + count(t, b.name, 'deny') + count(t, b.name, 'error'), 0);
  const totalServed = TRANSPORTS.reduce((a, t) => a + served(t), 0);
  const kinds = (k: Fault['kind']) => faults.filter((f) => f.kind === k && f.detail !== 'not injected').length;
  const faultErrors = faults.filter((f) => f.error);
  const wrong = stats.wrongAllows.length;
  const lost = final.lost.length + final.unresolved.filter((u) => u.s.state === 'live' && !durabilityFault(ctx, u.s)).length;
  const failed = wrong > 0 || lost > 0 || crashes > 0 || faultErrors.length > 0 || !r.recovered || totalServed === 0;

  const L: string[] = [];
  L.push('# sessiongate resilience soak', '');
  L.push(
    `${new Date().toISOString()}${opts.smoke ? ' (smoke run)' : ''}: ${(traffic.ms / 1000).toFixed(0)} s of traffic, ${((Date.now() - ctx.t0) / 1000).toFixed(0)} s in all (set-up ${(traffic.setupMs / 1000).toFixed(1)} s)`,
    '',
  );
  L.push(`- machine: ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, shared with everything else running`);
  L.push(`- node ${process.version}; ${version(nginxBinary(), ['-v'])}; ${version('redis-server', ['--version'])}`);
  L.push(
    `- topology: per backend two sessiongate replicas (A, B) sharing the store, ${opts.config.startsWith(ROOT) ? opts.config.slice(ROOT.length + 1) : opts.config} (Redis defaults: local cache on, command timeout 100 ms); nginx (shipped config) → A; gRPC Check → B; auth-direct (/auth with the headers nginx sets) → A or B`,
  );
  L.push(
    `- standalone Redis: appendonly yes, appendfsync everysec. An acknowledged write is in the AOF (page cache) before the reply unless a slow fsync made Redis postpone it, so a SIGKILL loses at most ~2 s of writes; hence sessions created less than ${windowS} s before a fault are tolerated as lost`,
  );
  L.push(
    `- Sentinel group: master, replica, three sentinels (down-after 1 s, failover-timeout 4 s), no persistence on the data nodes; replication is asynchronous, so the same ${windowS} s window applies`,
  );
  L.push(
    `- load: target ${opts.rate} decisions/s over ${opts.lanes} lanes, achieved ${(totalServed / (traffic.ms / 1000)).toFixed(0)}/s; soak driver CPU ${(((traffic.cpu.user + traffic.cpu.system) / 1e6 / (traffic.ms / 1000)) * 100).toFixed(0)} % of one core`,
  );
  L.push(`- mix: ${WEIGHTS.map(([c, w]) => `${c} ${w}`).join(', ')} (weights); transports nginx 45 %, grpc 40 %, auth-direct 15 %`);
  L.push('');
  L.push('## Summary', '');
  L.push(`- wrong allows: ${wrong}`);
  L.push(
    `- sessions lost: ${lost} (of ${final.protectedLive} live sessions created at least ${windowS} s before any fault, each checked on both replicas after recovery)`,
  );
  L.push(
    `- service crashes: ${crashes} (${instances.length} sessiongate processes; died during the run: ${crashed.length}; unhandled/uncaught/fatal lines in their output: ${crashLines})`,
  );
  L.push(`- faults injected: redis-kill ${kinds('redis-kill')}, sentinel-failover ${kinds('sentinel-failover')} (with errors: ${faultErrors.length})`);
  L.push(
    `- decisions served: nginx ${served('nginx')}, grpc ${served('grpc')}, auth-direct ${served('auth-direct')} (total ${totalServed}; client-side failures ${[...stats.failures.values()].reduce((a, b) => a + b, 0)})`,
  );
  L.push(
    `- valid sessions: allowed ${stats.validAllowed}, store_unavailable ${stats.validErrors} (outside fault windows: ${stats.validErrorsOutsideFaults}), denied ${stats.validDenied + stats.validDeniedWindow} (created < ${windowS} s before a fault: ${stats.validDeniedWindow}; others: ${stats.validDenied})`,
  );
  L.push(
    `- must-deny requests (no/garbage/forged/tampered/duplicate credentials, role and spoofing violations): denied ${stats.mustDenyDenied}, store_unavailable ${stats.mustDenyErrors}, allowed ${stats.wrongAllows.filter((w) => MUST_DENY.has(w.cls as Cls)).length}`,
  );
  L.push(
    `- destroyed sessions: ${stats.destroyOk} destroyed (${stats.afterDestroyProbes} probes right after the 204 on every transport and both replicas); answers after destroy: denied ${stats.destroyedDenied}, store_unavailable ${stats.destroyedErrors}; resurrected by a store fault within ${windowS} s of the destroy: ${resurrected.length}`,
  );
  L.push(`- public paths: allowed ${stats.publicAllowed}, not allowed ${[...stats.publicNotAllowed.values()].reduce((a, b) => a + b, 0)}`);
  L.push(`- internal errors (reason internal_error, counted by the services): ${internalErrors}`);
  L.push(`- verdict: ${failed ? 'FAIL' : 'PASS'}`);
  L.push('');
  L.push('## Faults', '');
  L.push('| # | backend | fault | at | store back | sessiongate ready | old master rejoined | client-visible store errors | detail |');
  L.push('|---|---|---|---:|---:|---:|---:|---|---|');
  for (const f of faults) {
    const errs = f.errors ? `${f.errors}, last ${secs(f.lastErrorAt)} (${((f.lastErrorAt! - f.at) / 1000).toFixed(1)} s after the kill)` : '0';
    L.push(
      `| ${f.n} | ${f.backend} | ${f.kind} | ${secs(f.at)} | ${secs(f.storeBackAt)} | ${secs(f.readyAt)} | ${f.kind === 'sentinel-failover' ? secs(f.rejoinedAt) : ''} | ${errs} | ${f.detail}${f.error ? `; **ERROR: ${f.error}**` : ''} |`,
    );
  }
  L.push('');
  L.push('## Decisions per transport', '');
  L.push('| transport | backend | allow | deny | error | client failure |');
  L.push('|---|---|---:|---:|---:|---:|');
  for (const t of TRANSPORTS)
    for (const b of backends)
      L.push(`| ${t} | ${b.name} | ${count(t, b.name, 'allow')} | ${count(t, b.name, 'deny')} | ${count(t, b.name, 'error')} | ${count(t, b.name, 'fail')} |`);
  L.push('');
  L.push('## Answers by reason (client view)', '');
  L.push(
    'nginx answers the client with a status only (the shipped config does not pass X-Sessiongate-Reason on); gRPC carries the reason in the status message or dynamic metadata, auth-direct in X-Sessiongate-Reason. The service-side counts below have the reasons behind the nginx statuses.',
    '',
  );
  L.push('| transport | result | reason | count |');
  L.push('|---|---|---|---:|');
  for (const [k, v] of [...stats.reasons].sort()) {
    const [t, kind, reason] = k.split('|');
    L.push(`| ${t} | ${kind} | ${reason} | ${v} |`);
  }
  L.push('');
  L.push('## Service-side counts (sessiongate_decisions_total, whole run including set-up and final check)', '');
  L.push('| replica | transport | result | reason | count |');
  L.push('|---|---|---|---|---:|');
  for (const [name, m] of decisionsAfter) {
    for (const [k, v] of [...m].sort()) {
      const [t, res, reason] = k.split('|');
      L.push(`| ${name} | ${t} | ${res} | ${reason} | ${v} |`);
    }
  }
  for (const [name, text] of nginxLog) {
    const unexpected = (text.match(/auth request unexpected status: 500/g) ?? []).length;
    const upstream = (text.match(/(upstream timed out|connect\(\) failed|upstream prematurely closed)/g) ?? []).length;
    L.push(
      '',
      `nginx (${name}) error log: ${unexpected} auth subrequests answered 500 by sessiongate; ${upstream} upstream failures (timeouts, refused, closed)`,
    );
  }
  L.push('');
  L.push('## Sessions', '');
  L.push(
    `- created: ${stats.created} (${opts.initialSessions} per backend before the traffic, the rest during it, alternately on A and B); creation failures: ${[...stats.createFailed].map(([k, v]) => `${k} × ${v}`).join(', ') || 'none'}`,
  );
  L.push(
    `- destroyed: ${stats.destroyOk} (alternately DELETE /~session through nginx to A and straight to B); failures, retried later: ${[...stats.destroyFailed].map(([k, v]) => `${k} × ${v}`).join(', ') || 'none'}; still uncertain at the end: ${r.uncertainLeft}`,
  );
  L.push(
    `- final check after recovery (${r.recovered ? 'all replicas ready' : '**not all replicas ready**'}): ${final.checked} sessions asked on A (auth-direct) and B (gRPC): ${final.protectedLive} protected live, ${final.lost.length} of them lost; ${final.lostInWindow.length} created within ${windowS} s before a fault and lost (tolerated); ${final.destroyedChecked} destroyed, ${final.destroyedAllowedAtEnd} allowed; unresolved (store errors after retries): ${final.unresolved.length}`,
  );
  for (const x of final.lost.slice(0, 20))
    L.push(`  - LOST #${x.s.n} ${x.s.backend.name} ${x.s.user}, created ${secs(x.s.createdAt)} on ${x.s.createdOn}: ${x.answer}`);
  for (const x of final.lostInWindow.slice(0, 10))
    L.push(`  - lost in window #${x.s.n} ${x.s.backend.name}, created ${secs(x.s.createdAt)}, fault #${x.fault.n} at ${secs(x.fault.at)}: ${x.answer}`);
  for (const x of final.unresolved.slice(0, 10)) L.push(`  - unresolved #${x.s.n} ${x.s.backend.name}: ${x.answer}`);
  for (const s of resurrected.slice(0, 10))
    L.push(`  - resurrected #${s.n} ${s.backend.name}: destroyed ${secs(s.destroyedAt)}, allowed again after a fault within ${windowS} s`);
  L.push('');
  L.push('## Service processes', '');
  L.push(
    '| replica | pid | RSS start MB | RSS at half time MB | RSS end MB | growth | growth in the second half | max sampled MB | died | exit on SIGTERM | store unreachable / reachable again (log) | error-level log lines | other output |',
  );
  L.push('|---|---:|---:|---:|---:|---:|---:|---:|---|---|---|---|---|');
  for (const i of instances) {
    const l = logs.get(i.name)!;
    const growth = i.rssEnd - i.rssStart;
    const pct = Number.isFinite(growth) ? ` (${((growth / i.rssStart) * 100).toFixed(0)} %)` : '';
    const errs = [...l.errorLines].map(([k, v]) => `${k} × ${v}`).join('; ') || '0';
    const late = i.rssMid === undefined ? NaN : i.rssEnd - i.rssMid;
    L.push(
      `| ${i.name} | ${i.sg.pid} | ${mb(i.rssStart)} | ${i.rssMid === undefined ? '–' : mb(i.rssMid)} | ${mb(i.rssEnd)} | ${growth >= 0 ? '+' : ''}${mb(growth)} MB${pct} | ${Number.isFinite(late) ? `${late >= 0 ? '+' : ''}${mb(late)} MB` : '–'} | ${mb(i.rssMax)} | ${i.diedAt !== undefined ? `at ${secs(i.diedAt)}` : 'no'} | ${i.exitOnStop === undefined ? '–' : String(i.exitOnStop)} | ${l.storeUnreachable} / ${l.storeReachable} | ${errs} | ${l.nonJson.length} lines |`,
    );
  }
  const problems: string[] = [];
  for (const w of stats.wrongAllows.slice(0, 50)) problems.push(`- WRONG ALLOW ${secs(w.at)} ${w.backend} ${w.transport} ${w.cls}: ${w.detail}`);
  for (const d of stats.validDeniedDetail) problems.push(`- valid session denied: ${d}`);
  for (const d of stats.validErrorsOutsideDetail) problems.push(`- store error outside a fault window: ${d}`);
  for (const [k, v] of stats.publicNotAllowed) problems.push(`- public path not allowed: ${k} × ${v}`);
  for (const [k, v] of stats.failures) problems.push(`- client-side failure: ${k} × ${v}`);
  for (const f of faultErrors) problems.push(`- fault #${f.n} (${f.kind}): ${f.error}`);
  for (const i of instances) {
    const l = logs.get(i.name)!;
    for (const line of l.crashLines.slice(0, 5)) problems.push(`- ${i.name} output: ${line}`);
    for (const line of l.nonJson.slice(0, 5)) problems.push(`- ${i.name} non-JSON output: ${line}`);
    if (l.errorsOutside.length)
      problems.push(`- ${i.name} logged ${l.errorsOutside.length} failed decisions outside fault windows: ${l.errorsOutside.slice(0, 10).join('; ')}`);
  }
  // The services' own logs, kept when something needs a closer look (or with --keep-logs).
  if (failed || problems.length > 0 || opts.keepLogs) {
    const dir = tempDir('sg-soak-logs-');
    for (const i of instances) writeFileSync(join(dir, `${i.name.replace(' ', '-')}.log`), `${i.sg.logs().join('\n')}\n`);
    for (const b of backends) writeFileSync(join(dir, `nginx-${b.name}-error.log`), nginxLog.get(b.name) ?? '');
    problems.push(`- service logs (JSON lines; times are Unix ms, the traffic started at ${ctx.t0 + ctx.trafficStart}) and nginx error logs: ${dir}`);
  }
  if (problems.length) L.push('', '## Details', '', ...problems);
  return { text: `${L.join('\n')}\n`, failed };
}
