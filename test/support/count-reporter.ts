/**
 * Ends every test run with one plain line, `N passed, N failed` (`, N skipped` when any were),
 * which CI reads: vitest's own summary is for people. A test file that failed to load and an
 * unhandled error each count as a failure, so a broken run can never print `0 failed`.
 */
import type { Reporter, TestModule } from 'vitest/node';

export default class CountReporter implements Reporter {
  onTestRunEnd(modules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<unknown>): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    for (const mod of modules) {
      let _tests = 0;
      for (const test of mod.children.allTests()) {
        _tests++;
        const state = test.result().state;
        if (state === 'passed') passed++;
        else if (state === 'failed') failed++;
        else skipped++;
      }
      // A failed hook fails its suite (its tests then count as skipped): count the suite.
      let failedTests = 0;
      for (const test of mod.children.allTests()) if (test.result().state === 'failed') failedTests++;
      let failedSuites = 0;
      for (const suite of mod.children.allSuites()) if (suite.state() === 'failed' && suite.errors().length > 0) failedSuites++;
      failed += failedSuites;
      if (mod.errors().length > 0) failed++;
      else if (mod.state() === 'failed' && failedTests === 0 && failedSuites === 0) failed++;
    }
    failed += unhandledErrors.length;
    process.stdout.write(`\n${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ''}\n`);
  }
}
