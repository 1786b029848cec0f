/**
 * The resilience soak still runs and still holds: an ~18-second `--smoke` pass of
 * bench/soak.ts (mixed traffic through nginx, gRPC Check and /auth against sessiongate on a
 * standalone Redis and a Sentinel group, with one redis-server SIGKILL + restart and one
 * Sentinel failover). It exits 0 only with no wrong allow, no lost session and no crashed
 * service; the report's numbers are checked here as well, so a soak that silently stopped
 * injecting faults or serving decisions fails too. `npm run soak` runs the long version.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { ROOT } from '../../harness/processes.js';

/** The number after `- <label>: ` in the report's summary. */
function summary(out: string, label: string): string {
  const m = new RegExp(`^- ${label}: (.*)$`, 'm').exec(out);
  expect(m, `report line "- ${label}: …"`).not.toBeNull();
  return m![1]!;
}
const first = (s: string) => Number(/^(\d+)/.exec(s)?.[1] ?? NaN);

it('soak --smoke: faults of both kinds, decisions on every transport, no wrong allow, no lost session, no crash', () => {
  const r = spawnSync(process.execPath, [join(ROOT, 'dist-bench/bench/soak.js'), '--smoke'], { encoding: 'utf8', timeout: 120_000 });
  const context = `exit ${r.status} ${r.signal ?? ''}\n${r.stdout}\n${r.stderr}`;
  expect(r.stderr, context).not.toMatch(/^soak: /m);
  expect(r.status, context).toBe(0);
  const out = r.stdout;

  expect(first(summary(out, 'wrong allows')), context).toBe(0);
  const lost = summary(out, 'sessions lost');
  expect(first(lost), context).toBe(0);
  // The check covered real sessions: "0 (of N live sessions created at least 2 s before any fault, …)".
  expect(Number(/of (\d+) live sessions/.exec(lost)?.[1]), context).toBeGreaterThanOrEqual(10);
  expect(first(summary(out, 'service crashes')), context).toBe(0);

  const faults = /^redis-kill (\d+), sentinel-failover (\d+) \(with errors: (\d+)\)/.exec(summary(out, 'faults injected'));
  expect(faults, context).not.toBeNull();
  expect(Number(faults![1])).toBeGreaterThanOrEqual(1);
  expect(Number(faults![2])).toBeGreaterThanOrEqual(1);
  expect(Number(faults![3])).toBe(0);
  // Each fault is in the table with the time sessiongate was ready again.
  for (const kind of ['redis-kill', 'sentinel-failover'])
    expect(out, context).toMatch(new RegExp(`^\\| \\d+ \\| \\w+ \\| ${kind} \\| [\\d.]+ s \\| [\\d.]+ s \\| [\\d.]+ s \\|`, 'm'));

  const served = /^nginx (\d+), grpc (\d+), auth-direct (\d+) \(total (\d+)/.exec(summary(out, 'decisions served'));
  expect(served, context).not.toBeNull();
  const [nginx, grpc, direct, total] = served!.slice(1).map(Number) as [number, number, number, number];
  expect(nginx).toBeGreaterThan(100);
  expect(grpc).toBeGreaterThan(100);
  expect(direct).toBeGreaterThan(20);
  expect(total).toBe(nginx + grpc + direct);

  // Valid sessions were allowed, and the outages were seen as store_unavailable, not as denies.
  const valid = /^allowed (\d+), store_unavailable (\d+) .*denied (\d+) \(created < 2 s before a fault: (\d+); others: (\d+)\)/.exec(
    summary(out, 'valid sessions'),
  );
  expect(valid, context).not.toBeNull();
  expect(Number(valid![1])).toBeGreaterThan(100);
  expect(Number(valid![2])).toBeGreaterThan(0);
  expect(Number(valid![5]), context).toBe(0);
  // Forged and other must-deny requests were sent and denied; sessions were destroyed and probed.
  expect(first(summary(out, 'must-deny requests \\([^)]*\\)').replace(/^denied /, '')), context).toBeGreaterThan(100);
  expect(first(summary(out, 'destroyed sessions')), context).toBeGreaterThan(5);
  expect(summary(out, 'verdict')).toBe('PASS');
}, 150_000);
