#!/usr/bin/env node
import { run } from '../dist/cli/index.js';

run(process.argv.slice(2), process.env).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`sessiongate: ${err?.stack ?? err}\n`);
    process.exit(1);
  },
);
