/** Shared fixtures for unit tests: a policy built the way production builds it. */
import { buildPolicy, type Policy, type PolicySpec } from '../../src/core/policy.js';
import type { AuthRequest } from '../../src/core/types.js';
import { newRecord, type SessionRecord, successorRecord } from '../../src/session/record.js';
import type { StoredSession } from '../../src/session/seal.js';

export const SECRET = Buffer.from('unit-test-secret-0123456789abcdef0123456789');
export const OTHER_SECRET = Buffer.from('another-secret-0123456789abcdef0123456789ab');

export const S = 1000;
export const M = 60 * S;
export const H = 60 * M;
export const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);

export const TIMES = { absoluteTtl: 12 * H, idleTtl: 30 * M, touchInterval: 1 * M, rotateAfter: 30 * M, rotationGrace: 30 * S };

export function policySpec(over: Partial<PolicySpec> = {}): PolicySpec {
  return {
    rules: [
      { path: '/~assets/', access: 'public' },
      { path: '/blog/', access: 'anonymous' },
      { path: '/admin/', access: 'roles', roles: ['admin'], methods: ['GET', 'POST'] },
      { path: '/', access: 'authenticated' },
    ],
    policies: { admin: { access: 'roles', roles: ['admin'] }, everyone: { access: 'public' } },
    headers: { 'X-User-Id': 'user_id', 'X-User-Roles': 'roles', 'X-User-Email': 'email' },
    stripHeaders: ['X-Auth-User'],
    spoofGuard: 'deny',
    secrets: [SECRET],
    cookie: { name: 'sessiongate', domain: null, path: '/', httpOnly: true, secure: true, sameSite: 'lax', sessionOnly: false },
    times: TIMES,
    loginUrl: 'https://login.example.com/login',
    failureMode: 'closed',
    ...over,
  };
}

export function testPolicy(over: Partial<PolicySpec> = {}): Policy {
  return buildPolicy(policySpec(over));
}

export function request(over: Partial<AuthRequest> & { headers?: Record<string, string> } = {}): AuthRequest {
  return {
    transport: 'nginx',
    method: 'GET',
    scheme: 'https',
    host: 'app.example.com',
    uri: '/',
    ...over,
    headers: { ...(over.headers ?? {}) },
  };
}

export function record(over: Partial<SessionRecord> = {}, now = T0): SessionRecord {
  return { ...newRecord({ user_id: 'alice', roles: ['user'], attributes: { email: 'alice@example.com' } }, TIMES, now), ...over };
}

/** A stored session as a store holds it: the clock in the clear, identity sealed (opaque here). */
export function stored(over: Partial<StoredSession> = {}, now = T0): StoredSession {
  const { user_id: _u, roles: _r, attributes: _a, ...clock } = record({}, now);
  return { v: 2, ...clock, user: 'user-ref-alice', data: 'c2VhbGVk', ...over };
}

/** The stored successor of a stored session, rotated at `now`. */
export function storedSuccessor(s: StoredSession, now: number): StoredSession {
  const { user_id: _u, roles: _r, attributes: _a, ...clock } = successorRecord({ ...s, user_id: 'x', roles: [], attributes: {} }, TIMES, now);
  return { v: 2, ...clock, user: s.user, data: 'bmV4dA' };
}
