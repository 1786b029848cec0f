/**
 * What of sessiongate a proxy in front of it exposes to clients: the same surface on every
 * shipped proxy config (nginx, Envoy gRPC and HTTP, Caddy, HAProxy). Everything here reaches
 * sessiongate's HTTP port without the authorization check (they are the login and logout
 * themselves); every other method on these paths is refused by the proxy; and nothing else of
 * sessiongate (`/auth`, `/envoy/…`, `/~session/user/…`, the token API's `/tokens`, the admin port's `/metrics`)
 * is reachable from outside: such paths are ordinary application paths, decided by sessiongate
 * and passed to the application, never to sessiongate.
 *
 * `POST /~session` (session creation) is for the login service, which calls sessiongate
 * directly with its login token, never through the proxy.
 */
export interface ExposedEndpoint {
  readonly path: string;
  /** Methods the proxy passes to sessiongate; any other is refused by the proxy (403 or 405). */
  readonly methods: readonly string[];
  /** Whether the request body reaches sessiongate (only the provider's back-channel POST). */
  readonly body: boolean;
}

export const EXPOSED_ENDPOINTS: readonly ExposedEndpoint[] = [
  { path: '/~session', methods: ['GET', 'DELETE'], body: false },
  { path: '/~session/dev', methods: ['GET'], body: false },
  { path: '/~login', methods: ['GET'], body: false },
  { path: '/~login/callback', methods: ['GET'], body: false },
  { path: '/~logout', methods: ['GET', 'POST'], body: false },
  { path: '/~login/backchannel-logout', methods: ['POST'], body: true },
];

/** Methods tried against each exposed path. */
export const TRIED_METHODS: readonly string[] = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH'];

/** sessiongate's own paths that must never reach it through a proxy (they go to the application, after a decision). */
export const NEVER_EXPOSED: ReadonlyArray<{ readonly method: string; readonly path: string }> = [
  { method: 'GET', path: '/auth' },
  { method: 'GET', path: '/envoy/app' },
  { method: 'DELETE', path: '/~session/user/alice' },
  { method: 'GET', path: '/tokens' },
  { method: 'GET', path: '/metrics' },
  { method: 'GET', path: '/~login/other' },
];
