/**
 * Sessions as a login service and a browser make and end them: POST /~session with the login
 * token on either replica, DELETE /~session through nginx or straight to the other replica, each
 * destroy followed at once by probes on every transport that must all deny.
 */

import { judge } from './checker.js';
import { inc, pick, type SoakContext, sleep } from './context.js';
import type { Backend, Session, Transport, Verdict } from './model.js';
import { appPath, cookieOf, type HttpReply, httpCall, viaAuth, viaGrpc, viaNginx } from './transports.js';

export async function createSession(ctx: SoakContext, b: Backend, on: 'A' | 'B'): Promise<Session | null> {
  const { stats } = ctx;
  const n = ++b.seq;
  const admin = n % 5 === 0;
  const user = `soak-${b.name}-${n}@example.com`;
  const inst = on === 'A' ? b.a : b.b;
  let r: HttpReply;
  try {
    r = await httpCall(ctx, inst.sg.httpPort, '/~session', {
      method: 'POST',
      headers: { Authorization: `Bearer ${ctx.opts.loginToken}`, 'Content-Type': 'application/json' },
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
  const s: Session = { n, backend: b, user, admin, token, createdAt: ctx.now(), createdOn: on, state: 'live', allowsAfterDestroy: [] };
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
export async function destroySession(ctx: SoakContext, b: Backend, s: Session): Promise<void> {
  const { stats } = ctx;
  if (s.state === 'live') {
    const warm: Array<[Transport, Promise<Verdict>]> = [
      ['grpc', viaGrpc(ctx, b, { path: appPath(), cookie: cookieOf(s.token) })],
      ['auth-direct', viaAuth(ctx, b.a, { path: appPath(), cookie: cookieOf(s.token) })],
    ];
    for (const [t, p] of warm) judge(ctx, 'valid', b, t, await p, s, true);
  }
  removeFrom(b.live, s);
  removeFrom(b.uncertain, s);
  s.state = 'destroying';
  const viaNginxToA = b.toggle++ % 2 === 0;
  const port = viaNginxToA ? b.nginx.port : b.b.sg.httpPort;
  const via = viaNginxToA ? 'nginx → A' : 'B';
  let r: HttpReply;
  try {
    r = await httpCall(ctx, port, '/~session', { method: 'DELETE', headers: { Host: ctx.opts.host, Cookie: cookieOf(s.token) } });
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
  s.destroyedAt = ctx.now();
  s.destroyedVia = via;
  b.destroyed.push(s);
  stats.destroyOk++;
  const probes: Array<[Transport, Promise<Verdict>]> = [
    ['nginx', viaNginx(ctx, b, { path: appPath(), cookie: cookieOf(s.token) })],
    ['grpc', viaGrpc(ctx, b, { path: appPath(), cookie: cookieOf(s.token) })],
    ['auth-direct', viaAuth(ctx, b.a, { path: appPath(), cookie: cookieOf(s.token) })],
    ['auth-direct', viaAuth(ctx, b.b, { path: appPath(), cookie: cookieOf(s.token) })],
  ];
  for (const [t, p] of probes) {
    stats.afterDestroyProbes++;
    judge(ctx, 'destroyed', b, t, await p, s);
  }
}

/**
 * The initial sessions of a backend, ten at a time, alternately on A and B. A creation the store
 * refused (503, as a login service would see on a loaded machine) is tried again, up to three
 * rounds: the set-up is not what the soak measures.
 */
export async function createInitialSessions(ctx: SoakContext, b: Backend): Promise<void> {
  const n = ctx.opts.initialSessions;
  for (let round = 0; round < 3 && b.live.length < n; round++) {
    const missing = n - b.live.length;
    for (let i = 0; i < missing; i += 10) {
      await Promise.all(Array.from({ length: Math.min(10, missing - i) }, (_, j) => createSession(ctx, b, (i + j) % 2 === 0 ? 'A' : 'B')));
    }
  }
  if (b.live.length < n)
    throw new Error(`only ${b.live.length} of ${n} sessions could be created on ${b.name}: ${JSON.stringify([...ctx.stats.createFailed])}`);
}

/** Throughout the traffic: a session created every tick, one destroyed every other (uncertain ones first). */
export async function churn(ctx: SoakContext, b: Backend): Promise<void> {
  for (let tick = 0; !ctx.stopping; tick++) {
    await sleep(ctx.opts.churnMs);
    if (ctx.stopping) break;
    await createSession(ctx, b, tick % 2 === 0 ? 'A' : 'B');
    if (tick % 2 === 1) {
      const old = ctx.now() - 1000;
      const s = b.uncertain[0] ?? pick(b.live.filter((x) => x.createdAt < old));
      if (s) await destroySession(ctx, b, s);
    }
  }
}

/** After recovery: the destroys whose outcome was unknown, once more; how many are still unknown. */
export async function retryUncertainDestroys(ctx: SoakContext, backends: readonly Backend[]): Promise<number> {
  let left = 0;
  for (const b of backends) {
    for (const s of [...b.uncertain]) {
      await destroySession(ctx, b, s);
      if (s.state !== 'destroyed') left++;
    }
  }
  return left;
}
