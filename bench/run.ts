/**
 * `npm run bench`: sessiongate side by side with the floors of its transports, on loopback,
 * everything started here: redis-server, nginx (the shipped config), the built service, bare
 * responders. Load comes from real external generators: wrk (HTTP through nginx) and h2load
 * (gRPC, framed CheckRequests shaped as Envoy sends them). Rows alternate round by round so
 * drift hits all alike.
 *
 * Per row and round it records req/s, latency, and the CPU the service under test used per
 * decision (utime + stime from /proc over exactly the measured run, ÷ the answers served). Ratios
 * to a row's floor are computed per round, against the floor measured in that round, and
 * shown as their median over the rounds with the spread (min–max). Then the memory figures:
 * idle RSS of fresh services, bytes per session in the memory store and in Redis. Prints one
 * table and the targets of issue #16, and writes them to bench/results/latest.md.
 *
 *   node dist-bench/bench/run.js [--duration S] [--warmup S] [--rounds N] [--sessions N] [--rows F1,S1,…] [--pin] [--smoke]
 *
 * --pin: the service under test on one CPU, the runner, the load generators and the proxies on
 * the others, with taskset (Redis left free).
 * --smoke: one 1-second pass over every row with a few sessions; exits non-zero on any error
 * (this is what CI runs; timings are never asserted).
 */

import { type ChildProcess, fork, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { startCaddy } from '../harness/caddy.js';
import { encodeCheckRequest } from '../harness/envoy-wire.js';
import { startHaproxy } from '../harness/haproxy.js';
import { send } from '../harness/http.js';
import { freePort, nginxBinary, ROOT, type RunningService, startService, tempDir, waitFor } from '../harness/processes.js';
import { type RedisProcess, startRedisServer } from '../harness/redis.js';
import { flag, opt } from './options.js';
import { allowedCpus, cpuSecondsBetween, cpuTicks, peakRss, pin, processTree, resetPeakRss, rss } from './proc.js';
import { wrkRequestLua } from './wrk-request.js';

// ------------------------------------------------------------------------------------------
// Options

const SMOKE = flag('smoke');
const PIN = flag('pin');
const DURATION = Number(opt('duration', SMOKE ? '1' : '10'));
const WARMUP = Number(opt('warmup', SMOKE ? '0' : '3'));
const ROUNDS = Number(opt('rounds', SMOKE ? '1' : '3'));
const SESSIONS = Number(opt('sessions', SMOKE ? '200' : '10000'));
const CONNECTIONS = Number(opt('connections', '32'));
const ALL_ROWS = ['F1', 'F2', 'F3', 'F4', 'S1', 'S2', 'S3', 'S4', 'S5', 'W2', 'C0', 'C1', 'CS', 'H0', 'H1', 'HS'] as const;
type RowId = (typeof ALL_ROWS)[number];
const ROWS = opt('rows', ALL_ROWS.join(',')).split(',') as RowId[];
for (const id of ROWS) if (!ALL_ROWS.includes(id)) throw new Error(`--rows: no row ${id} (rows: ${ALL_ROWS.join(', ')})`);
const H2_CLIENTS = Math.max(2, CONNECTIONS / 8);
const LOGIN_TOKEN = 'bench-login-token-0123456789';
const SECRET = 'bench-secret-0123456789abcdef0123456789abcdef';
/** Sessions the memory-store figure is taken at (the target's size; fewer in the smoke pass). */
const MEMORY_SESSIONS = SMOKE ? 1000 : 100_000;

const FLOOR: Record<RowId, RowId | null> = {
  F1: null,
  F2: null,
  F3: null,
  F4: null,
  S1: 'F2',
  S2: 'F2',
  S3: 'F3',
  S4: 'F4',
  S5: 'F1',
  W2: 'S2',
  C0: null,
  C1: 'C0',
  CS: 'C1',
  H0: null,
  H1: 'H0',
  HS: 'H1',
};
/**
 * Rows whose CPU per decision is compared with their floor's: both are an auth service behind
 * the same proxy. S5's, C1's and H1's floors (F1, C0, H0) are the proxy answering by itself: what
 * those floors' CPU measures is the proxy's, a different job.
 */
const CPU_PAIRED = new Set<RowId>(['S1', 'S2', 'S3', 'S4', 'W2', 'CS', 'HS']);
/** The order rows run in within a round (reversed every other round): each next to its floor. */
const RUN_ORDER: RowId[] = ['F1', 'S5', 'F2', 'S1', 'S2', 'W2', 'F3', 'S3', 'F4', 'S4', 'C0', 'C1', 'CS', 'H0', 'H1', 'HS'];
const WHAT: Record<RowId, string> = {
  F1: 'nginx auth_request answered inside nginx (return 204)',
  F2: 'nginx auth_request to a bare node:http responder (cookie → Map)',
  F3: 'F2, the responder doing one Redis GET',
  F4: 'bare @grpc/grpc-js Check server, proto-loader objects, always OK',
  S1: 'sessiongate via nginx, memory store',
  S2: 'sessiongate via nginx, Redis, local cache warm',
  S3: 'sessiongate via nginx, Redis, local cache off',
  S4: 'sessiongate gRPC Check, Redis, local cache warm',
  S5: 'sessiongate via nginx with the proxy-side decision cache (memory store)',
  W2: 'S2 with SESSIONGATE_WORKERS=2 (scaling from 1 to 2 workers; Redis, as workers need a shared store)',
  C0: 'Caddy alone: the shipped Caddyfile, its check answered by Caddy itself (respond 200)',
  C1: 'the shipped Caddyfile, its check to the bare node:http responder of F2',
  CS: 'sessiongate via the shipped Caddyfile, memory store',
  H0: 'HAProxy alone: the shipped haproxy/ config, its check answered by HAProxy itself (http-request return 200)',
  H1: 'the shipped haproxy/ config, its check to the bare node:http responder of F2',
  HS: 'sessiongate via the shipped haproxy/ config (Lua core.httpclient), memory store',
};
/** Whose CPU a row's "CPU per decision" is. */
const CPU_OF: Record<RowId, string> = {
  F1: 'nginx (master and worker)',
  F2: 'the bare responder',
  F3: 'the bare responder',
  F4: 'the grpc-js server',
  S1: 'sessiongate',
  S2: 'sessiongate',
  S3: 'sessiongate',
  S4: 'sessiongate',
  S5: 'sessiongate',
  W2: 'sessiongate (primary and workers)',
  C0: 'Caddy',
  C1: 'the bare responder',
  CS: 'sessiongate',
  H0: 'HAProxy',
  H1: 'the bare responder',
  HS: 'sessiongate',
};

// ------------------------------------------------------------------------------------------
// Pinning

let SERVICE_CPU = '';
/** Pins this runner (and so everything it starts from now on) off the service's CPU; returns the report's line about it. */
function setUpPinning(): string {
  const all = allowedCpus();
  if (!PIN) return `- not pinned (no --pin): every process shares the ${all.length} CPUs`;
  if (spawnSync('sh', ['-c', 'command -v taskset'], { stdio: 'ignore' }).status !== 0) throw new Error('--pin needs taskset (util-linux)');
  if (all.length < 2) throw new Error(`--pin needs 2 CPUs or more; this process may use ${all.join(',')}`);
  SERVICE_CPU = String(all.at(-1));
  const others = all.slice(0, -1).join(',');
  pin([process.pid], others);
  return (
    `- pinned (--pin, taskset): the service under test on CPU ${SERVICE_CPU} (sessiongate with any workers; the bare responders of F2, F3, C1, H1; ` +
    `the grpc-js server of F4); this runner, wrk, h2load, nginx, Caddy and HAProxy on CPU ${others}; Redis on any. ` +
    'In F1, C0 and H0 the proxy is what is measured and stays with the load generators, as in every other row.'
  );
}

// ------------------------------------------------------------------------------------------
// Processes

const cleanups: Array<() => Promise<unknown> | unknown> = [];
const dir = tempDir('sg-bench-');

function forkFloor(script: string, args: string[]): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = fork(join(ROOT, 'dist-bench/bench', script), args, { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    cleanups.push(() => child.kill('SIGKILL'));
    child.once('message', () => resolve(child));
    child.once('exit', (code) => reject(new Error(`${script} exited with ${code}`)));
  });
}

