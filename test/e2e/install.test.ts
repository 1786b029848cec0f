/**
 * The systemd install as documented, run as written: the commands are read from
 * docs/operations.md ("Installing with systemd"), the unit's header comment must list the same
 * ones, and the build block runs with `sh -e` in a temporary directory holding the repository's
 * tracked files (standing in for /opt/sessiongate, a clone), against the real npm registry. The
 * result is started with the unit's own ExecStart and Environment lines (credentials in a
 * temporary %d) and answers /healthz. `systemd-analyze verify` checks the unit, and any
 * diagnostic fails it: a misspelled key or a bad value is only a warning to systemd, exit 0.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify } from 'yaml';
import { send } from '../../harness/http.js';
import { ROOT, tempDir, waitFor } from '../../harness/processes.js';

const UNIT = 'deploy/systemd/sessiongate.service';
const SYSTEMD_ANALYZE = '/usr/bin/systemd-analyze';
const read = (p: string) => readFileSync(join(ROOT, p), 'utf8');

/** A shell line without its trailing `# comment`. */
const command = (line: string) => line.replace(/\s+#\s.*$/, '').trim();

/** The ```sh blocks of the "Installing with systemd" section, each as its commands. */
function documentedBlocks(): string[][] {
  const doc = read('docs/operations.md');
  const start = doc.indexOf('\n### Installing with systemd\n');
  expect(start, 'docs/operations.md has no "Installing with systemd" section').toBeGreaterThan(0);
  const rest = doc.slice(start + 1);
  const section = rest.slice(0, rest.slice(1).search(/\n#{1,3} /) + 1 || undefined);
  return [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!.split('\n').map(command).filter(Boolean));
}

/** The commands in the unit's header comment (`#   command`). */
function unitHeaderCommands(): string[] {
  const header = read(UNIT).slice(0, read(UNIT).indexOf('[Unit]'));
  return header
    .split('\n')
    .filter((l) => l.startsWith('#   '))
    .map((l) => command(l.slice(4)));
}

function unitValues(key: string): string[] {
  return read(UNIT)
    .split('\n')
    .filter((l) => l.startsWith(`${key}=`))
    .map((l) => l.slice(key.length + 1));
}

/**
 * A fresh shell's environment: without what npm or npx add when they run the tests (npm_*
 * variables, node_modules/.bin folders on PATH, which would lend the checkout's TypeScript to the
 * install) and without NODE_ENV.
 */
function freshEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !/^npm_|^INIT_CWD$|^NODE_ENV$|^VITEST/i.test(k)) env[k] = v;
  env['PATH'] = (env['PATH'] ?? '')
    .split(':')
    .filter((p) => p !== '' && !p.includes('node_modules'))
    .join(':');
  return env;
}

describe('installing with systemd, as docs/operations.md says', () => {
  const blocks = documentedBlocks();
  let opt: string;
  let build: { status: number | null; output: string };

  beforeAll(() => {
    // The repository's tracked files, as a clone would have them.
    opt = join(tempDir('sg-install-'), 'sessiongate');
    for (const f of execFileSync('git', ['ls-files', '-z'], { cwd: ROOT, encoding: 'utf8' }).split('\0').filter(Boolean)) {
      if (!existsSync(join(ROOT, f))) continue; // deleted in the work tree, not yet committed
      mkdirSync(dirname(join(opt, f)), { recursive: true });
      copyFileSync(join(ROOT, f), join(opt, f));
    }
    const script = blocks[0]!.map((c) => c.replaceAll('/opt/sessiongate', opt)).join('\n');
    const r = spawnSync('sh', ['-ec', script], { cwd: tempDir('sg-install-cwd-'), env: freshEnv(), encoding: 'utf8', timeout: 240_000 });
    build = { status: r.status, output: `${r.stdout}\n${r.stderr}` };
  }, 260_000);
  afterAll(() => {
    if (opt) rmSync(dirname(opt), { recursive: true, force: true });
  });

  it('the documented steps are the two blocks, and the unit header lists the same commands', () => {
    expect(blocks).toHaveLength(2);
    expect(blocks[0]).toEqual(['cd /opt/sessiongate', 'npm ci --include=dev --no-audit --no-fund', 'npm prune --omit=dev --no-audit --no-fund']);
    expect(unitHeaderCommands()).toEqual(blocks.flat());
    // What the second block installs comes from the repository, where the unit expects it.
    for (const c of blocks[1]!) for (const [, path] of c.matchAll(/ (deploy\/\S+)/g)) expect(existsSync(join(ROOT, path!)), path).toBe(true);
    expect(blocks[1]).toContain('install -m 0644 deploy/config.example.yaml /etc/sessiongate/sessiongate.yaml');
    expect(unitValues('ExecStart')[0]).toBe('/usr/bin/node /opt/sessiongate/bin/sessiongate.js --config /etc/sessiongate/sessiongate.yaml');
    for (const cred of unitValues('LoadCredentialEncrypted')) expect(blocks[1]!.join('\n')).toContain(cred.split(':')[1]!);
  });

  it('the build block runs as written on the repository files: dist/ built, build tools gone', () => {
    expect(build.status, build.output).toBe(0);
    expect(existsSync(join(opt, 'dist/cli/index.js'))).toBe(true);
    expect(existsSync(join(opt, 'node_modules/express/package.json'))).toBe(true);
    expect(existsSync(join(opt, 'node_modules/typescript'))).toBe(false);
    expect(existsSync(join(opt, 'node_modules/vitest'))).toBe(false);
  });

  it('`npm ci --omit=dev` alone says what to run instead of `tsc: not found`', () => {
    // TypeScript is gone after the prune: the prepare script is in the state --omit=dev leaves it.
    const r = spawnSync('npm', ['run', 'prepare'], { cwd: opt, env: freshEnv(), encoding: 'utf8', timeout: 60_000 });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('sessiongate: building dist/ needs TypeScript, a dev dependency, which --omit=dev leaves out.');
    expect(r.stderr).toContain('Install with `npm ci`, then `npm prune --omit=dev`');
  });

  it("the installed service starts with the unit's ExecStart and Environment and answers /healthz", async () => {
    expect(build.status, build.output).toBe(0);
    const etc = tempDir('sg-install-etc-');
    const creds = tempDir('sg-install-creds-');
    writeFileSync(join(creds, 'secret'), `${'s'.repeat(48)}\n`);
    writeFileSync(join(creds, 'login-token'), `${'l'.repeat(32)}\n`);
    // The shipped example, as the second block installs it, on free ports.
    const config = parseYaml(read('deploy/config.example.yaml')) as { listen: Record<string, unknown> };
    config.listen = { ...config.listen, http_port: 0, grpc_port: 0, admin_port: 0, api_port: 0 };
    writeFileSync(join(etc, 'sessiongate.yaml'), stringify(config));
    const [exe, ...args] = unitValues('ExecStart')[0]!.replaceAll('/opt/sessiongate', opt).replaceAll('/etc/sessiongate', etc).split(/\s+/);
    expect(exe).toBe('/usr/bin/node');
    const env: Record<string, string> = { PATH: '/usr/bin:/bin' };
    for (const e of unitValues('Environment')) {
      const [k, v] = e.split(/=(.*)/s) as [string, string];
      env[k] = v.replaceAll('%d', creds);
    }
    const child = spawn(exe!, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
    try {
      expect(
        await waitFor(
          () => out.includes('"msg":"listening"'),
          15_000,
          () => child.exitCode !== null,
        ),
        out,
      ).toBe(true);
      const listening = JSON.parse(out.split('\n').find((l) => l.includes('"msg":"listening"'))!) as { admin_port: number; config: string };
      expect(listening.config).toBe(join(etc, 'sessiongate.yaml'));
      // The credentials were read: no warning about a random secret or a missing login token.
      expect(out).not.toContain('no secret configured');
      expect(out).not.toContain('no login token configured');
      const health = await send(`http://127.0.0.1:${listening.admin_port}/healthz`);
      expect(health.status).toBe(200);
      expect(health.json()).toMatchObject({ status: 'ok', pid: child.pid });
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
    }
    expect(child.exitCode).toBe(0);
  }, 30_000);
});

describe('systemd-analyze verify', () => {
  /** The diagnostics systemd-analyze prints for a unit file (none: it is valid). */
  function verify(path: string): { status: number | null; diagnostics: string } {
    const r = spawnSync(SYSTEMD_ANALYZE, ['verify', '--man=no', path], {
      encoding: 'utf8',
      timeout: 30_000,
      env: { PATH: '/usr/bin:/bin', SYSTEMD_LOG_COLOR: '0' },
    });
    if (r.error) throw new Error(`${SYSTEMD_ANALYZE}: ${r.error.message} (apt-get install systemd)`);
    return { status: r.status, diagnostics: `${r.stdout}${r.stderr}`.trim() };
  }
  const mutated = (from: RegExp, to: string) => {
    const dir = tempDir('sg-unit-');
    const text = read(UNIT);
    expect(text).toMatch(from);
    writeFileSync(join(dir, 'sessiongate.service'), text.replace(from, to));
    return join(dir, 'sessiongate.service');
  };

  it('the shipped unit verifies with no diagnostic at all', () => {
    expect(verify(join(ROOT, UNIT))).toEqual({ status: 0, diagnostics: '' });
  });

  it.each([
    ['a misspelled key', /^ProtectHome=yes$/m, 'ProtectHomme=yes', "Unknown key 'ProtectHomme'"],
    ['a value systemd cannot parse', /^ProtectHome=yes$/m, 'ProtectHome=yess', 'Failed to parse'],
    ['an ExecStart binary that does not exist', /^ExecStart=\/usr\/bin\/node /m, 'ExecStart=/usr/bin/nodee ', 'Command /usr/bin/nodee is not executable'],
  ])('a unit with %s fails the check', (_what, from, to, said) => {
    const r = verify(mutated(from, to));
    expect(r.diagnostics).toContain(said);
    expect(r.diagnostics === '' && r.status === 0).toBe(false);
  });
});
