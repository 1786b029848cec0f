import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // End-to-end files start real nginx and redis-server processes: give them room, and keep
    // at most two files running at once on a two-core machine.
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    maxWorkers: 2,
    reporters: ['default', './test/support/count-reporter.ts'],
    projects: [
      { extends: true, test: { name: 'suite', include: ['test/**/*.test.ts'], exclude: ['test/e2e/bench-smoke.test.ts', 'test/e2e/soak-smoke.test.ts'] } },
      // The benchmark smoke pass loads both cores: it runs alone, after everything else.
      { extends: true, test: { name: 'bench-smoke', include: ['test/e2e/bench-smoke.test.ts'], sequence: { groupOrder: 1 } } },
      // The soak's short form kills and restarts Redis: it runs alone too, last.
      { extends: true, test: { name: 'soak-smoke', include: ['test/e2e/soak-smoke.test.ts'], sequence: { groupOrder: 2 } } },
    ],
  },
});
