/**
 * The adversarial suite's one set-up: sessiongate in-process (deploy/config.example.yaml, an
 * injected clock so expiry needs no sleeping, allowed_redirect_hosts set), a real nginx, a real
 * Caddy and a real HAProxy running the shipped nginx/, caddy/ and haproxy/ configs in front of an
 * upstream that echoes what it receives, and a raw Envoy gRPC client. Each transport reduces its
 * answer to the same Outcome, including what the upstream application saw (nginx, Caddy,
 * HAProxy: really saw; Envoy: the client's headers with the answer's mutations applied as Envoy
 * applies them).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { parse } from 'yaml';
import { type RunningCaddy, startCaddy } from '../../harness/caddy.js';
import { type RunningHaproxy, startHaproxy } from '../../harness/haproxy.js';
import type { Config } from '../../src/config.js';
import { canonicalHeaderName } from '../../src/core/headers.js';
import { type Service, startService } from '../../src/main.js';
import type { SessionStore } from '../../src/store/types.js';
import { APPEND_ACTION, GRPC, RawEnvoyClient } from '../support/envoy-wire.js';
import { createSession, send } from '../support/http.js';
import { type Echoed, type EchoUpstream, ROOT, type RunningNginx, startEchoUpstream, startNginx } from '../support/processes.js';
import { rawRequest } from '../support/raw-http.js';
import { quietLogger, testConfig } from '../support/service.js';

export const LOGIN_TOKEN = 'adversarial-login-token-0123456789';
export const SECRET = 'adversarial-secret-0123456789abcdef012345678';
export const HOST = 'app.example.com';
export const M = 60_000;
/** Every forged value carries this, so it can be looked for wherever it might surface. */
export const FORGED = 'FORGED-root';
/** The protected header names of deploy/config.example.yaml, canonical spelling. */
export const PROTECTED = new Set(['x-user-id', 'x-user-roles', 'x-user-email', 'x-auth-user']);

export interface Harness {
  svc: Service;
  nginx: RunningNginx;
  caddy: RunningCaddy;
  haproxy: RunningHaproxy;
  app: EchoUpstream;
  grpc: RawEnvoyClient;
  clock: { now: number };
  http(): string;
  login(user?: string, roles?: string[]): Promise<string>;
  close(): Promise<void>;
}

export interface HarnessOptions {
  /** Changes to the example configuration (failure mode, upstream options). */
  configure?: (c: Config) => Config;
  /** A store of the test's own (one it can switch off) instead of the configured memory store, on the harness clock. */
  store?: (clock: () => number) => SessionStore;
}

export async function startHarness(opts: HarnessOptions = {}): Promise<Harness> {
  const clock = { now: Date.UTC(2026, 5, 1, 8, 0, 0) };
  const example = testConfig(
    { SESSIONGATE_SECRET: SECRET, SESSIONGATE_LOGIN_TOKEN: LOGIN_TOKEN, SESSIONGATE_ALLOWED_REDIRECT_HOSTS: `${HOST},.example.com` },
    { example: true },
  );
  const config = opts.configure ? opts.configure(example) : example;
  const svc = await startService(config, quietLogger(), { clock: () => clock.now, ...(opts.store ? { store: opts.store(() => clock.now) } : {}) });
  const app = await startEchoUpstream();
  const nginx = await startNginx({ sessiongatePort: svc.ports.http, appPort: app.port });
  const caddy = await startCaddy({ sessiongatePort: svc.ports.http, appPort: app.port });
  const haproxy = await startHaproxy({ sessiongatePort: svc.ports.http, appPort: app.port });
  const grpc = new RawEnvoyClient(`127.0.0.1:${svc.ports.grpc}`);
  const http = () => `http://127.0.0.1:${svc.ports.http}`;
  return {
    svc,
    nginx,
    caddy,
    haproxy,
    app,
    grpc,
    clock,
    http,
    login: (user = 'alice', roles = ['user']) => createSession(http(), LOGIN_TOKEN, user, roles),
    async close() {
      grpc.close();
      await nginx.stop();
      await caddy.stop();
      await haproxy.stop();
      await app.close();
      await svc.close();
    },
  };
}