/** nginx running the shipped config, with its auth location pointed at `authPort` (or answered inside nginx). */
async function startBenchNginx(authPort: number | 'inside', decisionCache = false): Promise<{ port: number; pid: number }> {
  const d = join(dir, `nginx-${authPort}`);
  mkdirSync(join(d, 'sessiongate'), { recursive: true });
  mkdirSync(join(d, 'logs'), { recursive: true });
  mkdirSync(join(d, 'html'), { recursive: true });
  writeFileSync(join(d, 'html/index.html'), 'ok\n');
  const port = await freePort();
  const app = await freePort();
  let conf = readFileSync(join(ROOT, 'nginx/nginx.conf'), 'utf8')
    .replace('worker_processes auto;', 'worker_processes 1;')
    .replace('listen 8000;', `listen 127.0.0.1:${port};`)
    .replace('server 127.0.0.1:9180;', `server 127.0.0.1:${authPort === 'inside' ? 9 : authPort};`)
    .replace('server 127.0.0.1:8080;', `server 127.0.0.1:${app};`)
    .replace('    access_log logs/access.log;', '    access_log off;');
  if (decisionCache) {
    conf = conf.replace('    # proxy_cache_path ', '    proxy_cache_path ');
    writeFileSync(join(d, 'sessiongate/decision-cache.conf'), readFileSync(join(ROOT, 'nginx/sessiongate/decision-cache.conf.example'), 'utf8'));
  }
  // The application: a static answer from nginx itself, so it is never the bottleneck.
  conf = conf.replace(/\n}\s*$/, `\n    server {\n        listen 127.0.0.1:${app};\n        location / { root html; try_files /index.html =404; }\n    }\n}\n`);
  writeFileSync(join(d, 'nginx.conf'), conf);
  let endpoints = readFileSync(join(ROOT, 'nginx/sessiongate/endpoints.conf'), 'utf8');
  if (authPort === 'inside') endpoints = endpoints.replace('    proxy_pass http://sessiongate/auth;', '    return 204;');
  writeFileSync(join(d, 'sessiongate/endpoints.conf'), endpoints);
  writeFileSync(join(d, 'sessiongate/protect.conf'), readFileSync(join(ROOT, 'nginx/sessiongate/protect.conf'), 'utf8'));
  const child = spawn(nginxBinary(), ['-p', d, '-c', join(d, 'nginx.conf'), '-e', join(d, 'logs/error.log'), '-g', 'daemon off;'], { stdio: 'ignore' });
  // SIGTERM (fast shutdown): the master takes its workers down; SIGKILL would orphan them.
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
        setTimeout(() => (child.kill('SIGKILL'), resolve()), 3000).unref();
      }),
  );
  const up = await waitFor(
    async () =>
      await send(`http://127.0.0.1:${port}/~assets/x`).then(
        () => true,
        () => false,
      ),
    5000,
  );
  if (!up) throw new Error(`nginx for ${authPort} did not start: ${readFileSync(join(d, 'logs/error.log'), 'utf8')}`);
  return { port, pid: child.pid! };
}

