/**
 * The soak's judge: every answer against what its class of request must get (a wrong allow is
 * the failure that matters), and after recovery the final check that no session was lost and no
 * destroyed one came back.
 */
import { inc, type SoakContext, sleep } from './context.js';
import { type Backend, type Cls, type Fault, MUST_DENY, type Session, type Transport, type Verdict } from './model.js';
import { appPath, cookieOf, viaAuth, viaGrpc } from './transports.js';

/** The fault whose window (from just before it until 2 s after the replicas were ready) holds `t`. */
export function faultWindow(b: Backend, t: number): Fault | undefined {
  return b.faults.find((f) => t >= f.at - 200 && t <= (f.readyAt ?? Infinity) + 2000);
}

/** A fault on the session's backend that came less than the durability window after its creation and before `before`. */
export function durabilityFault(ctx: SoakContext, s: Session, before = Infinity): Fault | undefined {
  const window = ctx.opts.durabilityWindowMs;
  return s.backend.faults.find((f) => f.at >= s.createdAt && f.at - s.createdAt < window && f.at <= before);
}

/** Records an answer and judges it against what the class of request must get. */
export function judge(ctx: SoakContext, cls: Cls, b: Backend, t: Transport, v: Verdict, s?: Session, liveAtStart = true): void {
  const { stats } = ctx;
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
      f.lastErrorAt = Math.max(f.lastErrorAt ?? 0, ctx.now());
    }
  }
  const wrong = (detail: string) => {
    stats.wrongAllows.push({ at: v.sentAt, backend: b.name, transport: t, cls, detail });
    ctx.log(`WRONG ALLOW: ${b.name} ${t} ${cls}: ${detail}`);
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
        if (stats.validErrorsOutsideDetail.length < 20) stats.validErrorsOutsideDetail.push(`${ctx.secs(v.sentAt)} ${b.name} ${t}: ${v.reason}`);
      }
    } else if (durabilityFault(ctx, s, v.sentAt)) {
      stats.validDeniedWindow++;
    } else {
      stats.validDenied++;
      if (stats.validDeniedDetail.length < 20)
        stats.validDeniedDetail.push(
          `${ctx.secs(v.sentAt)} ${b.name} ${t}: session #${s.n} (${s.user}, created ${ctx.secs(s.createdAt)} on ${s.createdOn}) denied: ${v.reason}`,
        );
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
        ctx.log(`destroyed session #${s.n} allowed ${v.sentAt - s.destroyedAt} ms after its destroy (${b.name} ${t}, ${v.reason}); judged at the end`);
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

export interface FinalCheck {
  checked: number;
  protectedLive: number;
  lost: Array<{ s: Session; answer: string }>;
  lostInWindow: Array<{ s: Session; answer: string; fault: Fault }>;
  destroyedChecked: number;
  destroyedAllowedAtEnd: number;
  unresolved: Array<{ s: Session; answer: string }>;
}

/** Asks replica A (auth-direct) and replica B (gRPC) about a session; retries store errors. */
async function resolveAtEnd(ctx: SoakContext, s: Session): Promise<{ kind: 'allow' | 'deny' | 'error'; answer: string }> {
  let last = '';
  for (let attempt = 0; attempt < 20; attempt++) {
    const probe = { path: appPath(), cookie: cookieOf(s.token) };
    const [x, y] = await Promise.all([viaAuth(ctx, s.backend.a, probe), viaGrpc(ctx, s.backend, probe)]);
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

/** Every live and destroyed session, asked on both replicas once everything has recovered. */
export async function finalCheck(ctx: SoakContext, backends: readonly Backend[]): Promise<FinalCheck> {
  const out: FinalCheck = { checked: 0, protectedLive: 0, lost: [], lostInWindow: [], destroyedChecked: 0, destroyedAllowedAtEnd: 0, unresolved: [] };
  const all = backends.flatMap((b) => b.sessions.filter((s) => s.state === 'live' || s.state === 'destroyed'));
  let next = 0;
  const worker = async () => {
    while (next < all.length) {
      const s = all[next++]!;
      const r = await resolveAtEnd(ctx, s);
      out.checked++;
      if (r.kind === 'error') {
        out.unresolved.push({ s, answer: r.answer });
        continue;
      }
      if (s.state === 'live') {
        const window = durabilityFault(ctx, s);
        if (!window) out.protectedLive++;
        if (r.kind === 'deny') {
          if (window) out.lostInWindow.push({ s, answer: r.answer, fault: window });
          else out.lost.push({ s, answer: r.answer });
        } else if (r.answer.includes('disagree')) out.lost.push({ s, answer: r.answer });
      } else {
        out.destroyedChecked++;
        if (r.kind === 'allow') {
          out.destroyedAllowedAtEnd++;
          s.allowsAfterDestroy.push({ transport: 'auth-direct', at: ctx.now(), destroyedAt: s.destroyedAt! });
        }
      }
    }
  };
  await Promise.all(Array.from({ length: 6 }, worker));
  return out;
}

/**
 * Destroyed sessions allowed after their destroy: a store fault right after the destroy can lose
 * it (the session is then back for good, "resurrected"); anything else is a wrong allow.
 */
export function judgeAllowsAfterDestroy(ctx: SoakContext, backends: readonly Backend[], trafficEnd: number): Session[] {
  const resurrected: Session[] = [];
  for (const b of backends) {
    for (const s of b.destroyed) {
      if (s.allowsAfterDestroy.length === 0) continue;
      const lostByStore = s.backend.faults.some((f) => f.at >= s.destroyedAt! && f.at - s.destroyedAt! < ctx.opts.durabilityWindowMs);
      const backAtEnd = s.allowsAfterDestroy.some((x) => x.at >= trafficEnd);
      if (lostByStore && backAtEnd) resurrected.push(s);
      else {
        for (const x of s.allowsAfterDestroy) {
          ctx.stats.wrongAllows.push({
            at: x.at,
            backend: b.name,
            transport: x.transport,
            cls: 'destroyed',
            detail: `session #${s.n} (destroyed ${ctx.secs(s.destroyedAt)} via ${s.destroyedVia}) allowed ${x.at - x.destroyedAt} ms after its destroy answered 204${x.at >= trafficEnd ? ' (final check)' : ''}`,
          });
        }
      }
    }
  }
  return resurrected;
}
