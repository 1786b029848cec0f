/**
 * The soak's options and its one context object: the clock, the log, the stop flag, the
 * clean-ups, the shared HTTP agent and everything observed. Every module takes it as an
 * argument; nothing in bench/soak/ keeps state of its own.
 */
import { Agent } from 'node:http';
import { join } from 'node:path';
import { ROOT } from '../../harness/processes.js';
import { flag, opt } from '../options.js';
import { type Fault, newStats, type Stats } from './model.js';

export interface SoakOptions {
  readonly smoke: boolean;
  readonly keepLogs: boolean;
  readonly trafficMs: number;
  /** Target decisions per second over everything. */
  readonly rate: number;
  /** Sessions per backend created before the traffic starts. */
  readonly initialSessions: number;
  /** One session created per backend every churnMs, one destroyed every other tick. */
  readonly churnMs: number;
  readonly lanes: number;
  /** A session created less than this before a fault may be lost by it (AOF everysec, async replication). */
  readonly durabilityWindowMs: number;
  /** The sessiongate configuration the replicas run. */
  readonly config: string;
  readonly loginToken: string;
  readonly secret: string;
  readonly host: string;
}

/** The command line's options; a message for the first invalid one. */
export function parseOptions(): SoakOptions | string {
  const smoke = flag('smoke');
  const minutes = Number(opt('minutes', '10'));
  const rate = Number(opt('rate', smoke ? '120' : '150'));
  const initialSessions = Number(opt('sessions', smoke ? '20' : '100'));
  for (const [name, v] of [
    ['minutes', minutes],
    ['rate', rate],
    ['sessions', initialSessions],
  ] as const) {
    if (!Number.isFinite(v) || v <= 0) return `--${name} must be a positive number`;
  }
  return {
    smoke,
    keepLogs: flag('keep-logs'),
    trafficMs: smoke ? 18_000 : Math.round(minutes * 60_000),
    rate,
    initialSessions,
    churnMs: smoke ? 400 : 500,
    lanes: 12,
    durabilityWindowMs: 2000,
    config: opt('config', join(ROOT, 'deploy/config.example.yaml')),
    loginToken: 'soak-login-token-0123456789abcdef',
    secret: 'soak-secret-0123456789abcdef0123456789abcdef',
    host: 'app.example.com',
  };
}

export interface SoakContext {
  readonly opts: SoakOptions;
  /** Date.now() when the soak started. */
  readonly t0: number;
  /** When the traffic started (on the now() scale); times are shown relative to it, set-up negative. */
  trafficStart: number;
  /** Set when the traffic time is over (or on a signal): lanes, churn and faults stop. */
  stopping: boolean;
  /** Run in reverse order at exit. */
  readonly cleanups: Array<() => Promise<unknown> | unknown>;
  /** Keep-alive for every HTTP call: nginx and sessiongate both keep connections. */
  readonly agent: Agent;
  readonly faults: Fault[];
  readonly stats: Stats;
  /** Milliseconds since the soak started: every timestamp in the model. */
  now(): number;
  /** A time as seconds since the traffic started. */
  secs(t: number | undefined): string;
  log(line: string): void;
}

export function createContext(opts: SoakOptions): SoakContext {
  const t0 = Date.now();
  const ctx: SoakContext = {
    opts,
    t0,
    trafficStart: 0,
    stopping: false,
    cleanups: [],
    agent: new Agent({ keepAlive: true, maxSockets: 32 }),
    faults: [],
    stats: newStats(),
    now: () => Date.now() - t0,
    secs: (t) => (t === undefined ? '–' : `${((t - ctx.trafficStart) / 1000).toFixed(1)} s`),
    log: (line) => process.stderr.write(`[soak ${ctx.secs(ctx.now()).padStart(8)}] ${line}\n`),
  };
  return ctx;
}

// Small helpers without state.
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, ms)));
export const pick = <T>(list: readonly T[]): T | undefined => (list.length ? list[Math.floor(Math.random() * list.length)] : undefined);
export const inc = (m: Map<string, number>, k: string, by = 1) => m.set(k, (m.get(k) ?? 0) + by);
