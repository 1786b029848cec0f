/**
 * The command line as users meet it: one verb a file, one parser, --help on every verb (its own
 * usage, not the global one), --version anywhere, usage that says how to run it from a checkout.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../../harness/processes.js';
import { run } from '../../src/cli/index.js';
import { VERSION } from '../../src/version.js';

const BIN = join(ROOT, 'bin/sessiongate.js');

async function cli(argv: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await run(argv, env, { out: (s) => (out += s), err: (s) => (err += s) });
  return { code, out, err };
}

/** Each verb, and a phrase only its own usage has. */
const VERBS: Array<[string, string]> = [
  ['serve', 'usage: npx sessiongate [serve] [--config FILE]'],
  ['check-config', 'usage: npx sessiongate check-config'],
  ['revoke-user', 'usage: npx sessiongate revoke-user USER_ID'],
  ['token', 'usage: npx sessiongate token create'],
  ['doctor', 'usage: npx sessiongate doctor --url URL'],
  ['demo', 'usage: npx sessiongate demo'],
  ['healthcheck', 'usage: npx sessiongate healthcheck'],
];

describe('command line', () => {
  it('a refused configuration shows the misspelling warnings too, never the value', async () => {
    const r = await cli(['check-config'], { SESSIONGATE_STORE: 'redis://127.0.0.1:1', SESSIONGATE_SECRETS: 'a-secret-value-0123456789abcdef0123456789' });
    expect(r.code).toBe(1);
    expect(r.err).toContain('invalid configuration');
    expect(r.err).toContain('warning: SESSIONGATE_SECRETS is not a sessiongate variable and is ignored: did you mean SESSIONGATE_SECRET?');
    expect(r.err).not.toContain('a-secret-value');
  });

  it('the global usage names every verb and says how to run it from a checkout', async () => {
    for (const argv of [['--help'], ['-h'], ['help']]) {
      const r = await cli(argv);
      expect(r.code).toBe(0);
      expect(r.out).toContain('usage: npx sessiongate [VERB] [OPTIONS]');
      expect(r.out).toContain('node bin/sessiongate.js');
      for (const [verb] of VERBS) expect(r.out).toContain(`  ${verb}`);
    }
  });

  it.each(VERBS)('%s --help prints its own usage and exits 0', async (verb, own) => {
    for (const flag of ['--help', '-h']) {
      const r = await cli([verb, flag]);
      expect(r.code).toBe(0);
      expect(r.out).toContain(own);
      expect(r.out).not.toContain('[VERB]');
    }
  });

  it('--version, globally and on every verb', async () => {
    for (const argv of [['--version'], ['-v'], ...VERBS.map(([v]) => [v, '--version'])]) {
      const r = await cli(argv);
      expect(r.code).toBe(0);
      expect(r.out).toBe(`sessiongate ${VERSION}\n`);
    }
  });

  it('a bad option or a stray argument: the verb usage on stderr, exit 2', async () => {
    const unknown = await cli(['check-config', '--colour']);
    expect(unknown.code).toBe(2);
    expect(unknown.err).toContain("sessiongate check-config: Unknown option '--colour'");
    expect(unknown.err).toContain('usage: npx sessiongate check-config');
    const stray = await cli(['check-config', 'extra']);
    expect(stray.code).toBe(2);
    expect(stray.err).toContain('unexpected argument "extra"');
    const serve = await cli(['--config']);
    expect(serve.code).toBe(2);
    expect(serve.err).toContain('usage: npx sessiongate [serve]');
    const twoUsers = await cli(['revoke-user', 'alice', 'bob']);
    expect(twoUsers.code).toBe(2);
  });

  it('revoke-user: a user ID is required; the memory store is refused with what to do instead', async () => {
    const none = await cli(['revoke-user']);
    expect(none.code).toBe(2);
    expect(none.err).toContain('revoke-user needs a user ID');
    const memory = await cli(['revoke-user', 'alice']);
    expect(memory.code).toBe(2);
    expect(memory.err).toContain('DELETE /~session/user/<id>');
  });

  it('the built bin answers the same (node bin/sessiongate.js VERB --help)', () => {
    const r = spawnSync(process.execPath, [BIN, 'revoke-user', '--help'], { encoding: 'utf8', env: { PATH: process.env['PATH'] ?? '' } });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('usage: npx sessiongate revoke-user USER_ID');
  });
});
