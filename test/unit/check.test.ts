/**
 * check(): the async step around the core, with the real memory store and an injected clock.
 * Failing stores here are collaborators of the unit (the claim is about check, not a store).
 */
import { describe, expect, it } from 'vitest';
import { createCheck } from '../../src/core/check.js';
import type { ExternalSource } from '../../src/core/external.js';
import type { Policy } from '../../src/core/policy.js';
import type { AllowDecision, Decision } from '../../src/core/types.js';
import { newRecord } from '../../src/session/record.js';
import { sealRecord } from '../../src/session/seal.js';
import { storeKeyOf } from '../../src/session/token.js';
import { createMemoryStore } from '../../src/store/memory.js';
import { type SessionStore, StoreUnavailableError } from '../../src/store/types.js';
import { checkResponse } from '../../src/transport/envoy-grpc.js';
import { M, record, request, S, T0, TIMES, testPolicy } from '../support/fixtures.js';

function setup(store?: SessionStore) {
  const clock = { now: T0 };
  const policy = testPolicy();
  const memory = createMemoryStore({ maxEntries: 1000, sweepInterval: 0, clock: () => clock.now });
  const decisions: Decision[] = [];
  const effectErrors: string[] = [];
  const check = createCheck({
    policy: () => policy,
    store: store ?? memory,
    clock: () => clock.now,
    observe: (_r, d) => decisions.push(d),
    onEffectError: (kind) => effectErrors.push(kind),
  });
  const login = async (roles: string[] = ['user']) => {
    const issued = policy.tokens.issue();
    const r = newRecord({ user_id: 'alice', roles, attributes: {} }, TIMES, clock.now);
    await memory.create(issued.key, sealRecord(r, issued.key, issued.secret, policy.userRefs.ref('alice')));
    return issued;
  };
  const ask = (token: string, uri = '/') => check(request({ uri, headers: { cookie: `sessiongate=${token}` } }));
  return { clock, policy, memory, check, login, ask, decisions, effectErrors };
}

const cookieToken = (setCookie: string) => /^sessiongate=([^;]+);/.exec(setCookie)![1]!;
const idOf = (token: string) => token.split('.')[0]!;

