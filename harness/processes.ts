/**
 * Real servers for the end-to-end tests and the benchmark: the built sessiongate, nginx with the
 * shipped config (ports substituted), and an upstream that echoes the headers it receives. Each is
 * started on free loopback ports and stopped by the caller.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, get as httpGet, type IncomingMessage, type Server } from 'node:http';
import { connect, createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root: the nearest folder above this file with a package.json (also from a compiled copy). */
export const ROOT = ((): string => {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) || !existsSync(join(dir, 'nginx'))) {
    const up = resolve(dir, '..');
    if (up === dir) throw new Error('repository root not found');
    dir = up;
  }
  return dir;
})();

export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createNetServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
  });
}

/** True when something accepts TCP connections on the port. */
export function listening(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((res) => {
    const sock = connect(port, host);
    sock.once('connect', () => (sock.destroy(), res(true)));
    sock.once('error', () => res(false));
  });
}

export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(dir, 0o755); // nginx workers run as nobody when the master is root
  return dir;
}

// ---------------------------------------------------------------------------------------------

export interface RunningService {
  readonly httpPort: number;
  readonly grpcPort: number;
  readonly adminPort: number;
  /** The token API's listener (`/tokens`). */
  readonly apiPort: number;
  readonly pid: number | undefined;
  readonly url: string;
  readonly logs: () => string[];
  /** Resolves true once a log line contains `text` (logs arrive through a pipe, after the HTTP answer). */
  waitForLog(text: string, ms?: number): Promise<boolean>;
  /** Sends a signal to the service process. */
  signal(sig: NodeJS.Signals): void;
  stop(): Promise<number | null>;
}

/**
 * Starts `bin/sessiongate.js` (the built service; `bin` names another copy's) and waits for its
 * `listening` line. An `env` value of undefined removes one of the free-port defaults.
 */
export async function startService(
  opts: { config?: string; env?: Record<string, string | undefined>; nodeArgs?: string[]; bin?: string } = {},
): Promise<RunningService> {
  const args = [...(opts.nodeArgs ?? []), opts.bin ?? join(ROOT, 'bin/sessiongate.js')];
  if (opts.config) args.push('--config', opts.config);
  const child = spawn(process.execPath, args, {
    env: {
      PATH: process.env['PATH'] ?? '',
      SESSIONGATE_HTTP_PORT: '0',
      SESSIONGATE_ADMIN_PORT: '0',
      SESSIONGATE_GRPC_PORT: '0',
      SESSIONGATE_API_PORT: '0',
      ...opts.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  let buffered = '';
  const ports = await new Promise<{ http: number; grpc: number; admin: number; api: number }>((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`sessiongate did not start:\n${lines.join('\n')}`)), 15_000);
    const onData = (chunk: Buffer) => {
      buffered += chunk.toString();
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        lines.push(line);
        try {
          const j = JSON.parse(line) as { msg?: string; http_port?: number; grpc_port?: number; admin_port?: number; api_port?: number };
          if (j.msg === 'listening') {
            clearTimeout(timer);
            res({ http: j.http_port!, grpc: j.grpc_port!, admin: j.admin_port!, api: j.api_port! });
          }
        } catch {
          /* not JSON */
        }
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (c: Buffer) => lines.push(c.toString()));
    child.once('exit', (code) => {
      clearTimeout(timer);
      rej(new Error(`sessiongate exited with ${code}:\n${lines.join('\n')}`));
    });
  });
  return {
    httpPort: ports.http,
    grpcPort: ports.grpc,
    adminPort: ports.admin,
    apiPort: ports.api,
    pid: child.pid,
    url: `http://127.0.0.1:${ports.http}`,
    logs: () => lines,
    waitForLog: (text, ms = 5000) => waitFor(() => lines.some((l) => l.includes(text)), ms),
    signal: (sig) => void child.kill(sig),
    stop: () => stopChild(child),
  };
}

/** SIGTERM, then SIGKILL after 10 s; resolves with the exit code once the process is gone. */
export function stopChild(child: ChildProcess): Promise<number | null> {
  return new Promise((res) => {
    if (child.exitCode !== null || child.signalCode !== null) return res(child.exitCode);
    const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', (code) => {
      clearTimeout(kill);
      res(code);
    });
    child.kill('SIGTERM');
  });
}

// ---------------------------------------------------------------------------------------------

export interface Echoed {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  rawHeaders: string[];
}

export interface EchoUpstream {
  readonly port: number;
  readonly seen: Echoed[];
  close(): Promise<void>;
}

