/**
 * `npm run soak`: a resilience soak. For a fixed time, mixed traffic goes to sessiongate
 * through a real nginx (the shipped config, auth_request), through gRPC Check (CheckRequests
 * shaped as Envoy sends them) and straight to `/auth` (the nginx protocol, which shows the
 * X-Sessiongate-Reason header), against two replicas of sessiongate sharing (a) a standalone
 * Redis and (b) a Sentinel group, while faults are injected on a schedule:
 *
 * - the standalone redis-server is SIGKILLed and restarted on the same port and folder. It runs
 *   with appendonly yes + appendfsync everysec: an acknowledged write is in the AOF file (the
 *   kernel's page cache) before the reply, unless Redis postponed a write behind a slow fsync
 *   (at most ~2 s), so a SIGKILL loses at most the last ~2 s of writes;
 * - the Sentinel group's current master is SIGKILLed, the sentinels promote the replica, and
 *   the old master is restarted afterwards (empty: the group's data nodes run without
 *   persistence) so that the sentinels turn it into a replica of the new master.
 *
 * What must hold: forged, garbage, tampered, duplicate and missing credentials, role and
 * spoofing violations, and destroyed sessions (after the destroy answered) are never allowed;
 * valid sessions are allowed, or get a `store_unavailable` error while the store is away
 * (counted apart, never as an allow); every session created at least 2 s before a fault still
 * resolves once everything has recovered; no sessiongate process dies or logs an unhandled
 * rejection. Sessions are created (POST /~session with the login token) and destroyed (DELETE
 * /~session, through nginx or straight to the other replica) throughout.
 *
 *   node dist-bench/bench/soak.js [--minutes M] [--rate R] [--sessions N] [--config FILE] [--keep-logs] [--smoke]
 *
 * --minutes: traffic time (default 10); --rate: target decisions per second over everything
 * (default 150: a correctness soak, not a load test); --sessions: sessions per backend created
 * before the traffic starts; --config: the sessiongate configuration the replicas run (default
 * deploy/config.example.yaml; its rules must keep /~assets/ public and /admin/ for the admin
 * role); --keep-logs: keep the services' logs even when all went well (they are kept, in a
 * temporary folder named in the report, whenever something needs a closer look). --smoke: 18 s
 * of traffic with one fault of each kind and fewer sessions (about 30 s in all); the report is
 * printed but not written.
 *
 * Prints a report and (except --smoke) writes it to bench/results/soak.md. Exits non-zero on a
 * wrong allow, a lost session, a crashed service, or a fault that could not be injected.
 */
import { flag, opt } from './options.js';
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Agent, createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { GRPC, RawEnvoyClient, type CheckOutcome } from '../harness/envoy-wire.js';
import { nginxBinary, ROOT, startNginx, startService, tempDir, waitFor, type RunningNginx, type RunningService } from '../harness/processes.js';
import { startRedisServer, startSentinelGroup, type RedisProcess, type SentinelGroup } from '../harness/redis.js';

// ------------------------------------------------------------------------------------------
// Options

const SMOKE = flag('smoke');
const MINUTES = Number(opt('minutes', '10'));
const TRAFFIC_MS = SMOKE ? 18_000 : Math.round(MINUTES * 60_000);
const RATE = Number(opt('rate', SMOKE ? '120' : '150'));
const INITIAL_SESSIONS = Number(opt('sessions', SMOKE ? '20' : '100'));
/** One session created per backend every CHURN_MS, one destroyed every other tick. */
const CHURN_MS = SMOKE ? 400 : 500;
const LANES = 12;
/** A session created less than this before a fault may be lost by it (AOF everysec, async replication). */
const DURABILITY_WINDOW_MS = 2000;
for (const [name, v] of [['minutes', MINUTES], ['rate', RATE], ['sessions', INITIAL_SESSIONS]] as const) {
  if (!Number.isFinite(v) || v <= 0) {
    process.stderr.write(`soak: --${name} must be a positive number\n`);
    process.exit(2);
  }
}

const LOGIN_TOKEN = 'soak-login-token-0123456789abcdef';
const SECRET = 'soak-secret-0123456789abcdef0123456789abcdef';
const CONFIG = opt('config', join(ROOT, 'deploy/config.example.yaml'));
const HOST = 'app.example.com';

// ------------------------------------------------------------------------------------------
// Time, small helpers

const T0 = Date.now();
/** Milliseconds since the soak started: every timestamp in the model. */
const now = () => Date.now() - T0;
/** When the traffic started (on the `now` scale); times are shown relative to it, set-up negative. */
let trafficStart = 0;
const secs = (t: number | undefined) => (t === undefined ? '–' : `${((t - trafficStart) / 1000).toFixed(1)} s`);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, ms)));
const pick = <T>(list: readonly T[]): T | undefined => (list.length ? list[Math.floor(Math.random() * list.length)] : undefined);
const b64 = () => randomBytes(32).toString('base64url');
const inc = (m: Map<string, number>, k: string, by = 1) => m.set(k, (m.get(k) ?? 0) + by);
const log = (line: string) => process.stderr.write(`[soak ${secs(now()).padStart(8)}] ${line}\n`);

const cleanups: Array<() => Promise<unknown> | unknown> = [];

// ------------------------------------------------------------------------------------------
// HTTP with keep-alive (nginx and sessiongate both keep connections)

const agent = new Agent({ keepAlive: true, maxSockets: 32 });

interface HttpReply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  /** When the request that produced this answer was sent (after a retry, the retry's time). */
  sentAt: number;
}

function httpCall(port: number, path: string, o: { method?: string; headers?: Record<string, string>; body?: string } = {}, retry = true): Promise<HttpReply> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...o.headers };
    if (o.body !== undefined) headers['Content-Length'] = String(Buffer.byteLength(o.body));
    const sentAt = now();
    const req = httpRequest({ host: '127.0.0.1', port, path, method: o.method ?? 'GET', headers, agent, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body, sentAt }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('client timeout (10 s)')));
    req.on('error', (err: NodeJS.ErrnoException) => {
      // A kept-alive socket the server closed just as it was reused: Node's documented retry.
      if (retry && req.reusedSocket && (err.code === 'ECONNRESET' || err.code === 'EPIPE')) httpCall(port, path, o, false).then(resolve, reject);
      else reject(err);
    });
    req.end(o.body);
  });
}

/** The application behind nginx: answers with the identity headers it received. */
async function startApp(): Promise<{ port: number; server: Server }> {
  const server = createServer((req, res) => {
    req.resume();
    const h = req.headers;
    const body = JSON.stringify({ user: h['x-user-id'] ?? null, roles: h['x-user-roles'] ?? null, email: h['x-user-email'] ?? null, authUser: h['x-auth-user'] ?? null });
    res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), 'X-Soak-App': '1' });
    res.end(body);
  });
  server.keepAliveTimeout = 120_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise<void>((r) => (server.close(() => r()), server.closeAllConnections())));
  return { port: (server.address() as { port: number }).port, server };
}

/** One command on a fresh connection that never queues or retries (Redis may be down). */
async function redisCmd(port: number, ...args: string[]): Promise<unknown> {
  const c = new Redis({ port, host: '127.0.0.1', lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1000, commandTimeout: 2000 });
  c.on('error', () => {});
  try {
    await c.connect();
    return await c.call(args[0]!, ...args.slice(1));
  } finally {
    c.disconnect();
  }
}

const infoField = (info: string, field: string) => new RegExp(`^${field}:(.*)$`, 'm').exec(info)?.[1]?.trim();

// ------------------------------------------------------------------------------------------
// The model: backends, sessions, faults, and what was seen

type Transport = 'nginx' | 'grpc' | 'auth-direct';
const TRANSPORTS: readonly Transport[] = ['nginx', 'grpc', 'auth-direct'];

interface Instance {
  readonly name: string;
  readonly sg: RunningService;
  rssStart: number;
  rssMax: number;
  rssEnd: number;
  /** RSS at half time: growth in the second half is what a leak would show once caches are warm. */
  rssMid?: number;
  diedAt?: number;
  exitOnStop?: number | null;
}

