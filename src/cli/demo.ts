/**
 * `sessiongate demo`: a five-minute tour on this machine, loopback only. A small echo
 * application (127.0.0.1:8080), sessiongate on its embedded defaults with the development login
 * (HTTP 9180, gRPC 9181, admin 9182, token API 9183), and nginx running the shipped nginx/ config in front
 * (127.0.0.1:8000). Prints the URLs and curl lines to try; SIGINT or SIGTERM stops everything
 * (nginx with SIGTERM, waited for) and removes the temporary directory.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { connect, createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatProblems, loadConfig } from '../config.js';
import { type Service, startService } from '../main.js';
import { createLogger } from '../ops/logger.js';
import { type Io, PROG, parseVerb } from './args.js';

export const USAGE = `usage: ${PROG} demo [--nginx-port 8000] [--app-port 8080] [--http-port 9180] [--grpc-port 9181] [--admin-port 9182] [--api-port 9183] [--nginx PATH]

A five-minute tour, everything on 127.0.0.1: a small application that echoes what it receives,
sessiongate on its embedded defaults with the development login on (a random secret for this
run), and nginx with the shipped nginx/nginx.conf in front. Prints the URLs to open and curl
lines to try; Ctrl-C stops everything. Needs nginx (apt-get install nginx); --nginx PATH names
the binary; --port is short for --nginx-port. From a checkout: npm run demo (builds first).
`;

/** The repository (or installed package) root: dist/cli/ and src/cli/ are two levels down. */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

interface Listener {
  readonly flag: string;
  readonly what: string;
  readonly port: number;
}

function findNginx(explicit: string | undefined): string | undefined {
  if (explicit !== undefined) return existsSync(explicit) ? explicit : undefined;
  for (const p of ['/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/bin/nginx', '/usr/local/nginx/sbin/nginx']) if (existsSync(p)) return p;
  const which = spawnSync('sh', ['-c', 'command -v nginx'], { encoding: 'utf8' });
  return which.status === 0 && which.stdout.trim() !== '' ? which.stdout.trim() : undefined;
}

/** Undefined when 127.0.0.1:port can be listened on, else why not. */
function portProblem(port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const s = createNetServer();
    s.once('error', (e: NodeJS.ErrnoException) =>
      resolve(
        e.code === 'EADDRINUSE' ? 'is in use' : e.code === 'EACCES' ? 'needs privileges this user lacks' : `cannot be listened on (${e.code ?? e.message})`,
      ),
    );
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(undefined)));
  });
}

function accepting(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect(port, '127.0.0.1');
    sock.once('connect', () => (sock.destroy(), resolve(true)));
    sock.once('error', () => resolve(false));
  });
}

/** The application stand-in: answers every request with JSON of its method, path and headers. */
function startEchoApp(port: number): Promise<Server> {
  const server = createServer((req, res) => {
    req.resume();
    const body = `${JSON.stringify({ method: req.method, path: req.url, headers: req.headers }, null, 2)}\n`;
    res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' });
    res.end(body);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

/** Replaces `from` by `to`, insisting it occurs: a drifting nginx.conf must fail loudly, not half-work. */
function substitute(text: string, from: string, to: string): string {
  if (!text.includes(from)) throw new Error(`nginx/nginx.conf no longer contains ${JSON.stringify(from)}; the demo needs updating`);
  return text.split(from).join(to);
}

/** The shipped nginx/ folder in a temp dir, its ports moved; nginx bound to loopback only (the development login lets anyone in). */
function prepareNginx(ports: { nginx: number; app: number; http: number }): string {
  const dir = mkdtempSync(join(tmpdir(), 'sessiongate-demo-'));
  chmodSync(dir, 0o755); // nginx workers run as nobody when the master is root
  cpSync(join(ROOT, 'nginx'), dir, { recursive: true });
  mkdirSync(join(dir, 'logs'), { recursive: true });
  let conf = readFileSync(join(ROOT, 'nginx/nginx.conf'), 'utf8');
  conf = substitute(conf, 'server 127.0.0.1:9180;', `server 127.0.0.1:${ports.http};`);
  conf = substitute(conf, 'server 127.0.0.1:8080;', `server 127.0.0.1:${ports.app};`);
  conf = substitute(conf, 'listen 8000;', `listen 127.0.0.1:${ports.nginx};`);
  writeFileSync(join(dir, 'nginx.conf'), conf);
  return dir;
}

function waitForExit(child: ChildProcess, ms: number): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const kill = setTimeout(() => child.kill('SIGKILL'), ms);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
  });
}

