/**
 * Sessions sessiongate does not own: an application's existing login (express-session with
 * connect-redis, or a home-grown token → record store). A source reads its own cookie (and
 * verifies its signature, where it has one) synchronously, and looks the session up in the
 * application's store, read-only, as a SessionRecord that is `fixed`: sessiongate never
 * touches or rotates it. Its expiry times are the application's.
 *
 * check() asks the sources, in configured order, only when the request carries no
 * sessiongate credential and the rule needs to know the user.
 */

import { cookieValues } from '../session/cookie.js';
import type { SessionRecord } from '../session/record.js';
import type { Credential } from './credential.js';
import type { HeaderMap } from './types.js';

export type ExternalRead = { readonly ok: true; readonly sid: string } | { readonly ok: false; readonly reason: 'malformed_cookie' | 'bad_signature' };

export interface ExternalSource {
  /** For logs: `express-session`, `generic`. */
  readonly kind: string;
  /** The application's cookie name. */
  readonly cookie: string;
  /** Verifies a cookie value; the session ID to look up, or why not. Pure apart from HMAC. */
  read(value: string): ExternalRead;
  /**
   * The session as a fixed record, or null when there is none (logged out, expired, unreadable).
   * Throws (StoreUnavailableError) when the application's store cannot answer.
   */
  lookup(sid: string, now: number): Promise<SessionRecord | null>;
  close(): Promise<void>;
}

/**
 * The credential of the first source whose cookie the request carries; `none` without any.
 * A cookie name given twice with different values is refused, as for sessiongate's own.
 */
export function readExternalCredential(headers: HeaderMap, sources: readonly ExternalSource[], bearer = false): Credential {
  for (let i = 0; i < sources.length; i++) {
    const source = sources[i]!;
    const values = cookieValues(headers['cookie'], source.cookie);
    if (values.length === 0) continue;
    if (values.some((v) => v !== values[0])) return { kind: 'invalid', reason: 'duplicate_cookie', bearer };
    const r = source.read(values[0]!);
    return r.ok ? { kind: 'external', source: i, sid: r.sid, bearer } : { kind: 'invalid', reason: r.reason, bearer };
  }
  return { kind: 'none', bearer };
}
