/**
 * Pins every field of proto/ to the number, type and label of Envoy's published definitions
 * (envoyproxy/envoy api/, checked against a second vendored copy). A wrong field number is
 * silent data loss on the wire; here it is a failing test.
 */
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { PROTO_DIR } from '../../src/transport/envoy-proto.js';
import { loadEnvoyApi } from '../support/envoy-api.js';

type FieldSpec = [name: string, id: number, type: string, rule?: 'repeated' | 'map'];

const PUBLISHED: Record<string, FieldSpec[]> = {
  'envoy.service.auth.v3.CheckRequest': [['attributes', 1, 'AttributeContext']],
  'envoy.service.auth.v3.DeniedHttpResponse': [
    ['status', 1, 'type.v3.HttpStatus'],
    ['headers', 2, 'config.core.v3.HeaderValueOption', 'repeated'],
    ['body', 3, 'string'],
  ],
  'envoy.service.auth.v3.OkHttpResponse': [
    ['headers', 2, 'config.core.v3.HeaderValueOption', 'repeated'],
    ['headers_to_remove', 5, 'string', 'repeated'],
    ['dynamic_metadata', 3, 'google.protobuf.Struct'],
    ['response_headers_to_add', 6, 'config.core.v3.HeaderValueOption', 'repeated'],
    ['query_parameters_to_set', 7, 'config.core.v3.QueryParameter', 'repeated'],
    ['query_parameters_to_remove', 8, 'string', 'repeated'],
  ],
  'envoy.service.auth.v3.CheckResponse': [
    ['status', 1, 'google.rpc.Status'],
    ['denied_response', 2, 'DeniedHttpResponse'],
    ['ok_response', 3, 'OkHttpResponse'],
    ['dynamic_metadata', 4, 'google.protobuf.Struct'],
  ],
  'envoy.service.auth.v3.AttributeContext': [
    ['source', 1, 'Peer'],
    ['destination', 2, 'Peer'],
    ['request', 4, 'Request'],
    ['context_extensions', 10, 'string', 'map'],
    ['metadata_context', 11, 'config.core.v3.Metadata'],
    ['route_metadata_context', 13, 'config.core.v3.Metadata'],
    ['tls_session', 12, 'TLSSession'],
  ],
  'envoy.service.auth.v3.AttributeContext.Peer': [
    ['address', 1, 'config.core.v3.Address'],
    ['service', 2, 'string'],
    ['labels', 3, 'string', 'map'],
    ['principal', 4, 'string'],
    ['certificate', 5, 'string'],
  ],
  'envoy.service.auth.v3.AttributeContext.Request': [
    ['time', 1, 'google.protobuf.Timestamp'],
    ['http', 2, 'HttpRequest'],
  ],
  'envoy.service.auth.v3.AttributeContext.HttpRequest': [
    ['id', 1, 'string'],
    ['method', 2, 'string'],
    ['headers', 3, 'string', 'map'],
    ['header_map', 13, 'config.core.v3.HeaderMap'],
    ['path', 4, 'string'],
    ['host', 5, 'string'],
    ['scheme', 6, 'string'],
    ['query', 7, 'string'],
    ['fragment', 8, 'string'],
    ['size', 9, 'int64'],
    ['protocol', 10, 'string'],
    ['body', 11, 'string'],
    ['raw_body', 12, 'bytes'],
  ],
  'envoy.service.auth.v3.AttributeContext.TLSSession': [['sni', 1, 'string']],
  'envoy.config.core.v3.Metadata': [
    ['filter_metadata', 1, 'google.protobuf.Struct', 'map'],
    ['typed_filter_metadata', 2, 'google.protobuf.Any', 'map'],
  ],
  'envoy.config.core.v3.QueryParameter': [
    ['key', 1, 'string'],
    ['value', 2, 'string'],
  ],
  'envoy.config.core.v3.HeaderValue': [
    ['key', 1, 'string'],
    ['value', 2, 'string'],
    ['raw_value', 3, 'bytes'],
  ],
  'envoy.config.core.v3.HeaderValueOption': [
    ['header', 1, 'HeaderValue'],
    ['append', 2, 'google.protobuf.BoolValue'],
    ['append_action', 3, 'HeaderAppendAction'],
    ['keep_empty_value', 4, 'bool'],
  ],
  'envoy.config.core.v3.HeaderMap': [['headers', 1, 'HeaderValue', 'repeated']],
  'envoy.config.core.v3.Pipe': [
    ['path', 1, 'string'],
    ['mode', 2, 'uint32'],
  ],
  'envoy.config.core.v3.EnvoyInternalAddress': [
    ['server_listener_name', 1, 'string'],
    ['endpoint_id', 2, 'string'],
  ],
  'envoy.config.core.v3.SocketAddress': [
    ['protocol', 1, 'Protocol'],
    ['address', 2, 'string'],
    ['port_value', 3, 'uint32'],
    ['named_port', 4, 'string'],
    ['resolver_name', 5, 'string'],
    ['ipv4_compat', 6, 'bool'],
    ['network_namespace_filepath', 7, 'string'],
  ],
  'envoy.config.core.v3.Address': [
    ['socket_address', 1, 'SocketAddress'],
    ['pipe', 2, 'Pipe'],
    ['envoy_internal_address', 3, 'EnvoyInternalAddress'],
  ],
  'envoy.type.v3.HttpStatus': [['code', 1, 'StatusCode']],
  'google.rpc.Status': [
    ['code', 1, 'int32'],
    ['message', 2, 'string'],
    ['details', 3, 'google.protobuf.Any', 'repeated'],
  ],
};