/** The request as the client sends it. Header names and values go out byte for byte. */
export interface Req {
  method?: string;
  /** The raw request target. */
  path: string;
  headers?: Array<[string, string]>;
  /** Host header (default app.example.com). */
  host?: string;
}

export interface Outcome {
  result: 'allow' | 'deny' | 'error';
  /** sessiongate's reason, or `proxy` when the proxy refused the request before asking. */
  reason: string;
  status: number;
  location?: string | undefined;
  /** Headers the upstream application received (lower-case names); undefined when it was not reached. */
  upstream?: Record<string, string[]> | undefined;
}

export type Transport = (h: Harness, req: Req) => Promise<Outcome>;

function lowerMap(pairs: Array<[string, string]>): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [k, v] of pairs) (out[k.toLowerCase()] ??= []).push(v);
  return out;
}

/** Through a real proxy on `port`: status the client saw, and what the echoing upstream received. */
async function viaProxy(port: number, req: Req): Promise<Outcome> {
  const r = await rawRequest(port, { method: req.method, target: req.path, headers: [['Host', req.host ?? HOST], ...(req.headers ?? [])] });
  let upstream: Record<string, string[]> | undefined;
  if (r.status === 200) {
    const seen = JSON.parse(r.body) as Echoed;
    upstream = {};
    for (let i = 0; i < seen.rawHeaders.length; i += 2) (upstream[seen.rawHeaders[i]!.toLowerCase()] ??= []).push(seen.rawHeaders[i + 1]!);
  }
  const reason = r.headers['x-sessiongate-reason']?.[0];
  return {
    result: r.status === 200 ? 'allow' : r.status >= 500 ? 'error' : 'deny',
    // The proxy answers 400 itself for requests it will not parse: sessiongate was never asked.
    reason: reason ?? (r.status === 400 ? 'proxy' : r.status === 200 ? 'allowed' : 'unknown'),
    status: r.status,
    location: r.headers['location']?.[0],
    upstream,
  };
}

export const viaNginx: Transport = (h, req) => viaProxy(h.nginx.port, req);
export const viaCaddy: Transport = (h, req) => viaProxy(h.caddy.port, req);
/** Through the real HAProxy (haproxy/haproxy.cfg and sessiongate.lua). */
export const viaHaproxy: Transport = (h, req) => viaProxy(h.haproxy.port, req);

/** Envoy gRPC Check: the headers as HTTP/2 carries them (lower case, repeated ones joined). */
export const viaGrpc: Transport = async (h, req) => {
  const lower: Record<string, string> = {};
  for (const [k, v] of req.headers ?? []) {
    const key = k.toLowerCase();
    lower[key] = lower[key] === undefined ? v : `${lower[key]}${key === 'cookie' ? '; ' : ','}${v}`;
  }
  const out = await h.grpc.check({ method: req.method ?? 'GET', path: req.path, host: req.host ?? HOST, headers: lower });
  if ('error' in out) return { result: 'error', reason: out.error.details, status: out.error.code === GRPC.UNAVAILABLE ? 503 : 500 };
  const r = out.response;
  if (r.code !== GRPC.OK) {
    expect([GRPC.UNAUTHENTICATED, GRPC.PERMISSION_DENIED, GRPC.UNAVAILABLE]).toContain(r.code);
    return {
      result: r.code === GRPC.UNAVAILABLE ? 'error' : 'deny',
      reason: r.metadata['reason'] ?? r.message,
      status: r.denied?.status ?? 0,
      location: r.denied?.headers.find((x) => x.key === 'location')?.value,
    };
  }
  // Envoy: headers_to_remove, then the mutations; identity headers must overwrite.
  const upstream = lowerMap(Object.entries(lower));
  for (const name of r.ok!.headersToRemove) delete upstream[name.toLowerCase()];
  for (const m of r.ok!.headers) {
    expect(m.appendAction, `${m.key} must overwrite`).toBe(APPEND_ACTION.OVERWRITE_IF_EXISTS_OR_ADD);
    upstream[m.key.toLowerCase()] = [m.value];
  }
  return { result: 'allow', reason: r.metadata['reason'] ?? '', status: 200, upstream };
};