interface Session {
  readonly n: number;
  readonly backend: Backend;
  readonly user: string;
  readonly admin: boolean;
  /** The cookie value (`<id>.<secret>.<mac>`). */
  readonly token: string;
  readonly createdAt: number;
  readonly createdOn: 'A' | 'B';
  state: 'live' | 'destroying' | 'uncertain' | 'destroyed';
  destroyedAt?: number;
  destroyedVia?: string;
  /** Answers that allowed it after its destroy had answered 204. */
  allowsAfterDestroy: Array<{ transport: Transport; at: number; destroyedAt: number }>;
}

interface Fault {
  readonly n: number;
  readonly backend: string;
  readonly kind: 'redis-kill' | 'sentinel-failover';
  readonly at: number;
  detail: string;
  /** Standalone: restarted and answering PING; Sentinel: a replica promoted. */
  storeBackAt?: number;
  /** Both sessiongate replicas answer /readyz 200 again. */
  readyAt?: number;
  /** Sentinel: the old master restarted, then known as a replica of the new one, link up. */
  restartedAt?: number;
  rejoinedAt?: number;
  error?: string;
  /** Client-visible store_unavailable answers on this backend inside the fault's window. */
  errors: number;
  lastErrorAt?: number;
}

interface Backend {
  readonly name: 'standalone' | 'sentinel';
  readonly url: string;
  readonly a: Instance;
  readonly b: Instance;
  readonly nginx: RunningNginx;
  readonly grpc: RawEnvoyClient;
  readonly redis?: RedisProcess;
  readonly group?: SentinelGroup;
  readonly sessions: Session[];
  readonly live: Session[];
  readonly destroyed: Session[];
  readonly uncertain: Session[];
  readonly faults: Fault[];
  seq: number;
  toggle: number;
}

const faults: Fault[] = [];
const stats = {
  /** transport → backend → allow|deny|error|fail → count */
  decisions: new Map<string, number>(),
  /** transport → reason (client view) → count */
  reasons: new Map<string, number>(),
  wrongAllows: [] as Array<{ at: number; backend: string; transport: Transport; cls: string; detail: string }>,
  validAllowed: 0,
  validErrors: 0,
  validErrorsOutsideFaults: 0,
  validErrorsOutsideDetail: [] as string[],
  validDenied: 0,
  validDeniedWindow: 0,
  validDeniedDetail: [] as string[],
  publicAllowed: 0,
  publicNotAllowed: new Map<string, number>(),
  mustDenyDenied: 0,
  mustDenyErrors: 0,
  destroyedDenied: 0,
  destroyedErrors: 0,
  failures: new Map<string, number>(),
  created: 0,
  createFailed: new Map<string, number>(),
  destroyOk: 0,
  destroyFailed: new Map<string, number>(),
  afterDestroyProbes: 0,
};

function faultWindow(b: Backend, t: number): Fault | undefined {
  return b.faults.find((f) => t >= f.at - 200 && t <= (f.readyAt ?? Infinity) + 2000);
}

/** A fault on the session's backend that came less than DURABILITY_WINDOW_MS after its creation and before `before`. */
function durabilityFault(s: Session, before = Infinity): Fault | undefined {
  return s.backend.faults.find((f) => f.at >= s.createdAt && f.at - s.createdAt < DURABILITY_WINDOW_MS && f.at <= before);
}

// ------------------------------------------------------------------------------------------
// Requests and verdicts

interface Probe {
  path: string;
  cookie?: string;
  authorization?: string;
  /** Send a client copy of X-User-Id. */
  spoof?: boolean;
}

interface Verdict {
  kind: 'allow' | 'deny' | 'error' | 'fail';
  /** Reason code (gRPC, auth-direct) or status (nginx); the failure for `fail`. */
  reason: string;
  /** The X-User-Id that would reach the application. */
  user?: string | undefined;
  /** An allow on a public path that would pass identity (or a client's spoofed copy) upstream. */
  leak?: boolean;
  sentAt: number;
}

function clientHeaders(p: Probe): Record<string, string> {
  const h: Record<string, string> = { Accept: 'application/json' };
  if (p.cookie !== undefined) h['Cookie'] = p.cookie;
  if (p.authorization !== undefined) h['Authorization'] = p.authorization;
  if (p.spoof) h['X-User-Id'] = 'admin@example.com';
  return h;
}

async function viaNginx(b: Backend, p: Probe): Promise<Verdict> {
  const sentAt = now();
  try {
    const r = await httpCall(b.nginx.port, p.path, { headers: { Host: HOST, ...clientHeaders(p) } });
    if (r.status === 200 && r.headers['x-soak-app'] === '1') {
      const seen = JSON.parse(r.body) as { user: string | null; authUser: string | null };
      return { kind: 'allow', reason: 'http 200', user: seen.user ?? undefined, leak: p.path.startsWith('/~assets/') && (seen.user !== null || seen.authUser !== null), sentAt: r.sentAt };
    }
    if (r.status === 401 || r.status === 403) return { kind: 'deny', reason: `http ${r.status}`, sentAt: r.sentAt };
    if (r.status === 500) return { kind: 'error', reason: 'http 500', sentAt: r.sentAt };
    return { kind: 'fail', reason: `nginx answered ${r.status}`, sentAt: r.sentAt };
  } catch (err) {
    return { kind: 'fail', reason: `nginx: ${(err as Error).message}`, sentAt };
  }
}

async function viaAuth(inst: Instance, p: Probe): Promise<Verdict> {
  const sentAt = now();
  try {
    const r = await httpCall(inst.sg.httpPort, '/auth', {
      headers: { Host: HOST, 'X-Original-URI': p.path, 'X-Original-Method': 'GET', 'X-Forwarded-Proto': 'https', 'X-Real-IP': '203.0.113.7', ...clientHeaders(p) },
    });
    const reason = String(r.headers['x-sessiongate-reason'] ?? `no reason header (${r.status})`);
    const user = r.headers['x-user-id'] as string | undefined;
    if (r.status === 200) return { kind: 'allow', reason, user, leak: p.path.startsWith('/~assets/') && user !== undefined, sentAt: r.sentAt };
    if (r.status === 401 || r.status === 403) return { kind: 'deny', reason, sentAt: r.sentAt };
    if (r.status === 500) return { kind: 'error', reason, sentAt: r.sentAt };
    return { kind: 'fail', reason: `auth answered ${r.status} ${reason}`, sentAt: r.sentAt };
  } catch (err) {
    return { kind: 'fail', reason: `auth: ${(err as Error).message}`, sentAt };
  }
}

async function viaGrpc(b: Backend, p: Probe): Promise<Verdict> {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(clientHeaders(p))) headers[k.toLowerCase()] = v;
  headers['x-forwarded-for'] = '203.0.113.7';
  const sentAt = now();
  let out: CheckOutcome;
  try {
    out = await b.grpc.check({ method: 'GET', path: p.path, host: HOST, headers });
  } catch (err) {
    return { kind: 'fail', reason: `grpc: ${(err as Error).message}`, sentAt };
  }
  if ('error' in out) {
    const e = out.error;
    if (e.code === GRPC.UNAVAILABLE && e.details === 'store_unavailable') return { kind: 'error', reason: 'store_unavailable', sentAt };
    if (e.code === GRPC.INTERNAL && e.details === 'internal_error') return { kind: 'error', reason: 'internal_error', sentAt };
    return { kind: 'fail', reason: `grpc error ${e.code} ${e.details}`, sentAt };
  }
  const r = out.response;
  if (r.code === GRPC.OK && r.ok) {
    const user = r.ok.headers.find((h) => h.key === 'x-user-id')?.value;
    // On a public path no identity may be set, and a client's copy must be removed.
    const leak = p.path.startsWith('/~assets/') && (user !== undefined || (p.spoof === true && !r.ok.headersToRemove.includes('x-user-id')));
    return { kind: 'allow', reason: r.metadata['reason'] ?? 'no reason', user, leak, sentAt };
  }
  if ((r.code === GRPC.UNAUTHENTICATED || r.code === GRPC.PERMISSION_DENIED) && r.denied) return { kind: 'deny', reason: r.message || r.metadata['reason'] || 'no reason', sentAt };
  return { kind: 'fail', reason: `grpc CheckResponse code ${r.code}`, sentAt };
}

