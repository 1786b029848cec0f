/**
 * The benchmark still runs: a 1-second smoke pass over every row, zero errors, every figure
 * measured (CPU per decision, the paired ratios, the memory figures: none missing or NaN).
 * Timings are never asserted here; `npm run bench` measures them.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { ROOT } from '../../harness/processes.js';

it('bench --smoke runs every row with zero errors and reports every figure', () => {
  const r = spawnSync(process.execPath, [join(ROOT, 'dist-bench/bench/run.js'), '--smoke'], { encoding: 'utf8', timeout: 180_000 });
  expect(r.stderr).not.toContain('bench: ');
  expect(r.status).toBe(0);
  expect(r.stdout).not.toMatch(/NaN|Infinity|row not run/);
  for (const row of ['F1', 'F2', 'F3', 'F4', 'S1', 'S2', 'S3', 'S4', 'S5', 'W2', 'C0', 'C1', 'CS', 'H0', 'H1', 'HS']) {
    // req/s, then CPU µs per decision with whose CPU it is.
    expect(r.stdout).toMatch(new RegExp(`^\\| ${row} \\| [^|]+ \\| \\d+ \\| \\d+\\.\\d \\([^)]+\\)+ \\|`, 'm'));
  }
  // Paired ratios and the p99 at half load against the floor at the same rate.
  expect(r.stdout).toMatch(/^\| S1 \|.*\| \d+\.\d\d × F2 \| \d+\.\d\d × F2 \| [\d.]+ \/ [\d.]+ = \d+\.\d\d × F2 /m);
  expect(r.stdout).toMatch(/^- idle RSS after start-up .*: sessiongate memory store \d+ MB, Redis store \d+ MB/m);
  expect(r.stdout).toMatch(/^- memory store: \d+ bytes per session .*; Redis: \d+ bytes per session record, \d+ bytes per session with its user index/m);
  expect(r.stdout).toMatch(/^\| S1 CPU per decision ≤ 1\.25 × F2 \| \d+\.\d\d × F2 \| (met|not met) \|$/m);
}, 200_000);
