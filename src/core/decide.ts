/**
 * The decision core. `evaluate` reads the request (path, rule, spoofed headers, credential)
 * and `decide` turns that, the store's answer and the time into a Decision. Both are
 * synchronous and pure: no I/O, no clock, no globals. The only waiting happens in check().
 */

import type { SessionRecord } from '../session/record.js';
import { rotationDue, sessionStatus, touchDue, touchedTimes } from '../session/record.js';
import type { Credential } from './credential.js';
import { readCredential } from './credential.js';
import { allValues } from './header-values.js';
import { DEGRADED_HEADER } from './headers.js';
import { readPath } from './path.js';
import type { Policy } from './policy.js';
import type { DenyReason, ErrorReason } from './reasons.js';
import { isUnauthenticated } from './reasons.js';
import type { RedirectPolicy } from './redirect.js';
import type { Rule } from './rules.js';
import { admitsMethods, DEFAULT_RULE } from './rules.js';
import type { AllowDecision, AuthRequest, Decision, DenyDecision, ErrorDecision } from './types.js';

export interface Evaluated {
  readonly request: AuthRequest;
  /** Normalised path; null when the target was missing, refused, or read two ways with no safe rule for both. */
  readonly path: string | null;
  readonly rule: Rule;
  /** The proxy named a policy that does not exist (rule is then the default). */
  readonly unknownPolicy: boolean;
  readonly spoofed: readonly string[];
  readonly credential: Credential;
}

/** What the store said; `skipped` when no lookup was needed or possible. */
export type Lookup =
  | { readonly kind: 'skipped' }
  | { readonly kind: 'found'; readonly record: SessionRecord }
  | { readonly kind: 'missing' }
  | { readonly kind: 'failed' };

/** A store write the decision asks for; check() performs it. */
export type Effect =
  | { readonly kind: 'touch'; readonly key: string; readonly touchedAt: number; readonly idleExpiresAt: number }
  | { readonly kind: 'rotate'; readonly key: string; readonly record: SessionRecord };

/** A decision, and for an allowed session the store write it asks for. */
export type Outcome = { readonly decision: Decision; readonly effect?: undefined } | { readonly decision: AllowDecision; readonly effect: Effect | undefined };

const NO_CREDENTIAL: Credential = { kind: 'none', bearer: false };

export function evaluate(request: AuthRequest, policy: Policy): Evaluated {
  const spoofed = policy.identity.findSpoofed(request.headers);
  const reading = request.uri === undefined ? null : readPath(request.uri);
  if (reading === null) return { request, path: null, rule: DEFAULT_RULE, unknownPolicy: false, spoofed, credential: NO_CREDENTIAL };
  const path = reading.path;
  if (request.policy !== undefined) {
    const named = policy.rules.named(request.policy);
    if (named === undefined) return { request, path, rule: DEFAULT_RULE, unknownPolicy: true, spoofed, credential: NO_CREDENTIAL };
    return { request, path, rule: named, unknownPolicy: false, spoofed, credential: credentialFor(named, request, policy) };
  }
  const rule = policy.rules.match(path, reading.readings);
  if (rule === null) return { request, path: null, rule: DEFAULT_RULE, unknownPolicy: false, spoofed, credential: NO_CREDENTIAL };
  return { request, path, rule, unknownPolicy: false, spoofed, credential: credentialFor(rule, request, policy) };
}

/** Public rules never look at credentials: no HMAC, no lookup. */
function credentialFor(rule: Rule, request: AuthRequest, policy: Policy): Credential {
  return rule.access === 'public' ? NO_CREDENTIAL : readCredential(request.headers, policy.cookies.name, policy.tokens);
}

/**
 * The decision when it does not depend on a session (bad request or path, unknown policy,
 * method refused, public path, spoofed identity on a protected path); null when it does.
 */
function sessionless(e: Evaluated, policy: Policy): Decision | null {
  if (e.request.uri === undefined) return deny(e, 'bad_request', policy);
  if (e.path === null) return deny(e, 'bad_path', policy);
  if (e.unknownPolicy) return deny(e, 'unknown_policy', policy);
  const rule = e.rule;
  // Every method the application may read the request as (override headers, `_method`, a POST body).
  if (rule.methods !== null && !admitsMethods(rule.methods, e.request, rule.bodyOverride)) return deny(e, 'method_not_allowed', policy);
  if (rule.access === 'public') return allow(e, 'public', policy);
  if (rule.access !== 'anonymous' && e.spoofed.length > 0 && policy.spoofGuard === 'deny') return deny(e, 'spoofed_header', policy);
  return null;
}

