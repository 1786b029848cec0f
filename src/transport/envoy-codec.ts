/**
 * A lean codec for the one RPC sessiongate serves: it decodes only the CheckRequest fields a
 * decision reads and encodes the CheckResponse directly, instead of proto-loader's generic
 * object mapping of every field (the cost that dominates a CheckRequest with a large header
 * map). Field numbers and wire types are those of proto/ (Envoy's data-plane-api); the
 * conformance tests (test/unit/envoy-proto.test.ts, test/e2e/envoy-grpc.test.ts, which speaks
 * raw bytes encoded by field number) hold both to them. Unknown fields are skipped, as
 * protobuf requires; a field with an unexpected wire type is skipped too, never trusted.
 */
import protobuf from 'protobufjs/minimal.js';
import type { AttributeContextMsg, CheckRequestMsg, CheckResponseMsg, HeaderValueMsg, HeaderValueOptionMsg, HttpRequestMsg, StructMsg } from './envoy-proto.js';

const { Reader, Writer } = protobuf;
type R = protobuf.Reader;
type W = protobuf.Writer;

const VARINT = 0;
const LEN = 2;

/** Calls `field(number, reader)` for each field of the message ending at `end`; skips what it leaves unread. */
function each(r: R, end: number, field: (n: number, wire: number) => boolean): void {
  while (r.pos < end) {
    const tag = r.uint32();
    const n = tag >>> 3;
    const wire = tag & 7;
    if (!field(n, wire)) r.skipType(wire);
  }
}

const sub = (r: R) => r.uint32() + r.pos;

function mapEntry(r: R): [string, string] {
  const end = sub(r);
  let k = '';
  let v = '';
  each(r, end, (n, wire) => {
    if (wire !== LEN) return false;
    if (n === 1) k = r.string();
    else if (n === 2) v = r.string();
    else return false;
    return true;
  });
  return [k, v];
}

function headerValue(r: R): HeaderValueMsg {
  const end = sub(r);
  const h: HeaderValueMsg = {};
  each(r, end, (n, wire) => {
    if (wire !== LEN) return false;
    if (n === 1) h.key = r.string();
    else if (n === 2) h.value = r.string();
    else if (n === 3) h.raw_value = Buffer.from(r.bytes());
    else return false;
    return true;
  });
  return h;
}

function httpRequest(r: R): HttpRequestMsg {
  const end = sub(r);
  const h: HttpRequestMsg = {};
  each(r, end, (n, wire) => {
    if (wire !== LEN) return false;
    switch (n) {
      case 1:
        h.id = r.string();
        return true;
      case 2:
        h.method = r.string();
        return true;
      case 3: {
        const [k, v] = mapEntry(r);
        (h.headers ??= Object.create(null) as Record<string, string>)[k] = v;
        return true;
      }
      case 4:
        h.path = r.string();
        return true;
      case 5:
        h.host = r.string();
        return true;
      case 6:
        h.scheme = r.string();
        return true;
      case 13: {
        const hmEnd = sub(r);
        const list: HeaderValueMsg[] = [];
        each(r, hmEnd, (m, w) => {
          if (m !== 1 || w !== LEN) return false;
          list.push(headerValue(r));
          return true;
        });
        h.header_map = { headers: list };
        return true;
      }
      default:
        return false;
    }
  });
  return h;
}

/** AttributeContext.Peer → the socket address only. */
function peerAddress(r: R): string | undefined {
  let address: string | undefined;
  const end = sub(r);
  each(r, end, (n, wire) => {
    if (n !== 1 || wire !== LEN) return false; // Peer.address
    const aEnd = sub(r);
    each(r, aEnd, (m, w) => {
      if (m !== 1 || w !== LEN) return false; // Address.socket_address
      const sEnd = sub(r);
      each(r, sEnd, (k, x) => {
        if (k !== 2 || x !== LEN) return false; // SocketAddress.address
        address = r.string();
        return true;
      });
      return true;
    });
    return true;
  });
  return address;
}

