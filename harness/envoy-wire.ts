/**
 * Envoy's side of the gRPC wire, written independently of proto/: CheckRequests are encoded
 * and CheckResponses decoded by field number, with the numbers copied here from Envoy's
 * published data-plane-api definitions. If proto/ ever numbered a field differently, the
 * service would misread these bytes and the tests using them would fail.
 */
import { Client, credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import protobuf from 'protobufjs/minimal.js';

const { Writer, Reader } = protobuf;

/** Field numbers from envoy/service/auth/v3/*.proto, envoy/config/core/v3/*.proto, google/rpc, google/protobuf. */
export const F = {
  CheckRequest: { attributes: 1 },
  AttributeContext: { source: 1, destination: 2, request: 4, context_extensions: 10 },
  Peer: { address: 1, principal: 4 },
  Address: { socket_address: 1 },
  SocketAddress: { address: 2, port_value: 3 },
  Request: { time: 1, http: 2 },
  Timestamp: { seconds: 1, nanos: 2 },
  HttpRequest: { id: 1, method: 2, headers: 3, path: 4, host: 5, scheme: 6, size: 9, protocol: 10, header_map: 13 },
  HeaderMap: { headers: 1 },
  HeaderValue: { key: 1, value: 2, raw_value: 3 },
  CheckResponse: { status: 1, denied_response: 2, ok_response: 3, dynamic_metadata: 4 },
  Status: { code: 1, message: 2 },
  DeniedHttpResponse: { status: 1, headers: 2, body: 3 },
  HttpStatus: { code: 1 },
  OkHttpResponse: { headers: 2, headers_to_remove: 5, dynamic_metadata: 3, response_headers_to_add: 6 },
  HeaderValueOption: { header: 1, append: 2, append_action: 3, keep_empty_value: 4 },
  Struct: { fields: 1 },
  MapEntry: { key: 1, value: 2 },
  Value: { string_value: 3 },
} as const;

export const APPEND_ACTION = { APPEND_IF_EXISTS_OR_ADD: 0, ADD_IF_ABSENT: 1, OVERWRITE_IF_EXISTS_OR_ADD: 2, OVERWRITE_IF_EXISTS: 3 } as const;
export const GRPC = { OK: 0, PERMISSION_DENIED: 7, INTERNAL: 13, UNAVAILABLE: 14, UNAUTHENTICATED: 16, RESOURCE_EXHAUSTED: 8 } as const;

type W = protobuf.Writer;
const LEN = 2;
const VARINT = 0;

function str(w: W, field: number, value: string | undefined): void {
  if (value === undefined) return;
  w.uint32((field << 3) | LEN).string(value);
}
function msg(w: W, field: number, body: (w: W) => void): void {
  w.uint32((field << 3) | LEN).fork();
  body(w);
  w.ldelim();
}
function map(w: W, field: number, entries: Record<string, string> | undefined): void {
  for (const [k, v] of Object.entries(entries ?? {})) {
    msg(w, field, (e) => {
      str(e, F.MapEntry.key, k);
      str(e, F.MapEntry.value, v);
    });
  }
}

export interface EnvoyRequest {
  method: string;
  /** Request target as received: path plus query. */
  path: string;
  host: string;
  scheme?: string;
  /** Lower-case keys, as Envoy sends them; pseudo-headers are added unless given. */
  headers?: Record<string, string>;
  /**
   * attributes.request.http.id: Envoy's stream number as a decimal string (check_request_utils.cc
   * sets it from streamId()), not the x-request-id header, which goes in `headers` like any other.
   */
  id?: string;
  sourceAddress?: string;
  contextExtensions?: Record<string, string>;
  /** Send the headers as header_map with raw_value (Envoy's encode_raw_headers: true). */
  rawHeaders?: Array<[string, string]>;
  /**
   * header_map entries with `value` and/or `raw_value` as given, after any rawHeaders; without
   * rawHeaders the headers map is sent too (no Envoy does both). For requests Envoy never sends.
   */
  headerMap?: Array<{ key: string; value?: string; raw?: string }>;
  /** Leave out AttributeContext.request.http altogether. */
  omitHttp?: boolean;
  omitAttributes?: boolean;
}

/** A CheckRequest shaped as Envoy's HTTP ext_authz filter sends it. */
export function encodeCheckRequest(r: EnvoyRequest): Uint8Array {
  const w = Writer.create();
  if (r.omitAttributes) return w.finish();
  const scheme = r.scheme ?? 'https';
  const headers = r.rawHeaders
    ? undefined
    : {
        ':authority': r.host,
        ':method': r.method,
        ':path': r.path,
        ':scheme': scheme,
        'x-forwarded-proto': scheme,
        ...r.headers,
      };
  msg(w, F.CheckRequest.attributes, (a) => {
    msg(a, F.AttributeContext.source, (p) =>
      msg(p, F.Peer.address, (ad) =>
        msg(ad, F.Address.socket_address, (s) => {
          str(s, F.SocketAddress.address, r.sourceAddress ?? '203.0.113.7');
          s.uint32((F.SocketAddress.port_value << 3) | VARINT).uint32(51234);
        }),
      ),
    );
    msg(a, F.AttributeContext.destination, (p) =>
      msg(p, F.Peer.address, (ad) =>
        msg(ad, F.Address.socket_address, (s) => {
          str(s, F.SocketAddress.address, '10.0.0.2');
          s.uint32((F.SocketAddress.port_value << 3) | VARINT).uint32(8000);
        }),
      ),
    );
    if (!r.omitHttp) {
      msg(a, F.AttributeContext.request, (rq) => {
        msg(rq, F.Request.time, (t) => t.uint32((F.Timestamp.seconds << 3) | VARINT).int64(Math.floor(Date.now() / 1000)));
        msg(rq, F.Request.http, (h) => {
          str(h, F.HttpRequest.id, r.id ?? '13840234012698450251');
          str(h, F.HttpRequest.method, r.method);
          map(h, F.HttpRequest.headers, headers);
          str(h, F.HttpRequest.path, r.path);
          str(h, F.HttpRequest.host, r.host);
          str(h, F.HttpRequest.scheme, scheme);
          h.uint32((F.HttpRequest.size << 3) | VARINT).int64(-1);
          str(h, F.HttpRequest.protocol, 'HTTP/2');
          if (r.rawHeaders || r.headerMap) {
            msg(h, F.HttpRequest.header_map, (hm) => {
              for (const [k, v] of r.rawHeaders ?? []) {
                msg(hm, F.HeaderMap.headers, (hv) => {
                  str(hv, F.HeaderValue.key, k);
                  hv.uint32((F.HeaderValue.raw_value << 3) | LEN).bytes(Buffer.from(v, 'latin1'));
                });
              }
              for (const e of r.headerMap ?? []) {
                msg(hm, F.HeaderMap.headers, (hv) => {
                  str(hv, F.HeaderValue.key, e.key);
                  str(hv, F.HeaderValue.value, e.value);
                  if (e.raw !== undefined) hv.uint32((F.HeaderValue.raw_value << 3) | LEN).bytes(Buffer.from(e.raw, 'latin1'));
                });
              }
            });
          }
        });
      });
    }
    map(a, F.AttributeContext.context_extensions, r.contextExtensions);
  });
  return w.finish();
}

/** A decoded message: every value of every field number, in order. */
export class WireMessage {
  readonly fields = new Map<number, Array<number | Buffer>>();

  constructor(buf: Uint8Array) {
    const r = Reader.create(buf);
    while (r.pos < r.len) {
      const tag = r.uint32();
      const field = tag >>> 3;
      const wt = tag & 7;
      let v: number | Buffer;
      if (wt === 0) v = r.int32();
      else if (wt === 2) v = Buffer.from(r.bytes());
      else if (wt === 5) v = r.fixed32();
      else if (wt === 1) {
        r.skip(8);
        v = 0;
      } else throw new Error(`unexpected wire type ${wt} for field ${field}`);
      const list = this.fields.get(field) ?? [];
      list.push(v);
      this.fields.set(field, list);
    }
  }
  has(n: number): boolean {
    return this.fields.has(n);
  }
  int(n: number): number {
    const v = this.fields.get(n)?.at(-1);
    return typeof v === 'number' ? v : 0;
  }
  str(n: number): string {
    const v = this.fields.get(n)?.at(-1);
    return Buffer.isBuffer(v) ? v.toString('utf8') : '';
  }
  strs(n: number): string[] {
    return (this.fields.get(n) ?? []).map((v) => (Buffer.isBuffer(v) ? v.toString('utf8') : String(v)));
  }
  msg(n: number): WireMessage | undefined {
    const v = this.fields.get(n)?.at(-1);
    return Buffer.isBuffer(v) ? new WireMessage(v) : undefined;
  }
  msgs(n: number): WireMessage[] {
    return (this.fields.get(n) ?? []).filter(Buffer.isBuffer).map((b) => new WireMessage(b));
  }
  /** Field numbers present, sorted. */
  numbers(): number[] {
    return [...this.fields.keys()].sort((a, b) => a - b);
  }
}

export interface HeaderOption {
  key: string;
  value: string;
  appendAction: number;
  hasAppend: boolean;
}

function headerOptions(list: WireMessage[]): HeaderOption[] {
  return list.map((o) => {
    const h = o.msg(F.HeaderValueOption.header)!;
    return {
      key: h.str(F.HeaderValue.key),
      value: h.str(F.HeaderValue.value),
      appendAction: o.int(F.HeaderValueOption.append_action),
      hasAppend: o.has(F.HeaderValueOption.append),
    };
  });
}

function struct(m: WireMessage | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of m?.msgs(F.Struct.fields) ?? []) out[e.str(F.MapEntry.key)] = e.msg(F.MapEntry.value)?.str(F.Value.string_value) ?? '';
  return out;
}

