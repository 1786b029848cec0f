/** Why a built-in login was refused or failed: the codes docs/oidc.md lists, and the labels of sessiongate_logins_total. */
export const LOGIN_REASONS = [
  'invalid_host',
  'provider_error',
  'flow_not_found',
  'state_mismatch',
  'code_exchange_failed',
  'id_token_invalid',
  'userinfo_failed',
  'claims_invalid',
  'role_not_allowed',
  'store_unavailable',
  'provider_unavailable',
] as const;

export type LoginReason = (typeof LOGIN_REASONS)[number];

/** A login's result for metrics: ok, refused (what the user or provider sent), or error (an outage). */
export function loginResult(outcome: LoginReason | 'ok'): 'ok' | 'refused' | 'error' {
  if (outcome === 'ok') return 'ok';
  return outcome === 'store_unavailable' || outcome === 'provider_unavailable' ? 'error' : 'refused';
}
