/**
 * `npm run bench`: sessiongate side by side with the floors of its transports, on loopback,
 * everything started here: redis-server, nginx (the shipped config), the built service, bare
 * responders. Load comes from real external generators: wrk (HTTP through nginx) and h2load
 * (gRPC, framed CheckRequests shaped as Envoy sends them). Rows alternate round by round so
 * drift hits all alike. Prints one table with ratios to each row's floor and writes it to
 * bench/results/latest.md.
 *
 *   node dist-bench/bench/run.js [--duration S] [--warmup S] [--rounds N] [--sessions N] [--rows F1,S1,…] [--smoke]
 *
 * --smoke: one 1-second pass over every row with a few sessions; exits non-zero on any error
 * (this is what CI runs; timings are never asserted).
 */

import { type ChildProcess, fork, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { startCaddy } from '../harness/caddy.js';
import { encodeCheckRequest } from '../harness/envoy-wire.js';
import { startHaproxy } from '../harness/haproxy.js';
import { send } from '../harness/http.js';
import { freePort, nginxBinary, ROOT, type RunningService, startService, tempDir, waitFor } from '../harness/processes.js';
import { type RedisProcess, startRedisServer } from '../harness/redis.js';
import { flag, opt } from './options.js';

// ------------------------------------------------------------------------------------------
// Options

const SMOKE = flag('smoke');
const DURATION = Number(opt('duration', SMOKE ? '1' : '10'));
const WARMUP = Number(opt('warmup', SMOKE ? '0' : '3'));
const ROUNDS = Number(opt('rounds', SMOKE ? '1' : '2'));
const SESSIONS = Number(opt('sessions', SMOKE ? '200' : '10000'));
const CONNECTIONS = Number(opt('connections', '32'));
const ALL_ROWS = ['F1', 'F2', 'F3', 'F4', 'S1', 'S2', 'S3', 'S4', 'S5', 'W2', 'C0', 'C1', 'CS', 'H0', 'H1', 'HS'] as const;
type RowId = (typeof ALL_ROWS)[number];
const ROWS = opt('rows', ALL_ROWS.join(',')).split(',') as RowId[];
const H2_CLIENTS = Math.max(2, CONNECTIONS / 8);
const LOGIN_TOKEN = 'bench-login-token-0123456789';
const SECRET = 'bench-secret-0123456789abcdef0123456789abcdef';

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
const TARGET: Partial<Record<RowId, number>> = { S1: 0.9, S2: 0.9, S3: 0.9, S4: 1.0, S5: 0.8 };
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
  let retries = 0;
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
    for (const r of batch) {
      // A store timeout on a loaded machine: the next batch asks again, as a login service would.
      if (r.status === 503 && retries++ < 20) continue;
      if (r.status !== 201) throw new Error(`session creation failed: ${r.status} ${r.body}`);
      cookies.push(r.cookies[0]!.split(';')[0]!.slice('sessiongate='.length));
    }
  }
  return cookies;
}

/** Resets a process's peak RSS (VmHWM), so the next reading covers one row only. */
function resetPeakRss(pid: number | undefined): void {
  if (!pid) return;
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
  } catch {
    /* not permitted here: the peak then covers the process's life */
  }
}