/**
 * Caddy with the shipped Caddyfile, its check sent to `authPort` (or answered by a site of Caddy's
 * own), the application a static site of the same Caddy, so it is never the bottleneck.
 */
async function startBenchCaddy(authPort: number | 'inside'): Promise<{ port: number; pid: number }> {
  const [app, inside] = [await freePort(), await freePort()];
  const site = (port: number, body: string) => `\nhttp://:${port} {\n\tbind 127.0.0.1\n\t${body}\n}\n`;
  const caddy = await startCaddy({
    sessiongatePort: authPort === 'inside' ? inside : authPort,
    appPort: app,
    extra: site(app, 'respond "ok" 200') + (authPort === 'inside' ? site(inside, 'respond 200') : ''),
  });
  cleanups.push(() => caddy.stop());
  return { port: caddy.port, pid: caddy.pid };
}

/** HAProxy with the shipped haproxy/ config, its check sent to `authPort` (or answered by HAProxy itself), the application a frontend of its own. */
async function startBenchHaproxy(authPort: number | 'inside'): Promise<{ port: number; pid: number }> {
  const [app, inside] = [await freePort(), await freePort()];
  const frontend = (name: string, port: number, answer: string) => `\nfrontend ${name}\n    bind 127.0.0.1:${port}\n    http-request return ${answer}\n`;
  const h = await startHaproxy({
    sessiongatePort: authPort === 'inside' ? inside : authPort,
    appPort: app,
    mutate: (cfg) =>
      cfg +
      frontend('bench_app', app, 'status 200 content-type text/plain string ok') +
      (authPort === 'inside' ? frontend('bench_auth', inside, 'status 200') : ''),
  });
  cleanups.push(() => h.stop());
  return { port: h.port, pid: h.pid };
}

async function startSessiongate(env: Record<string, string>, config?: string): Promise<RunningService> {
  const nodeOptions = opt('node-options', '');
  // --node-args: flags NODE_OPTIONS does not take (--cpu-prof --cpu-prof-dir=DIR).
  const nodeArgs = opt('node-args', '').split(' ').filter(Boolean);
  const sg = await startService({
    ...(config ? { config } : {}),
    nodeArgs,
    env: { SESSIONGATE_SECRET: SECRET, SESSIONGATE_LOGIN_TOKEN: LOGIN_TOKEN, ...(nodeOptions ? { NODE_OPTIONS: nodeOptions } : {}), ...env },
  });
  cleanups.push(() => sg.stop());
  return sg;
}

async function createSessions(sg: RunningService, n: number): Promise<string[]> {
  const cookies: string[] = [];
  let stalled = 0;
  for (let next = 0; cookies.length < n; ) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(50, n - cookies.length) }, () => {
        const user = `user${next++}@example.com`;
        return send(`${sg.url}/~session`, {
          method: 'POST',
          headers: [
            ['Authorization', `Bearer ${LOGIN_TOKEN}`],
            ['Content-Type', 'application/json'],
          ],
          body: JSON.stringify({ user_id: user, roles: ['user'], attributes: { email: user } }),
        });
      }),
    );
    let created = 0;
    for (const r of batch) {
      // A store timeout on a loaded machine (100 ms by default): the next batch asks again, as a
      // login service would; only a run of batches with nothing created is a failure.
      if (r.status === 503 && stalled < 20) continue;
      if (r.status !== 201) throw new Error(`session creation failed: ${r.status} ${r.body}`);
      cookies.push(r.cookies[0]!.split(';')[0]!.slice('sessiongate='.length));
      created++;
    }
    stalled = created > 0 ? 0 : stalled + 1;
    if (created < batch.length) await sleep(100);
  }
  return cookies;
}

// ------------------------------------------------------------------------------------------
// Load

/** A wrk script: a dozen browser headers, a ~1 kB Cookie header, a different session per request. */
function wrkScript(cookieFile: string, pace?: { rate: number; latencyMs: number }): string {
  const file = join(dir, `wrk-${Math.random().toString(36).slice(2)}.lua`);
  writeFileSync(file, `${wrkRequestLua(cookieFile)}${pace ? paceLua(pace.rate, pace.latencyMs) : ''}\n`);
  return file;
}

/**
 * Paced load for wrk (wrk2 is not in Debian): each connection waits before its next request so
 * that the connections together send about \`rate\` requests/s. The waits are exponentially
 * distributed (arrivals spread out rather than in step across connections); wrk's delay() is
 * whole milliseconds, so each wait is rounded up or down at random to keep the mean exact.
 */
function paceLua(rate: number, latencyMs: number): string {
  const wait = Math.max(0, (CONNECTIONS * 1000) / rate - latencyMs);
  return `
local mean = ${wait.toFixed(4)}
math.randomseed(os.time() + math.floor(os.clock() * 1000000))
delay = function()
  local w = -mean * math.log(1 - math.random())
  local whole = math.floor(w)
  if math.random() < w - whole then return whole + 1 end
  return whole
end
`;
}

