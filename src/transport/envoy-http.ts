/**
 * Envoy ext_authz in `http_service` mode, on the HTTP port under a path prefix (`/envoy` by
 * default): Envoy sends the original method, `<prefix><original path and query>`, and the
 * headers its `allowed_headers` let through. Allow is 200 with the identity headers (Envoy
 * copies those in `allowed_upstream_headers`), the client's Cookie without sessiongate's cookie
 * when it carried one (`cookie` is in allowed_upstream_headers too),
 * `x-envoy-auth-headers-to-remove` naming client copies and aliases (and `cookie` when no cookie
 * is left, `authorization` when it carried a sessiongate token), and Set-Cookie for
 * `allowed_client_headers_on_success`. Deny is 401/403,
 * or 302 with Location. A store failure is 503: Envoy treats any 5xx as an authorization error,
 * so its failure_mode_allow / status_on_error decide.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Check } from '../core/check.js';
import { firstValue } from '../core/header-values.js';
import { REASON_HEADER } from '../core/headers.js';
import type { AuthRequest, Decision } from '../core/types.js';
import { envoyDenial } from './envoy-denial.js';
import { firstHop } from './http-headers.js';

/** True when `url` is the prefix itself or lies below it. */
export function underPrefix(url: string | undefined, prefix: string): boolean {
  if (url === undefined || !url.startsWith(prefix)) return false;
  const c = url.charCodeAt(prefix.length);
  return Number.isNaN(c) || c === 47 /* / */ || c === 63; /* ? */
}

export function envoyHttpAuthRequest(req: IncomingMessage, prefix: string): AuthRequest {
  const h = req.headers;
  const rest = (req.url ?? '').slice(prefix.length);
  return {
    transport: 'envoy_http',
    method: (req.method ?? 'GET').toUpperCase(),
    scheme: (firstHop(firstValue(h['x-forwarded-proto'])) ?? 'http').toLowerCase(),
    host: firstValue(h['host']) ?? '',
    uri: rest === '' ? '/' : rest[0] === '?' ? `/${rest}` : rest,
    headers: h,
    requestId: firstValue(h['x-request-id']),
    clientAddress: firstHop(firstValue(h['x-forwarded-for'])),
  };
}

export function writeEnvoyHttpAnswer(res: ServerResponse, d: Decision): void {
  const out: string[] = [REASON_HEADER, d.reason];
  if (d.result === 'allow') {
    for (const [name, value] of d.identity) out.push(name, value);
    if (d.upstreamCookie) out.push('Cookie', d.upstreamCookie);
    if (d.headersToRemove.length > 0) out.push('x-envoy-auth-headers-to-remove', d.headersToRemove.join(', '));
    if (d.setCookie !== undefined) out.push('Set-Cookie', d.setCookie);
    out.push('Content-Length', '0');
    res.writeHead(200, out);
    res.end();
    return;
  }
  if (d.result === 'error') {
    res.writeHead(d.reason === 'store_unavailable' ? 503 : 500, [...out, 'Content-Length', '0']);
    res.end();
    return;
  }
  const { status, headers, body } = envoyDenial(d);
  for (const [name, value] of headers) out.push(name, value);
  out.push('Content-Length', String(body.length));
  res.writeHead(status, out);
  res.end(body);
}

export function createEnvoyHttpHandler(check: Check, prefix: string): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    req.resume(); // a buffered body (with_request_body) plays no part in the decision
    const failed = () => {
      if (!res.headersSent) res.writeHead(500, { 'Content-Length': '0' });
      res.end();
    };
    check(envoyHttpAuthRequest(req, prefix)).then((d) => {
      try {
        writeEnvoyHttpAnswer(res, d);
      } catch {
        failed(); // a value Node refuses to write: an error, never a crash
      }
    }, failed);
  };
}
