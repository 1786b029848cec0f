/**
 * The closed set of reason codes. One code is the log field, the metric label and the test
 * expectation at once, so a new code is added here or nowhere.
 */
export const ALLOW_REASONS = [
  'public', // rule needs no session; no store lookup happened
  'anonymous', // rule admits anonymous users and there was no usable session
  'authenticated', // a valid session satisfied the rule
  'store_unavailable_open', // store failed and failure_mode is open
] as const;

export const DENY_REASONS = [
  'no_session', // no credential at all
  'malformed_cookie', // credential present but not of the token's shape
  'bad_signature', // well-formed credential whose MAC does not verify under any secret
  'duplicate_cookie', // several distinct, validly signed session cookies: ambiguous, refuse
  'unknown_session', // signature fine, store has no such session (destroyed, evicted)
  'expired', // absolute lifetime over
  'idle_timeout', // idle lifetime over
  'rotated', // ID was rotated away and its grace window is over
  'forbidden_role', // authenticated, lacks every role the rule names
  'method_not_allowed', // the rule does not admit this method
  'spoofed_header', // client sent a protected identity header (or an alias) on a protected path
  'bad_path', // path cannot be normalised safely
  'bad_request', // the proxy's request lacks what is needed to decide, or is oversize
  'unknown_policy', // the proxy named a per-route policy the configuration does not have
] as const;

export const ERROR_REASONS = ['store_unavailable', 'internal_error'] as const;

export type AllowReason = (typeof ALLOW_REASONS)[number];
export type DenyReason = (typeof DENY_REASONS)[number];
export type ErrorReason = (typeof ERROR_REASONS)[number];
export type Reason = AllowReason | DenyReason | ErrorReason;

export const ALL_REASONS: readonly Reason[] = [...ALLOW_REASONS, ...DENY_REASONS, ...ERROR_REASONS];

/** Deny reasons that mean "who are you?" (401) rather than "not you" (403). */
const UNAUTHENTICATED = new Set<DenyReason>([
  'no_session',
  'malformed_cookie',
  'bad_signature',
  'duplicate_cookie',
  'unknown_session',
  'expired',
  'idle_timeout',
  'rotated',
]);

export function isUnauthenticated(reason: DenyReason): boolean {
  return UNAUTHENTICATED.has(reason);
}
