// npm's `prepare` hook: builds dist/ (what bin/sessiongate.js runs) with TypeScript, a dev
// dependency. `npm ci --omit=dev` leaves TypeScript out, and npm's own answer is
// `sh: tsc: not found`; this says what to run instead (docs/operations.md, "Installing with
// systemd"). It never skips the build: a dist/ left from an earlier version would run old code.
import { spawnSync } from 'node:child_process';

const r = spawnSync('tsc', ['-p', 'tsconfig.build.json'], { stdio: 'inherit' });
if (r.error && /** @type {NodeJS.ErrnoException} */ (r.error).code === 'ENOENT') {
  process.stderr.write(
    'sessiongate: building dist/ needs TypeScript, a dev dependency, which --omit=dev leaves out.\n' +
      'Install with `npm ci`, then `npm prune --omit=dev` to drop the build tools (docs/operations.md, "Installing with systemd").\n',
  );
  process.exit(1);
}
process.exit(r.status ?? 1);
