/**
 * The benchmark still runs: a 1-second smoke pass over every row, zero errors. Timings are
 * never asserted here; `npm run bench` measures them.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { ROOT } from '../../harness/processes.js';

it('bench --smoke runs every row with zero errors', () => {
  const r = spawnSync(process.execPath, [join(ROOT, 'dist-bench/bench/run.js'), '--smoke'], { encoding: 'utf8', timeout: 180_000 });
  expect(r.stderr).not.toContain('bench: ');
  expect(r.status).toBe(0);
  for (const row of ['F1', 'F2', 'F3', 'F4', 'S1', 'S2', 'S3', 'S4', 'S5', 'W2']) expect(r.stdout).toMatch(new RegExp(`^\\| ${row} \\|`, 'm'));
}, 200_000);