describe('check', () => {
  it('allows a live session and reports every decision once', async () => {
    const t = setup();
    const { token } = await t.login();
    expect(await t.ask(token)).toMatchObject({ result: 'allow', reason: 'authenticated', userId: 'alice' });
    expect(await t.ask('nonsense')).toMatchObject({ result: 'deny', reason: 'malformed_cookie' });
    expect(t.decisions.map((d) => d.reason)).toEqual(['authenticated', 'malformed_cookie']);
  });

  it('touches the store once the touch interval passed', async () => {
    const t = setup();
    const { token, key } = await t.login();
    t.clock.now = T0 + 2 * M;
    await t.ask(token);
    expect((await t.memory.get(key))?.touched_at).toBe(T0 + 2 * M);
    // Idle now counts from the touch: 29 minutes later the session still lives.
    t.clock.now = T0 + 31 * M - 1;
    expect((await t.ask(token)).result).toBe('allow');
  });

  it('rotates after rotate_after: new cookie out, old one good for the grace window only', async () => {
    const t = setup();
    const first = await t.login();
    for (let m = 10; m < 30; m += 10) {
      t.clock.now = T0 + m * M;
      const d = (await t.ask(first.token)) as AllowDecision;
      expect(d.result).toBe('allow');
      expect(d.setCookie).toBeUndefined();
    }
    t.clock.now = T0 + 30 * M;
    const rotated = (await t.ask(first.token)) as AllowDecision;
    expect(rotated).toMatchObject({ result: 'allow', sessionState: 'rotated' });
    expect(rotated.setCookie).toMatch(
      /^sessiongate=[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{43}; Max-Age=\d+; Path=\/; Expires=.*; HttpOnly; Secure; SameSite=Lax$/,
    );
    const next = cookieToken(rotated.setCookie!);
    expect(next).not.toBe(first.token);

    // A request that was in flight with the old cookie still gets through, without a second rotation.
    t.clock.now += TIMES.rotationGrace - 1;
    const late = (await t.ask(first.token)) as AllowDecision;
    expect(late).toMatchObject({ result: 'allow', sessionState: 'grace' });
    expect(late.setCookie).toBeUndefined();
    expect(await t.ask(next)).toMatchObject({ result: 'allow', sessionState: 'active' });
    t.clock.now += 1;
    expect(await t.ask(first.token)).toMatchObject({ result: 'deny', reason: 'rotated' });
    expect(await t.ask(next)).toMatchObject({ result: 'allow', userId: 'alice' });
    // The rotated session keeps the original absolute expiry.
    expect((await t.memory.get(storeKeyOf(idOf(next))))?.expires_at).toBe(T0 + TIMES.absoluteTtl);
    t.clock.now = T0 + TIMES.absoluteTtl;
    expect((await t.ask(next)).result).toBe('deny');
  });

  it('issues one new ID when concurrent requests all see rotation due', async () => {
    const t = setup();
    const first = await t.login();
    t.clock.now = T0 + 20 * M;
    await t.ask(first.token); // touch, so the idle clock does not run out first
    t.clock.now = T0 + 30 * M;
    const answers = (await Promise.all([t.ask(first.token), t.ask(first.token), t.ask(first.token)])) as AllowDecision[];
    expect(answers.every((a) => a.result === 'allow')).toBe(true);
    expect(answers.filter((a) => a.setCookie !== undefined)).toHaveLength(1);
  });

  it('turns a store failure into store_unavailable, not a deny', async () => {
    const broken: SessionStore = {
      ...createMemoryStore({ maxEntries: 1, sweepInterval: 0, clock: () => T0 }),
      get: () => Promise.reject(new StoreUnavailableError('down')),
    };
    const t = setup(broken);
    const { token } = t.policy.tokens.issue();
    expect(await t.ask(token)).toMatchObject({ result: 'error', reason: 'store_unavailable' });
  });

  it('keeps an allow when the touch write fails, and says so', async () => {
    const t = setup();
    const { token } = await t.login();
    const failingTouch: SessionStore = { ...t.memory, get: t.memory.get, touch: () => Promise.reject(new StoreUnavailableError('down')) };
    const check = createCheck({ policy: () => t.policy, store: failingTouch, clock: () => T0 + 5 * M, onEffectError: (k) => t.effectErrors.push(k) });
    expect(await check(request({ headers: { cookie: `sessiongate=${token}` } }))).toMatchObject({ result: 'allow' });
    expect(t.effectErrors).toEqual(['touch']);
  });

  it('answers internal_error, never allow, when something throws', async () => {
    const t = setup();
    const check = createCheck({
      policy: () => {
        throw new Error('boom');
      },
      store: t.memory,
      clock: () => T0,
    });
    expect(await check(request())).toMatchObject({ result: 'error', reason: 'internal_error' });
  });

  it('public paths never reach the store', async () => {
    let reads = 0;
    const t = setup();
    const counting: SessionStore = { ...t.memory, get: (k) => (reads++, t.memory.get(k)) };
    const check = createCheck({ policy: () => t.policy, store: counting, clock: () => T0 + S });
    const { token } = await t.login();
    await check(request({ uri: '/~assets/app.js', headers: { cookie: `sessiongate=${token}` } }));
    expect(reads).toBe(0);
    await check(request({ uri: '/app', headers: { cookie: `sessiongate=${token}` } }));
    expect(reads).toBe(1);
  });

  it('carries the headers to remove in the decision: a reload while the store answers cannot pair two policies', async () => {
    const t = setup();
    const { token } = await t.login(); // alice has no e-mail: the first policy removes x-user-email
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const slow: SessionStore = { ...t.memory, get: async (k) => (await gate, t.memory.get(k)) };
    let current: Policy = t.policy;
    const check = createCheck({ policy: () => current, store: slow, clock: () => T0 });
    const pending = check(request({ headers: { cookie: `sessiongate=${token}` } }));
    current = testPolicy({ headers: { 'X-User-Id': 'user_id' }, stripHeaders: [] }); // the reload
    release();
    const d = (await pending) as AllowDecision;
    expect(d.identity).toEqual([
      ['X-User-Id', 'alice'],
      ['X-User-Roles', 'user'],
    ]);
    expect(d.headersToRemove).toEqual(['x-user-email', 'x-auth-user', 'x-sessiongate-degraded', 'cookie']);
    expect(checkResponse(d).ok_response?.headers_to_remove).toEqual(d.headersToRemove);
  });

  it('reads the clock once per request, external lookup included', async () => {
    const t = setup();
    const seen: number[] = [];
    const source: ExternalSource = {
      kind: 'test',
      cookie: 'app_sid',
      read: (v) => ({ ok: true, sid: v }),
      lookup: (_sid, now) => (seen.push(now), Promise.resolve({ ...record({}, now), fixed: true })),
      close: () => Promise.resolve(),
    };
    let reads = 0;
    const check = createCheck({ policy: () => t.policy, store: t.memory, clock: () => (reads++, T0 + reads), external: [source] });
    const { token } = t.policy.tokens.issue(); // a sessiongate cookie the store does not know: the application's session decides
    const d = await check(request({ headers: { cookie: `sessiongate=${token}; app_sid=s1` } }));
    expect(d).toMatchObject({ result: 'allow', userId: 'alice' });
    expect(reads).toBe(1);
    expect(seen).toEqual([T0 + 1]);
  });
});
