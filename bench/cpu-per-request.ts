/**
 * CPU per request, sessiongate (memory store) against the bare responder (F2), each behind the
 * shipped nginx, driven by wrk with S1's load (a ~1 kB Cookie header, a different session per
 * request). Reads the service's utime + stime from /proc/<pid>/stat over the measured window and
 * divides by the requests wrk saw answered. Rounds alternate the order; prints each round's µs per
 * request, the ratio in that round, and the median ratio.
 *
 *   npm run build && npx tsc -p tsconfig.bench.json && node dist-bench/bench/cpu-per-request.js \
 *     [--rounds 3] [--duration 5] [--warmup 2] [--sessions 10000] [--only S1|F2] [--threads] [--perf DIR]
 *     [--other-bin PATH/bin/sessiongate.js (another checkout, row S1b)]
 *     [--node-args "--cpu-prof --cpu-prof-dir=DIR"] [--floor-node-args "…"]
 */

import { type ChildProcess, fork, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { send } from '../harness/http.js';
import { freePort, nginxBinary, ROOT, type RunningService, startService, tempDir, waitFor } from '../harness/processes.js';
import { flag, opt } from './options.js';
import { wrkRequestLua } from './wrk-request.js';

const ROUNDS = Number(opt('rounds', '3'));
const DURATION = Number(opt('duration', '5'));
const WARMUP = Number(opt('warmup', '2'));
const SESSIONS = Number(opt('sessions', '10000'));
const ONLY = opt('only', '');
const THREADS = flag('threads');
const PERF = opt('perf', '');
const PERF_G = flag('perf-g');
const LOGIN_TOKEN = 'bench-login-token-0123456789';
const SECRET = 'bench-secret-0123456789abcdef0123456789abcdef';
const TICK_US = 1e6 / Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim() || 100);

const dir = tempDir('sg-cpu-');
const cleanups: Array<() => Promise<unknown> | unknown> = [];

/** utime (field 14) and stime (field 15) of a process, in clock ticks. */
function cpuTicks(pid: number): { user: number; system: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces) start at field 3.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: Number(rest[11]), system: Number(rest[12]) };
}

async function startBenchNginx(authPort: number): Promise<number> {
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
    .replace('server 127.0.0.1:9180;', `server 127.0.0.1:${authPort};`)
    .replace('server 127.0.0.1:8080;', `server 127.0.0.1:${app};`)
    .replace('    access_log logs/access.log;', '    access_log off;');
  conf = conf.replace(/\n}\s*$/, `\n    server {\n        listen 127.0.0.1:${app};\n        location / { root html; try_files /index.html =404; }\n    }\n}\n`);
  writeFileSync(join(d, 'nginx.conf'), conf);
  writeFileSync(join(d, 'sessiongate/endpoints.conf'), readFileSync(join(ROOT, 'nginx/sessiongate/endpoints.conf'), 'utf8'));
  writeFileSync(join(d, 'sessiongate/protect.conf'), readFileSync(join(ROOT, 'nginx/sessiongate/protect.conf'), 'utf8'));
  const child = spawn(nginxBinary(), ['-p', d, '-c', join(d, 'nginx.conf'), '-e', join(d, 'logs/error.log'), '-g', 'daemon off;'], { stdio: 'ignore' });
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
    () =>
      send(`http://127.0.0.1:${port}/~assets/x`).then(
        () => true,
        () => false,
      ),
    5000,
  );
  if (!up) throw new Error(`nginx did not start: ${readFileSync(join(d, 'logs/error.log'), 'utf8')}`);
  return port;
}

function wrkScript(cookieFile: string): string {
  const file = join(dir, `wrk-${Math.random().toString(36).slice(2)}.lua`);
  writeFileSync(file, wrkRequestLua(cookieFile));
  return file;
}

function runWrk(port: number, script: string, seconds: number): { requests: number; non2xx: number } {
  const r = spawnSync('wrk', ['-t2', '-c32', `-d${seconds}s`, '-s', script, `http://127.0.0.1:${port}/`], { encoding: 'utf8', timeout: (seconds + 30) * 1000 });
  if (r.status !== 0) throw new Error(`wrk failed: ${r.stderr}`);
  return {
    requests: Number(/(\d+) requests in/.exec(r.stdout)?.[1] ?? 0),
    non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(r.stdout)?.[1] ?? 0),
  };
}

async function createSessions(sg: RunningService, n: number): Promise<string[]> {
  const cookies: string[] = [];
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
      if (r.status !== 201) throw new Error(`session creation failed: ${r.status} ${r.body}`);
      cookies.push(r.cookies[0]!.split(';')[0]!.slice('sessiongate='.length));
    }
  }
  return cookies;
}

interface Target {
  id: string;
  port: number;
  pid: number;
  script: string;
}

/** utime + stime of the main thread and of all others together, in clock ticks. */
function threadTicks(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = tid === String(pid) ? 'main' : 'other threads';
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(name, (out.get(name) ?? 0) + Number(rest[11]) + Number(rest[12]));
    } catch {
      /* the thread ended */
    }
  }
  return out;
}

