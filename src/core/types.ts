/**
 * Protocol-neutral request and decision types. Every transport adapter translates its wire
 * request into an AuthRequest and writes one Decision back in its own wire format; nothing
 * about sessions, rules or headers lives in an adapter.
 */
import type { AllowReason, DenyReason, ErrorReason } from './reasons.js';

/** Every transport, the one list: metric labels, logs and the test case tables follow it. */
export const TRANSPORTS = ['nginx', 'envoy_grpc', 'envoy_http'] as const;
export type Transport = (typeof TRANSPORTS)[number];

/** Header map as adapters deliver it: lower-case names. */
export type HeaderMap = Readonly<Record<string, string | string[] | undefined>>;

export interface AuthRequest {
  readonly transport: Transport;
  /** Upper-case method of the original request. */
  readonly method: string;
  /** `http` or `https`, lower-case. */
  readonly scheme: string;
  /** Host of the original request as the client sent it, port included if any. */
  readonly host: string;
  /** Raw request target of the original request: path, optionally `?query`. Undefined if the proxy did not say. */
  readonly uri: string | undefined;
  /** All headers of the original request (and those the proxy added), lower-case names. */
  readonly headers: HeaderMap;
  readonly requestId?: string | undefined;
  readonly clientAddress?: string | undefined;
  /**
   * A named policy that replaces path rules for this request, set by proxy configuration only
   * (Envoy's per-route `context_extensions: { policy: … }`), never by anything a client sends.
   */
  readonly policy?: string | undefined;
}

export type SessionState = 'active' | 'touched' | 'rotated' | 'grace';

interface DecisionBase {
  /** Protected header names the client sent itself (as sent, lower-case), to be removed by the proxy. */
  readonly spoofed: readonly string[];
  readonly userId?: string | undefined;
  /**
   * The normalised path the rules judged (no query: a query may hold secrets), for logs;
   * undefined when the target was missing or refused.
   */
  readonly path?: string | undefined;
}

export interface AllowDecision extends DecisionBase {
  readonly result: 'allow';
  readonly reason: AllowReason;
  /** Identity headers for the upstream, configured case, values already safe for a header. */
  readonly identity: ReadonlyArray<readonly [string, string]>;
  /**
   * Header names (lower-case) the proxy removes before the request goes upstream: protected
   * headers this answer does not set, aliases the client sent, `cookie` when no cookie is left
   * (upstreamCookie ''), `authorization` when dropAuthorization. Computed with the identity by
   * the same policy, so a reload between check() and the answer cannot pair two policies.
   */
  readonly headersToRemove: readonly string[];
  /** Set-Cookie value for the client when the session was rotated. */
  readonly setCookie?: string | undefined;
  /**
   * The Cookie header the upstream gets instead of the client's, when the client's carries
   * sessiongate's cookie: the other cookies, byte for byte and in order; '' when none is left
   * (no Cookie header at all). Undefined: the client's, unchanged.
   */
  readonly upstreamCookie?: string | undefined;
  /** The client's Authorization carries a sessiongate token: the upstream gets none. */
  readonly dropAuthorization?: boolean | undefined;
  readonly sessionState?: SessionState | undefined;
  /**
   * Whole seconds a proxy may reuse this answer (proxy_cache.ttl bounded by the session's own
   * idle, rotation and absolute deadlines); 0: not at all. Undefined when proxy caching is off.
   */
  readonly cacheFor?: number | undefined;
}

export interface DenyDecision extends DecisionBase {
  readonly result: 'deny';
  readonly reason: DenyReason;
  /** 401 when the caller is not authenticated, 403 when authenticated (or spoofing) but not allowed. */
  readonly status: 401 | 403;
  /** Login redirect for browser navigations (401 only). */
  readonly location?: string | undefined;
  /** Challenge for bearer callers (401 only). */
  readonly wwwAuthenticate?: string | undefined;
}

export interface ErrorDecision extends DecisionBase {
  readonly result: 'error';
  readonly reason: ErrorReason;
}

export type Decision = AllowDecision | DenyDecision | ErrorDecision;
