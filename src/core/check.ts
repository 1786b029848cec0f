/**
 * check(): the one asynchronous step around the pure core. It evaluates the request, asks
 * the store when a session must be resolved, decides, then performs the store write the
 * decision asked for (touch or rotation). A failed write never turns an allow into a deny:
 * the session was read, so the user stays logged in.
 */

import { type SessionRecord, sessionStatus, successorRecord } from '../session/record.js';
import { type RecordOpener, type StoredSession, sealRecord } from '../session/seal.js';
import { familyOf } from '../session/token.js';
import type { SessionOperations } from '../store/types.js';
import type { Credential } from './credential.js';
import type { Effect, Lookup } from './decide.js';
import { decide, errorDecision, evaluate, needsLookup, wantsExternal } from './decide.js';
import { type ExternalSource, readExternalCredential } from './external.js';
import type { Policy } from './policy.js';
import type { AllowDecision, AuthRequest, Decision } from './types.js';

export interface CheckDeps {
  /** The current policy; a getter so a reload swaps it atomically. */
  readonly policy: () => Policy;
  /** Session reads and the writes a decision asks for (touch, rotate); nothing else of a store. */
  readonly store: Pick<SessionOperations, 'get' | 'touch' | 'rotate'>;
  readonly clock: () => number;
  /** Called once per decision, after it is final. */
  readonly observe?: (req: AuthRequest, decision: Decision, startedAt: bigint) => void;
  /** Called when a touch or rotation write fails (the decision stands). */
  readonly onEffectError?: (effect: Effect['kind'], err: unknown) => void;
  /** Called when a session ID was rotated. */
  readonly onRotate?: () => void;
  /** Applications' own session stores, asked when a request has no sessiongate credential. */
  readonly external?: readonly ExternalSource[];
}

export type Check = (req: AuthRequest) => Promise<Decision>;

const SKIPPED: Lookup = { kind: 'skipped' };
const MISSING: Lookup = { kind: 'missing' };
const FAILED: Lookup = { kind: 'failed' };

/** Where a credential's session is looked up, at one instant. */
export interface SessionSource {
  readonly store: Pick<SessionOperations, 'get'>;
  /** Opens sealed records (the policy's, so identities are remembered across requests). */
  readonly records: RecordOpener;
  /** Applications' own stores, indexed by an external credential's `source`. */
  readonly external: readonly ExternalSource[];
  /** The request's one clock reading. */
  readonly now: number;
}

/**
 * Asks the store for the credential's session and opens it with the credential's secret. A
 * store error becomes `failed`, never a throw; a record that does not open under this secret
 * (altered in the store) counts as missing.
 */
export async function lookupSession(credential: Credential, from: SessionSource): Promise<Lookup> {
  if (credential.kind === 'external') {
    try {
      const record = await from.external[credential.source]!.lookup(credential.sid, from.now);
      return record ? { kind: 'found', record } : MISSING;
    } catch {
      return FAILED;
    }
  }
  if (credential.kind !== 'valid') return SKIPPED;
  let stored: StoredSession | null;
  try {
    stored = await from.store.get(credential.key);
  } catch {
    return FAILED;
  }
  const record = stored && from.records.open(stored, credential.key, credential.secret);
  return record ? { kind: 'found', record } : MISSING;
}

function liveAt(r: SessionRecord, now: number): boolean {
  const s = sessionStatus(r, now);
  return s === 'valid' || s === 'grace';
}

export function createCheck(deps: CheckDeps): Check {
  const { store, clock, observe, onEffectError, onRotate } = deps;
  const external = deps.external ?? [];

  async function apply(policy: Policy, effect: Effect, decision: AllowDecision, now: number): Promise<AllowDecision> {
    try {
      if (effect.kind === 'touch') {
        await store.touch(effect.key, effect.touchedAt, effect.idleExpiresAt);
        return decision;
      }
      // Same family tag: old and new key share a Redis Cluster slot, so the rotation is one script.
      const issued = policy.tokens.issue(familyOf(effect.key));
      const t = policy.times;
      const r = effect.record;
      const next = sealRecord(successorRecord(r, t, now), issued.key, issued.secret, policy.userRefs.ref(r.user_id), policy.userRefs.links(r.login));
      const rotated = await store.rotate(effect.key, issued.key, next, now + t.rotationGrace);
      // Lost the race: a concurrent request rotated first and its response carries the new cookie.
      if (!rotated) return { ...decision, sessionState: 'grace' };
      onRotate?.();
      return { ...decision, sessionState: 'rotated', setCookie: policy.cookies.issue(issued.token, effect.record.expires_at, now) };
    } catch (err) {
      onEffectError?.(effect.kind, err);
      return decision;
    }
  }

  return async function check(req: AuthRequest): Promise<Decision> {
    const startedAt = process.hrtime.bigint();
    let decision: Decision;
    try {
      const policy = deps.policy();
      // One clock reading per request: expiry, the external lookup, touch and rotation all agree.
      const now = clock();
      const from: SessionSource = { store, records: policy.records, external, now };
      let e = evaluate(req, policy);
      let found = needsLookup(e, policy) ? await lookupSession(e.credential, from) : SKIPPED;
      if (external.length > 0 && wantsExternal(e, policy, found.kind === 'missing' || (found.kind === 'found' && !liveAt(found.record, now)))) {
        const ext = readExternalCredential(req.headers, external, e.credential.bearer);
        // Only an application cookie that is there replaces what sessiongate's own said.
        if (ext.kind !== 'none') {
          e = { ...e, credential: ext };
          found = needsLookup(e, policy) ? await lookupSession(ext, from) : SKIPPED;
        }
      }
      const outcome = decide(e, found, policy, now);
      decision = outcome.effect ? await apply(policy, outcome.effect, outcome.decision, now) : outcome.decision;
    } catch {
      // A bug must not become an allow: answer an error the proxy treats as a failure.
      decision = errorDecision({ spoofed: [] }, 'internal_error');
    }
    observe?.(req, decision, startedAt);
    return decision;
  };
}
