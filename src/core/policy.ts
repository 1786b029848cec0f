/**
 * The policy: everything a decision needs from configuration, compiled once at start-up (or
 * reload) into lookup tables and closures, and applied cheaply per request.
 */

import type { CookieSettings, CookieWriter } from '../session/cookie.js';
import { createCookieWriter } from '../session/cookie.js';
import type { SessionTimes } from '../session/record.js';
import { createRecordOpener, createUserRefs, type RecordOpener, type UserRefs } from '../session/seal.js';
import type { TokenCodec } from '../session/token.js';
import { createTokenCodec } from '../session/token.js';
import type { IdentityHeaders } from './headers.js';
import { createIdentityHeaders } from './headers.js';
import { createRedirectPolicy, type RedirectPolicy } from './redirect.js';
import type { PolicyRuleSpec, RuleSet, RuleSpec } from './rules.js';
import { compileRules } from './rules.js';
import { createUpstreamCredentials, type UpstreamCredentials } from './upstream.js';

export type SpoofGuard = 'deny' | 'strip';
export type FailureMode = 'closed' | 'open';

export interface Policy {
  readonly rules: RuleSet;
  readonly identity: IdentityHeaders;
  /** What the upstream gets instead of the client's Cookie and Authorization (none of sessiongate's credentials). */
  readonly upstream: UpstreamCredentials;
  readonly spoofGuard: SpoofGuard;
  readonly tokens: TokenCodec;
  /** Keyed user-ID hashes for the per-user session index (revocation). */
  readonly userRefs: UserRefs;
  /** Opens sealed records, remembering recent identities. */
  readonly records: RecordOpener;
  readonly cookies: CookieWriter;
  readonly times: SessionTimes;
  readonly loginUrl: string | null;
  /** Where a browser may be sent back to (login `rd`, logout return URL). */
  readonly redirects: RedirectPolicy;
  readonly failureMode: FailureMode;
  /** Milliseconds a proxy may reuse an allow (nginx proxy_cache via X-Accel-Expires); 0: never. */
  readonly proxyCacheTtl: number;
}

export interface PolicySpec {
  readonly rules: readonly RuleSpec[];
  /** Named policies a proxy may select per route (Envoy context_extensions `policy`). */
  readonly policies?: Readonly<Record<string, PolicyRuleSpec>> | undefined;
  readonly headers: Readonly<Record<string, string>>;
  readonly stripHeaders: readonly string[];
  readonly spoofGuard: SpoofGuard;
  readonly secrets: readonly Buffer[];
  readonly cookie: CookieSettings;
  readonly times: SessionTimes;
  readonly loginUrl: string | null;
  /** `allowed_redirect_hosts`; empty: only the host a request came to. */
  readonly allowedRedirectHosts?: readonly string[] | undefined;
  readonly failureMode: FailureMode;
  readonly proxyCacheTtl?: number | undefined;
  /** `upstream.pass_credentials`: the application gets sessiongate's cookie and tokens too (default false). */
  readonly passCredentials?: boolean | undefined;
}

export function buildPolicy(spec: PolicySpec): Policy {
  const tokens = createTokenCodec(spec.secrets);
  return Object.freeze({
    rules: compileRules(spec.rules, spec.policies),
    identity: createIdentityHeaders(spec.headers, spec.stripHeaders),
    upstream: createUpstreamCredentials(spec.cookie.name, tokens, spec.passCredentials ?? false),
    spoofGuard: spec.spoofGuard,
    tokens,
    userRefs: createUserRefs(spec.secrets),
    records: createRecordOpener(10_000),
    cookies: createCookieWriter(spec.cookie),
    times: Object.freeze({ ...spec.times }),
    loginUrl: spec.loginUrl,
    redirects: createRedirectPolicy(spec.allowedRedirectHosts ?? []),
    failureMode: spec.failureMode,
    proxyCacheTtl: spec.proxyCacheTtl ?? 0,
  });
}
