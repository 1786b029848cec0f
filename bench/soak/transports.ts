/**
 * The three ways a decision is asked for: through nginx (auth_request, the application's answer
 * shows what passed), gRPC Check as Envoy sends it, and `/auth` straight to a replica (the nginx
 * protocol, with X-Sessiongate-Reason). Each answer becomes one Verdict; the application stand-in
 * behind nginx lives here too.
 */
import { createServer, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { type CheckOutcome, GRPC } from '../../harness/envoy-wire.js';
import type { SoakContext } from './context.js';
import type { Backend, Instance, Probe, Transport, Verdict } from './model.js';

export interface HttpReply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  /** When the request that produced this answer was sent (after a retry, the retry's time). */
  sentAt: number;
}

export function httpCall(
  ctx: SoakContext,
  port: number,
  path: string,
  o: { method?: string; headers?: Record<string, string>; body?: string } = {},
  retry = true,
): Promise<HttpReply> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...o.headers };
    if (o.body !== undefined) headers['Content-Length'] = String(Buffer.byteLength(o.body));
    const sentAt = ctx.now();
    const req = httpRequest({ host: '127.0.0.1', port, path, method: o.method ?? 'GET', headers, agent: ctx.agent, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body, sentAt }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('client timeout (10 s)')));
    req.on('error', (err: NodeJS.ErrnoException) => {
      // A kept-alive socket the server closed just as it was reused: Node's documented retry.
      if (retry && req.reusedSocket && (err.code === 'ECONNRESET' || err.code === 'EPIPE')) httpCall(ctx, port, path, o, false).then(resolve, reject);
      else reject(err);
    });
    req.end(o.body);
  });
}

/** The application behind nginx: answers with the identity headers it received. */
export async function startApp(ctx: SoakContext): Promise<{ port: number }> {
  const server = createServer((req, res) => {
    req.resume();
    const h = req.headers;
    const body = JSON.stringify({
      user: h['x-user-id'] ?? null,
      roles: h['x-user-roles'] ?? null,
      email: h['x-user-email'] ?? null,
      authUser: h['x-auth-user'] ?? null,
    });
    res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), 'X-Soak-App': '1' });
    res.end(body);
  });
  server.keepAliveTimeout = 120_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  ctx.cleanups.push(() => new Promise<void>((r) => (server.close(() => r()), server.closeAllConnections())));
  return { port: (server.address() as { port: number }).port };
}

export const cookieOf = (token: string) => `theme=dark; sessiongate=${token}; lang=en`;
export const appPath = () => `/app/page?id=${Math.floor(Math.random() * 1000)}`;

function clientHeaders(p: Probe): Record<string, string> {
  const h: Record<string, string> = { Accept: 'application/json' };
  if (p.cookie !== undefined) h['Cookie'] = p.cookie;
  if (p.authorization !== undefined) h['Authorization'] = p.authorization;
  if (p.spoof) h['X-User-Id'] = 'admin@example.com';
  return h;
}

export async function viaNginx(ctx: SoakContext, b: Backend, p: Probe): Promise<Verdict> {
  const sentAt = ctx.now();
  try {
    const r = await httpCall(ctx, b.nginx.port, p.path, { headers: { Host: ctx.opts.host, ...clientHeaders(p) } });
    if (r.status === 200 && r.headers['x-soak-app'] === '1') {
      const seen = JSON.parse(r.body) as { user: string | null; authUser: string | null };
      return {
        kind: 'allow',
        reason: 'http 200',
        user: seen.user ?? undefined,
        leak: p.path.startsWith('/~assets/') && (seen.user !== null || seen.authUser !== null),
        sentAt: r.sentAt,
      };
    }
    if (r.status === 401 || r.status === 403) return { kind: 'deny', reason: `http ${r.status}`, sentAt: r.sentAt };
    if (r.status === 500) return { kind: 'error', reason: 'http 500', sentAt: r.sentAt };
    return { kind: 'fail', reason: `nginx answered ${r.status}`, sentAt: r.sentAt };
  } catch (err) {
    return { kind: 'fail', reason: `nginx: ${(err as Error).message}`, sentAt };
  }
}

export async function viaAuth(ctx: SoakContext, inst: Instance, p: Probe): Promise<Verdict> {
  const sentAt = ctx.now();
  try {
    const r = await httpCall(ctx, inst.sg.httpPort, '/auth', {
      headers: {
        Host: ctx.opts.host,
        'X-Original-URI': p.path,
        'X-Original-Method': 'GET',
        'X-Forwarded-Proto': 'https',
        'X-Real-IP': '203.0.113.7',
        ...clientHeaders(p),
      },
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

export async function viaGrpc(ctx: SoakContext, b: Backend, p: Probe): Promise<Verdict> {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(clientHeaders(p))) headers[k.toLowerCase()] = v;
  headers['x-forwarded-for'] = '203.0.113.7';
  const sentAt = ctx.now();
  let out: CheckOutcome;
  try {
    out = await b.grpc.check({ method: 'GET', path: p.path, host: ctx.opts.host, headers });
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
  if ((r.code === GRPC.UNAUTHENTICATED || r.code === GRPC.PERMISSION_DENIED) && r.denied)
    return { kind: 'deny', reason: r.message || r.metadata['reason'] || 'no reason', sentAt };
  return { kind: 'fail', reason: `grpc CheckResponse code ${r.code}`, sentAt };
}

/** One request over transport `t`; auth-direct goes to either replica. */
export function send(ctx: SoakContext, b: Backend, t: Transport, p: Probe): Promise<Verdict> {
  if (t === 'nginx') return viaNginx(ctx, b, p);
  if (t === 'grpc') return viaGrpc(ctx, b, p);
  return viaAuth(ctx, Math.random() < 0.5 ? b.a : b.b, p);
}
