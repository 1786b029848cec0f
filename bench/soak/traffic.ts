/**
 * The decision traffic: lanes that each send one request at a time at a fixed pace, of a class
 * drawn by weight (valid, destroyed, public, and the must-deny kinds: missing, garbage, forged,
 * tampered and duplicate credentials, role and spoofing violations), over a transport drawn by
 * share, and hand every answer to the checker; and the traffic time that runs them beside the
 * session churn and the faults.
 */
import { randomBytes } from 'node:crypto';
import { judge } from './checker.js';
import { pick, type SoakContext, sleep } from './context.js';
import { runFaults } from './faults.js';
import type { Backend, Cls, Probe, Session, Transport } from './model.js';
import type { Topology } from './services.js';
import { churn } from './sessions.js';
import { appPath, cookieOf, send } from './transports.js';

export const WEIGHTS: ReadonlyArray<readonly [Cls, number]> = [
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

const b64 = () => randomBytes(32).toString('base64url');

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
      return {
        cls,
        probe: {
          path: '/~assets/app.css',
          spoof: Math.random() < 0.5,
          ...(Math.random() < 0.5 && b.live.length ? { cookie: cookieOf(pick(b.live)!.token) } : {}),
        },
      };
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

/** One lane: a request every lanes/rate seconds until the soak stops. */
export async function lane(ctx: SoakContext, backends: readonly Backend[], i: number): Promise<void> {
  const interval = (ctx.opts.lanes / ctx.opts.rate) * 1000;
  await sleep(Math.random() * interval);
  while (!ctx.stopping) {
    const started = Date.now();
    const b = backends[(i + Math.floor(Math.random() * 2)) % backends.length]!;
    const built = probeFor(pickClass(), b) ?? probeFor('public', b)!;
    const t = pickTransport();
    const liveAtStart = built.s?.state === 'live';
    const v = await send(ctx, b, t, built.probe);
    judge(ctx, built.cls, b, t, v, built.s, liveAtStart);
    await sleep(interval - (Date.now() - started));
  }
}

export interface TrafficRun {
  /** Set-up time, ms. */
  readonly setupMs: number;
  /** When the traffic stopped (on the ctx.now() scale) and how long it ran. */
  readonly end: number;
  readonly ms: number;
  /** The soak driver's own CPU use during the traffic. */
  readonly cpu: NodeJS.CpuUsage;
}

/** The traffic time: lanes, session churn on both backends, and the fault schedule; waits for faults in progress. */
export async function runTraffic(ctx: SoakContext, t: Topology): Promise<TrafficRun> {
  const { opts } = ctx;
  const setupMs = ctx.now();
  ctx.trafficStart = ctx.now();
  const cpuStart = process.cpuUsage();
  ctx.log(
    `traffic: ${(opts.trafficMs / 1000).toFixed(0)} s at ~${opts.rate} decisions/s over ${opts.lanes} lanes (set-up took ${(setupMs / 1000).toFixed(1)} s)`,
  );
  const faults = runFaults(ctx, t.standalone, t.sentinel);
  const lanes = Array.from({ length: opts.lanes }, (_, i) => lane(ctx, t.backends, i));
  const churns = t.backends.map((b) => churn(ctx, b));
  await sleep(opts.trafficMs);
  ctx.stopping = true;
  await Promise.all([...lanes, ...churns]);
  const end = ctx.now();
  const cpu = process.cpuUsage(cpuStart);
  ctx.log('traffic stopped; waiting for faults in progress to finish');
  await faults;
  return { setupMs, end, ms: end - ctx.trafficStart, cpu };
}
