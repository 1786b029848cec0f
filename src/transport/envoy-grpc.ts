/**
 * Envoy ext_authz over gRPC: `envoy.service.auth.v3.Authorization/Check` and
 * `grpc.health.v1.Health` on the gRPC port.
 *
 * A CheckRequest becomes an AuthRequest (read from attributes.request.http; the query is inside
 * `path`; header keys are lower-case, pseudo-headers included; where two places say different
 * things the request is refused, see authRequestFromCheck); a Decision becomes a
 * CheckResponse. Identity headers are set with OVERWRITE_IF_EXISTS_OR_ADD (Envoy's default
 * became *add* in 2026, which would keep a spoofed copy); client copies and aliases go in
 * headers_to_remove. The client's Cookie without sessiongate's cookie is set the same way
 * (removed when nothing is left), an Authorization carrying a sessiongate token removed. A store
 * failure is a gRPC UNAVAILABLE error, not a deny, so Envoy's own failure_mode_allow /
 * status_on_error decide.
 */
import {
  status as GrpcStatus,
  Server,
  ServerCredentials,
  type ServerUnaryCall,
  type ServiceDefinition,
  type sendUnaryData,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import type { Check } from '../core/check.js';
import type { AuthRequest, Decision, HeaderMap } from '../core/types.js';
import { decodeCheckRequest, encodeCheckResponse } from './envoy-codec.js';
import { envoyDenial } from './envoy-denial.js';
import {
  AUTHORIZATION_SERVICE,
  type CheckRequestMsg,
  type CheckResponseMsg,
  type HeaderValueMsg,
  type HeaderValueOptionMsg,
  type HttpRequestMsg,
} from './envoy-proto.js';

/** Header maps past these bounds are refused (`bad_request`): Envoy's own defaults are 100 headers and 60 KiB. */
export const MAX_HEADERS = 512;
export const MAX_HEADER_BYTES = 256 * 1024;
/** gRPC messages past this are refused by grpc-js (RESOURCE_EXHAUSTED) before they are decoded. */
export const MAX_MESSAGE_BYTES = 1024 * 1024;

const tooBig = (count: number, bytes: number) => count > MAX_HEADERS || bytes > MAX_HEADER_BYTES;

/** The `headers` map, or null past the bounds. */
function fromMap(headers: Record<string, string>): Record<string, string> | null {
  let count = 0;
  let bytes = 0;
  for (const k in headers) {
    count++;
    bytes += k.length + headers[k]!.length;
  }
  return tooBig(count, bytes) ? null : headers;
}

/**
 * The `header_map` list (encode_raw_headers) as a map, repeated headers merged as Envoy merges
 * them; null past the bounds, or when a pseudo-header or Host is repeated (which one is the request?).
 */
function fromList(list: readonly HeaderValueMsg[]): Record<string, string> | null {
  let count = 0;
  let bytes = 0;
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const h of list) {
    const key = (h.key ?? '').toLowerCase();
    const value = h.raw_value !== undefined && h.raw_value.length > 0 ? h.raw_value.toString('latin1') : (h.value ?? '');
    count++;
    bytes += key.length + value.length;
    if (tooBig(count, bytes)) return null;
    const prev = out[key];
    if (prev !== undefined && (key.charCodeAt(0) === 58 /* : */ || key === 'host')) return null;
    out[key] = prev === undefined ? value : `${prev}${key === 'cookie' ? '; ' : ','}${value}`;
  }
  return out;
}

function sameHeaders(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  let n = 0;
  for (const k in a) {
    if (b[k] !== a[k]) return false;
    n++;
  }
  for (const _ in b) n--;
  return n === 0;
}

function hasAny(o: Readonly<Record<string, string>> | undefined): o is Record<string, string> {
  for (const _ in o) return true;
  return false;
}

/**
 * Headers of the request: the `headers` map, or the `header_map` list Envoy sends instead with
 * encode_raw_headers. Both present (no Envoy sends both) is refused unless they say exactly the
 * same thing, so no header (an identity alias, a second cookie) is judged from one and missed in
 * the other. Null: refuse (bad_request).
 */
function headersOf(http: HttpRequestMsg): Record<string, string> | null {
  const map = hasAny(http.headers) ? fromMap(http.headers) : undefined;
  const list = http.header_map ? fromList(http.header_map.headers ?? []) : undefined;
  if (map === null || list === null) return null;
  if (map !== undefined && list !== undefined) return sameHeaders(map, list) ? map : null;
  return map ?? list ?? (Object.create(null) as Record<string, string>);
}

/** The value two sources agree on (either may be absent or empty); null when both are there and differ. */
function agreed(a: string | undefined, b: string | undefined): string | undefined | null {
  if (!a) return b || undefined;
  return !b || a === b ? a : null;
}

const EMPTY_HEADERS: HeaderMap = Object.freeze({});
const BAD_REQUEST: AuthRequest = Object.freeze({ transport: 'envoy_grpc', method: 'GET', scheme: 'http', host: '', uri: undefined, headers: EMPTY_HEADERS });

/**
 * The AuthRequest of a CheckRequest. A request without what a decision needs, or one that says
 * two different things (attributes.request.http.path against `:path`, method against `:method`,
 * host against `:authority` or `host`, scheme against `:scheme`, headers against header_map, a
 * field given twice) gets no `uri`, which the core denies as bad_request.
 */
