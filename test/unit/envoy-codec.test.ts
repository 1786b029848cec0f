/**
 * The lean codec against proto-loader's generic one on the same definitions (proto/): what the
 * lean decoder reads from a CheckRequest equals what the generic decoder reads, and what the
 * lean encoder writes decodes, under proto/, to the message the generic encoder would write.
 */
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { encodeCheckRequest } from '../../harness/envoy-wire.js';
import { decodeCheckRequest, encodeCheckResponse } from '../../src/transport/envoy-codec.js';
import type { CheckResponseMsg } from '../../src/transport/envoy-proto.js';
import { PROTO_DIR } from '../../src/transport/envoy-proto.js';

const root = new protobuf.Root();
root.resolvePath = (_o, t) => (t.startsWith('google/protobuf/') ? t : `${PROTO_DIR}${t}`);
root.loadSync('envoy/service/auth/v3/external_auth.proto', { keepCase: true });
const CheckRequest = root.lookupType('envoy.service.auth.v3.CheckRequest');
const CheckResponse = root.lookupType('envoy.service.auth.v3.CheckResponse');
const generic = (bytes: Uint8Array, type: protobuf.Type, defaults = false) =>
  type.toObject(type.decode(bytes), { enums: String, longs: String, defaults, oneofs: false });

describe('lean CheckRequest decoder', () => {
  it.each([
    [
      'headers map',
      {
        method: 'POST',
        path: '/a?b=1',
        host: 'h:8443',
        headers: { cookie: 'a=1; sessiongate=x', accept: 'text/html', 'x-user-id': 'spoof' },
        contextExtensions: { policy: 'admin', other: 'y' },
        sourceAddress: '198.51.100.9',
        id: 'req-1',
      },
    ],
    [
      'raw header_map',
      {
        method: 'GET',
        path: '/',
        host: 'h',
        rawHeaders: [
          ['cookie', 'a=1'],
          ['cookie', 'b=2'],
          ['x', 'é'],
        ] as Array<[string, string]>,
      },
    ],
  ])('reads the same fields as the generic decoder (%s)', (_n, r) => {
    const bytes = encodeCheckRequest(r);
    const lean = decodeCheckRequest(Buffer.from(bytes));
    const full = generic(bytes, CheckRequest) as { attributes: Record<string, any> };
    const http = full.attributes['request'].http;
    expect(lean.attributes?.request?.http).toMatchObject({ id: http.id, method: http.method, path: http.path, host: http.host, scheme: http.scheme });
    if (http.headers) expect({ ...lean.attributes?.request?.http?.headers }).toEqual(http.headers);
    if (http.header_map) {
      expect(lean.attributes?.request?.http?.header_map?.headers?.map((h) => [h.key, Buffer.from(h.raw_value!).toString('latin1')])).toEqual(
        http.header_map.headers.map((h: { key: string; raw_value: Uint8Array }) => [h.key, Buffer.from(h.raw_value).toString('latin1')]),
      );
    }
    expect({ ...lean.attributes?.context_extensions }).toEqual(full.attributes['context_extensions'] ?? {});
    expect(lean.attributes?.source?.address?.socket_address?.address).toBe(full.attributes['source'].address.socket_address.address);
  });

  it('marks a message that says something twice as ambiguous (protobuf would merge or keep the last)', () => {
    const one = encodeCheckRequest({ method: 'GET', path: '/a', host: 'h', headers: { cookie: 'a=1' } });
    expect(decodeCheckRequest(Buffer.from(one)).ambiguous).toBeUndefined();
    expect(
      decodeCheckRequest(
        Buffer.from(
          encodeCheckRequest({
            method: 'GET',
            path: '/',
            host: 'h',
            rawHeaders: [
              ['cookie', 'a=1'],
              ['cookie', 'b=2'],
            ],
          }),
        ),
      ).ambiguous,
    ).toBeUndefined();
    // The whole message twice: attributes repeated.
    expect(decodeCheckRequest(Buffer.concat([one, one])).ambiguous).toBe(true);
    // One header map key twice, with different values.
    const w = protobuf.Writer.create();
    w.uint32((1 << 3) | 2).fork(); // attributes
    w.uint32((4 << 3) | 2).fork(); // request
    w.uint32((2 << 3) | 2).fork(); // http
    for (const v of ['/public', '/admin']) {
      w.uint32((3 << 3) | 2)
        .fork()
        .uint32((1 << 3) | 2)
        .string(':path')
        .uint32((2 << 3) | 2)
        .string(v)
        .ldelim();
    }
    w.uint32((4 << 3) | 2)
      .string('/a')
      .uint32((4 << 3) | 2)
      .string('/b'); // path twice
    w.ldelim().ldelim().ldelim();
    const twice = decodeCheckRequest(Buffer.from(w.finish()));
    expect(twice.ambiguous).toBe(true);
    // A header_map entry whose value and raw_value differ.
    const both = encodeCheckRequest({ method: 'GET', path: '/', host: 'h', rawHeaders: [], headerMap: [{ key: 'cookie', value: 'a=1', raw: 'a=2' }] });
    expect(decodeCheckRequest(Buffer.from(both)).ambiguous).toBe(true);
    const same = encodeCheckRequest({ method: 'GET', path: '/', host: 'h', rawHeaders: [], headerMap: [{ key: 'cookie', value: 'a=1', raw: 'a=1' }] });
    expect(decodeCheckRequest(Buffer.from(same)).ambiguous).toBeUndefined();
    const utf8 = encodeCheckRequest({
      method: 'GET',
      path: '/',
      host: 'h',
      rawHeaders: [],
      headerMap: [{ key: 'x-name', value: 'josé', raw: Buffer.from('josé').toString('latin1') }],
    });
    expect(decodeCheckRequest(Buffer.from(utf8)).ambiguous).toBeUndefined();
  });

  it('skips unknown fields and fields of an unexpected wire type', () => {
    const w = protobuf.Writer.create();
    w.uint32((99 << 3) | 2).string('future field');
    w.uint32((1 << 3) | 0).uint32(5); // attributes as a varint: wrong wire type
    expect(decodeCheckRequest(Buffer.from(w.finish()))).toEqual({});
  });
});

describe('lean CheckResponse encoder', () => {
  const ok: CheckResponseMsg = {
    status: { code: 0 },
    ok_response: {
      headers: [{ header: { key: 'x-user-id', value: 'alice' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' }],
      headers_to_remove: ['x-auth-user', 'x_user_id'],
      response_headers_to_add: [{ header: { key: 'set-cookie', value: 'sg=1' }, append_action: 'APPEND_IF_EXISTS_OR_ADD' }],
    },
    dynamic_metadata: { fields: { user_id: { stringValue: 'alice' }, reason: { stringValue: 'authenticated' } } },
  };
  const denied: CheckResponseMsg = {
    status: { code: 16, message: 'no_session' },
    denied_response: {
      status: { code: 302 },
      headers: [{ header: { key: 'location', value: 'https://l/?rd=x' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' }],
      body: 'Found\n',
    },
    dynamic_metadata: { fields: { reason: { stringValue: 'no_session' } } },
  };

  it.each([
    ['allow', ok],
    ['deny', denied],
  ])('writes what the generic encoder writes (%s)', (_n, m) => {
    // proto3: a zero is the same whether written or left out, so compare with defaults filled in.
    const fromLean = generic(encodeCheckResponse(m), CheckResponse, true);
    const fromGeneric = generic(CheckResponse.encode(CheckResponse.fromObject(m)).finish(), CheckResponse, true);
    expect(fromLean).toEqual(fromGeneric);
  });
});
