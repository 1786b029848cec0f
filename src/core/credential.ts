/**
 * Finding the session credential in a request: the session cookie, or a bearer token of the
 * same shape (for non-browser callers). Signatures are verified here, before any store
 * lookup. Pure apart from the HMAC.
 */
import { cookieValues } from '../session/cookie.js';
import type { TokenCodec } from '../session/token.js';
import { firstValue } from './header-values.js';
import type { HeaderMap } from './types.js';

export type Credential =
  | { readonly kind: 'none'; readonly bearer: boolean }
  | { readonly kind: 'invalid'; readonly reason: 'malformed_cookie' | 'bad_signature' | 'duplicate_cookie'; readonly bearer: boolean }
  | { readonly kind: 'valid'; readonly key: string; readonly secret: Buffer; readonly bearer: boolean }
  /** A session of an application's own store (external.ts): `source` indexes the configured sources. */
  | { readonly kind: 'external'; readonly source: number; readonly sid: string; readonly bearer: boolean };

const MAX_COOKIE_VALUE = 4096;

/**
 * The bearer token of an `Authorization: Bearer …` header (first value; scheme in any case),
 * if any: the one parser for session tokens, API tokens and the login token.
 */
export function bearerToken(headers: HeaderMap): string | undefined {
  const auth = firstValue(headers['authorization']);
  if (auth === undefined || auth.length < 8) return undefined;
  if (auth.slice(0, 7).toLowerCase() !== 'bearer ') return undefined;
  const token = auth.slice(7).trim();
  return token === '' ? undefined : token;
}

export function readCredential(headers: HeaderMap, cookieName: string, tokens: TokenCodec): Credential {
  // A bearer token of our shape is ours; any other Authorization belongs to the application.
  const bearer = bearerToken(headers);
  if (bearer !== undefined && tokens.looksLikeToken(bearer)) {
    const v = tokens.verify(bearer);
    return v.ok ? { kind: 'valid', key: v.key, secret: v.secret, bearer: true } : { kind: 'invalid', reason: v.reason, bearer: true };
  }
  const isBearer = bearer !== undefined;
  const values = cookieValues(headers['cookie'], cookieName);
  if (values.length === 0) return { kind: 'none', bearer: isBearer };

  let valid: { key: string; secret: Buffer } | undefined;
  let firstFailure: 'malformed_cookie' | 'bad_signature' | undefined;
  for (const value of values) {
    if (value.length > MAX_COOKIE_VALUE) {
      firstFailure ??= 'malformed_cookie';
      continue;
    }
    const v = tokens.verify(value);
    if (!v.ok) {
      firstFailure ??= v.reason;
      continue;
    }
    if (valid !== undefined && valid.key !== v.key) {
      return { kind: 'invalid', reason: 'duplicate_cookie', bearer: isBearer };
    }
    valid = { key: v.key, secret: v.secret };
  }
  if (valid !== undefined) return { kind: 'valid', key: valid.key, secret: valid.secret, bearer: isBearer };
  return { kind: 'invalid', reason: firstFailure ?? 'malformed_cookie', bearer: isBearer };
}
