/**
 * Reading a header that may come as a list (Node gathers some repeated headers into an array;
 * a HeaderMap from elsewhere may hold one too). One rule for every reader:
 *
 * - A field that names one thing (Authorization as the credential, Host, X-Original-Method/-URI,
 *   X-Forwarded-*, X-Real-IP, X-Request-Id): the FIRST value wins (firstValue). Node itself keeps
 *   only the first Authorization and Host, so the credential judged is the one the
 *   application's own server reads.
 * - A field where any value may matter: ALL values (allValues). Cookie, joined with `; ` (a
 *   sessiongate cookie in any of them counts, and is removed from every one); the search for a
 *   sessiongate token to withhold from the upstream, in every Authorization value (a token
 *   never slips through behind another value); Accept and X-Requested-With, joined with `, `
 *   as HTTP combines repeated fields.
 */

export type HeaderValue = string | readonly string[] | undefined;

/** The first value of a header: for fields that name one thing. */
export function firstValue(v: HeaderValue): string | undefined {
  return typeof v === 'string' ? v : v?.[0];
}

/** Every value of a header as one string, joined by `separator`: for fields where any value may matter. */
export function allValues(v: HeaderValue, separator: string): string | undefined {
  return typeof v === 'string' ? v : v?.join(separator);
}