const ENUMS: Record<string, Record<string, number>> = {
  'envoy.config.core.v3.HeaderValueOption.HeaderAppendAction': {
    APPEND_IF_EXISTS_OR_ADD: 0,
    ADD_IF_ABSENT: 1,
    OVERWRITE_IF_EXISTS_OR_ADD: 2,
    OVERWRITE_IF_EXISTS: 3,
  },
  'envoy.config.core.v3.SocketAddress.Protocol': { TCP: 0, UDP: 1 },
};

function load(): protobuf.Root {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => (target.startsWith('google/protobuf/') ? target : `${PROTO_DIR}${target}`);
  root.loadSync('envoy/service/auth/v3/external_auth.proto', { keepCase: true });
  root.resolveAll();
  return root;
}

describe('proto/ matches Envoy published definitions', () => {
  const root = load();

  it.each(Object.entries(PUBLISHED))('%s', (name, fields) => {
    const type = root.lookupType(name);
    const actual = type.fieldsArray.map((f) => [f.name, f.id, f.type, f.map ? 'map' : f.repeated ? 'repeated' : undefined]);
    const expected = fields.map(([n, id, t, rule]) => [n, id, t, rule]);
    expect(actual.sort()).toEqual(expected.sort());
  });

  it.each(Object.entries(ENUMS))('%s', (name, values) => {
    expect(root.lookupEnum(name).values).toEqual(values);
  });

  it('HTTP status codes use the enum numbers of envoy.type.v3.StatusCode', () => {
    const codes = root.lookupEnum('envoy.type.v3.StatusCode').values;
    expect(codes).toMatchObject({ OK: 200, Found: 302, Unauthorized: 401, Forbidden: 403, ServiceUnavailable: 503 });
  });

  it('serves envoy.service.auth.v3.Authorization/Check', () => {
    const svc = root.lookupService('envoy.service.auth.v3.Authorization');
    expect(Object.keys(svc.methods)).toEqual(['Check']);
    expect(svc.methods['Check']).toMatchObject({
      requestType: 'CheckRequest',
      responseType: 'CheckResponse',
      requestStream: undefined,
      responseStream: undefined,
    });
  });
});

describe('proto/ matches the Envoy API vendored by @grpc/grpc-js-xds', () => {
  const ours = load();
  const theirs = loadEnvoyApi(['envoy/service/auth/v3/external_auth.proto']);

  function messages(ns: protobuf.NamespaceBase): protobuf.Type[] {
    const out: protobuf.Type[] = [];
    for (const nested of ns.nestedArray) {
      if (nested instanceof protobuf.Type) out.push(nested);
      if (nested instanceof protobuf.Namespace || nested instanceof protobuf.Type) out.push(...messages(nested));
    }
    return out;
  }

  const ourTypes = messages(ours).filter((t) => !t.fullName.startsWith('.google.protobuf.'));

  it('covers every message of proto/', () => {
    expect(ourTypes.length).toBeGreaterThanOrEqual(Object.keys(PUBLISHED).length);
  });

  it.each(ourTypes.map((t) => [t.fullName, t] as const))('%s: same number, type and label for every field', (name, ours) => {
    const theirsType = theirs.lookupType(name);
    for (const f of ours.fieldsArray) {
      const t = theirsType.fields[f.name];
      if (t === undefined) {
        // A field newer than that vendored copy (SocketAddress.network_namespace_filepath = 7):
        // its number must at least be free there.
        expect(theirsType.fieldsById[f.id], `${name} field ${f.id}`).toBeUndefined();
        continue;
      }
      expect([f.id, f.type, f.repeated, f.map], `${name}.${f.name}`).toEqual([t.id, t.type, t.repeated, t.map]);
    }
  });
});
