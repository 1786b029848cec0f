/**
 * `sessiongate healthcheck` as deploy/Dockerfile's HEALTHCHECK runs it: the command line and the
 * image's ENV lines read from the Dockerfile, against the built service whose admin port is set
 * only in its configuration file (named by SESSIONGATE_CONFIG, as the image documents). Exit 0
 * while it is healthy; 1 when nothing answers, something else answers, nothing answers in time,
 * or the configuration is invalid.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, ROOT, type RunningService, startService, tempDir } from '../../harness/processes.js';

const dockerfile = (() => {
  const text = readFileSync(join(ROOT, 'deploy/Dockerfile'), 'utf8').replace(/\\\n\s*/g, ' ');
  const cmd = /^HEALTHCHECK .*?CMD (\[.*\])\s*$/m.exec(text);
  if (!cmd) throw new Error('deploy/Dockerfile has no HEALTHCHECK CMD ["…"] line');
  const env: Record<string, string> = {};
  for (const line of text.split('\n').filter((l) => l.startsWith('ENV '))) for (const [, k, v] of line.slice(4).matchAll(/(\w+)=(\S+)/g)) env[k!] = v!;
  return { argv: JSON.parse(cmd[1]!) as string[], env };
})();

/** Runs the image's HEALTHCHECK command from the repository root (the image's WORKDIR layout: bin/, dist/). */
function healthcheck(env: Record<string, string>, extra: string[] = []) {
  const [exe, ...args] = dockerfile.argv;
  expect(exe).toBe('node');
  const r = spawnSync(process.execPath, [...args, ...extra], {
    cwd: ROOT,
    env: { PATH: process.env['PATH'] ?? '', ...dockerfile.env, ...env },
    encoding: 'utf8',
    timeout: 15_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

let dir: string;
let config: string;
let adminPort: number;
let sg: RunningService;

beforeAll(async () => {
  dir = tempDir('sg-healthcheck-');
  config = join(dir, 'sessiongate.yaml');
  adminPort = await freePort();
  writeFileSync(config, `listen: { admin_port: ${adminPort}, http_port: 0, grpc_port: 0, api_port: 0 }\n`);
  // The admin port comes from the file only: the harness's SESSIONGATE_ADMIN_PORT=0 is removed.
  sg = await startService({ env: { ...dockerfile.env, SESSIONGATE_CONFIG: config, SESSIONGATE_ADMIN_PORT: undefined } });
  expect(sg.adminPort).toBe(adminPort);
});
afterAll(async () => {
  await sg?.stop();
});

describe("the image's HEALTHCHECK: sessiongate healthcheck", () => {
  it('the Dockerfile runs the healthcheck verb, and the image listens on every address', () => {
    expect(dockerfile.argv.slice(0, 3)).toEqual(['node', 'bin/sessiongate.js', 'healthcheck']);
    expect(dockerfile.env['SESSIONGATE_HOST']).toBe('0.0.0.0');
  });

  it('finds the admin port in the configuration file and exits 0 while the service is healthy', () => {
    const r = healthcheck({ SESSIONGATE_CONFIG: config });
    expect(r.code, r.err).toBe(0);
    expect(r.out).toBe(`sessiongate healthcheck: http://127.0.0.1:${adminPort}/healthz 200\n`);
    // --config reads the same file the same way.
    expect(healthcheck({}, ['--config', config]).code).toBe(0);
  });

  it('exits 1 when something other than the admin port answers (a 404)', () => {
    const other = join(dir, 'other.yaml');
    writeFileSync(other, `listen: { admin_port: ${sg.httpPort} }\n`);
    const r = healthcheck({ SESSIONGATE_CONFIG: other });
    expect(r.code).toBe(1);
    expect(r.err).toBe(`sessiongate healthcheck: http://127.0.0.1:${sg.httpPort}/healthz answered 404\n`);
  });

  it('exits 1 when nothing answers in time', async () => {
    const silent: Server = createServer(() => {}); // accepts, never answers
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as { port: number }).port;
    try {
      const hung = join(dir, 'hung.yaml');
      writeFileSync(hung, `listen: { admin_port: ${port} }\n`);
      const r = healthcheck({ SESSIONGATE_CONFIG: hung }, ['--timeout', '300']);
      expect(r.code).toBe(1);
      expect(r.err).toMatch(new RegExp(`^sessiongate healthcheck: http://127\\.0\\.0\\.1:${port}/healthz: .*(timeout|aborted)`, 'i'));
    } finally {
      silent.close();
    }
  });

  it('exits 1 on an invalid configuration, naming the problem', () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'listen: { admin_port: 70000 }\n');
    const r = healthcheck({ SESSIONGATE_CONFIG: bad });
    expect(r.code).toBe(1);
    expect(r.err).toContain('listen.admin_port: must be a port number');
  });

  it('exits 1 once the service has stopped', async () => {
    expect(await sg.stop()).toBe(0);
    const r = healthcheck({ SESSIONGATE_CONFIG: config });
    expect(r.code).toBe(1);
    expect(r.err).toBe(`sessiongate healthcheck: http://127.0.0.1:${adminPort}/healthz: ECONNREFUSED\n`);
  });
});
