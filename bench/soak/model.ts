/** What the soak models: backends and their replicas, sessions, faults, requests, answers, tallies. */
import type { RawEnvoyClient } from '../../harness/envoy-wire.js';
import type { RunningNginx, RunningService } from '../../harness/processes.js';
import type { RedisProcess, SentinelGroup } from '../../harness/redis.js';

export type Transport = 'nginx' | 'grpc' | 'auth-direct';
export const TRANSPORTS: readonly Transport[] = ['nginx', 'grpc', 'auth-direct'];

export interface Instance {
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

export interface Session {
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

export interface Fault {
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

export interface Backend {
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

/** The class of a request: what it carries, and so what it must get. */
export type Cls = 'valid' | 'public' | 'destroyed' | 'no_cookie' | 'garbage' | 'forged' | 'tampered' | 'bearer_forged' | 'duplicate' | 'role' | 'spoofed';

export const MUST_DENY: ReadonlySet<Cls> = new Set(['no_cookie', 'garbage', 'forged', 'tampered', 'bearer_forged', 'duplicate', 'role', 'spoofed']);

export interface Probe {
  path: string;
  cookie?: string;
  authorization?: string;
  /** Send a client copy of X-User-Id. */
  spoof?: boolean;
}

export interface Verdict {
  kind: 'allow' | 'deny' | 'error' | 'fail';
  /** Reason code (gRPC, auth-direct) or status (nginx); the failure for `fail`. */
  reason: string;
  /** The X-User-Id that would reach the application. */
  user?: string | undefined;
  /** An allow on a public path that would pass identity (or a client's spoofed copy) upstream. */
  leak?: boolean;
  sentAt: number;
}

export type Stats = ReturnType<typeof newStats>;

export function newStats() {
  return {
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
}