/** What a load generator reports of one run. */
interface Load {
  rps: number;
  p50: number; // ms
  p99: number; // ms
  errors: number;
  /** Answers received in the run (wrk's "N requests in", h2load's "done"). */
  requests: number;
}

function ms(s: string): number {
  const m = /([\d.]+)(us|ms|s)/.exec(s);
  if (!m) return NaN;
  const v = Number(m[1]);
  return m[2] === 'us' ? v / 1000 : m[2] === 's' ? v * 1000 : v;
}

function runWrk(port: number, script: string, seconds: number): Load {
  const r = spawnSync('wrk', ['-t2', `-c${CONNECTIONS}`, `-d${seconds}s`, '--latency', '-s', script, `http://127.0.0.1:${port}/`], {
    encoding: 'utf8',
    timeout: (seconds + 30) * 1000,
  });
  if (r.status !== 0) throw new Error(`wrk failed: ${r.stderr}`);
  const out = r.stdout;
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const sockErrors = sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0;
  return {
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0),
    p50: ms(/\s50%\s+(\S+)/.exec(out)?.[1] ?? ''),
    p99: ms(/\s99%\s+(\S+)/.exec(out)?.[1] ?? ''),
    errors: non2xx + sockErrors,
    requests: Number(/(\d+) requests in /.exec(out)?.[1] ?? 0),
  };
}

function runH2load(port: number, body: string, seconds: number, rate?: number): Load {
  const log = join(dir, `h2load-${Math.random().toString(36).slice(2)}.log`);
  const r = spawnSync(
    'h2load',
    [
      '-D',
      String(seconds),
      '-c',
      String(H2_CLIENTS),
      '-m',
      '16',
      '-t',
      '1',
      ...(rate ? [`--rps=${Math.max(1, Math.round(rate / H2_CLIENTS))}`] : []),
      '--log-file',
      log,
      '-d',
      body,
      '-H',
      'content-type: application/grpc',
      '-H',
      'te: trailers',
      `http://127.0.0.1:${port}/envoy.service.auth.v3.Authorization/Check`,
    ],
    { encoding: 'utf8', timeout: (seconds + 30) * 1000 },
  );
  if (r.status !== 0) throw new Error(`h2load failed: ${r.stderr}${r.stdout}`);
  const out = r.stdout;
  const req = /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(out);
  const lat = readFileSync(log, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => Number(l.split('\t')[2]) / 1000)
    .sort((a, b) => a - b);
  return {
    rps: Number(/finished in [\d.]+\w*, ([\d.]+) req\/s/.exec(out)?.[1] ?? 0),
    p50: lat[Math.floor(lat.length * 0.5)] ?? NaN,
    p99: lat[Math.floor(lat.length * 0.99)] ?? NaN,
    errors: req ? Number(req[5]) + Number(req[6]) + Number(req[7]) : 1,
    requests: req ? Number(req[3]) : 0,
  };
}

/** A CheckRequest as Envoy sends it, gRPC-framed (flag byte, 4-byte length, message). */
function grpcBody(cookie: string): string {
  const msg = encodeCheckRequest({
    method: 'GET',
    path: '/app/page?id=1',
    host: 'app.example.com',
    headers: {
      accept: 'text/html,application/xhtml+xml',
      'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0 Safari/537.36',
      'accept-language': 'en-GB,en;q=0.9',
      cookie: `theme=dark; ${Array.from({ length: 14 }, (_, i) => `_ga${i}=GA1.2.${'1234567890'.repeat(4)}`).join('; ')}; sessiongate=${cookie}`,
      'x-forwarded-for': '203.0.113.7',
      'x-envoy-internal': 'true',
    },
  });
  const frame = Buffer.alloc(5 + msg.length);
  frame.writeUInt32BE(msg.length, 1);
  Buffer.from(msg).copy(frame, 5);
  const file = join(dir, `check-${Math.random().toString(36).slice(2)}.bin`);
  writeFileSync(file, frame);
  return file;
}

// ------------------------------------------------------------------------------------------
// Rows and measurement

interface Row {
  id: RowId;
  run(seconds: number): Load;
  /** The same load paced to `rate` requests/s (for p99 at about half load). */
  paced(seconds: number, rate: number, latencyMs: number): Load;
  /** The processes whose CPU and memory the row reports; their descendants count too. */
  measured: number[];
  /** The processes --pin puts on the service's CPU (none in F1, C0, H0: the proxy is measured there). */
  pinned: number[];
}

/** One measured run of a row. */
interface Sample extends Load {
  /** µs of CPU (user + system) the measured processes used per answer served in the run. */
  cpuUs: number;
  /** Peak RSS of the measured processes during the run, bytes (summed over them). */
  rss: number;
}

function wrkRow(id: RowId, port: number, cookieFile: string, measured: number, pinned: number | null): Row {
  const script = wrkScript(cookieFile);
  return {
    id,
    run: (s) => runWrk(port, script, s),
    paced: (s, rate, latencyMs) => runWrk(port, wrkScript(cookieFile, { rate, latencyMs }), s),
    measured: [measured],
    pinned: pinned === null ? [] : [pinned],
  };
}

function grpcRow(id: RowId, port: number, body: string, measured: number): Row {
  return { id, run: (s) => runH2load(port, body, s), paced: (s, rate) => runH2load(port, body, s, rate), measured: [measured], pinned: [measured] };
}