function send(b: Backend, t: Transport, p: Probe): Promise<Verdict> {
  if (t === 'nginx') return viaNginx(b, p);
  if (t === 'grpc') return viaGrpc(b, p);
  return viaAuth(Math.random() < 0.5 ? b.a : b.b, p);
}

type Cls = 'valid' | 'public' | 'destroyed' | 'no_cookie' | 'garbage' | 'forged' | 'tampered' | 'bearer_forged' | 'duplicate' | 'role' | 'spoofed';

const MUST_DENY: ReadonlySet<Cls> = new Set(['no_cookie', 'garbage', 'forged', 'tampered', 'bearer_forged', 'duplicate', 'role', 'spoofed']);

/** Records an answer and judges it against what the class of request must get. */
function judge(cls: Cls, b: Backend, t: Transport, v: Verdict, s?: Session, liveAtStart = true): void {
  inc(stats.decisions, `${t}|${b.name}|${v.kind}`);
  if (v.kind === 'fail') {
    inc(stats.failures, `${t}: ${v.reason}`);
    return;
  }
  inc(stats.reasons, `${t}|${v.kind}|${v.reason}`);
  if (v.kind === 'error') {
    const f = faultWindow(b, v.sentAt);
    if (f) {
      f.errors++;
      f.lastErrorAt = Math.max(f.lastErrorAt ?? 0, now());
    }
  }
  const wrong = (detail: string) => {
    stats.wrongAllows.push({ at: v.sentAt, backend: b.name, transport: t, cls, detail });
    log(`WRONG ALLOW: ${b.name} ${t} ${cls}: ${detail}`);
  };
  if (cls === 'valid') {
    if (!s || !liveAtStart || s.state !== 'live') return; // destroyed meanwhile: not judged
    if (v.kind === 'allow') {
      if (v.user !== s.user) wrong(`session of ${s.user} allowed as ${v.user ?? '(no identity)'} (${v.reason})`);
      else stats.validAllowed++;
    } else if (v.kind === 'error') {
      stats.validErrors++;
      if (!faultWindow(b, v.sentAt)) {
        stats.validErrorsOutsideFaults++;
        if (stats.validErrorsOutsideDetail.length < 20) stats.validErrorsOutsideDetail.push(`${secs(v.sentAt)} ${b.name} ${t}: ${v.reason}`);
      }
    } else if (durabilityFault(s, v.sentAt)) {
      stats.validDeniedWindow++;
    } else {
      stats.validDenied++;
      if (stats.validDeniedDetail.length < 20) stats.validDeniedDetail.push(`${secs(v.sentAt)} ${b.name} ${t}: session #${s.n} (${s.user}, created ${secs(s.createdAt)} on ${s.createdOn}) denied: ${v.reason}`);
    }
    return;
  }
  if (cls === 'public') {
    if (v.kind === 'allow') {
      if (v.leak) wrong(`public path passed an identity or a client's X-User-Id upstream (${v.reason})`);
      else stats.publicAllowed++;
    } else inc(stats.publicNotAllowed, `${t}: ${v.kind} ${v.reason}`);
    return;
  }
  if (cls === 'destroyed') {
    if (!s || s.destroyedAt === undefined) return;
    if (v.kind === 'allow') {
      if (v.sentAt > s.destroyedAt) {
        s.allowsAfterDestroy.push({ transport: t, at: v.sentAt, destroyedAt: s.destroyedAt });
        log(`destroyed session #${s.n} allowed ${v.sentAt - s.destroyedAt} ms after its destroy (${b.name} ${t}, ${v.reason}); judged at the end`);
      }
    } else if (v.kind === 'error') stats.destroyedErrors++;
    else stats.destroyedDenied++;
    return;
  }
  if (MUST_DENY.has(cls)) {
    if (v.kind === 'allow') wrong(`${cls} credential allowed (${v.reason}, identity ${v.user ?? 'none'})`);
    else if (v.kind === 'error') stats.mustDenyErrors++;
    else stats.mustDenyDenied++;
  }
}

// ------------------------------------------------------------------------------------------
// Traffic

const WEIGHTS: Array<[Cls, number]> = [
  ['valid', 38],
  ['destroyed', 10],
  ['public', 10],
  ['no_cookie', 6],
  ['garbage', 6],
  ['forged', 6],
  ['tampered', 5],
  ['bearer_forged', 4],
  ['duplicate', 4],
  ['role', 5],
  ['spoofed', 6],
];
const TOTAL_WEIGHT = WEIGHTS.reduce((a, [, w]) => a + w, 0);

function pickClass(): Cls {
  let r = Math.random() * TOTAL_WEIGHT;
  for (const [c, w] of WEIGHTS) if ((r -= w) < 0) return c;
  return 'valid';
}

function pickTransport(): Transport {
  const r = Math.random();
  return r < 0.45 ? 'nginx' : r < 0.85 ? 'grpc' : 'auth-direct';
}

const cookieOf = (token: string) => `theme=dark; sessiongate=${token}; lang=en`;
const appPath = () => `/app/page?id=${Math.floor(Math.random() * 1000)}`;

function tamper(token: string): string {
  const [id, secret, mac] = token.split('.') as [string, string, string];
  const i = 10 + Math.floor(Math.random() * 20); // inside the secret, never its last (partial) character
  const c = secret[i] === 'A' ? 'B' : 'A';
  return `${id}.${secret.slice(0, i)}${c}${secret.slice(i + 1)}.${mac}`;
}

function garbage(b: Backend): string {
  const some = pick(b.live)?.token ?? `${b64()}.${b64()}.${b64()}`;
  const [id, , mac] = some.split('.') as [string, string, string];
  const options = [
    'sessiongate=',
    'sessiongate=garbage',
    `sessiongate=${'A'.repeat(131)}`,
    'sessiongate=a.b.c',
    `sessiongate=${id}.${mac}`, // the first version's two-part cookie
    'sessiongate=%00%0d%0a',
    `sessiongate=${'x'.repeat(3000)}`,
    `sessiongate=${some}x`,
    `sessiongate=${some.slice(0, -1)}`,
  ];
  return `theme=dark; ${pick(options)!}`;
}

/** Builds one request of class `cls`; null when the class has nothing to draw from yet. */
function probeFor(cls: Cls, b: Backend): { probe: Probe; s?: Session; cls: Cls } | null {
  switch (cls) {
    case 'valid': {
      const s = pick(b.live);
      if (!s) return null;
      const path = s.admin && Math.random() < 0.5 ? '/admin/panel' : appPath();
      return Math.random() < 0.2 ? { cls, s, probe: { path, authorization: `Bearer ${s.token}` } } : { cls, s, probe: { path, cookie: cookieOf(s.token) } };
    }
    case 'destroyed': {
      const s = pick(b.destroyed.slice(-300));
      if (!s) return null;
      return { cls, s, probe: Math.random() < 0.2 ? { path: appPath(), authorization: `Bearer ${s.token}` } : { path: appPath(), cookie: cookieOf(s.token) } };
    }
    case 'public':
      return { cls, probe: { path: '/~assets/app.css', spoof: Math.random() < 0.5, ...(Math.random() < 0.5 && b.live.length ? { cookie: cookieOf(pick(b.live)!.token) } : {}) } };
    case 'no_cookie':
      return { cls, probe: { path: Math.random() < 0.8 ? appPath() : '/admin/panel' } };
    case 'garbage':
      return { cls, probe: { path: appPath(), cookie: garbage(b) } };
    case 'forged': {
      const real = pick(b.live);
      const token = real && Math.random() < 0.5 ? `${real.token.split('.')[0]!}.${b64()}.${b64()}` : `${b64()}.${b64()}.${b64()}`;
      return { cls, probe: { path: Math.random() < 0.8 ? appPath() : '/admin/panel', cookie: cookieOf(token) } };
    }
    case 'tampered': {
      const real = pick(b.live);
      if (!real) return null;
      return { cls, probe: { path: appPath(), cookie: cookieOf(tamper(real.token)) } };
    }
    case 'bearer_forged':
      return { cls, probe: { path: appPath(), authorization: `Bearer ${b64()}.${b64()}.${b64()}` } };
    case 'duplicate': {
      const [x, y] = [pick(b.live), pick(b.live)];
      if (!x || !y || x === y) return null;
      return { cls, probe: { path: appPath(), cookie: `sessiongate=${x.token}; theme=dark; sessiongate=${y.token}` } };
    }
    case 'role': {
      const s = pick(b.live.filter((x) => !x.admin));
      if (!s) return null;
      return { cls, probe: { path: '/admin/panel', cookie: cookieOf(s.token) } };
    }
    case 'spoofed': {
      const s = pick(b.live);
      if (!s) return null;
      return { cls, probe: { path: appPath(), cookie: cookieOf(s.token), spoof: true } };
    }
  }
}