export interface DecodedCheckResponse {
  raw: WireMessage;
  code: number;
  message: string;
  ok?: { headers: HeaderOption[]; headersToRemove: string[]; responseHeadersToAdd: HeaderOption[]; fieldNumbers: number[] };
  denied?: { status: number; headers: HeaderOption[]; body: string };
  metadata: Record<string, string>;
}

export function decodeCheckResponse(buf: Uint8Array): DecodedCheckResponse {
  const m = new WireMessage(buf);
  const status = m.msg(F.CheckResponse.status);
  const ok = m.msg(F.CheckResponse.ok_response);
  const denied = m.msg(F.CheckResponse.denied_response);
  return {
    raw: m,
    code: status?.int(F.Status.code) ?? 0,
    message: status?.str(F.Status.message) ?? '',
    ok: ok && {
      headers: headerOptions(ok.msgs(F.OkHttpResponse.headers)),
      headersToRemove: ok.strs(F.OkHttpResponse.headers_to_remove),
      responseHeadersToAdd: headerOptions(ok.msgs(F.OkHttpResponse.response_headers_to_add)),
      fieldNumbers: ok.numbers(),
    },
    denied: denied && {
      status: denied.msg(F.DeniedHttpResponse.status)?.int(F.HttpStatus.code) ?? 0,
      headers: headerOptions(denied.msgs(F.DeniedHttpResponse.headers)),
      body: denied.str(F.DeniedHttpResponse.body),
    },
    metadata: struct(m.msg(F.CheckResponse.dynamic_metadata)),
  };
}

export type CheckOutcome = { error: ServiceError } | { response: DecodedCheckResponse };

/** A gRPC client that sends bytes as they are: no generated code, no proto/ files. */
export class RawEnvoyClient {
  private readonly client: Client;
  constructor(address: string) {
    this.client = new Client(address, credentials.createInsecure());
  }
  checkBytes(bytes: Uint8Array): Promise<CheckOutcome> {
    return new Promise((resolve) => {
      this.client.makeUnaryRequest(
        '/envoy.service.auth.v3.Authorization/Check',
        (b: Buffer) => b,
        (b: Buffer) => b,
        Buffer.from(bytes),
        new Metadata(),
        { deadline: Date.now() + 10_000 },
        (err, value) => resolve(err ? { error: err } : { response: decodeCheckResponse(value!) }),
      );
    });
  }
  check(r: EnvoyRequest): Promise<CheckOutcome> {
    return this.checkBytes(encodeCheckRequest(r));
  }
  close(): void {
    this.client.close();
  }
}
