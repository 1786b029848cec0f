/**
 * nginx `auth_request` (and Traefik/Caddy forward-auth) adapter: `/auth` on the HTTP port.
 *
 * The original request comes from the headers the proxy sets (X-Original-Method/-URI, or
 * X-Forwarded-Method/-Uri; X-Forwarded-Proto; X-Forwarded-Host or Host) plus the client's own
 * headers, which nginx passes on. Every answer has no body (`Content-Length: 0`): nginx reuses
 * its upstream connection only for body-less answers, and understands only 2xx, 401 and 403.
 *
 * An allow also names the Cookie and Authorization the application gets: protect.conf sets both
 * from the answer (`proxy_set_header Cookie $sessiongate_cookie`; an empty or absent one removes
 * the header), so the answer echoes the client's own, without sessiongate's credential. Traefik
 * (`authResponseHeaders`) and the shipped caddy/Caddyfile (`handle_response`) copy them the same way.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Check } from '../core/check.js';
import { allValues, firstValue } from '../core/header-values.js';
import { REASON_HEADER } from '../core/headers.js';
import type { AuthRequest, Decision, HeaderMap } from '../core/types.js';
import { firstHop } from './http-headers.js';

/** The value both headers agree on, either alone, or null when both are there and differ. */
function agreed(a: string | undefined, b: string | undefined): string | undefined | null {
  return a === undefined || b === undefined || a === b ? (a ?? b) : null;
}

/**
 * The request the proxy describes. nginx sets X-Original-Method/-URI and clears
 * X-Forwarded-Method/-Uri; Traefik and Caddy set X-Forwarded-* and pass on whatever else the
 * client sent, X-Original-* included. When both are there and differ, the request gets no `uri`
 * (the core denies bad_request): judging either would let a client name the other.
 */
export function nginxAuthRequest(req: IncomingMessage): AuthRequest {
  const h = req.headers;
  const originalMethod = firstValue(h['x-original-method']);
  const forwardedMethod = firstValue(h['x-forwarded-method']);
  const method = agreed(originalMethod?.toUpperCase(), forwardedMethod?.toUpperCase());
  const uri = agreed(firstValue(h['x-original-uri']), firstValue(h['x-forwarded-uri']));
  return {
    transport: 'nginx',
    method: method ?? originalMethod?.toUpperCase() ?? 'GET',
    scheme: (firstHop(firstValue(h['x-forwarded-proto'])) ?? 'http').toLowerCase(),
    host: firstHop(firstValue(h['x-forwarded-host'])) ?? firstValue(h['host']) ?? '',
    uri: method === null || uri === null ? undefined : uri,
    headers: h,
    requestId: firstValue(h['x-request-id']),
    clientAddress: firstValue(h['x-real-ip']) ?? firstHop(firstValue(h['x-forwarded-for'])),
  };
}

const NO_HEADERS: HeaderMap = Object.freeze({});

/** HTTP status and headers of the answer to nginx, for a request with `request` headers. */
export function httpAnswer(d: Decision, request: HeaderMap = NO_HEADERS): { status: number; headers: ReadonlyArray<readonly [string, string]> } {
  const reason = [REASON_HEADER, d.reason] as const;
  if (d.result === 'allow') {
    const headers: Array<readonly [string, string]> = [...d.identity, reason];
    // Present, if empty, whenever the client sent one: a forward-auth proxy that copies the
    // header only when the answer has it then still replaces the client's.
    const cookie = d.upstreamCookie ?? allValues(request['cookie'], '; ');
    if (cookie !== undefined) headers.push(['Cookie', cookie]);
    const authorization = firstValue(request['authorization']);
    if (authorization !== undefined) headers.push(['Authorization', d.dropAuthorization ? '' : authorization]);
    if (d.setCookie !== undefined) headers.push(['Set-Cookie', d.setCookie]);
    // nginx proxy_cache obeys X-Accel-Expires before anything else; an answer that carries a
    // new cookie is never reused.
    if (d.cacheFor !== undefined) headers.push(['X-Accel-Expires', d.setCookie === undefined ? String(d.cacheFor) : '0']);
    return { status: 200, headers };
  }
  if (d.result === 'error') return { status: 500, headers: [reason] };
  const headers: Array<readonly [string, string]> = [reason];
  if (d.location !== undefined) headers.push(['Location', d.location]);
  if (d.wwwAuthenticate !== undefined) headers.push(['WWW-Authenticate', d.wwwAuthenticate]);
  return { status: d.status, headers };
}

/**
 * `/auth?redirect=302`: for a forward-auth proxy that hands a denial to the browser as it is
 * (Traefik), a browser navigation is answered 302 to the login page rather than nginx's 401 with
 * a Location (which only nginx's error_page turns into a redirect; a browser does not follow a
 * Location on a 401).
 */
export function wantsRedirect(url: string | undefined): boolean {
  return url !== undefined && url.length > 5 && /[?&]redirect=302(?:&|$)/.test(url);
}

export function writeNginxAnswer(res: ServerResponse, d: Decision, request: HeaderMap = NO_HEADERS, redirect = false): void {
  const answer = httpAnswer(d, request);
  const { headers } = answer;
  const status = redirect && answer.status === 401 && d.result === 'deny' && d.location !== undefined ? 302 : answer.status;
  const out: string[] = [];
  for (const [name, value] of headers) out.push(name, value);
  out.push('Content-Length', '0');
  res.writeHead(status, out);
  res.end();
}

export function createNginxHandler(check: Check): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    // Nothing in the request body matters; do not let it sit in the socket.
    req.resume();
    const failed = () => {
      if (!res.headersSent) res.writeHead(500, { 'Content-Length': '0' });
      res.end();
    };
    check(nginxAuthRequest(req)).then((d) => {
      try {
        writeNginxAnswer(res, d, req.headers, wantsRedirect(req.url));
      } catch {
        failed(); // a value Node refuses to write: an error, never a crash
      }
    }, failed);
  };
}