/** An application stand-in: answers every request with JSON of what it received. */
export async function startEchoUpstream(): Promise<EchoUpstream> {
  const seen: Echoed[] = [];
  const server: Server = createServer((req: IncomingMessage, res) => {
    const e: Echoed = { method: req.method!, url: req.url!, headers: req.headers, rawHeaders: req.rawHeaders };
    seen.push(e);
    req.resume();
    const body = JSON.stringify(e);
    res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as { port: number }).port,
    seen,
    close: () =>
      new Promise((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

// ---------------------------------------------------------------------------------------------

/** A server's binary: the first of `paths` that exists, else the one on PATH; an error saying how to install it otherwise. */
export function findBinary(name: string, paths: readonly string[]): string {
  for (const p of paths) if (existsSync(p)) return p;
  const which = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  if (which.status === 0 && which.stdout.trim()) return which.stdout.trim();
  throw new Error(`${name} is not installed: run the README test command (it installs it) or apt-get install ${name}`);
}

export function nginxBinary(): string {
  return findBinary('nginx', ['/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/bin/nginx']);
}

export interface RunningNginx {
  readonly port: number;
  readonly url: string;
  readonly dir: string;
  errorLog(): string;
  stop(): Promise<void>;
}

/** Replaces `from` by `to` in text, insisting it occurs: a drifting config must fail loudly. */
export function substitute(text: string, from: string, to: string, file: string): string {
  if (!text.includes(from)) throw new Error(`${file} no longer contains ${JSON.stringify(from)}; update the test harness`);
  return text.split(from).join(to);
}

/** Runs the shipped nginx/ config with sessiongate and the app on the given ports. */
export async function startNginx(opts: {
  sessiongatePort: number;
  appPort: number;
  decisionCache?: boolean;
  mutate?: (dir: string) => void;
}): Promise<RunningNginx> {
  const dir = tempDir('sg-nginx-');
  cpSync(join(ROOT, 'nginx'), dir, { recursive: true });
  mkdirSync(join(dir, 'logs'), { recursive: true });
  const confPath = join(dir, 'nginx.conf');
  const bin = nginxBinary();
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    let conf = readFileSync(join(ROOT, 'nginx/nginx.conf'), 'utf8');
    conf = substitute(conf, 'server 127.0.0.1:9180;', `server 127.0.0.1:${opts.sessiongatePort};`, 'nginx.conf');
    conf = substitute(conf, 'server 127.0.0.1:8080;', `server 127.0.0.1:${opts.appPort};`, 'nginx.conf');
    conf = substitute(conf, 'listen 8000;', `listen 127.0.0.1:${port};`, 'nginx.conf');
    conf = substitute(conf, 'worker_processes auto;', 'worker_processes 1;', 'nginx.conf');
    if (opts.decisionCache) {
      conf = substitute(conf, '    # proxy_cache_path ', '    proxy_cache_path ', 'nginx.conf');
      cpSync(join(ROOT, 'nginx/sessiongate/decision-cache.conf.example'), join(dir, 'sessiongate/decision-cache.conf'));
    }
    writeFileSync(confPath, conf);
    opts.mutate?.(dir);
    const child = spawn(bin, ['-p', dir, '-c', confPath, '-e', join(dir, 'logs/error.log'), '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    const up = await waitFor(
      () => listening(port),
      5000,
      () => child.exitCode !== null,
    );
    // Listening is not enough: the free port may have been taken by another process between
    // freePort() and nginx's bind (tests run in parallel), and then that process answers.
    // `internal` location: nginx answers 404 itself.
    if (up && child.exitCode === null && /^nginx\b/.test((await serverHeader(port, '/_sessiongate/auth')) ?? '')) {
      return {
        port,
        url: `http://127.0.0.1:${port}`,
        dir,
        errorLog: () => (existsSync(join(dir, 'logs/error.log')) ? readFileSync(join(dir, 'logs/error.log'), 'utf8') : ''),
        stop: async () => {
          await stopChild(child);
          rmSync(dir, { recursive: true, force: true });
        },
      };
    }
    await stopChild(child);
    if (attempt >= 3) throw new Error(`nginx did not start: ${stderr}\n${readFileSync(join(dir, 'logs/error.log'), 'utf8')}`);
  }
}

/**
 * The Server header of whatever answers a GET of `path` on 127.0.0.1:`port` (undefined when
 * nothing does). Pick a path the proxy answers itself, so that no connection to sessiongate is
 * opened (tests count those).
 */
export function serverHeader(port: number, path: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const req = httpGet({ host: '127.0.0.1', port, path, timeout: 2000 }, (res) => {
      res.resume();
      const server = res.headers['server'];
      resolve(typeof server === 'string' ? server : undefined);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
  });
}

export async function waitFor(cond: () => Promise<boolean> | boolean, ms: number, abort: () => boolean = () => false): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return true;
    if (abort()) return false;
    await new Promise((r) => setTimeout(r, 25));
  }
  return false;
}