/** Runs `load` against the row, reading the measured processes' CPU time right before and right after it. */
function measure(row: Row, load: () => Load): Sample {
  if (PIN) pin(processTree(row.pinned), SERVICE_CPU);
  const pids = processTree(row.measured);
  resetPeakRss(pids);
  const before = cpuTicks(pids);
  const r = load();
  const cpu = cpuSecondsBetween(before, cpuTicks(pids));
  return { ...r, cpuUs: r.requests > 0 ? (cpu * 1e6) / r.requests : NaN, rss: peakRss(pids) };
}

const median = (xs: readonly number[]): number => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const MB = (bytes: number) => (bytes / 1048576).toFixed(0);

/** RSS of a fresh process once start-up has settled: sampled every 250 ms until it moves less than 1 % over 1 s (at most 15 s). */
async function settledRss(pid: number): Promise<number> {
  const samples: number[] = [];
  const until = Date.now() + 15_000;
  for (;;) {
    await sleep(250);
    samples.push(rss(processTree([pid])));
    const last = samples.slice(-5);
    if (last.length === 5 && Math.max(...last) - Math.min(...last) <= Math.max(...last) * 0.01) return last.at(-1)!;
    if (Date.now() > until) return samples.at(-1)!;
  }
}

/** Bytes Redis holds for the keys matching `pattern` (MEMORY USAGE … SAMPLES 0: every field counted), and how many keys. */
async function redisBytes(client: Redis, pattern: string): Promise<{ keys: number; bytes: number }> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  const sizes = await Promise.all(keys.map((k) => client.call('MEMORY', 'USAGE', k, 'SAMPLES', '0')));
  return { keys: keys.length, bytes: sizes.reduce((a: number, b) => a + Number(b), 0) };
}

interface MemoryFigures {
  idleMemory: number;
  idleRedis: number;
  idleBare: number;
  perSessionMemory: number;
  redisSessions: number;
  redisRecord: number;
  redisPerSession: number;
}

/**
 * The memory figures that are not per row: idle RSS of fresh services (memory store, Redis
 * store, and the bare responder for scale), bytes per session in the memory store at
 * MEMORY_SESSIONS, and in Redis (a service of its own under its own key prefix, so every key
 * it writes is counted and nothing else).
 */
async function memoryFigures(storeUrl: string, redisPort: number): Promise<MemoryFigures> {
  const prefix = 'sgprobe:';
  const probeConfig = join(dir, 'probe.yaml');
  writeFileSync(probeConfig, `redis: { key_prefix: "${prefix}" }\n`);
  const empty = join(dir, 'cookies-none.txt');
  writeFileSync(empty, '');
  // The three start side by side and settle together (one wait, not three): RSS is what each
  // process holds, which the others do not change.
  const [mem, red, bare] = await Promise.all([
    startSessiongate({}),
    startSessiongate({ SESSIONGATE_STORE: storeUrl }, probeConfig),
    freePort().then((port) => forkFloor('floor-http.js', [String(port), empty])),
  ]);
  const [idleMemory, idleRedis, idleBare] = await Promise.all([settledRss(mem.pid!), settledRss(red.pid!), settledRss(bare.pid!)]);
  bare.kill('SIGKILL');
  await mem.stop();

  const n = SMOKE ? 100 : 1000;
  await createSessions(red, n);
  const client = new Redis({ port: redisPort, host: '127.0.0.1' });
  const records = await redisBytes(client, `${prefix}s:*`);
  const all = await redisBytes(client, `${prefix}*`);
  client.disconnect();
  await red.stop();
  // A creation answered 503 (a timeout on a busy machine) may still have been written: count what Redis holds.
  if (records.keys < n) throw new Error(`Redis holds ${records.keys} session records under ${prefix}, expected ${n} or more`);

  const m = spawnSync(process.execPath, ['--expose-gc', join(ROOT, 'dist-bench/bench/memory.js'), String(MEMORY_SESSIONS)], { encoding: 'utf8' });
  if (m.status !== 0) throw new Error(`bench/memory.js failed: ${m.stderr}`);
  return {
    idleMemory,
    idleRedis,
    idleBare,
    perSessionMemory: Number(m.stdout.trim()),
    redisSessions: records.keys,
    redisRecord: Math.round(records.bytes / records.keys),
    redisPerSession: Math.round(all.bytes / records.keys),
  };
}

