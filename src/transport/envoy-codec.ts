/**
 * A lean codec for the one RPC sessiongate serves: it decodes only the CheckRequest fields a
 * decision reads and encodes the CheckResponse directly, instead of proto-loader's generic
 * object mapping of every field (the cost that dominates a CheckRequest with a large header
 * map). Field numbers and wire types are those of proto/ (Envoy's data-plane-api); the
 * conformance tests (test/unit/envoy-proto.test.ts, test/e2e/envoy-grpc.test.ts, which speaks
 * raw bytes encoded by field number) hold both to them. Unknown fields are skipped, as
 * protobuf requires; a field with an unexpected wire type is skipped too, never trusted.
 *
 * A singular field given twice, a map key given twice or a header in both `value` and
 * `raw_value` with different contents marks the request `ambiguous` rather than being merged or
 * overwritten as protobuf would: Envoy never sends either, and whichever copy sessiongate kept,
 * something else may read the other. The adapter refuses such a request (bad_request).
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

/** What one decode found said twice; see the module comment. */
interface Seen {
  twice: boolean;
}

/** Records field `n` (below 32) in the bit set `fields`; marks `st` when it was there already. */
function once(st: Seen, fields: number, n: number): number {
  const bit = 1 << n;
  if (fields & bit) st.twice = true;
  return fields | bit;
}

function mapEntry(r: R, st: Seen): [string, string] {
  const end = sub(r);
  let k = '';
  let v = '';
  let fields = 0;
  each(r, end, (n, wire) => {
    if (wire !== LEN) return false;
    if (n === 1) k = r.string();
    else if (n === 2) v = r.string();
    else return false;
    fields = once(st, fields, n);
    return true;
  });
  return [k, v];
}

/** Adds a map entry; a key already there marks the request ambiguous (protobuf would keep the last). */
function putEntry(map: Record<string, string>, [k, v]: [string, string], st: Seen): void {
  if (k in map) st.twice = true;
  map[k] = v;
}

function headerValue(r: R, st: Seen): HeaderValueMsg {
  const end = sub(r);
  const h: HeaderValueMsg = {};
  let fields = 0;
  each(r, end, (n, wire) => {
    if (wire !== LEN) return false;
    if (n === 1) h.key = r.string();
    else if (n === 2) h.value = r.string();
    else if (n === 3) h.raw_value = Buffer.from(r.bytes());
    else return false;
    fields = once(st, fields, n);
    return true;
  });
  // Both forms of one value: they must be the same bytes (value is their UTF-8 reading).
  if (h.value && h.raw_value && h.raw_value.length > 0 && !h.raw_value.equals(Buffer.from(h.value))) st.twice = true;
  return h;
}

function httpRequest(r: R, st: Seen): HttpRequestMsg {
  const end = sub(r);
  const h: HttpRequestMsg = {};
  let fields = 0;
  each(r, end, (n, wire) => {
    if (wire !== LEN) return false;
    switch (n) {
      case 1:
        h.id = r.string();
        break;
      case 2:
        h.method = r.string();
        break;
      case 3:
        putEntry((h.headers ??= Object.create(null) as Record<string, string>), mapEntry(r, st), st);
        return true;
      case 4:
        h.path = r.string();
        break;
      case 5:
        h.host = r.string();
        break;
      case 6:
        h.scheme = r.string();
        break;
      case 13: {
        const hmEnd = sub(r);
        const list: HeaderValueMsg[] = [];
        each(r, hmEnd, (m, w) => {
          if (m !== 1 || w !== LEN) return false;
          list.push(headerValue(r, st));
          return true;
        });
        h.header_map = { headers: list };
        break;
      }
      default:
        return false;
    }
    fields = once(st, fields, n);
    return true;
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
  const st: Seen = { twice: false };
  let fields = 0;
  each(r, r.len, (n, wire) => {
    if (n !== 1 || wire !== LEN) return false; // CheckRequest.attributes
    fields = once(st, fields, n);
    const end = sub(r);
    const a: AttributeContextMsg = {};
    let aFields = 0;
    each(r, end, (m, w) => {
      if (w !== LEN) return false;
      if (m === 1) {
        const address = peerAddress(r);
        if (address !== undefined) a.source = { address: { socket_address: { address } } };
      } else if (m === 4) {
        const rEnd = sub(r);
        let rFields = 0;
        each(r, rEnd, (k, x) => {
          if (k !== 2 || x !== LEN) return false; // Request.http
          rFields = once(st, rFields, k);
          a.request = { http: httpRequest(r, st) };
          return true;
        });
      } else if (m === 10) {
        putEntry((a.context_extensions ??= Object.create(null) as Record<string, string>), mapEntry(r, st), st);
        return true;
      } else return false;
      aFields = once(st, aFields, m);
      return true;
    });
    msg.attributes = a;
    return true;
  });
  if (st.twice) msg.ambiguous = true;
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
