/**
 * The container build context: no Docker engine runs here, so `.dockerignore` is read with
 * Docker's own matching rules (Go filepath.Match per pattern, `**` across folders, `!` to
 * re-include, the last line matching a path or a folder above it wins) and
 * held against deploy/Dockerfile: every COPY from the context exists in the repository and is
 * sent; what the image builds itself, the git history, logs and secrets are not.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../../harness/processes.js';

const read = (p: string) => readFileSync(join(ROOT, p), 'utf8');

interface Rule {
  readonly re: RegExp;
  readonly include: boolean;
}

/** One .dockerignore line as a regular expression over slash-separated context paths. */
function rule(line: string): Rule {
  const include = line.startsWith('!');
  const pattern = (include ? line.slice(1) : line).trim().replace(/^\/+/, '').replace(/\/+$/, '');
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*' && pattern[i + 1] === '*') {
      // `**/` matches any number of folders, none included; a trailing `**` anything.
      if (pattern[i + 2] === '/') (re += '(?:.*/)?'), (i += 2);
      else (re += '.*'), (i += 1);
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return { re: new RegExp(`^${re}$`), include };
}

function rules(text: string): Rule[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map(rule);
}

/**
 * Whether Docker leaves `path` out of the context (moby's patternmatcher, MatchesOrParentMatches):
 * the last rule matching the path or a folder above it decides.
 */
function ignored(rs: readonly Rule[], path: string): boolean {
  const parts = path.split('/');
  const prefixes = parts.map((_, n) => parts.slice(0, n + 1).join('/'));
  let out = false;
  for (const r of rs) if (prefixes.some((p) => r.re.test(p))) out = !r.include;
  return out;
}

/** The context paths the Dockerfile copies (not `--from` another stage). */
function copySources(dockerfile: string): string[] {
  const out: string[] = [];
  for (const line of dockerfile.split('\n')) {
    const m = /^COPY\s+(.*)$/.exec(line.trim());
    if (!m || /--from=/.test(m[1]!)) continue;
    const args = m[1]!.split(/\s+/).filter((a) => !a.startsWith('--'));
    out.push(...args.slice(0, -1));
  }
  return out;
}

const tracked = execFileSync('git', ['ls-files'], { cwd: ROOT, encoding: 'utf8' }).split('\n').filter(Boolean);
const dockerfile = read('deploy/Dockerfile');
const ignore = rules(read('.dockerignore'));

describe('.dockerignore and deploy/Dockerfile', () => {
  it('the matcher follows Docker: folders, ** at any depth, ! re-includes, the last line wins', () => {
    const rs = rules('node_modules\n**/*.log\nbench/results\n!bench/results/keep.md\n');
    expect(ignored(rs, 'node_modules/x/index.js')).toBe(true);
    expect(ignored(rs, 'src/node_modules/x.js')).toBe(false);
    expect(ignored(rs, 'a.log')).toBe(true);
    expect(ignored(rs, 'src/deep/a.log')).toBe(true);
    expect(ignored(rs, 'bench/results/keep.md')).toBe(false);
    expect(ignored(rs, 'bench/results/other.md')).toBe(true);
    expect(ignored(rs, 'src/index.ts')).toBe(false);
  });

  it('every COPY source of the context exists in the repository and is sent', () => {
    const sources = copySources(dockerfile);
    expect(sources).toEqual(expect.arrayContaining(['package.json', 'package-lock.json', 'tsconfig.build.json', 'src', 'bin', 'proto']));
    for (const src of sources) {
      const files = tracked.filter((f) => f === src || f.startsWith(`${src}/`));
      expect(files.length, `COPY ${src}: not in the repository`).toBeGreaterThan(0);
      for (const f of files) expect(ignored(ignore, f), `COPY ${src}: .dockerignore leaves out ${f}`).toBe(false);
    }
  });

  it('leaves out installed and built output, the git history, logs, test output and secrets', () => {
    for (const p of [
      'node_modules/express/index.js',
      '.git/HEAD',
      'dist/cli/index.js',
      'dist-bench/bench/run.js',
      'bench/results/run.tmp',
      'nginx/logs/error.log',
      'npm-debug.log',
      '.vitest-tmp/x',
      '.env',
      '.env.production',
      'deploy/secrets/login-token',
      'tls/server.key',
    ])
      expect(ignored(ignore, p), p).toBe(true);
  });

  it('the runtime stage copies node_modules and dist from the build stage, never from the context', () => {
    expect(dockerfile).toMatch(/^COPY --from=build \/src\/node_modules \.\/node_modules$/m);
    expect(dockerfile).toMatch(/^COPY --from=build \/src\/dist \.\/dist$/m);
    expect(copySources(dockerfile).filter((s) => /node_modules|dist/.test(s))).toEqual([]);
  });
});