let stopping = false;

async function lane(backends: readonly Backend[], i: number): Promise<void> {
  const interval = (LANES / RATE) * 1000;
  await sleep(Math.random() * interval);
  while (!stopping) {
    const started = Date.now();
    const b = backends[(i + Math.floor(Math.random() * 2)) % backends.length]!;
    const built = probeFor(pickClass(), b) ?? probeFor('public', b)!;
    const t = pickTransport();
    const liveAtStart = built.s?.state === 'live';
    const v = await send(b, t, built.probe);
    judge(built.cls, b, t, v, built.s, liveAtStart);
    await sleep(interval - (Date.now() - started));
  }
}

// ------------------------------------------------------------------------------------------
// Sessions: creation and destruction (the login service and the browser)

async function createSession(b: Backend, on: 'A' | 'B'): Promise<Session | null> {
  const n = ++b.seq;
  const admin = n % 5 === 0;
  const user = `soak-${b.name}-${n}@example.com`;
  const inst = on === 'A' ? b.a : b.b;
  let r: HttpReply;
  try {
    r = await httpCall(inst.sg.httpPort, '/~session', {
      method: 'POST',
      headers: { Authorization: `Bearer ${LOGIN_TOKEN}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ user_id: user, roles: admin ? ['admin', 'user'] : ['user'], attributes: { email: user } }),
    });
  } catch (err) {
    inc(stats.createFailed, `client error: ${(err as Error).message}`);
    return null;
  }
  if (r.status !== 201) {
    let error = '';
    try {
      error = (JSON.parse(r.body) as { error?: string }).error ?? '';
    } catch {
      /* not JSON */
    }
    inc(stats.createFailed, `${r.status} ${error}`.trim());
    return null;
  }
  const setCookie = ([] as string[]).concat(r.headers['set-cookie'] ?? [])[0] ?? '';
  const token = /^sessiongate=([^;]+)/.exec(setCookie)?.[1];
  if (!token) {
    inc(stats.createFailed, '201 without a session cookie');
    return null;
  }
  const s: Session = { n, backend: b, user, admin, token, createdAt: now(), createdOn: on, state: 'live', allowsAfterDestroy: [] };
  b.sessions.push(s);
  b.live.push(s);
  stats.created++;
  return s;
}

function removeFrom(list: Session[], s: Session): void {
  const i = list.indexOf(s);
  if (i >= 0) {
    list[i] = list[list.length - 1]!;
    list.pop();
  }
}

/**
 * Destroys a session: first warms both replicas' caches with it, then DELETE /~session through
 * nginx (replica A) or straight to replica B, and right after the 204 asks every transport and
 * both replicas about it: each of those answers must be a deny.
 */
async function destroySession(b: Backend, s: Session): Promise<void> {
  if (s.state === 'live') {
    const warm: Array<[Transport, Promise<Verdict>]> = [
      ['grpc', viaGrpc(b, { path: appPath(), cookie: cookieOf(s.token) })],
      ['auth-direct', viaAuth(b.a, { path: appPath(), cookie: cookieOf(s.token) })],
    ];
    for (const [t, p] of warm) judge('valid', b, t, await p, s, true);
  }
  removeFrom(b.live, s);
  removeFrom(b.uncertain, s);
  s.state = 'destroying';
  const viaNginxToA = b.toggle++ % 2 === 0;
  const port = viaNginxToA ? b.nginx.port : b.b.sg.httpPort;
  const via = viaNginxToA ? 'nginx → A' : 'B';
  let r: HttpReply;
  try {
    r = await httpCall(port, '/~session', { method: 'DELETE', headers: { Host: HOST, Cookie: cookieOf(s.token) } });
  } catch (err) {
    inc(stats.destroyFailed, `client error: ${(err as Error).message}`);
    s.state = 'uncertain';
    b.uncertain.push(s);
    return;
  }
  if (r.status !== 204) {
    // The outcome is unknown (a timed-out script may still have run): retried later, not judged meanwhile.
    inc(stats.destroyFailed, `${r.status} via ${via}`);
    s.state = 'uncertain';
    b.uncertain.push(s);
    return;
  }
  s.state = 'destroyed';
  s.destroyedAt = now();
  s.destroyedVia = via;
  b.destroyed.push(s);
  stats.destroyOk++;
  const probes: Array<[Transport, Promise<Verdict>]> = [
    ['nginx', viaNginx(b, { path: appPath(), cookie: cookieOf(s.token) })],
    ['grpc', viaGrpc(b, { path: appPath(), cookie: cookieOf(s.token) })],
    ['auth-direct', viaAuth(b.a, { path: appPath(), cookie: cookieOf(s.token) })],
    ['auth-direct', viaAuth(b.b, { path: appPath(), cookie: cookieOf(s.token) })],
  ];
  for (const [t, p] of probes) {
    stats.afterDestroyProbes++;
    judge('destroyed', b, t, await p, s);
  }
}

async function churn(b: Backend): Promise<void> {
  for (let tick = 0; !stopping; tick++) {
    await sleep(CHURN_MS);
    if (stopping) break;
    await createSession(b, tick % 2 === 0 ? 'A' : 'B');
    if (tick % 2 === 1) {
      const old = now() - 1000;
      const s = b.uncertain[0] ?? pick(b.live.filter((x) => x.createdAt < old));
      if (s) await destroySession(b, s);
    }
  }
}

// ------------------------------------------------------------------------------------------
// Faults

async function readyBoth(b: Backend, timeoutMs: number): Promise<boolean> {
  const ready = async (i: Instance) => {
    try {
      return (await httpCall(i.sg.adminPort, '/readyz')).status === 200;
    } catch {
      return false;
    }
  };
  return waitFor(async () => (await ready(b.a)) && (await ready(b.b)), timeoutMs);
}

function newFault(b: Backend, kind: Fault['kind'], detail: string): Fault {
  const f: Fault = { n: faults.length + 1, backend: b.name, kind, at: now(), detail, errors: 0 };
  faults.push(f);
  b.faults.push(f);
  return f;
}

async function dbsize(port: number): Promise<string> {
  try {
    return String(await redisCmd(port, 'DBSIZE'));
  } catch {
    return '?';
  }
}

/** SIGKILL the standalone redis-server, leave it down for `downMs`, start it again (it reloads its AOF). */
async function killStandalone(b: Backend, downMs: number): Promise<void> {
  const redis = b.redis!;
  const keysBefore = await dbsize(redis.port);
  const f = newFault(b, 'redis-kill', `SIGKILL redis-server :${redis.port}, down ${(downMs / 1000).toFixed(1)} s`);
  log(`fault #${f.n}: ${f.detail}`);
  await redis.kill();
  await sleep(downMs);
  try {
    await redis.restart();
    f.storeBackAt = now();
    f.detail += `; keys ${keysBefore} before the kill, ${await dbsize(redis.port)} after the restart (AOF reloaded)`;
    if (await readyBoth(b, 30_000)) f.readyAt = now();
    else f.error = 'sessiongate replicas not ready 30 s after the restart';
  } catch (err) {
    f.error = `restart failed: ${(err as Error).message}`;
  }
  log(`fault #${f.n}: redis back ${secs(f.storeBackAt)}, sessiongate ready ${secs(f.readyAt)}${f.error ? `, ERROR ${f.error}` : ''}`);
}

async function sentinelMaster(g: SentinelGroup): Promise<number | undefined> {
  for (const s of g.sentinels) {
    try {
      const r = (await redisCmd(s.port, 'SENTINEL', 'get-master-addr-by-name', g.masterName)) as [string, string] | null;
      if (r) return Number(r[1]);
    } catch {
      /* try the next sentinel */
    }
  }
  return undefined;
}

/** True when the node at `port` is a replica of `masterPort` with its link up. */
async function isReplicaOf(port: number, masterPort: number): Promise<boolean> {
  try {
    const info = String(await redisCmd(port, 'INFO', 'replication'));
    return infoField(info, 'role') === 'slave' && Number(infoField(info, 'master_port')) === masterPort && infoField(info, 'master_link_status') === 'up';
  } catch {
    return false;
  }
}

/** Kills the Sentinel group's master, waits for the promotion, restarts the old master and waits for it to rejoin as a replica. */
async function failover(b: Backend): Promise<void> {
  const g = b.group!;
  const masterPort = await sentinelMaster(g);
  const nodes = [g.master, g.replica];
  const victim = nodes.find((n) => n.port === masterPort);
  const other = nodes.find((n) => n.port !== masterPort)!;
  if (!victim) {
    const f = newFault(b, 'sentinel-failover', 'not injected');
    f.error = `sentinels name master :${masterPort}, not a node of the group`;
    return;
  }
  // A failover needs a replica in sync to promote.
  if (!(await waitFor(() => isReplicaOf(other.port, victim.port), 30_000))) {
    const f = newFault(b, 'sentinel-failover', 'not injected');
    f.error = `replica :${other.port} not linked to master :${victim.port}`;
    return;
  }
  const f = newFault(b, 'sentinel-failover', `SIGKILL master :${victim.port}`);
  log(`fault #${f.n}: ${f.detail}`);
  await victim.kill();
  const promoted = await waitFor(async () => (await sentinelMaster(g)) === other.port, 30_000);
  if (!promoted) {
    f.error = 'no failover within 30 s';
    await victim.restart().catch(() => {});
    return;
  }
  f.storeBackAt = now();
  f.detail += `; sentinels promoted :${other.port}`;
  await sleep(1000);
  try {
    await victim.restart();
    f.restartedAt = now();
  } catch (err) {
    f.error = `old master did not restart: ${(err as Error).message}`;
  }
  if (await readyBoth(b, 30_000)) f.readyAt = now();
  else f.error ??= 'sessiongate replicas not ready 30 s after the failover';
  log(`fault #${f.n}: promoted ${secs(f.storeBackAt)}, old master restarted ${secs(f.restartedAt)}, sessiongate ready ${secs(f.readyAt)}${f.error ? `, ERROR ${f.error}` : ''}`);
  if (f.restartedAt !== undefined) {
    // The sentinels turn it into a replica of the new master (they wait about 8 s before doing so).
    if (await waitFor(() => isReplicaOf(victim.port, other.port), 45_000)) {
      f.rejoinedAt = now();
      f.detail += `; :${victim.port} restarted and rejoined as replica`;
      log(`fault #${f.n}: old master :${victim.port} rejoined as replica ${secs(f.rejoinedAt)}`);
    } else f.error ??= `old master :${victim.port} did not rejoin as a replica within 45 s`;
  }
}

interface Planned {
  at: number;
  run: () => Promise<void>;
}

function schedule(standalone: Backend, sentinel: Backend): { standalone: Planned[]; sentinel: Planned[] } {
  if (SMOKE) {
    return {
      // The Sentinel fault first: the sentinels take 10–16 s to turn the restarted old master
      // into a replica, and the run waits for that before its final check.
      standalone: [{ at: 5_000, run: () => killStandalone(standalone, 2_000) }],
      sentinel: [{ at: 3_000, run: () => failover(sentinel) }],
    };
  }
  const s: Planned[] = [];
  const f: Planned[] = [];
  const last = TRAFFIC_MS - 40_000;
  for (let t = 20_000; t <= last; t += 60_000) {
    s.push({ at: t, run: () => killStandalone(standalone, 1_000 + Math.round(Math.random() * 5_000)) });
    if (t + 30_000 <= last) f.push({ at: t + 30_000, run: () => failover(sentinel) });
  }
  if (f.length === 0 && last >= 10_000) f.push({ at: 10_000, run: () => failover(sentinel) });
  return { standalone: s, sentinel: f };
}

async function runFaults(plan: Planned[]): Promise<void> {
  for (const p of plan) {
    await sleep(trafficStart + p.at - now());
    if (stopping) return;
    await p.run();
  }
}

// ------------------------------------------------------------------------------------------
// Service processes: liveness, memory, logs

function rss(pid: number | undefined): number {
  if (!pid) return NaN;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}

function alive(pid: number | undefined): boolean {
  if (!pid || !existsSync(`/proc/${pid}`)) return false;
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

const CRASH_PATTERN = /unhandled|uncaught|FATAL ERROR|out of memory|Segmentation fault|Aborted/i;

interface LogSummary {
  crashLines: string[];
  nonJson: string[];
  errorLines: Map<string, number>;
  storeUnreachable: number;
  storeReachable: number;
  /** Failed decisions the service logged outside every fault window of its backend. */
  errorsOutside: string[];
}

function summariseLogs(i: Instance, b: Backend): LogSummary {
  const out: LogSummary = { crashLines: [], nonJson: [], errorLines: new Map(), storeUnreachable: 0, storeReachable: 0, errorsOutside: [] };
  for (const chunk of i.sg.logs()) {
    for (const line of chunk.split('\n')) {
      if (!line.trim()) continue;
      if (CRASH_PATTERN.test(line)) out.crashLines.push(line.slice(0, 300));
      let j: { level?: number; msg?: string; time?: number; result?: string; reason?: string; transport?: string; duration_us?: number } | undefined;
      try {
        j = JSON.parse(line) as typeof j & object;
      } catch {
        out.nonJson.push(line.slice(0, 300));
        continue;
      }
      if (j.msg === 'store unreachable') out.storeUnreachable++;
      if (j.msg === 'store reachable again') out.storeReachable++;
      if ((j.level ?? 0) >= 50) inc(out.errorLines, `${j.level} ${j.msg ?? ''}`);
      if (j.msg === 'decision' && j.result === 'error' && typeof j.time === 'number' && !faultWindow(b, j.time - T0)) {
        out.errorsOutside.push(`${secs(j.time - T0)} ${j.transport} ${j.reason} after ${((j.duration_us ?? 0) / 1000).toFixed(1)} ms`);
      }
    }
  }
  return out;
}

/** sessiongate_decisions_total of one replica, as "transport|result|reason" → count (non-zero only). */
async function scrapeDecisions(i: Instance): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  try {
    const text = (await httpCall(i.sg.adminPort, '/metrics')).body;
    for (const m of text.matchAll(/^sessiongate_decisions_total\{([^}]*)\} ([\d.e+]+)$/gm)) {
      const labels = Object.fromEntries([...m[1]!.matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1]!, x[2]!]));
      const v = Number(m[2]);
      if (v > 0) out.set(`${labels['transport']}|${labels['result']}|${labels['reason']}`, v);
    }
  } catch (err) {
    out.set(`metrics scrape failed: ${(err as Error).message}||`, NaN);
  }
  return out;
}

// ------------------------------------------------------------------------------------------
// Final check: every session, after everything recovered

interface FinalCheck {
  checked: number;
  protectedLive: number;
  lost: Array<{ s: Session; answer: string }>;
  lostInWindow: Array<{ s: Session; answer: string; fault: Fault }>;
  destroyedChecked: number;
  destroyedAllowedAtEnd: number;
  unresolved: Array<{ s: Session; answer: string }>;
}

/** Asks replica A (auth-direct) and replica B (gRPC) about a session; retries store errors. */
async function resolveAtEnd(s: Session): Promise<{ kind: 'allow' | 'deny' | 'error'; answer: string }> {
  let last = '';
  for (let attempt = 0; attempt < 20; attempt++) {
    const probe = { path: appPath(), cookie: cookieOf(s.token) };
    const [x, y] = await Promise.all([viaAuth(s.backend.a, probe), viaGrpc(s.backend, probe)]);
    last = `A: ${x.kind} ${x.reason}; B: ${y.kind} ${y.reason}`;
    const bad = (v: Verdict) => v.kind === 'error' || v.kind === 'fail';
    if (bad(x) || bad(y)) {
      await sleep(250);
      continue;
    }
    if (x.kind === 'allow' && y.kind === 'allow' && x.user === s.user && y.user === s.user) return { kind: 'allow', answer: last };
    if (x.kind === 'deny' && y.kind === 'deny') return { kind: 'deny', answer: last };
    return { kind: x.kind === 'allow' || y.kind === 'allow' ? 'allow' : 'deny', answer: `${last} (replicas disagree)` };
  }
  return { kind: 'error', answer: last };
}

async function finalCheck(backends: readonly Backend[]): Promise<FinalCheck> {
  const out: FinalCheck = { checked: 0, protectedLive: 0, lost: [], lostInWindow: [], destroyedChecked: 0, destroyedAllowedAtEnd: 0, unresolved: [] };
  const all = backends.flatMap((b) => b.sessions.filter((s) => s.state === 'live' || s.state === 'destroyed'));
  let next = 0;
  const worker = async () => {
    while (next < all.length) {
      const s = all[next++]!;
      const r = await resolveAtEnd(s);
      out.checked++;
      if (r.kind === 'error') {
        out.unresolved.push({ s, answer: r.answer });
        continue;
      }
      if (s.state === 'live') {
        const window = durabilityFault(s);
        if (!window) out.protectedLive++;
        if (r.kind === 'deny') {
          if (window) out.lostInWindow.push({ s, answer: r.answer, fault: window });
          else out.lost.push({ s, answer: r.answer });
        } else if (r.answer.includes('disagree')) out.lost.push({ s, answer: r.answer });
      } else {
        out.destroyedChecked++;
        if (r.kind === 'allow') {
          out.destroyedAllowedAtEnd++;
          s.allowsAfterDestroy.push({ transport: 'auth-direct', at: now(), destroyedAt: s.destroyedAt! });
        }
      }
    }
  };
  await Promise.all(Array.from({ length: 6 }, worker));
  return out;
}

// ------------------------------------------------------------------------------------------
// Set-up

async function startInstance(name: string, store: string): Promise<Instance> {
  const sg = await startService({ config: CONFIG, env: { SESSIONGATE_STORE: store, SESSIONGATE_SECRET: SECRET, SESSIONGATE_LOGIN_TOKEN: LOGIN_TOKEN, SESSIONGATE_LOG_LEVEL: 'info' } });
  cleanups.push(() => sg.stop());
  const r = rss(sg.pid);
  return { name, sg, rssStart: r, rssMax: r, rssEnd: NaN };
}

async function startBackend(name: Backend['name'], url: string, appPort: number, extra: { redis?: RedisProcess; group?: SentinelGroup }): Promise<Backend> {
  const [a, b] = await Promise.all([startInstance(`${name} A`, url), startInstance(`${name} B`, url)]);
  const nginx = await startNginx({ sessiongatePort: a.sg.httpPort, appPort });
  cleanups.push(() => nginx.stop());
  const grpc = new RawEnvoyClient(`127.0.0.1:${b.sg.grpcPort}`);
  cleanups.push(() => grpc.close());
  return { name, url, a, b, nginx, grpc, ...extra, sessions: [], live: [], destroyed: [], uncertain: [], faults: [], seq: 0, toggle: 0 };
}

const mb = (bytes: number) => (Number.isFinite(bytes) ? (bytes / 1048576).toFixed(1) : '?');

function version(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return `${r.stderr ?? ''}${r.stdout ?? ''}`.split('\n')[0]!.trim();
}

// ------------------------------------------------------------------------------------------

async function main(): Promise<number> {
  log(`set-up: standalone Redis (appendonly yes, appendfsync everysec) and a Sentinel group`);
  const [redis, group, app] = await Promise.all([
    startRedisServer({ args: ['--appendonly', 'yes', '--appendfsync', 'everysec'] }),
    startSentinelGroup('soakmaster'),
    startApp(),
  ]);
  cleanups.push(() => redis.stop());
  cleanups.push(() => group.stop());
  const [standalone, sentinel] = await Promise.all([
    startBackend('standalone', `redis://127.0.0.1:${redis.port}`, app.port, { redis }),
    startBackend('sentinel', group.url, app.port, { group }),
  ]);
  const backends = [standalone, sentinel] as const;
  const instances = backends.flatMap((b) => [b.a, b.b]);

  log(`set-up: ${INITIAL_SESSIONS} sessions per backend`);
  for (const b of backends) {
    for (let i = 0; i < INITIAL_SESSIONS; i += 10) {
      await Promise.all(Array.from({ length: Math.min(10, INITIAL_SESSIONS - i) }, (_, j) => createSession(b, (i + j) % 2 === 0 ? 'A' : 'B')));
    }
    if (b.live.length < INITIAL_SESSIONS) throw new Error(`only ${b.live.length} of ${INITIAL_SESSIONS} sessions could be created on ${b.name}: ${JSON.stringify([...stats.createFailed])}`);
  }
  for (const i of instances) i.rssStart = i.rssMax = rss(i.sg.pid);

  // Watch the service processes: a death is a crash (nothing here stops them before the end).
  const watch = setInterval(() => {
    for (const i of instances) {
      if (i.diedAt === undefined && !alive(i.sg.pid)) {
        i.diedAt = now();
        log(`CRASH: ${i.name} (pid ${i.sg.pid}) is gone`);
      }
    }
  }, 500);
  const rssTimer = setInterval(() => {
    for (const i of instances) {
      const r = rss(i.sg.pid) || 0;
      i.rssMax = Math.max(i.rssMax, r);
      if (i.rssMid === undefined && now() - trafficStart >= TRAFFIC_MS / 2) i.rssMid = r;
    }
  }, 5000);
  cleanups.push(() => (clearInterval(watch), clearInterval(rssTimer)));

  const setupMs = now();
  trafficStart = now();
  const cpuStart = process.cpuUsage();
  log(`traffic: ${(TRAFFIC_MS / 1000).toFixed(0)} s at ~${RATE} decisions/s over ${LANES} lanes (set-up took ${(setupMs / 1000).toFixed(1)} s)`);
  const plan = schedule(standalone, sentinel);
  const faultRuns = [runFaults(plan.standalone), runFaults(plan.sentinel)];
  const lanes = Array.from({ length: LANES }, (_, i) => lane(backends, i));
  const churns = backends.map((b) => churn(b));
  await sleep(TRAFFIC_MS);
  stopping = true;
  await Promise.all([...lanes, ...churns]);
  const trafficEnd = now();
  const trafficMs = trafficEnd - trafficStart;
  const cpu = process.cpuUsage(cpuStart);
  log('traffic stopped; waiting for faults in progress to finish');
  await Promise.all(faultRuns);

  // Recovery: both replicas of both backends ready, then the destroys left uncertain are retried.
  const recovered = await Promise.all(backends.map((b) => readyBoth(b, 30_000)));
  let uncertainLeft = 0;
  for (const b of backends) {
    for (const s of [...b.uncertain]) {
      await destroySession(b, s);
      if (s.state !== 'destroyed') uncertainLeft++;
    }
  }
  log('final check: every session on both replicas');
  const final = await finalCheck(backends);

  // Destroyed sessions allowed after their destroy: a store fault right after the destroy can
  // lose it (the session is then back for good); anything else is a wrong allow.
  const resurrected: Session[] = [];
  for (const b of backends) {
    for (const s of b.destroyed) {
      if (s.allowsAfterDestroy.length === 0) continue;
      const lostByStore = s.backend.faults.some((f) => f.at >= s.destroyedAt! && f.at - s.destroyedAt! < DURABILITY_WINDOW_MS);
      const backAtEnd = s.allowsAfterDestroy.some((x) => x.at >= trafficEnd);
      if (lostByStore && backAtEnd) resurrected.push(s);
      else {
        for (const x of s.allowsAfterDestroy) {
          stats.wrongAllows.push({ at: x.at, backend: b.name, transport: x.transport, cls: 'destroyed', detail: `session #${s.n} (destroyed ${secs(s.destroyedAt)} via ${s.destroyedVia}) allowed ${x.at - x.destroyedAt} ms after its destroy answered 204${x.at >= trafficEnd ? ' (final check)' : ''}` });
        }
      }
    }
  }

  const decisionsAfter = new Map<string, Map<string, number>>();
  for (const i of instances) {
    i.rssEnd = rss(i.sg.pid);
    i.rssMax = Math.max(i.rssMax, i.rssEnd || 0);
    decisionsAfter.set(i.name, await scrapeDecisions(i));
  }
  const logs = new Map(backends.flatMap((b) => [b.a, b.b].map((i) => [i.name, summariseLogs(i, b)] as const)));
  const nginxLog = new Map(backends.map((b) => [b.name, b.nginx.errorLog()]));
  // Stop watching first: from here on the processes are stopped on purpose, one by one.
  clearInterval(watch);
  clearInterval(rssTimer);
  for (const i of instances) if (i.diedAt === undefined && !alive(i.sg.pid)) i.diedAt = now();
  for (const i of instances) if (i.diedAt === undefined) i.exitOnStop = await i.sg.stop();
  let internalErrors = 0;
  for (const m of decisionsAfter.values()) for (const [k, v] of m) if (k.endsWith('|internal_error')) internalErrors += v;
  const crashed = instances.filter((i) => i.diedAt !== undefined);
  const crashLines = instances.reduce((a, i) => a + logs.get(i.name)!.crashLines.length, 0);
  const crashes = crashed.length + (crashLines > 0 && crashed.length === 0 ? 1 : 0);

  // ----------------------------------------------------------------------------------------
  // Report

  const count = (t: string, b: string, k: string) => stats.decisions.get(`${t}|${b}|${k}`) ?? 0;
  const served = (t: Transport) => backends.reduce((a, b) => a + count(t, b.name, 'allow') + count(t, b.name, 'deny') + count(t, b.name, 'error'), 0);
  const totalServed = TRANSPORTS.reduce((a, t) => a + served(t), 0);
  const kinds = (k: Fault['kind']) => faults.filter((f) => f.kind === k && f.detail !== 'not injected').length;
  const faultErrors = faults.filter((f) => f.error);
  const wrong = stats.wrongAllows.length;
  const lost = final.lost.length + final.unresolved.filter((u) => u.s.state === 'live' && !durabilityFault(u.s)).length;
  const failed = wrong > 0 || lost > 0 || crashes > 0 || faultErrors.length > 0 || !recovered.every(Boolean) || totalServed === 0;

  const L: string[] = [];
  L.push('# sessiongate resilience soak', '');
  L.push(`${new Date().toISOString()}${SMOKE ? ' (smoke run)' : ''}: ${(trafficMs / 1000).toFixed(0)} s of traffic, ${((Date.now() - T0) / 1000).toFixed(0)} s in all (set-up ${(setupMs / 1000).toFixed(1)} s)`, '');
  L.push(`- machine: ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, shared with everything else running`);
  L.push(`- node ${process.version}; ${version(nginxBinary(), ['-v'])}; ${version('redis-server', ['--version'])}`);
  L.push(`- topology: per backend two sessiongate replicas (A, B) sharing the store, ${CONFIG.startsWith(ROOT) ? CONFIG.slice(ROOT.length + 1) : CONFIG} (Redis defaults: local cache on, command timeout 100 ms); nginx (shipped config) → A; gRPC Check → B; auth-direct (/auth with the headers nginx sets) → A or B`);
  L.push(`- standalone Redis: appendonly yes, appendfsync everysec. An acknowledged write is in the AOF (page cache) before the reply unless a slow fsync made Redis postpone it, so a SIGKILL loses at most ~2 s of writes; hence sessions created less than ${DURABILITY_WINDOW_MS / 1000} s before a fault are tolerated as lost`);
  L.push(`- Sentinel group: master, replica, three sentinels (down-after 1 s, failover-timeout 4 s), no persistence on the data nodes; replication is asynchronous, so the same ${DURABILITY_WINDOW_MS / 1000} s window applies`);
  L.push(`- load: target ${RATE} decisions/s over ${LANES} lanes, achieved ${(totalServed / (trafficMs / 1000)).toFixed(0)}/s; soak driver CPU ${((cpu.user + cpu.system) / 1e6 / (trafficMs / 1000) * 100).toFixed(0)} % of one core`);
  L.push(`- mix: ${WEIGHTS.map(([c, w]) => `${c} ${w}`).join(', ')} (weights); transports nginx 45 %, grpc 40 %, auth-direct 15 %`);
  L.push('');
  L.push('## Summary', '');
  L.push(`- wrong allows: ${wrong}`);
  L.push(`- sessions lost: ${lost} (of ${final.protectedLive} live sessions created at least ${DURABILITY_WINDOW_MS / 1000} s before any fault, each checked on both replicas after recovery)`);
  L.push(`- service crashes: ${crashes} (${instances.length} sessiongate processes; died during the run: ${crashed.length}; unhandled/uncaught/fatal lines in their output: ${crashLines})`);
  L.push(`- faults injected: redis-kill ${kinds('redis-kill')}, sentinel-failover ${kinds('sentinel-failover')} (with errors: ${faultErrors.length})`);
  L.push(`- decisions served: nginx ${served('nginx')}, grpc ${served('grpc')}, auth-direct ${served('auth-direct')} (total ${totalServed}; client-side failures ${[...stats.failures.values()].reduce((a, b) => a + b, 0)})`);
  L.push(`- valid sessions: allowed ${stats.validAllowed}, store_unavailable ${stats.validErrors} (outside fault windows: ${stats.validErrorsOutsideFaults}), denied ${stats.validDenied + stats.validDeniedWindow} (created < ${DURABILITY_WINDOW_MS / 1000} s before a fault: ${stats.validDeniedWindow}; others: ${stats.validDenied})`);
  L.push(`- must-deny requests (no/garbage/forged/tampered/duplicate credentials, role and spoofing violations): denied ${stats.mustDenyDenied}, store_unavailable ${stats.mustDenyErrors}, allowed ${stats.wrongAllows.filter((w) => MUST_DENY.has(w.cls as Cls)).length}`);
  L.push(`- destroyed sessions: ${stats.destroyOk} destroyed (${stats.afterDestroyProbes} probes right after the 204 on every transport and both replicas); answers after destroy: denied ${stats.destroyedDenied}, store_unavailable ${stats.destroyedErrors}; resurrected by a store fault within ${DURABILITY_WINDOW_MS / 1000} s of the destroy: ${resurrected.length}`);
  L.push(`- public paths: allowed ${stats.publicAllowed}, not allowed ${[...stats.publicNotAllowed.values()].reduce((a, b) => a + b, 0)}`);
  L.push(`- internal errors (reason internal_error, counted by the services): ${internalErrors}`);
  L.push(`- verdict: ${failed ? 'FAIL' : 'PASS'}`);
  L.push('');
  L.push('## Faults', '');
  L.push('| # | backend | fault | at | store back | sessiongate ready | old master rejoined | client-visible store errors | detail |');
  L.push('|---|---|---|---:|---:|---:|---:|---|---|');
  for (const f of faults) {
    const errs = f.errors ? `${f.errors}, last ${secs(f.lastErrorAt)} (${((f.lastErrorAt! - f.at) / 1000).toFixed(1)} s after the kill)` : '0';
    L.push(`| ${f.n} | ${f.backend} | ${f.kind} | ${secs(f.at)} | ${secs(f.storeBackAt)} | ${secs(f.readyAt)} | ${f.kind === 'sentinel-failover' ? secs(f.rejoinedAt) : ''} | ${errs} | ${f.detail}${f.error ? `; **ERROR: ${f.error}**` : ''} |`);
  }
  L.push('');
  L.push('## Decisions per transport', '');
  L.push('| transport | backend | allow | deny | error | client failure |');
  L.push('|---|---|---:|---:|---:|---:|');
  for (const t of TRANSPORTS) for (const b of backends) L.push(`| ${t} | ${b.name} | ${count(t, b.name, 'allow')} | ${count(t, b.name, 'deny')} | ${count(t, b.name, 'error')} | ${count(t, b.name, 'fail')} |`);
  L.push('');
  L.push('## Answers by reason (client view)', '');
  L.push('nginx answers the client with a status only (the shipped config does not pass X-Sessiongate-Reason on); gRPC carries the reason in the status message or dynamic metadata, auth-direct in X-Sessiongate-Reason. The service-side counts below have the reasons behind the nginx statuses.', '');
  L.push('| transport | result | reason | count |');
  L.push('|---|---|---|---:|');
  for (const [k, v] of [...stats.reasons].sort()) {
    const [t, kind, reason] = k.split('|');
    L.push(`| ${t} | ${kind} | ${reason} | ${v} |`);
  }
  L.push('');
  L.push('## Service-side counts (sessiongate_decisions_total, whole run including set-up and final check)', '');
  L.push('| replica | transport | result | reason | count |');
  L.push('|---|---|---|---|---:|');
  for (const [name, m] of decisionsAfter) {
    for (const [k, v] of [...m].sort()) {
      const [t, r, reason] = k.split('|');
      L.push(`| ${name} | ${t} | ${r} | ${reason} | ${v} |`);
    }
  }
  for (const [name, text] of nginxLog) {
    const unexpected = (text.match(/auth request unexpected status: 500/g) ?? []).length;
    const upstream = (text.match(/(upstream timed out|connect\(\) failed|upstream prematurely closed)/g) ?? []).length;
    L.push('', `nginx (${name}) error log: ${unexpected} auth subrequests answered 500 by sessiongate; ${upstream} upstream failures (timeouts, refused, closed)`);
  }
  L.push('');
  L.push('## Sessions', '');
  L.push(`- created: ${stats.created} (${INITIAL_SESSIONS} per backend before the traffic, the rest during it, alternately on A and B); creation failures: ${[...stats.createFailed].map(([k, v]) => `${k} × ${v}`).join(', ') || 'none'}`);
  L.push(`- destroyed: ${stats.destroyOk} (alternately DELETE /~session through nginx to A and straight to B); failures, retried later: ${[...stats.destroyFailed].map(([k, v]) => `${k} × ${v}`).join(', ') || 'none'}; still uncertain at the end: ${uncertainLeft}`);
  L.push(`- final check after recovery (${recovered.every(Boolean) ? 'all replicas ready' : '**not all replicas ready**'}): ${final.checked} sessions asked on A (auth-direct) and B (gRPC): ${final.protectedLive} protected live, ${final.lost.length} of them lost; ${final.lostInWindow.length} created within ${DURABILITY_WINDOW_MS / 1000} s before a fault and lost (tolerated); ${final.destroyedChecked} destroyed, ${final.destroyedAllowedAtEnd} allowed; unresolved (store errors after retries): ${final.unresolved.length}`);
  for (const x of final.lost.slice(0, 20)) L.push(`  - LOST #${x.s.n} ${x.s.backend.name} ${x.s.user}, created ${secs(x.s.createdAt)} on ${x.s.createdOn}: ${x.answer}`);
  for (const x of final.lostInWindow.slice(0, 10)) L.push(`  - lost in window #${x.s.n} ${x.s.backend.name}, created ${secs(x.s.createdAt)}, fault #${x.fault.n} at ${secs(x.fault.at)}: ${x.answer}`);
  for (const x of final.unresolved.slice(0, 10)) L.push(`  - unresolved #${x.s.n} ${x.s.backend.name}: ${x.answer}`);
  for (const s of resurrected.slice(0, 10)) L.push(`  - resurrected #${s.n} ${s.backend.name}: destroyed ${secs(s.destroyedAt)}, allowed again after a fault within ${DURABILITY_WINDOW_MS / 1000} s`);
  L.push('');
  L.push('## Service processes', '');
  L.push('| replica | pid | RSS start MB | RSS at half time MB | RSS end MB | growth | growth in the second half | max sampled MB | died | exit on SIGTERM | store unreachable / reachable again (log) | error-level log lines | other output |');
  L.push('|---|---:|---:|---:|---:|---:|---:|---:|---|---|---|---|---|');
  for (const i of instances) {
    const l = logs.get(i.name)!;
    const growth = i.rssEnd - i.rssStart;
    const pct = Number.isFinite(growth) ? ` (${((growth / i.rssStart) * 100).toFixed(0)} %)` : '';
    const errs = [...l.errorLines].map(([k, v]) => `${k} × ${v}`).join('; ') || '0';
    const late = i.rssMid === undefined ? NaN : i.rssEnd - i.rssMid;
    L.push(`| ${i.name} | ${i.sg.pid} | ${mb(i.rssStart)} | ${i.rssMid === undefined ? '–' : mb(i.rssMid)} | ${mb(i.rssEnd)} | ${growth >= 0 ? '+' : ''}${mb(growth)} MB${pct} | ${Number.isFinite(late) ? `${late >= 0 ? '+' : ''}${mb(late)} MB` : '–'} | ${mb(i.rssMax)} | ${i.diedAt !== undefined ? `at ${secs(i.diedAt)}` : 'no'} | ${i.exitOnStop === undefined ? '–' : String(i.exitOnStop)} | ${l.storeUnreachable} / ${l.storeReachable} | ${errs} | ${l.nonJson.length} lines |`);
  }
  const problems: string[] = [];
  for (const w of stats.wrongAllows.slice(0, 50)) problems.push(`- WRONG ALLOW ${secs(w.at)} ${w.backend} ${w.transport} ${w.cls}: ${w.detail}`);
  for (const d of stats.validDeniedDetail) problems.push(`- valid session denied: ${d}`);
  for (const d of stats.validErrorsOutsideDetail) problems.push(`- store error outside a fault window: ${d}`);
  for (const [k, v] of stats.publicNotAllowed) problems.push(`- public path not allowed: ${k} × ${v}`);
  for (const [k, v] of stats.failures) problems.push(`- client-side failure: ${k} × ${v}`);
  for (const f of faultErrors) problems.push(`- fault #${f.n} (${f.kind}): ${f.error}`);
  for (const i of instances) {
    const l = logs.get(i.name)!;
    for (const line of l.crashLines.slice(0, 5)) problems.push(`- ${i.name} output: ${line}`);
    for (const line of l.nonJson.slice(0, 5)) problems.push(`- ${i.name} non-JSON output: ${line}`);
    if (l.errorsOutside.length) problems.push(`- ${i.name} logged ${l.errorsOutside.length} failed decisions outside fault windows: ${l.errorsOutside.slice(0, 10).join('; ')}`);
  }
  // The services' own logs, kept when something needs a closer look (or with --keep-logs).
  if (failed || problems.length > 0 || flag('keep-logs')) {
    const dir = tempDir('sg-soak-logs-');
    for (const i of instances) writeFileSync(join(dir, `${i.name.replace(' ', '-')}.log`), i.sg.logs().join('\n') + '\n');
    for (const b of backends) writeFileSync(join(dir, `nginx-${b.name}-error.log`), nginxLog.get(b.name) ?? '');
    problems.push(`- service logs (JSON lines; times are Unix ms, the traffic started at ${T0 + trafficStart}) and nginx error logs: ${dir}`);
  }
  if (problems.length) L.push('', '## Details', '', ...problems);
  const report = L.join('\n') + '\n';
  process.stdout.write(`\n${report}`);
  if (!SMOKE) {
    mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
    writeFileSync(join(ROOT, 'bench/results/soak.md'), report);
    log('report written to bench/results/soak.md');
  }
  return failed ? 1 : 0;
}

let exiting = false;
async function finish(code: number): Promise<never> {
  if (!exiting) {
    exiting = true;
    stopping = true;
    for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => {});
    agent.destroy();
  }
  process.exit(code);
}

process.once('SIGINT', () => void finish(130));
process.once('SIGTERM', () => void finish(143));

main()
  .then(
    (code) => code,
    (err) => {
      process.stderr.write(`soak: ${(err as Error).stack ?? String(err)}\n`);
      return 1;
    },
  )
  .then((code) => finish(code));