export function authRequestFromCheck(msg: CheckRequestMsg): AuthRequest {
  const attrs = msg.attributes;
  const http = attrs?.request?.http;
  if (!attrs || !http || msg.ambiguous) return BAD_REQUEST;
  const headers = headersOf(http);
  if (headers === null) return BAD_REQUEST;
  const uri = agreed(http.path, headers[':path']);
  const method = agreed(http.method, headers[':method']);
  const scheme = agreed(http.scheme, headers[':scheme']);
  const authority = agreed(http.host, headers[':authority']);
  const host = authority === null ? null : agreed(authority, headers['host']);
  if (uri === null || method === null || scheme === null || host === null) return BAD_REQUEST;
  return {
    transport: 'envoy_grpc',
    method: (method || 'GET').toUpperCase(),
    scheme: (scheme || 'http').toLowerCase(),
    host: host || '',
    uri: uri || undefined,
    headers,
    // The request's x-request-id (Envoy sets one, and passes it to the application and its own
    // access log), never attributes.request.http.id: that is Envoy's stream number, which joins
    // nothing (source/extensions/filters/common/ext_authz/check_request_utils.cc sets it from
    // streamId()).
    requestId: headers['x-request-id'] || undefined,
    clientAddress: attrs.source?.address?.socket_address?.address || undefined,
    policy: attrs.context_extensions?.['policy'] || undefined,
  };
}

const OVERWRITE = 'OVERWRITE_IF_EXISTS_OR_ADD' as const;
const hvo = (key: string, value: string, append_action: HeaderValueOptionMsg['append_action'] = OVERWRITE): HeaderValueOptionMsg => ({
  header: { key, value },
  append_action,
});

/** The CheckResponse for an allow or deny; errors are gRPC statuses instead (grpcError). */
export function checkResponse(d: Exclude<Decision, { result: 'error' }>): CheckResponseMsg {
  if (d.result === 'allow') {
    const fields: Record<string, { stringValue: string }> = { reason: { stringValue: d.reason } };
    if (d.userId !== undefined) fields['user_id'] = { stringValue: d.userId };
    fields['session_state'] = { stringValue: d.sessionState ?? 'none' };
    const headers = d.identity.map(([k, v]) => hvo(k.toLowerCase(), v));
    // Set or removed, never both (headersToRemove names `cookie` only when none is left): the
    // answer is right whatever order Envoy applies them in.
    if (d.upstreamCookie) headers.push(hvo('cookie', d.upstreamCookie));
    return {
      status: { code: GrpcStatus.OK },
      ok_response: {
        headers,
        headers_to_remove: d.headersToRemove,
        // Appended: the application's own Set-Cookie headers must survive.
        response_headers_to_add: d.setCookie === undefined ? [] : [hvo('set-cookie', d.setCookie, 'APPEND_IF_EXISTS_OR_ADD')],
      },
      dynamic_metadata: { fields },
    };
  }
  const denial = envoyDenial(d);
  return {
    status: { code: d.status === 401 ? GrpcStatus.UNAUTHENTICATED : GrpcStatus.PERMISSION_DENIED, message: d.reason },
    denied_response: { status: { code: denial.status }, headers: denial.headers.map(([k, v]) => hvo(k, v)), body: denial.body },
    dynamic_metadata: { fields: { reason: { stringValue: d.reason } } },
  };
}

export function grpcError(d: Extract<Decision, { result: 'error' }>): { code: number; details: string } {
  return { code: d.reason === 'store_unavailable' ? GrpcStatus.UNAVAILABLE : GrpcStatus.INTERNAL, details: d.reason };
}

/** envoy.service.auth.v3.Authorization with the lean codec (envoy-codec.ts) on the wire. */
const AUTHORIZATION_DEFINITION: ServiceDefinition<UntypedServiceImplementation> = {
  Check: {
    path: '/envoy.service.auth.v3.Authorization/Check',
    requestStream: false,
    responseStream: false,
    requestSerialize: () => {
      throw new Error('sessiongate does not send CheckRequests');
    },
    requestDeserialize: decodeCheckRequest,
    responseSerialize: encodeCheckResponse,
    responseDeserialize: () => {
      throw new Error('sessiongate does not read CheckResponses');
    },
  },
};

export interface EnvoyGrpcServer {
  readonly server: Server;
  readonly health: HealthImplementation;
  listen(host: string, port: number): Promise<number>;
  close(graceMs?: number): Promise<void>;
}

export function createEnvoyGrpcServer(check: Check): EnvoyGrpcServer {
  const server = new Server({ 'grpc.max_receive_message_length': MAX_MESSAGE_BYTES });
  server.addService(AUTHORIZATION_DEFINITION, {
    Check(call: ServerUnaryCall<CheckRequestMsg, CheckResponseMsg>, callback: sendUnaryData<CheckResponseMsg>) {
      check(authRequestFromCheck(call.request ?? {})).then(
        (d) => (d.result === 'error' ? callback(grpcError(d)) : callback(null, checkResponse(d))),
        () => callback({ code: GrpcStatus.INTERNAL, details: 'internal_error' }),
      );
    },
  });
  const health = new HealthImplementation({ '': 'SERVING', [AUTHORIZATION_SERVICE]: 'SERVING' });
  health.addToServer(server);

  return {
    server,
    health,
    listen: (host, port) =>
      new Promise((resolve, reject) => {
        const address = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
        server.bindAsync(address, ServerCredentials.createInsecure(), (err, bound) => (err ? reject(err) : resolve(bound)));
      }),
    close: (graceMs = 5000) =>
      new Promise((resolve) => {
        const force = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        force.unref();
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      }),
  };
}
