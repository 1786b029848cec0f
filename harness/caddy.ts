/**
 * Caddy running the shipped caddy/Caddyfile, for the end-to-end tests and the benchmark: the same
 * file with only its ports substituted (sessiongate, the application, the site's port and the
 * admin API's), listening on a free loopback port, stopped by the caller.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { findBinary, freePort, listening, ROOT, serverHeader, stopChild, substitute, tempDir, waitFor } from './processes.js';

export function caddyBinary(): string {
  return findBinary('caddy', ['/usr/bin/caddy', '/usr/local/bin/caddy']);
}

export interface RunningCaddy {
  readonly port: number;
  readonly url: string;
  /** Caddy's process (the benchmark reads its CPU time). */
  readonly pid: number;
  /** What Caddy wrote to stderr (its JSON log). */
  log(): string;
  stop(): Promise<void>;
}

/** The shipped Caddyfile with sessiongate and the application on the given ports, serving on `port`. */
export function caddyfileFor(opts: { sessiongatePort: number; appPort: number; port: number; adminPort: number }): string {
  const file = 'caddy/Caddyfile';
  let text = readFileSync(join(ROOT, file), 'utf8');
  text = substitute(text, '127.0.0.1:9180', `127.0.0.1:${opts.sessiongatePort}`, file);
  text = substitute(text, '127.0.0.1:8080', `127.0.0.1:${opts.appPort}`, file);
  text = substitute(text, 'admin 127.0.0.1:2019', `admin 127.0.0.1:${opts.adminPort}`, file);
  // The site's port, on loopback only (a bind, not a host in the address, which would match Host).
  text = substitute(text, '\nhttp://:8000 {\n', `\nhttp://:${opts.port} {\n\tbind 127.0.0.1\n`, file);
  return text;
}

export async function startCaddy(opts: {
  sessiongatePort: number;
  appPort: number;
  /** More site blocks appended to the file (the benchmark's stand-ins); the shipped ones stay as they are. */
  extra?: string;
}): Promise<RunningCaddy> {
  const bin = caddyBinary();
  const dir = tempDir('sg-caddy-');
  const config = join(dir, 'Caddyfile');
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    writeFileSync(config, caddyfileFor({ ...opts, port, adminPort: await freePort() }) + (opts.extra ?? ''));
    // Caddy keeps its state (autosaved config, certificates) under XDG folders: the temporary one.
    const child: ChildProcess = spawn(bin, ['run', '--config', config, '--adapter', 'caddyfile'], {
      env: { PATH: process.env['PATH'] ?? '', HOME: dir, XDG_DATA_HOME: join(dir, 'data'), XDG_CONFIG_HOME: join(dir, 'config') },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    const up = await waitFor(
      () => listening(port),
      10_000,
      () => child.exitCode !== null,
    );
    // Caddy itself, not another process that took the free port first (tests run in parallel).
    // A GET on the POST-only back-channel path: Caddy answers 405 itself.
    if (up && child.exitCode === null && /^Caddy\b/.test((await serverHeader(port, '/~login/backchannel-logout')) ?? '')) {
      return {
        port,
        url: `http://127.0.0.1:${port}`,
        pid: child.pid!,
        log: () => stderr,
        stop: async () => {
          await stopChild(child);
          rmSync(dir, { recursive: true, force: true });
        },
      };
    }
    await stopChild(child);
    if (attempt >= 3) {
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`caddy did not start:\n${stderr}`);
    }
  }
}