export function decodeCheckRequest(buf: Buffer): CheckRequestMsg {
  const r = Reader.create(buf);
  const msg: CheckRequestMsg = {};
  each(r, r.len, (n, wire) => {
    if (n !== 1 || wire !== LEN) return false; // CheckRequest.attributes
    const end = sub(r);
    const a: AttributeContextMsg = {};
    each(r, end, (m, w) => {
      if (w !== LEN) return false;
      if (m === 1) {
        const address = peerAddress(r);
        if (address !== undefined) a.source = { address: { socket_address: { address } } };
      } else if (m === 4) {
        const rEnd = sub(r);
        each(r, rEnd, (k, x) => {
          if (k !== 2 || x !== LEN) return false; // Request.http
          a.request = { http: httpRequest(r) };
          return true;
        });
      } else if (m === 10) {
        const [k, v] = mapEntry(r);
        (a.context_extensions ??= Object.create(null) as Record<string, string>)[k] = v;
      } else return false;
      return true;
    });
    msg.attributes = a;
    return true;
  });
  return msg;
}

// ------------------------------------------------------------------------------------------

const APPEND_ACTION: Record<HeaderValueOptionMsg['append_action'], number> = {
  APPEND_IF_EXISTS_OR_ADD: 0,
  ADD_IF_ABSENT: 1,
  OVERWRITE_IF_EXISTS_OR_ADD: 2,
  OVERWRITE_IF_EXISTS: 3,
};

const str = (w: W, field: number, s: string) => w.uint32((field << 3) | LEN).string(s);
const varint = (w: W, field: number, v: number) => {
  if (v !== 0) w.uint32((field << 3) | VARINT).int32(v);
};

function headerOption(w: W, field: number, o: HeaderValueOptionMsg): void {
  w.uint32((field << 3) | LEN).fork();
  w.uint32((1 << 3) | LEN).fork(); // HeaderValueOption.header
  str(w, 1, o.header.key);
  str(w, 2, o.header.value);
  w.ldelim();
  varint(w, 3, APPEND_ACTION[o.append_action]); // HeaderValueOption.append_action
  w.ldelim();
}

function struct(w: W, field: number, s: StructMsg): void {
  w.uint32((field << 3) | LEN).fork();
  for (const [k, v] of Object.entries(s.fields)) {
    w.uint32((1 << 3) | LEN).fork(); // Struct.fields entry
    str(w, 1, k);
    w.uint32((2 << 3) | LEN).fork(); // google.protobuf.Value
    str(w, 3, v.stringValue); // Value.string_value
    w.ldelim();
    w.ldelim();
  }
  w.ldelim();
}

export function encodeCheckResponse(m: CheckResponseMsg): Buffer {
  const w = Writer.create();
  w.uint32((1 << 3) | LEN).fork(); // CheckResponse.status (google.rpc.Status)
  varint(w, 1, m.status.code);
  if (m.status.message) str(w, 2, m.status.message);
  w.ldelim();
  if (m.denied_response) {
    const d = m.denied_response;
    w.uint32((2 << 3) | LEN).fork();
    w.uint32((1 << 3) | LEN).fork(); // DeniedHttpResponse.status (envoy.type.v3.HttpStatus)
    varint(w, 1, d.status.code);
    w.ldelim();
    for (const h of d.headers) headerOption(w, 2, h);
    if (d.body) str(w, 3, d.body);
    w.ldelim();
  }
  if (m.ok_response) {
    const ok = m.ok_response;
    w.uint32((3 << 3) | LEN).fork();
    for (const h of ok.headers) headerOption(w, 2, h);
    for (const name of ok.headers_to_remove) str(w, 5, name);
    for (const h of ok.response_headers_to_add) headerOption(w, 6, h);
    w.ldelim();
  }
  if (m.dynamic_metadata) struct(w, 4, m.dynamic_metadata);
  return Buffer.from(w.finish());
}