async function main(): Promise<number> {
  const started = Date.now();
  // Redis starts before the runner pins itself, so it stays free to run on any CPU: it is neither
  // the service under test nor load, and squeezed onto the load generators' CPU its answers
  // pass sessiongate's 100 ms command timeout on a busy machine (503s in S2, S3, W2).
  const redis: RedisProcess = await startRedisServer();
  cleanups.push(() => redis.stop());
  const pinning = setUpPinning();
  const storeUrl = `redis://127.0.0.1:${redis.port}`;
  // First, while nothing else runs: fresh services for the idle RSS, the per-session bytes.
  const memory = await memoryFigures(storeUrl, redis.port);
  process.stderr.write(
    `idle RSS: memory store ${MB(memory.idleMemory)} MB, Redis store ${MB(memory.idleRedis)} MB, bare responder ${MB(memory.idleBare)} MB; ` +
      `${memory.perSessionMemory} bytes per session in memory, ${memory.redisRecord} per Redis record (${memory.redisPerSession} with its index)\n`,
  );

  const rows = new Map<RowId, Row>();
  const need = (id: RowId) => ROWS.includes(id);

  // Floors.
  const floorCookies = Array.from({ length: SESSIONS }, (_, i) => `floor-${i}-${'x'.repeat(100)}`);
  const floorFile = join(dir, 'cookies-floor.txt');
  writeFileSync(floorFile, `${floorCookies.join('\n')}\n`);
  if (need('F1')) {
    const n = await startBenchNginx('inside');
    rows.set('F1', wrkRow('F1', n.port, floorFile, n.pid, null));
  }
  if (need('F2')) {
    const port = await freePort();
    const floor = await forkFloor('floor-http.js', [String(port), floorFile]);
    const n = await startBenchNginx(port);
    rows.set('F2', wrkRow('F2', n.port, floorFile, floor.pid!, floor.pid!));
  }
  if (need('F3')) {
    const client = new Redis({ port: redis.port, host: '127.0.0.1' });
    const pipe = client.pipeline();
    for (const [i, c] of floorCookies.entries()) pipe.set(`floor:${c}`, `user${i}`);
    await pipe.exec();
    client.disconnect();
    const port = await freePort();
    const floor = await forkFloor('floor-http.js', [String(port), floorFile, String(redis.port)]);
    const n = await startBenchNginx(port);
    rows.set('F3', wrkRow('F3', n.port, floorFile, floor.pid!, floor.pid!));
  }
  if (need('F4')) {
    const port = await freePort();
    const floor = await forkFloor('floor-grpc.js', [String(port)]);
    rows.set('F4', grpcRow('F4', port, grpcBody('x'), floor.pid!));
  }

  // sessiongate: a process of its own per row, so each row's CPU and peak RSS are its own
  // (CS and HS share one: they run one at a time and have no target).
  const noCache = join(dir, 'no-cache.yaml');
  writeFileSync(noCache, 'cache: { enabled: false }\n');
  const memoryStore = async (name: string, config?: string) => {
    const sg = await startSessiongate({}, config);
    const file = join(dir, `cookies-${name}.txt`);
    writeFileSync(file, `${(await createSessions(sg, SESSIONS)).join('\n')}\n`);
    return { sg, file };
  };
  if (need('S1')) {
    const { sg, file } = await memoryStore('s1');
    const n = await startBenchNginx(sg.httpPort);
    rows.set('S1', wrkRow('S1', n.port, file, sg.pid!, sg.pid!));
  }
  if (need('CS') || need('HS')) {
    const { sg, file } = await memoryStore('proxies');
    if (need('CS')) {
      const c = await startBenchCaddy(sg.httpPort);
      rows.set('CS', wrkRow('CS', c.port, file, sg.pid!, sg.pid!));
    }
    if (need('HS')) {
      const h = await startBenchHaproxy(sg.httpPort);
      rows.set('HS', wrkRow('HS', h.port, file, sg.pid!, sg.pid!));
    }
  }
  // Caddy's and HAProxy's floors: the proxy alone, then the proxy with F2's bare responder.
  if (need('C0')) {
    const c = await startBenchCaddy('inside');
    rows.set('C0', wrkRow('C0', c.port, floorFile, c.pid, null));
  }
  if (need('H0')) {
    const h = await startBenchHaproxy('inside');
    rows.set('H0', wrkRow('H0', h.port, floorFile, h.pid, null));
  }
  if (need('C1') || need('H1')) {
    const port = await freePort();
    const floor = await forkFloor('floor-http.js', [String(port), floorFile]);
    if (need('C1')) {
      const c = await startBenchCaddy(port);
      rows.set('C1', wrkRow('C1', c.port, floorFile, floor.pid!, floor.pid!));
    }
    if (need('H1')) {
      const h = await startBenchHaproxy(port);
      rows.set('H1', wrkRow('H1', h.port, floorFile, floor.pid!, floor.pid!));
    }
  }
  if (need('S5')) {
    const cacheConfig = join(dir, 'proxy-cache.yaml');
    writeFileSync(cacheConfig, 'proxy_cache: { ttl: 60s }\n');
    const { sg, file } = await memoryStore('s5', cacheConfig);
    const n = await startBenchNginx(sg.httpPort, true);
    rows.set('S5', wrkRow('S5', n.port, file, sg.pid!, sg.pid!));
  }
  if (need('S2') || need('S3') || need('S4') || need('W2')) {
    const cached = await startSessiongate({ SESSIONGATE_STORE: storeUrl });
    const redisCookies = await createSessions(cached, SESSIONS);
    const file = join(dir, 'cookies-redis.txt');
    writeFileSync(file, `${redisCookies.join('\n')}\n`);
    if (need('S2')) {
      const n = await startBenchNginx(cached.httpPort);
      rows.set('S2', wrkRow('S2', n.port, file, cached.pid!, cached.pid!));
    }
    if (need('S3')) {
      const uncached = await startSessiongate({ SESSIONGATE_STORE: storeUrl }, noCache);
      const n = await startBenchNginx(uncached.httpPort);
      rows.set('S3', wrkRow('S3', n.port, file, uncached.pid!, uncached.pid!));
    }
    if (need('W2')) {
      const two = await startSessiongate({ SESSIONGATE_STORE: storeUrl, SESSIONGATE_WORKERS: '2' });
      const n = await startBenchNginx(two.httpPort);
      rows.set('W2', wrkRow('W2', n.port, file, two.pid!, two.pid!));
    }
    if (need('S4')) {
      const grpc = await startSessiongate({ SESSIONGATE_STORE: storeUrl });
      rows.set('S4', grpcRow('S4', grpc.grpcPort, grpcBody(redisCookies[0]!), grpc.pid!));
    }
  }

  // Rounds: warm-up, then measure; the order alternates so drift hits every row alike.
  const results = new Map<RowId, Sample[]>();
  const order = RUN_ORDER.filter((r) => rows.has(r));
  for (let round = 0; round < ROUNDS; round++) {
    const seq = round % 2 === 0 ? order : [...order].reverse();
    for (const id of seq) {
      const row = rows.get(id)!;
      if (WARMUP > 0) row.run(WARMUP);
      const r = measure(row, () => row.run(DURATION));
      results.set(id, [...(results.get(id) ?? []), r]);
      process.stderr.write(
        `round ${round + 1} ${id}: ${r.rps.toFixed(0)} req/s, ${r.cpuUs.toFixed(1)} µs CPU per decision, p50 ${r.p50.toFixed(2)} ms, p99 ${r.p99.toFixed(2)} ms, errors ${r.errors}, peak RSS ${MB(r.rss)} MB\n`,
      );
    }
  }
  const of = (id: RowId, k: 'rps' | 'cpuUs' | 'p50' | 'p99') => median((results.get(id) ?? []).map((r) => r[k]));
  /** Row ÷ floor, round by round: each round's row against the floor measured in that round. */
  const paired = (id: RowId, k: 'rps' | 'cpuUs'): number[] => {
    const floor = FLOOR[id] ? results.get(FLOOR[id]!) : undefined;
    if (!floor) return [];
    return (results.get(id) ?? []).map((r, i) => r[k] / floor[i]![k]);
  };
  const ratioCell = (id: RowId, k: 'rps' | 'cpuUs'): string => {
    const f = FLOOR[id];
    if (!f) return 'floor';
    const list = paired(id, k).filter(Number.isFinite);
    if (list.length === 0) return `(${f} not run)`;
    const spread = list.length > 1 ? ` (${Math.min(...list).toFixed(2)}–${Math.max(...list).toFixed(2)})` : '';
    return `${median(list).toFixed(2)} × ${f}${spread}`;
  };

  // p99 at about half load: each row paced to half its peak (median over the rounds), then its
  // floor paced to the same rate right after, so the two p99s are at one offered rate.
  const half = new Map<RowId, { row: Sample; floor?: Sample; rate: number }>();
  for (const id of order) {
    const f = FLOOR[id];
    if (!f) continue;
    const rate = of(id, 'rps') / 2;
    const r = measure(rows.get(id)!, () => rows.get(id)!.paced(DURATION, rate, of(id, 'p50') / 2));
    const fl = rows.has(f) ? measure(rows.get(f)!, () => rows.get(f)!.paced(DURATION, rate, of(f, 'p50') / 2)) : undefined;
    half.set(id, { row: r, ...(fl ? { floor: fl } : {}), rate });
    process.stderr.write(
      `half load ${id} at ${rate.toFixed(0)} req/s: ${r.rps.toFixed(0)} req/s, p99 ${r.p99.toFixed(2)} ms, errors ${r.errors}` +
        (fl ? `; ${f}: ${fl.rps.toFixed(0)} req/s, p99 ${fl.p99.toFixed(2)} ms, errors ${fl.errors}` : '') +
        '\n',
    );
  }

  const lines = [
    '| row | what | req/s | CPU µs per decision (whose) | p50 ms | p99 ms | errors | peak RSS MB | req/s ÷ floor, paired (min–max) | CPU per decision ÷ floor, paired (min–max) | p99 ms at ~50 % load: row / floor at the same rate (req/s) |',
    '|---|---|---:|---:|---:|---:|---:|---:|---|---|---|',
  ];
  let errors = 0;
  for (const id of ALL_ROWS) {
    if (!rows.has(id)) continue;
    const list = results.get(id)!;
    errors += list.reduce((a, x) => a + x.errors, 0);
    const h = half.get(id);
    if (h) errors += h.row.errors + (h.floor?.errors ?? 0);
    const f = FLOOR[id];
    const halfCell = !h
      ? ''
      : h.floor
        ? `${h.row.p99.toFixed(2)} / ${h.floor.p99.toFixed(2)} = ${(h.row.p99 / h.floor.p99).toFixed(2)} × ${f} (${h.row.rps.toFixed(0)} / ${h.floor.rps.toFixed(0)})`
        : `${h.row.p99.toFixed(2)} (${h.row.rps.toFixed(0)}; ${f} not run)`;
    const cpuRatio = !f ? 'floor' : CPU_PAIRED.has(id) ? ratioCell(id, 'cpuUs') : `— (${f}'s is the proxy's own)`;
    lines.push(
      `| ${id} | ${WHAT[id]} | ${of(id, 'rps').toFixed(0)} | ${of(id, 'cpuUs').toFixed(1)} (${CPU_OF[id]}) | ${of(id, 'p50').toFixed(2)} | ${of(id, 'p99').toFixed(2)} | ${list.reduce((a, x) => a + x.errors, 0)} | ${MB(Math.max(...list.map((r) => r.rss)))} | ${ratioCell(id, 'rps')} | ${cpuRatio} | ${halfCell} |`,
    );
  }

  // The targets of issue #16, each on the median of the paired rounds.
  const targets: string[] = ['| target (issue #16) | measured | |', '|---|---|---|'];
  const target = (what: string, measured: string | undefined, met: boolean | undefined) =>
    targets.push(`| ${what} | ${measured ?? 'row not run'} | ${met === undefined ? '' : met ? 'met' : 'not met'} |`);
  const ratioTarget = (id: RowId, k: 'rps' | 'cpuUs', op: '≤' | '≥', limit: number) => {
    const f = FLOOR[id]!;
    const list = paired(id, k).filter(Number.isFinite);
    const m = median(list);
    const label = k === 'cpuUs' ? 'CPU per decision' : 'req/s';
    target(
      `${id} ${label} ${op} ${limit.toFixed(2)} × ${f}`,
      list.length ? ratioCell(id, k) : undefined,
      list.length ? (op === '≤' ? m <= limit : m >= limit) : undefined,
    );
  };
  ratioTarget('S1', 'cpuUs', '≤', 1.25);
  ratioTarget('S2', 'cpuUs', '≤', 1.3);
  ratioTarget('S3', 'cpuUs', '≤', 1.3);
  ratioTarget('S4', 'cpuUs', '≤', 1.0);
  ratioTarget('S5', 'rps', '≥', 0.8);
  for (const [id, limit] of [
    ['S1', 150],
    ['S2', 150],
    ['S3', 150],
    ['S4', 200],
  ] as const) {
    const list = results.get(id);
    const peak = list ? Math.max(...list.map((r) => r.rss)) / 1048576 : undefined;
    target(`${id} peak RSS ≤ ${limit} MB`, peak === undefined ? undefined : `${peak.toFixed(0)} MB`, peak === undefined ? undefined : peak <= limit);
  }
  target(
    '≤ 500 bytes per session at 100,000 sessions (memory store)',
    `${memory.perSessionMemory} bytes at ${MEMORY_SESSIONS.toLocaleString('en')}${SMOKE ? ' (smoke: not the target’s size)' : ''}`,
    memory.perSessionMemory <= 500,
  );
  target(
    'idle RSS after start-up ≤ 80 MB',
    `memory store ${MB(memory.idleMemory)} MB, Redis store ${MB(memory.idleRedis)} MB`,
    Math.max(memory.idleMemory, memory.idleRedis) <= 80 * 1048576,
  );

  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  const version = (cmd: string, args: string[]) =>
    (spawnSync(cmd, args, { encoding: 'utf8' }).stderr + spawnSync(cmd, args, { encoding: 'utf8' }).stdout).split('\n')[0]!.trim();
  const machine = [
    `- machine: ${cpus().length} × ${cpu}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB; load generators, proxies and Redis share it with the service`,
    pinning,
    `- node ${process.version}; ${version(nginxBinary(), ['-v'])}; ${version('redis-server', ['--version'])}; ${version('wrk', ['-v'])}; ${version('h2load', ['--version'])}`,
    `- ${SESSIONS} sessions, ${CONNECTIONS} wrk connections (2 threads), h2load ${H2_CLIENTS} connections × 16 streams; ${ROUNDS} round(s) of ${DURATION} s after ${WARMUP} s warm-up, rows alternating`,
    '- req/s, CPU per decision, p50 and p99: each row’s median over the rounds; peak RSS: the highest of its rounds. Ratios: computed per round against the floor measured in the same round, shown as their median over the rounds and their spread (min–max); never a row of one round against a floor of another.',
    '- CPU per decision: utime + stime (/proc/<pid>/stat) of the process(es) named, over exactly the measured run, ÷ the answers the load generator received in it.',
    '- p99 at ~50 % load: the row paced to half its median req/s, then its floor paced to the same rate right after; the cell gives both p99s, their ratio and the rates reached.',
    '- W2: CPU and peak RSS cover the primary and both workers' +
      (PIN ? ', all on the one service CPU.' : '; on two cores shared with nginx and wrk, a second worker has no core of its own.'),
    `- idle RSS after start-up (fresh process, RSS once it moves less than 1 % over 1 s): sessiongate memory store ${MB(memory.idleMemory)} MB, Redis store ${MB(memory.idleRedis)} MB; the bare node:http responder ${MB(memory.idleBare)} MB`,
    `- memory store: ${memory.perSessionMemory} bytes per session at ${MEMORY_SESSIONS.toLocaleString('en')} sessions (heap and external memory after full GC); ` +
      `Redis: ${memory.redisRecord} bytes per session record, ${memory.redisPerSession} bytes per session with its user index (MEMORY USAGE … SAMPLES 0 over ${memory.redisSessions} sessions)`,
    '- S5: proxy_cache.ttl 60s; its first pass over the sessions fills the cache, then nginx answers most requests itself.',
  ];
  const report = `# sessiongate benchmark\n\n${new Date().toISOString()}, ${((Date.now() - started) / 1000).toFixed(0)} s\n\n${machine.join('\n')}\n\n${lines.join('\n')}\n\n## Targets\n\n${targets.join('\n')}\n`;
  process.stdout.write(`\n${report}`);
  if (!SMOKE) {
    mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
    writeFileSync(join(ROOT, 'bench/results/latest.md'), report);
  }
  if (errors > 0) process.stderr.write(`bench: ${errors} errors\n`);
  return errors > 0 ? 1 : 0;
}

main()
  .then(
    (code) => code,
    (err) => {
      process.stderr.write(`bench: ${(err as Error).stack ?? String(err)}\n`);
      return 1;
    },
  )
  .then(async (code) => {
    for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => {});
    process.exit(code);
  });
