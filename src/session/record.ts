/**
 * The session record and its lifecycle arithmetic: creation, expiry (absolute and idle),
 * touch and rotation. The record carries its own expiry times and is always checked against
 * them: a cookie can be tampered with, the record cannot. All functions are pure; `now` is
 * passed in, in milliseconds since the epoch.
 */

/** Role names: what a roles header can carry unambiguously (no commas, no spaces). */
export const ROLE_NAME = /^[A-Za-z0-9_.:/@-]{1,128}$/;
export const ROLE_NAME_HINT = 'must be a role name (letters, digits, _ . : / @ -)';

/** C0, DEL and C1 control characters: never allowed in session data, never in a header. */
export const CONTROL_CHARS = /[\x00-\x1f\x7f-\x9f]/;

/**
 * A UTF-16 surrogate outside a pair (`"\ud800"` is valid JSON): not a character, with no UTF-8
 * form, so it can be neither percent-encoded into a header nor sent over gRPC. Never allowed in
 * session data either. (With the `u` flag a well-formed pair is one code point, not a match.)
 */
export const LONE_SURROGATE = /\p{Cs}/u;

/** Why a text cannot be session data (it could never become a header value); undefined when it can. */
export function textProblem(s: string): string | undefined {
  if (CONTROL_CHARS.test(s)) return 'control characters are not allowed';
  if (LONE_SURROGATE.test(s)) return 'must be valid Unicode (a lone surrogate is not)';
  return undefined;
}

/** The clock fields of a session: all a store needs to expire, touch and rotate it. */
export interface SessionClock {
  /** When the session (not this ID) began; kept across rotations. */
  readonly created_at: number;
  /** When this ID was issued; rotation is due at issued_at + rotate_after. */
  readonly issued_at: number;
  /** Absolute end of the session. */
  readonly expires_at: number;
  /** Last time the idle clock was refreshed. */
  readonly touched_at: number;
  /** Idle end: touched_at + idle_ttl, never past expires_at. */
  readonly idle_expires_at: number;
  /** Set once this ID was rotated away: it stays valid until then. */
  readonly grace_until?: number | undefined;
  /** Store key of the ID this one was rotated to, so logout with an old cookie ends both. */
  readonly successor?: string | undefined;
}

/**
 * How a session began when sessiongate's own OpenID Connect login made it: the provider's
 * name, its subject and session ID (`sid`), and the ID token a logout hands back as
 * `id_token_hint`. Sealed with the identity; the store sees only keyed hashes of sid and sub.
 */
export interface LoginOrigin {
  readonly provider: string;
  readonly sub: string;
  readonly sid?: string | undefined;
  readonly id_token?: string | undefined;
}

/** A session as the core sees it: identity in the clear (stores hold it sealed: seal.ts). */
export interface SessionRecord extends SessionClock {
  readonly user_id: string;
  readonly roles: readonly string[];
  readonly attributes: Readonly<Record<string, unknown>>;
  /**
   * No upkeep: never touched, never rotated (API tokens; sessions read from an application's
   * own store). Its expiry times are all there is.
   */
  readonly fixed?: true | undefined;
  /** Set when the built-in OpenID Connect login made the session. */
  readonly login?: LoginOrigin | undefined;
}

export interface SessionTimes {
  readonly absoluteTtl: number;
  readonly idleTtl: number;
  readonly touchInterval: number;
  readonly rotateAfter: number;
  readonly rotationGrace: number;
}

export interface NewSession {
  readonly user_id: string;
  readonly roles: readonly string[];
  readonly attributes: Readonly<Record<string, unknown>>;
  readonly login?: LoginOrigin | undefined;
}

export function newRecord(input: NewSession, t: SessionTimes, now: number): SessionRecord {
  const expires_at = now + t.absoluteTtl;
  return {
    user_id: input.user_id,
    roles: input.roles,
    attributes: input.attributes,
    ...(input.login ? { login: input.login } : {}),
    created_at: now,
    issued_at: now,
    expires_at,
    touched_at: now,
    idle_expires_at: Math.min(now + t.idleTtl, expires_at),
  };
}

export type SessionStatus = 'valid' | 'grace' | 'expired' | 'idle_timeout' | 'rotated';

export function sessionStatus(r: SessionClock, now: number): SessionStatus {
  if (now >= r.expires_at) return 'expired';
  if (r.grace_until !== undefined) return now < r.grace_until ? 'grace' : 'rotated';
  if (now >= r.idle_expires_at) return 'idle_timeout';
  return 'valid';
}

/** The last moment the record authenticates anyone (exclusive). */
export function validUntil(r: SessionClock): number {
  if (r.grace_until !== undefined) return Math.min(r.grace_until, r.expires_at);
  return Math.min(r.expires_at, r.idle_expires_at);
}

/**
 * How long a store keeps a record after it stopped being valid, so a late request is told why
 * (`expired`, `idle_timeout`, `rotated`: a replayed rotated-away cookie is a theft signal
 * worth its log line) rather than `unknown_session`. It never makes a record valid again.
 */
export const RETENTION_MS = 10 * 60_000;

/** When a store may forget the record. */
export function storeDeadline(r: SessionClock): number {
  return validUntil(r) + RETENTION_MS;
}

export function rotationDue(r: SessionRecord, t: SessionTimes, now: number): boolean {
  return r.fixed !== true && r.grace_until === undefined && now - r.issued_at >= t.rotateAfter;
}

export function touchDue(r: SessionRecord, t: SessionTimes, now: number): boolean {
  return r.fixed !== true && r.grace_until === undefined && now - r.touched_at >= t.touchInterval;
}

export function touchedTimes(r: SessionRecord, t: SessionTimes, now: number): { touched_at: number; idle_expires_at: number } {
  return { touched_at: now, idle_expires_at: Math.min(now + t.idleTtl, r.expires_at) };
}

/** The record a rotation writes under the new ID: same session, fresh ID clocks. */
export function successorRecord(r: SessionRecord, t: SessionTimes, now: number): SessionRecord {
  return {
    user_id: r.user_id,
    roles: r.roles,
    attributes: r.attributes,
    ...(r.login ? { login: r.login } : {}),
    created_at: r.created_at,
    issued_at: now,
    expires_at: r.expires_at,
    ...touchedTimes(r, t, now),
  };
}
