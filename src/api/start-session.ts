/**
 * The one way a session begins, whoever asks (the login service's POST /~session, the
 * development login, the built-in OpenID Connect login): always a fresh ID, so a cookie the
 * browser already holds is never reused (no fixation), filed under its user and, for an OpenID
 * login, under its provider's sid and sub.
 */
import type { Policy } from '../core/policy.js';
import type { Logger } from '../ops/logger.js';
import type { Metrics } from '../ops/metrics.js';
import type { NewSession, SessionRecord } from '../session/record.js';
import { newRecord } from '../session/record.js';
import { sealRecord } from '../session/seal.js';
import type { SessionOperations } from '../store/types.js';

export interface StartSessionDeps {
  readonly store: SessionOperations;
  readonly clock: () => number;
  readonly log: Logger;
  readonly metrics?: Pick<Metrics, 'sessionCreated'> | undefined;
}

export interface Started {
  readonly record: SessionRecord;
  readonly setCookie: string;
}

/** `via`: `api`, `dev` or `oidc`, for the log line. Null when the store failed (logged). */
export async function startSession(deps: StartSessionDeps, policy: Policy, data: NewSession, via: 'api' | 'dev' | 'oidc'): Promise<Started | null> {
  const now = deps.clock();
  const issued = policy.tokens.issue();
  const record = newRecord(data, policy.times, now);
  try {
    await deps.store.create(
      issued.key,
      sealRecord(record, issued.key, issued.secret, policy.userRefs.ref(record.user_id), policy.userRefs.links(record.login)),
    );
  } catch (err) {
    deps.log.warn({ msg: 'session create failed', reason: 'store_unavailable', err: (err as Error).message });
    return null;
  }
  if (via === 'dev') deps.log.warn({ msg: 'development login', user_id: record.user_id, roles: record.roles });
  else deps.log.info({ msg: 'session created', user_id: record.user_id, via });
  deps.metrics?.sessionCreated();
  return { record, setCookie: policy.cookies.issue(issued.token, record.expires_at, now) };
}
