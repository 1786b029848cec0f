/**
 * What a logout ends: every session the request presents. A request can carry more than one
 * credential (a planted or stale second cookie, a script's bearer beside the browser's cookie);
 * ending only one of them would answer "logged out" while another stays valid. So each value
 * of the session cookie and a bearer token of sessiongate's shape count, each checked with its
 * MAC; a value that fails names no session and is passed over. (For decisions, credential.ts
 * reads one credential; a logout errs the other way, towards ending more.)
 */
import { bearerToken } from '../core/credential.js';
import type { HeaderMap } from '../core/types.js';
import { cookieValues } from '../session/cookie.js';
import type { TokenCodec } from '../session/token.js';

export interface Presented {
  readonly key: string;
  readonly secret: Buffer;
}

/** Every distinct, validly signed session credential of the request. */
export function presentedSessions(headers: HeaderMap, cookieName: string, tokens: TokenCodec): Presented[] {
  const out = new Map<string, Presented>();
  const bearer = bearerToken(headers);
  const values = cookieValues(headers['cookie'], cookieName);
  if (bearer !== undefined && tokens.looksLikeToken(bearer)) values.push(bearer);
  for (const value of values) {
    const v = tokens.verify(value);
    if (v.ok && !out.has(v.key)) out.set(v.key, { key: v.key, secret: v.secret });
  }
  return [...out.values()];
}