function tour(p: { nginx: number; app: number; http: number; grpc: number; admin: number }, nginxPid: number | undefined, dir: string): string {
  const n = `http://127.0.0.1:${p.nginx}`;
  return `
sessiongate demo: everything on 127.0.0.1 (nginx pid ${nginxPid}, files in ${dir})

${[
  [`${n}/`, 'nginx with the shipped nginx/nginx.conf: open this one'],
  [`http://127.0.0.1:${p.app}/`, 'the echo application (answers with the method, path and headers it received)'],
  [`http://127.0.0.1:${p.http}`, `sessiongate HTTP (nginx auth_request, the session API); gRPC ${p.grpc} (Envoy)`],
  [`http://127.0.0.1:${p.admin}/metrics`, 'sessiongate admin (healthz, readyz, metrics)'],
]
  .map(([url, what]) => `  ${url!.padEnd(34)} ${what}`)
  .join('\n')}

sessiongate runs on its embedded defaults plus: the development login on, a random secret for
this run (sessions end with it), cookie.secure false (plain HTTP), warnings-only logging.

In a browser, ${n}/ sends you to the development login (any user, any roles), then back to the
application, which shows the X-User-Id and X-User-Roles headers sessiongate added.

Or, in another terminal:
  curl -i ${n}/
      401: no session
  curl -i -c jar '${n}/~session/dev?user=alice&roles=admin&rd=/'
      302 to /, with the session cookie (saved in ./jar)
  curl -b jar ${n}/admin/
      the application echoes X-User-Id: alice, and no sessiongate cookie
  curl -b jar -X DELETE ${n}/~session
      204: logged out
  curl http://127.0.0.1:${p.admin}/metrics

