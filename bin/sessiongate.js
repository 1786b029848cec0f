#!/usr/bin/env node
import { setFlagsFromString } from 'node:v8';

// V8 lets the old generation grow to several times what survives a collection before it
// collects again (by its own measure of how fast the process allocates): an allocation burst
// such as thousands of logins left ~100 MB of heap behind for ~25 MB of live objects, resident
// from then on. Growing by 20 % per collection instead keeps the heap near its live size (peak
// RSS under the benchmark's load 140 MB instead of 180 MB; CPU per decision unchanged within
// the noise). A --heap-growing-percent given to node (NODE_OPTIONS or the command line) wins.
const given = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)];
if (!given.some((a) => a.startsWith('--heap-growing-percent') || a.startsWith('--heap_growing_percent'))) setFlagsFromString('--heap-growing-percent=20');

const { run } = await import('../dist/cli/index.js');

run(process.argv.slice(2), process.env).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`sessiongate: ${err?.stack ?? err}\n`);
    process.exit(1);
  },
);
