/**
 * What a logout ends: every session the request presents. A request can carry more than one
 * credential (a planted or stale second cookie, a script's bearer beside the browser's cookie);
 * ending only one of them would answer "logged out" while another stays valid. So each value
 * of the session cookie and a bearer token of sessiongate's shape count, each checked with its
 * MAC; a value that fails names no session and is passed over. (For decisions, credential.ts
 * reads one credential; a logout errs the other way, towards ending more.)
 */
import { bearerToken } from '../core/credential.js';
import type { Policy } from '../core/policy.js';
import type { HeaderMap } from '../core/types.js';
import { cookieValues } from '../session/cookie.js';
import type { LoginOrigin } from '../session/record.js';
import type { TokenCodec } from '../session/token.js';
import type { SessionOperations } from '../store/types.js';

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

export type Ended =
  | {
      readonly ok: true;
      /** Sessions ended (families, one per presented credential that named one). */
      readonly ended: number;
      /** Their users (usually one). */
      readonly users: readonly string[];
      /** How the ended sessions began, where sessiongate's OpenID login made them. */
      readonly origins: readonly LoginOrigin[];
    }
  | { readonly ok: false; readonly error: 'api_token' | 'store_unavailable'; readonly cause?: unknown };

/**
 * Ends every session the request presents (each whole family). Refuses, changing nothing, when
 * one of them is an API token (a logout does not revoke those). A store failure part-way is
 * `store_unavailable`: the retry finishes.
 */
export async function endPresentedSessions(store: SessionOperations, policy: Policy, headers: HeaderMap): Promise<Ended> {
  const presented = presentedSessions(headers, policy.cookies.name, policy.tokens);
  try {
    const users = new Set<string>();
    const origins: LoginOrigin[] = [];
    for (const p of presented) {
      const stored = await store.get(p.key);
      const opened = stored && policy.records.open(stored, p.key, p.secret);
      if (opened?.fixed) return { ok: false, error: 'api_token' };
      if (opened) users.add(opened.user_id);
      if (opened?.login) origins.push(opened.login);
    }
    let ended = 0;
    for (const p of presented) if ((await store.destroy(p.key)).length > 0) ended++;
    return { ok: true, ended, users: [...users], origins };
  } catch (err) {
    return { ok: false, error: 'store_unavailable', cause: err };
  }
}