function peakRss(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

// ------------------------------------------------------------------------------------------
// Load

/** A wrk script: a dozen browser headers, a ~1 kB Cookie header, a different session per request. */
function wrkScript(cookieFile: string, pace?: { rate: number; latencyMs: number }): string {
  const others = Array.from({ length: 14 }, (_, i) => `_ga${i}=GA1.2.${'1234567890'.repeat(4)}`).join('; ');
  const file = join(dir, `wrk-${Math.random().toString(36).slice(2)}.lua`);
  writeFileSync(
    file,
    `
local cookies = {}
for line in io.lines("${cookieFile}") do cookies[#cookies + 1] = line end
local n = #cookies
local i = 0
local headers = {
  ["Accept"] = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
  ["Accept-Encoding"] = "gzip, deflate, br",
  ["Accept-Language"] = "en-GB,en;q=0.9",
  ["Cache-Control"] = "max-age=0",
  ["Sec-Fetch-Dest"] = "document",
  ["Sec-Fetch-Mode"] = "navigate",
  ["Sec-Fetch-Site"] = "same-origin",
  ["Upgrade-Insecure-Requests"] = "1",
  ["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0 Safari/537.36",
  ["X-Forwarded-For"] = "203.0.113.7",
  ["Referer"] = "https://app.example.com/home",
}
request = function()
  i = (i % n) + 1
  headers["Cookie"] = "theme=dark; ${others}; sessiongate=" .. cookies[i] .. "; lang=en"
  return wrk.format("GET", "/app/page?id=" .. i, headers)
end
${pace ? paceLua(pace.rate, pace.latencyMs) : ''}
`,
  );
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

interface Result {
  rps: number;
  p50: number; // ms
  p99: number; // ms
  errors: number;
  rss: number; // bytes
}

function ms(s: string): number {
  const m = /([\d.]+)(us|ms|s)/.exec(s);
  if (!m) return NaN;
  const v = Number(m[1]);
  return m[2] === 'us' ? v / 1000 : m[2] === 's' ? v * 1000 : v;
}

function runWrk(port: number, script: string, seconds: number): Omit<Result, 'rss'> {
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
  };
}

function runH2load(port: number, body: string, seconds: number, rate?: number): Omit<Result, 'rss'> {
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

interface Row {
  id: RowId;
  run(seconds: number): Omit<Result, 'rss'>;
  /** The same load paced to \`rate\` requests/s (for p99 at 50 % of the peak). */
  paced(seconds: number, rate: number, latencyMs: number): Omit<Result, 'rss'>;
  pid(): number | undefined;
}

function wrkRow(id: RowId, port: number, cookieFile: string, pid: () => number | undefined): Row {
  const script = wrkScript(cookieFile);
  return { id, run: (s) => runWrk(port, script, s), paced: (s, rate, latencyMs) => runWrk(port, wrkScript(cookieFile, { rate, latencyMs }), s), pid };
}

function grpcRow(id: RowId, port: number, body: string, pid: () => number | undefined): Row {
  return { id, run: (s) => runH2load(port, body, s), paced: (s, rate) => runH2load(port, body, s, rate), pid };
}

async function main(): Promise<number> {
  const started = Date.now();
  const redis: RedisProcess = await startRedisServer();
  cleanups.push(() => redis.stop());
  const rows = new Map<RowId, Row>();
  const need = (id: RowId) => ROWS.includes(id);

  // Floors.
  const floorCookies = Array.from({ length: SESSIONS }, (_, i) => `floor-${i}-${'x'.repeat(100)}`);
  const floorFile = join(dir, 'cookies-floor.txt');
  writeFileSync(floorFile, `${floorCookies.join('\n')}\n`);
  if (need('F1')) {
    const n = await startBenchNginx('inside');
    rows.set(
      'F1',
      wrkRow('F1', n.port, floorFile, () => n.pid),
    );
  }
  if (need('F2')) {
    const port = await freePort();
    const floor = await forkFloor('floor-http.js', [String(port), floorFile]);
    const n = await startBenchNginx(port);
    rows.set(
      'F2',
      wrkRow('F2', n.port, floorFile, () => floor.pid),
    );
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
    rows.set(
      'F3',
      wrkRow('F3', n.port, floorFile, () => floor.pid),
    );
  }
  if (need('F4')) {
    const port = await freePort();
    const floor = await forkFloor('floor-grpc.js', [String(port)]);
    const body = grpcBody('x');
    rows.set(
      'F4',
      grpcRow('F4', port, body, () => floor.pid),
    );
  }

  // sessiongate.
  const storeUrl = `redis://127.0.0.1:${redis.port}`;
  const noCache = join(dir, 'no-cache.yaml');
  writeFileSync(noCache, 'cache: { enabled: false }\n');
  if (need('S1') || need('CS') || need('HS')) {
    // One memory-store sessiongate behind each proxy in turn (the rows run one at a time).
    const sg = await startSessiongate({});
    const file = join(dir, 'cookies-memory.txt');
    writeFileSync(file, `${(await createSessions(sg, SESSIONS)).join('\n')}\n`);
    if (need('S1')) {
      const n = await startBenchNginx(sg.httpPort);
      rows.set(
        'S1',
        wrkRow('S1', n.port, file, () => sg.pid),
      );
    }
    if (need('CS')) {
      const c = await startBenchCaddy(sg.httpPort);
      rows.set(
        'CS',
        wrkRow('CS', c.port, file, () => sg.pid),
      );
    }
    if (need('HS')) {
      const h = await startBenchHaproxy(sg.httpPort);
      rows.set(
        'HS',
        wrkRow('HS', h.port, file, () => sg.pid),
      );
    }
  }
  // Caddy's and HAProxy's floors: the proxy alone, then the proxy with F2's bare responder.
  if (need('C0')) {
    const c = await startBenchCaddy('inside');
    rows.set(
      'C0',
      wrkRow('C0', c.port, floorFile, () => c.pid),
    );
  }
  if (need('H0')) {
    const h = await startBenchHaproxy('inside');
    rows.set(
      'H0',
      wrkRow('H0', h.port, floorFile, () => h.pid),
    );
  }
  if (need('C1') || need('H1')) {
    const port = await freePort();
    const floor = await forkFloor('floor-http.js', [String(port), floorFile]);
    if (need('C1')) {
      const c = await startBenchCaddy(port);
      rows.set(
        'C1',
        wrkRow('C1', c.port, floorFile, () => floor.pid),
      );
    }
    if (need('H1')) {
      const h = await startBenchHaproxy(port);
      rows.set(
        'H1',
        wrkRow('H1', h.port, floorFile, () => floor.pid),
      );
    }
  }
  if (need('S5')) {
    const cacheConfig = join(dir, 'proxy-cache.yaml');
    writeFileSync(cacheConfig, 'proxy_cache: { ttl: 60s }\n');
    const sg = await startSessiongate({}, cacheConfig);
    const file = join(dir, 'cookies-s5.txt');
    writeFileSync(file, `${(await createSessions(sg, SESSIONS)).join('\n')}\n`);
    const n = await startBenchNginx(sg.httpPort, true);
    rows.set(
      'S5',
      wrkRow('S5', n.port, file, () => sg.pid),
    );
  }
  let redisCookies: string[] | undefined;
  if (need('S2') || need('S3') || need('S4') || need('W2')) {
    const cached = await startSessiongate({ SESSIONGATE_STORE: storeUrl });
    redisCookies = await createSessions(cached, SESSIONS);
    const file = join(dir, 'cookies-redis.txt');
    writeFileSync(file, `${redisCookies.join('\n')}\n`);
    if (need('S2')) {
      const n = await startBenchNginx(cached.httpPort);
      rows.set(
        'S2',
        wrkRow('S2', n.port, file, () => cached.pid),
      );
    }
    if (need('S3')) {
      const uncached = await startSessiongate({ SESSIONGATE_STORE: storeUrl }, noCache);
      const n = await startBenchNginx(uncached.httpPort);
      rows.set(
        'S3',
        wrkRow('S3', n.port, file, () => uncached.pid),
      );
    }
    if (need('W2')) {
      const two = await startSessiongate({ SESSIONGATE_STORE: storeUrl, SESSIONGATE_WORKERS: '2' });
      const n = await startBenchNginx(two.httpPort);
      rows.set(
        'W2',
        wrkRow('W2', n.port, file, () => two.pid),
      );
    }
    if (need('S4')) {
      const body = grpcBody(redisCookies[0]!);
      rows.set(
        'S4',
        grpcRow('S4', cached.grpcPort, body, () => cached.pid),
      );
    }
  }

  // Rounds: warm-up, then measure; the order alternates so drift hits every row alike.
  const results = new Map<RowId, Result[]>();
  const order = ROWS.filter((r) => rows.has(r));
  for (let round = 0; round < ROUNDS; round++) {
    const seq = round % 2 === 0 ? order : [...order].reverse();
    for (const id of seq) {
      const row = rows.get(id)!;
      if (WARMUP > 0) row.run(WARMUP);
      resetPeakRss(row.pid());
      const r = row.run(DURATION);
      const list = results.get(id) ?? [];
      list.push({ ...r, rss: peakRss(row.pid()) });
      results.set(id, list);
      process.stderr.write(
        `round ${round + 1} ${id}: ${r.rps.toFixed(0)} req/s, p50 ${r.p50.toFixed(2)} ms, p99 ${r.p99.toFixed(2)} ms, errors ${r.errors}, peak RSS ${(list.at(-1)!.rss / 1048576).toFixed(0)} MB\n`,
      );
    }
  }

  // Table: per row, the median round by req/s.
  const pick = (id: RowId): Result | undefined => {
    const list = [...(results.get(id) ?? [])].sort((a, b) => a.rps - b.rps);
    return list[Math.floor(list.length / 2)];
  };
  // p99 at half load: each row again, paced to 50 % of its peak (median round); the floors too,
  // so the share of the proxy, the load generator and the scheduler is visible.
  const half = new Map<RowId, Omit<Result, 'rss'>>();
  for (const id of order) {
    const peak = pick(id)!;
    const r = rows.get(id)!.paced(DURATION, peak.rps / 2, peak.p50 / 2);
    half.set(id, r);
    process.stderr.write(`half load ${id}: ${r.rps.toFixed(0)} req/s, p50 ${r.p50.toFixed(2)} ms, p99 ${r.p99.toFixed(2)} ms, errors ${r.errors}\n`);
  }
  const lines = [
    '| row | what | req/s | p50 ms | p99 ms | errors | peak RSS MB (during the row) | ratio to floor | target | p99 ms at ~50 % load (req/s) |',
    '|---|---|---:|---:|---:|---:|---:|---|---|---|',
  ];
  let errors = 0;
  for (const id of order) {
    const r = pick(id)!;
    errors += (results.get(id) ?? []).reduce((a, x) => a + x.errors, 0);
    const floor = FLOOR[id] ? pick(FLOOR[id]!) : undefined;
    const ratio = floor ? `${(r.rps / floor.rps).toFixed(2)} × ${FLOOR[id]}` : FLOOR[id] ? `(${FLOOR[id]} not run)` : 'floor';
    const target = TARGET[id] && floor ? `≥ ${TARGET[id]!.toFixed(1)} × ${FLOOR[id]}: ${r.rps / floor.rps >= TARGET[id]! ? 'met' : 'not met'}` : '';
    const h = half.get(id);
    if (h) errors += h.errors;
    const viaNginx = id !== 'S4' && id.startsWith('S');
    const halfCell = h ? `${h.p99.toFixed(2)} (${h.rps.toFixed(0)})${viaNginx ? (h.p99 < 2 ? ': under 2 ms' : ': over 2 ms') : ''}` : '';
    lines.push(
      `| ${id} | ${WHAT[id]} | ${r.rps.toFixed(0)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${r.errors} | ${(r.rss / 1048576).toFixed(0)} | ${ratio} | ${target} | ${halfCell} |`,
    );
  }
  // Memory per session: the memory store at 100,000 sessions, and one Redis record.
  const memN = SMOKE ? 1000 : 100_000;
  const mem = spawnSync(process.execPath, ['--expose-gc', join(ROOT, 'dist-bench/bench/memory.js'), String(memN)], { encoding: 'utf8' });
  const memoryBytes = mem.status === 0 ? Number(mem.stdout.trim()) : NaN;
  let redisBytes = NaN;
  if (redisCookies) {
    const probe = new Redis({ port: redis.port, host: '127.0.0.1' });
    const [, keys] = await probe.scan('0', 'MATCH', 'sg:s:*', 'COUNT', 1000);
    const sizes = await Promise.all(keys.slice(0, 100).map((k) => probe.memory('USAGE', k)));
    redisBytes = sizes.length ? Math.round(sizes.reduce((a: number, b) => a + Number(b), 0) / sizes.length) : NaN;
    probe.disconnect();
  }
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  const version = (cmd: string, args: string[]) =>
    (spawnSync(cmd, args, { encoding: 'utf8' }).stderr + spawnSync(cmd, args, { encoding: 'utf8' }).stdout).split('\n')[0]!.trim();
  const machine = [
    `- machine: ${cpus().length} × ${cpu}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB; load generators share these cores`,
    `- node ${process.version}; ${version(nginxBinary(), ['-v'])}; ${version('redis-server', ['--version'])}; ${version('wrk', ['-v'])}; ${version('h2load', ['--version'])}`,
    `- ${SESSIONS} sessions, ${CONNECTIONS} wrk connections (2 threads), h2load ${H2_CLIENTS} connections × 16 streams; ${ROUNDS} round(s) of ${DURATION} s after ${WARMUP} s warm-up, rows alternating; the median round is shown`,
    "- W2: peak RSS is the primary's; on two cores shared with nginx and wrk, a second worker has no core of its own.",
    `- memory store: ${memoryBytes} bytes per session at ${memN.toLocaleString('en')} sessions (heap after full GC); Redis: ${redisBytes} bytes per session record (MEMORY USAGE, mean of up to 100 keys)`,
    '- S5: proxy_cache.ttl 60s; its first pass over the sessions fills the cache, then nginx answers most requests itself.',
  ];
  const report = `# sessiongate benchmark\n\n${new Date().toISOString()}, ${((Date.now() - started) / 1000).toFixed(0)} s\n\n${machine.join('\n')}\n\n${lines.join('\n')}\n`;
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
