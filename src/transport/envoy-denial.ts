/**
 * What Envoy hands the client for a deny, over gRPC (denied_response) and HTTP alike: 401/403,
 * or 302 with Location for a browser navigation; WWW-Authenticate for bearer callers; a one-line
 * body that is never cached.
 */
import type { DenyDecision } from '../core/types.js';

const BODY: Record<number, string> = { 302: 'Found\n', 401: 'Unauthorized\n', 403: 'Forbidden\n' };

export interface Denial {
  readonly status: number;
  /** Lower-case names. */
  readonly headers: ReadonlyArray<readonly [string, string]>;
  readonly body: string;
}

export function envoyDenial(d: DenyDecision): Denial {
  const status = d.location !== undefined ? 302 : d.status;
  const headers: Array<readonly [string, string]> = [
    ['content-type', 'text/plain; charset=utf-8'],
    ['cache-control', 'no-store'],
  ];
  if (d.location !== undefined) headers.push(['location', d.location]);
  if (d.wwwAuthenticate !== undefined) headers.push(['www-authenticate', d.wwwAuthenticate]);
  return { status, headers, body: BODY[status] ?? '' };
}