The development login lets anyone log in as anyone: never turn it on outside a try-out.
Ctrl-C stops everything.
`;
}

export async function demo(argv: readonly string[], _env: NodeJS.ProcessEnv, io: Io): Promise<number> {
  const args = parseVerb(
    'demo',
    USAGE,
    argv,
    {
      port: { type: 'string' },
      'nginx-port': { type: 'string' },
      'app-port': { type: 'string' },
      'http-port': { type: 'string' },
      'grpc-port': { type: 'string' },
      'admin-port': { type: 'string' },
      'api-port': { type: 'string' },
      nginx: { type: 'string' },
    },
    io,
  );
  if (typeof args === 'number') return args;
  const v = args.values;
  const listeners: Listener[] = [
    { flag: 'nginx-port', what: 'nginx', port: 8000 },
    { flag: 'app-port', what: 'the echo application', port: 8080 },
    { flag: 'http-port', what: 'sessiongate HTTP', port: 9180 },
    { flag: 'grpc-port', what: 'sessiongate gRPC', port: 9181 },
    { flag: 'admin-port', what: 'sessiongate admin', port: 9182 },
    { flag: 'api-port', what: 'sessiongate token API', port: 9183 },
  ].map((l) => {
    const given = l.flag === 'nginx-port' ? (v['nginx-port'] ?? v.port) : v[l.flag as 'app-port'];
    return { ...l, port: given === undefined ? l.port : /^[0-9]{1,5}$/.test(given) && Number(given) >= 1 && Number(given) <= 65535 ? Number(given) : NaN };
  });
  for (const l of listeners) {
    if (Number.isNaN(l.port)) {
      io.err(`sessiongate demo: --${l.flag} must be a port number (1-65535)\n${USAGE}`);
      return 2;
    }
  }
  if (new Set(listeners.map((l) => l.port)).size !== listeners.length) {
    io.err(`sessiongate demo: the six ports must differ\n${USAGE}`);
    return 2;
  }
  const [nginxPort, appPort, httpPort, grpcPort, adminPort, apiPort] = listeners.map((l) => l.port) as [number, number, number, number, number, number];
  const ports = { nginx: nginxPort, app: appPort, http: httpPort, grpc: grpcPort, admin: adminPort };

  if (!existsSync(join(ROOT, 'nginx/nginx.conf'))) {
    io.err(`sessiongate demo: no nginx/nginx.conf under ${ROOT}: the demo runs from a checkout of the repository (npm run demo)\n`);
    return 1;
  }
  const nginxBin = findNginx(v.nginx);
  if (nginxBin === undefined) {
    io.err(
      `sessiongate demo: nginx ${v.nginx === undefined ? 'is not installed (not on PATH, nor in /usr/sbin)' : `not found at ${v.nginx}`}: install it (apt-get install nginx, or the README's test command, which installs it), or name it with --nginx PATH\n`,
    );
    return 1;
  }
  for (const l of listeners) {
    const problem = await portProblem(l.port);
    if (problem !== undefined) {
      io.err(`sessiongate demo: port ${l.port} on 127.0.0.1 (${l.what}) ${problem}: stop what listens there, or choose another with --${l.flag} PORT\n`);
      return 1;
    }
  }

  // Embedded defaults, whatever the caller's environment holds; only what the tour needs set.
  const loaded = loadConfig({
    env: {
      SESSIONGATE_HOST: '127.0.0.1',
      SESSIONGATE_HTTP_PORT: String(httpPort),
      SESSIONGATE_GRPC_PORT: String(grpcPort),
      SESSIONGATE_ADMIN_PORT: String(adminPort),
      SESSIONGATE_API_HOST: '127.0.0.1',
      SESSIONGATE_API_PORT: String(apiPort),
      SESSIONGATE_DEV_LOGIN: 'true',
      SESSIONGATE_LOGIN_URL: `http://127.0.0.1:${nginxPort}/~session/dev`,
      SESSIONGATE_COOKIE_SECURE: 'false', // plain HTTP on loopback
      SESSIONGATE_LOG_LEVEL: 'warn',
    },
  });
  if (!loaded.ok) {
    io.err(formatProblems(loaded.source, loaded.problems, loaded.warnings));
    return 1;
  }

  // Everything started so far, stopped in reverse order; on a signal, on a failure, or when nginx dies.
  const cleanups: Array<() => Promise<void> | void> = [];
  const cleanup = async () => {
    for (const c of cleanups.reverse()) {
      try {
        await c();
      } catch (e) {
        io.err(`sessiongate demo: while stopping: ${(e as Error).message}\n`);
      }
    }
  };
  let stopSignal: (why: string) => void = () => {};
  const stopped = new Promise<string>((resolve) => (stopSignal = resolve));
  let signalled: string | undefined;
  const onSignal = (sig: NodeJS.Signals) => {
    signalled ??= sig;
    stopSignal(sig);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  cleanups.push(() => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  });

  try {
    const app = await startEchoApp(appPort);
    cleanups.push(() => new Promise<void>((r) => (app.close(() => r()), app.closeAllConnections())));

    // Its start-up warnings are this tour's settings, said once in the banner instead.
    const log = createLogger(loaded.config.logLevel);
    const service: Service = await startService(loaded.config, log);
    cleanups.push(() => service.close());

    const dir = prepareNginx(ports);
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const nginx = spawn(nginxBin, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'logs/error.log'), '-g', 'daemon off;'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let nginxStderr = '';
    nginx.stderr!.on('data', (c: Buffer) => (nginxStderr += c.toString()));
    nginx.once('error', (e) => (nginxStderr += e.message));
    cleanups.push(() => {
      if (nginx.exitCode === null && nginx.signalCode === null) nginx.kill('SIGTERM');
      return waitForExit(nginx, 10_000);
    });
    const deadline = Date.now() + 10_000;
    while (!(await accepting(nginxPort))) {
      if (nginx.exitCode !== null || nginx.signalCode !== null || Date.now() > deadline || signalled) {
        const errorLog = existsSync(join(dir, 'logs/error.log')) ? readFileSync(join(dir, 'logs/error.log'), 'utf8') : '';
        if (!signalled) io.err(`sessiongate demo: nginx did not start: ${(nginxStderr + errorLog).trim()}\n`);
        await cleanup();
        return signalled ? 0 : 1;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    nginx.once('exit', (code, sig) => {
      if (!signalled) {
        io.err(`sessiongate demo: nginx exited (${sig ?? code}): ${nginxStderr.trim()}\n`);
        stopSignal('nginx exited');
      }
    });

    io.out(tour(ports, nginx.pid, dir));
    const why = await stopped;
    io.out(`\nsessiongate demo: stopping (${why})\n`);
    await cleanup();
    io.out('sessiongate demo: stopped\n');
    return signalled ? 0 : 1;
  } catch (e) {
    io.err(`sessiongate demo: ${(e as Error).message}\n`);
    await cleanup();
    return 1;
  }
}