/** Does the evaluated request need the store to be asked? Only when a session can change the answer. */
export function needsLookup(e: Evaluated, policy: Policy): boolean {
  return (e.credential.kind === 'valid' || e.credential.kind === 'external') && sessionless(e, policy) === null;
}

/**
 * Whether an application's own session (external.ts) could decide this request: no sessiongate
 * credential, or one that failed (`failedOwn`: a stale or bad sessiongate cookie left in the
 * browser must not hide a live application session).
 */
export function wantsExternal(e: Evaluated, policy: Policy, failedOwn = false): boolean {
  return (e.credential.kind === 'none' || e.credential.kind === 'invalid' || failedOwn) && sessionless(e, policy) === null;
}

/** A top-level browser navigation (bearer callers are excluded by the caller), which gets a login redirect rather than a bare 401. */
export function isBrowserNavigation(req: AuthRequest): boolean {
  const accept = allValues(req.headers['accept'], ', ');
  if (accept === undefined || !accept.includes('text/html')) return false;
  const xrw = allValues(req.headers['x-requested-with'], ', ');
  return xrw === undefined || xrw.toLowerCase() !== 'xmlhttprequest';
}

const HOST = /^(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.?|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$/;

/**
 * `login_url?rd=<original URL>`; without rd when the original URL cannot be rebuilt safely or
 * its host is not one a browser may be sent back to (`allowed_redirect_hosts`).
 */
export function loginRedirect(loginUrl: string, req: AuthRequest, redirects?: RedirectPolicy): string {
  const scheme = req.scheme === 'https' || req.scheme === 'http' ? req.scheme : undefined;
  const uri = req.uri;
  if (scheme === undefined || !HOST.test(req.host) || uri === undefined || uri[0] !== '/' || uri[1] === '/' || uri[1] === '\\') return loginUrl;
  const original = `${scheme}://${req.host}${uri}`;
  if (redirects !== undefined && redirects.safeTarget(original, req.host) === undefined) return loginUrl;
  return `${loginUrl}${loginUrl.includes('?') ? '&' : '?'}rd=${encodeURIComponent(original)}`;
}

const NO_IDENTITY: ReadonlyArray<readonly [string, string]> = Object.freeze([]);
const DEGRADED: ReadonlyArray<readonly [string, string]> = Object.freeze([[DEGRADED_HEADER, 'store_unavailable'] as const]);

/**
 * Every allow (public, anonymous, authenticated, degraded) carries all an adapter writes: the
 * identity, the headers to remove, what replaces the client's Cookie and Authorization upstream
 * when they carry sessiongate's credential (upstream.ts), and how long a proxy may reuse it.
 * One object literal of one shape: this runs for every allow, on the hot path.
 */
function allowWith(
  e: Evaluated,
  reason: AllowDecision['reason'],
  policy: Policy,
  identity: ReadonlyArray<readonly [string, string]>,
  cacheFor: number | undefined,
  userId?: string,
  sessionState?: AllowDecision['sessionState'],
): AllowDecision {
  const up = policy.upstream.rewrite(e.request.headers);
  const headersToRemove = policy.identity.headersToRemove(identity, e.spoofed, up?.cookie === '', up?.dropAuthorization === true);
  return {
    result: 'allow',
    reason,
    spoofed: e.spoofed,
    identity,
    headersToRemove,
    path: e.path ?? undefined,
    userId,
    sessionState,
    upstreamCookie: up?.cookie,
    dropAuthorization: up?.dropAuthorization || undefined,
    cacheFor,
  };
}

function allow(e: Evaluated, reason: AllowDecision['reason'], policy: Policy): AllowDecision {
  // Answers without a session depend on nothing that expires; a degraded answer is never reused.
  const cacheFor = policy.proxyCacheTtl <= 0 ? undefined : reason === 'store_unavailable_open' ? 0 : Math.floor(policy.proxyCacheTtl / 1000);
  return allowWith(e, reason, policy, reason === 'store_unavailable_open' ? DEGRADED : NO_IDENTITY, cacheFor);
}

/**
 * How long a proxy may reuse an allow for this session: the configured TTL, but never past the
 * session's idle, rotation or absolute deadline, and not at all when this answer asks for a
 * store write (touch, rotation) or is served from a rotated-away ID.
 */
function cacheForSession(policy: Policy, session: SessionRecord, now: number, effect: Effect | undefined, grace: boolean): number | undefined {
  if (policy.proxyCacheTtl <= 0) return undefined;
  if (effect !== undefined || grace) return 0;
  const rotation = session.fixed ? Infinity : session.issued_at + policy.times.rotateAfter;
  const until = Math.min(now + policy.proxyCacheTtl, session.idle_expires_at, rotation, session.expires_at);
  return Math.max(0, Math.floor((until - now) / 1000));
}

function allowSession(e: Evaluated, session: SessionRecord, policy: Policy, state: 'active' | 'grace', cacheFor: number | undefined): AllowDecision {
  return allowWith(e, 'authenticated', policy, policy.identity.identityFor(session), cacheFor, session.user_id, state);
}

export type Resolved =
  | { readonly ok: true; readonly key: string; readonly session: SessionRecord; readonly grace: boolean }
  | { readonly ok: false; readonly reason: DenyReason | 'store_failed' };

/** The session behind the credential, or why there is none usable. */
export function resolveSession(c: Credential, lookup: Lookup, now: number): Resolved {
  if (c.kind === 'none') return { ok: false, reason: 'no_session' };
  if (c.kind === 'invalid') return { ok: false, reason: c.reason };
  if (lookup.kind === 'failed') return { ok: false, reason: 'store_failed' };
  if (lookup.kind !== 'found') return { ok: false, reason: 'unknown_session' };
  const status = sessionStatus(lookup.record, now);
  const key = c.kind === 'external' ? `external:${c.source}:${c.sid}` : c.key;
  if (status === 'valid' || status === 'grace') return { ok: true, key, session: lookup.record, grace: status === 'grace' };
  return { ok: false, reason: status };
}

function deny(e: Evaluated, reason: DenyReason, policy: Policy, userId?: string): DenyDecision {
  if (!isUnauthenticated(reason)) {
    return { result: 'deny', reason, status: 403, spoofed: e.spoofed, userId, path: e.path ?? undefined };
  }
  const bearer = e.credential.bearer;
  let location: string | undefined;
  let wwwAuthenticate: string | undefined;
  if (bearer) {
    wwwAuthenticate = e.credential.kind === 'none' ? 'Bearer realm="sessiongate"' : 'Bearer realm="sessiongate", error="invalid_token"';
  } else if (policy.loginUrl !== null && isBrowserNavigation(e.request)) {
    location = loginRedirect(policy.loginUrl, e.request, policy.redirects);
  }
  return { result: 'deny', reason, status: 401, spoofed: e.spoofed, path: e.path ?? undefined, location, wwwAuthenticate };
}

export function errorDecision(e: { readonly spoofed: readonly string[]; readonly path?: string | null }, reason: ErrorReason): ErrorDecision {
  return { result: 'error', reason, spoofed: e.spoofed, path: e.path ?? undefined };
}

export function decide(e: Evaluated, lookup: Lookup, policy: Policy, now: number): Outcome {
  const early = sessionless(e, policy);
  if (early !== null) return { decision: early };
  const rule = e.rule;
  const protectedRule = rule.access !== 'anonymous';

  const r = resolveSession(e.credential, lookup, now);
  if (!r.ok) {
    if (r.reason === 'store_failed') {
      if (policy.failureMode === 'closed') return { decision: errorDecision(e, 'store_unavailable') };
      return { decision: allow(e, 'store_unavailable_open', policy) };
    }
    return { decision: protectedRule ? deny(e, r.reason, policy) : allow(e, 'anonymous', policy) };
  }
  const session = r.session;

  if (rule.roles !== null && !session.roles.some((r) => rule.roles!.has(r))) {
    return { decision: deny(e, 'forbidden_role', policy, session.user_id) };
  }

  // Upkeep, for IDs not already rotated away (rotationDue and touchDue both check that).
  const t = policy.times;
  let effect: Effect | undefined;
  if (rotationDue(session, t, now)) effect = { kind: 'rotate', key: r.key, record: session };
  else if (touchDue(session, t, now)) {
    const times = touchedTimes(session, t, now);
    effect = { kind: 'touch', key: r.key, touchedAt: times.touched_at, idleExpiresAt: times.idle_expires_at };
  }
  const cacheFor = cacheForSession(policy, session, now, effect, r.grace);
  return { decision: allowSession(e, session, policy, r.grace ? 'grace' : 'active', cacheFor), effect };
}