function measure(t: Target): { us: number; user: number; rps: number; non2xx: number } {
  if (WARMUP > 0) runWrk(t.port, t.script, WARMUP);
  const before = cpuTicks(t.pid);
  const threadsBefore = THREADS ? threadTicks(t.pid) : undefined;
  // On-CPU samples of the measured window (perf's cpu-clock counts only time on a CPU, unlike
  // --cpu-prof, whose samples also cover time the process waited for one).
  const perf = PERF
    ? spawn(
        'perf',
        [
          'record',
          '-e',
          'cpu-clock',
          '-F',
          '1999',
          ...(PERF_G ? ['--call-graph', 'fp'] : []),
          '-p',
          String(t.pid),
          '-o',
          join(PERF, `${t.id}-${Date.now()}.data`),
        ],
        { stdio: 'ignore' },
      )
    : undefined;
  const r = runWrk(t.port, t.script, DURATION);
  const after = cpuTicks(t.pid);
  perf?.kill('SIGINT');
  if (threadsBefore) {
    const parts = [...threadTicks(t.pid)].map(([name, ticks]) => `${name} ${(((ticks - (threadsBefore.get(name) ?? 0)) * TICK_US) / r.requests).toFixed(1)}`);
    process.stdout.write(`  ${t.id} threads (µs/request): ${parts.join(', ')}\n`);
  }
  const user = ((after.user - before.user) * TICK_US) / r.requests;
  const system = ((after.system - before.system) * TICK_US) / r.requests;
  return { us: user + system, user, rps: r.requests / DURATION, non2xx: r.non2xx };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const floorCookies = Array.from({ length: SESSIONS }, (_, i) => `floor-${i}-${'x'.repeat(100)}`);
  const floorFile = join(dir, 'cookies-floor.txt');
  writeFileSync(floorFile, `${floorCookies.join('\n')}\n`);
  const floorPort = await freePort();
  const floor = await new Promise<ChildProcess>((resolve, reject) => {
    const child = fork(join(ROOT, 'dist-bench/bench', opt('floor', 'floor-http.js')), [String(floorPort), floorFile], {
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      execArgv: opt('floor-node-args', '').split(' ').filter(Boolean),
    });
    // SIGINT lets a --cpu-prof run write its profile (the responder has no handler, so it exits).
    cleanups.push(() => new Promise((done) => (child.once('exit', done), child.kill('SIGINT'), setTimeout(() => child.kill('SIGKILL'), 3000).unref())));
    child.once('message', () => resolve(child));
    child.once('exit', (code) => reject(new Error(`floor exited with ${code}`)));
  });
  const nodeArgs = opt('node-args', '').split(' ').filter(Boolean);
  const sg = await startService({ nodeArgs, env: { SESSIONGATE_SECRET: SECRET, SESSIONGATE_LOGIN_TOKEN: LOGIN_TOKEN } });
  cleanups.push(() => sg.stop());
  const ratios: number[] = [];
  const otherRatios: number[] = [];
  const per: Record<string, number[]> = { F2: [], S1: [] };
  const sgFile = join(dir, 'cookies-sg.txt');
  writeFileSync(sgFile, `${(await createSessions(sg, SESSIONS)).join('\n')}\n`);
  const targets: Target[] = [
    { id: 'F2', port: await startBenchNginx(floorPort), pid: floor.pid!, script: wrkScript(floorFile) },
    { id: 'S1', port: await startBenchNginx(sg.httpPort), pid: sg.pid!, script: wrkScript(sgFile) },
  ].filter((t) => !ONLY || t.id === ONLY);
  // --other-bin: another checkout's bin/sessiongate.js as row S1b, measured in the same rounds.
  const otherBin = opt('other-bin', '');
  if (otherBin) {
    const other = await startService({ bin: otherBin, nodeArgs, env: { SESSIONGATE_SECRET: SECRET, SESSIONGATE_LOGIN_TOKEN: LOGIN_TOKEN } });
    cleanups.push(() => other.stop());
    const file = join(dir, 'cookies-sg-other.txt');
    writeFileSync(file, `${(await createSessions(other, SESSIONS)).join('\n')}\n`);
    targets.push({ id: 'S1b', port: await startBenchNginx(other.httpPort), pid: other.pid!, script: wrkScript(file) });
    per['S1b'] = [];
  }
  for (let round = 0; round < ROUNDS; round++) {
    const seq = round % 2 === 0 ? targets : [...targets].reverse();
    const got: Record<string, number> = {};
    for (const t of seq) {
      const m = measure(t);
      got[t.id] = m.us;
      per[t.id]!.push(m.us);
      process.stdout.write(
        `round ${round + 1} ${t.id}: ${m.us.toFixed(1)} µs CPU/request (user ${m.user.toFixed(1)}), ${m.rps.toFixed(0)} req/s, non-2xx ${m.non2xx}\n`,
      );
    }
    if (got['S1'] && got['F2']) ratios.push(got['S1'] / got['F2']);
    if (got['S1b'] && got['F2']) otherRatios.push(got['S1b'] / got['F2']);
  }
  const fmt = (xs: number[]) => (xs.length ? `${median(xs).toFixed(1)} µs (${Math.min(...xs).toFixed(1)}–${Math.max(...xs).toFixed(1)})` : '-');
  process.stdout.write(`median F2 ${fmt(per['F2']!)}, S1 ${fmt(per['S1']!)}`);
  if (ratios.length) process.stdout.write(`, ratio S1/F2 ${median(ratios).toFixed(2)} (${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)})`);
  if (otherRatios.length)
    process.stdout.write(
      `; S1b ${fmt(per['S1b']!)}, ratio S1b/F2 ${median(otherRatios).toFixed(2)} (${Math.min(...otherRatios).toFixed(2)}–${Math.max(...otherRatios).toFixed(2)})`,
    );
  process.stdout.write('\n');
}

main()
  .then(
    () => 0,
    (err) => {
      process.stderr.write(`cpu-per-request: ${(err as Error).stack ?? String(err)}\n`);
      return 1;
    },
  )
  .then(async (code) => {
    for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => {});
    process.exit(code);
  });