/** What the shipped envoy-http.yaml copies from an allow onto the upstream request (allowed_upstream_headers). */
const ALLOWED_UPSTREAM_HEADERS: string[] = (() => {
  type Obj = Record<string, any>;
  const cfg = parse(readFileSync(join(ROOT, 'envoy/envoy-http.yaml'), 'utf8')) as Obj;
  const hcm = cfg['static_resources'].listeners[0].filter_chains[0].filters[0].typed_config;
  const authz = hcm.http_filters.find((f: Obj) => f.name === 'envoy.filters.http.ext_authz').typed_config;
  return authz.http_service.authorization_response.allowed_upstream_headers.patterns.map((p: Obj) => String(p.exact));
})();

/** Envoy HTTP ext_authz: the client's headers to /envoy<path>; the upstream gets the answer's allowed_upstream_headers. */
export const viaEnvoyHttp: Transport = async (h, req) => {
  let r: Awaited<ReturnType<typeof send>>;
  try {
    // The raw target, unparsed (a URL object would resolve `..` and drop `#` on the client side).
    r = await send(h.http(), {
      method: req.method ?? 'GET',
      path: `/envoy${req.path.startsWith('/') ? '' : '/'}${req.path}`,
      headers: [['Host', req.host ?? HOST], ...(req.headers ?? [])],
    });
  } catch {
    return { result: 'deny', reason: 'client_refused', status: 0 };
  }
  const reason = r.headers['x-sessiongate-reason'] as string | undefined;
  if (r.status !== 200)
    return { result: r.status >= 500 ? 'error' : 'deny', reason: reason ?? 'unknown', status: r.status, location: r.headers['location'] as string | undefined };
  const upstream = lowerMap(req.headers ?? []);
  const remove = String(r.headers['x-envoy-auth-headers-to-remove'] ?? '')
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
  for (const name of remove) delete upstream[name];
  for (const name of ALLOWED_UPSTREAM_HEADERS) {
    const v = r.headers[name];
    if (v !== undefined) upstream[name] = [String(v)];
  }
  return { result: 'allow', reason: reason ?? '', status: 200, upstream };
};

export const TRANSPORTS: Record<string, Transport> = {
  nginx: viaNginx,
  'envoy gRPC': viaGrpc,
  'envoy HTTP': viaEnvoyHttp,
  caddy: viaCaddy,
  haproxy: viaHaproxy,
};

/** Real proxies in front of sessiongate: the client sees only the status, not sessiongate's reason. */
export const STATUS_ONLY = new Set(['nginx', 'caddy', 'haproxy']);

/**
 * Identity the upstream received: every header whose name is, or folds onto, a protected
 * name (case, `_`, `.`, spaces). Apps fold those variants onto the real header, so all count.
 */
export function identitySeen(upstream: Record<string, string[]> | undefined): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [k, v] of Object.entries(upstream ?? {})) {
    const c = canonicalHeaderName(k);
    if (PROTECTED.has(c)) (out[c] ??= []).push(...v);
  }
  return out;
}

/** Asserts the upstream saw no forged identity, and exactly `identity` (by canonical name) when given. */
export function expectNoForgedIdentity(o: Outcome, identity: Record<string, string> = {}): void {
  const seen = identitySeen(o.upstream);
  for (const [name, values] of Object.entries(seen)) {
    for (const v of values) {
      expect(v, `upstream got ${name}: ${v}`).not.toContain('FORGED');
      expect(v, `upstream got ${name}`).toBe(identity[name]);
    }
  }
  if (o.result === 'allow') for (const [name, value] of Object.entries(identity)) expect(seen[name], name).toEqual([value]);
}
