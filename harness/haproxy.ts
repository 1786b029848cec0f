/**
 * Real HAProxy for the tests and the benchmark: the shipped haproxy/haproxy.cfg and
 * sessiongate.lua, copied to a temporary folder with only the ports (and the log target)
 * substituted, each substitution insisted on, on free loopback ports, stopped by the caller.
 */
import { spawn } from 'node:child_process';
import { cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { findBinary, freePort, listening, ROOT, stopChild, substitute, tempDir, waitFor } from './processes.js';

export function haproxyBinary(): string {
  return findBinary('haproxy', ['/usr/sbin/haproxy', '/usr/local/sbin/haproxy', '/usr/bin/haproxy']);
}

export interface RunningHaproxy {
  readonly port: number;
  readonly url: string;
  /** HAProxy's process (the benchmark reads its CPU time). */
  readonly pid: number;
  readonly dir: string;
  /** What HAProxy wrote (its log lines and warnings, including the Lua script's). */
  output(): string;
  stop(): Promise<void>;
}

/** Runs the shipped haproxy/ config with sessiongate and the application on the given ports. */
export async function startHaproxy(opts: {
  sessiongatePort: number;
  appPort: number;
  /** Edits the copied haproxy.cfg text (a deliberately broken variant). */
  mutate?: (cfg: string) => string;
}): Promise<RunningHaproxy> {
  const bin = haproxyBinary();
  const dir = tempDir('sg-haproxy-');
  cpSync(join(ROOT, 'haproxy'), dir, { recursive: true });
  const cfgPath = join(dir, 'haproxy.cfg');
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    let cfg = readFileSync(join(ROOT, 'haproxy/haproxy.cfg'), 'utf8');
    cfg = substitute(cfg, 'str(127.0.0.1:9180)', `str(127.0.0.1:${opts.sessiongatePort})`, 'haproxy.cfg');
    cfg = substitute(cfg, 'server sessiongate 127.0.0.1:9180', `server sessiongate 127.0.0.1:${opts.sessiongatePort}`, 'haproxy.cfg');
    cfg = substitute(cfg, 'server app 127.0.0.1:8080', `server app 127.0.0.1:${opts.appPort}`, 'haproxy.cfg');
    cfg = substitute(cfg, 'bind :8000', `bind 127.0.0.1:${port}`, 'haproxy.cfg');
    // One thread: the machine running the tests is small, and nothing here depends on more.
    cfg = substitute(cfg, '\nglobal\n', '\nglobal\n    nbthread 1\n', 'haproxy.cfg');
    if (opts.mutate) cfg = opts.mutate(cfg);
    writeFileSync(cfgPath, cfg);
    // -db: foreground, no daemon; logs go to stdout (the config's `log stdout`).
    const child = spawn(bin, ['-db', '-f', cfgPath], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
    const up = await waitFor(
      () => listening(port),
      5000,
      () => child.exitCode !== null,
    );
    if (up) {
      return {
        port,
        url: `http://127.0.0.1:${port}`,
        pid: child.pid!,
        dir,
        output: () => output,
        stop: async () => {
          await stopChild(child);
          rmSync(dir, { recursive: true, force: true });
        },
      };
    }
    await stopChild(child);
    if (attempt >= 3 || !/cannot bind|Address already in use/i.test(output)) {
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`haproxy did not start:\n${output}`);
    }
  }
}
