/**
 * Envoy's ext_authz v3 protobuf definitions (proto/, wire-identical to data-plane-api),
 * loaded once with one set of proto-loader options, and the shapes of the decoded messages
 * as those options deliver them (keepCase field names, enums as strings, int64 as strings).
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadSync, type Options, type PackageDefinition } from '@grpc/proto-loader';

/** proto/ of the package: two levels above this module in src/ and dist/, found by walking up from other builds. */
export const PROTO_DIR = ((): string => {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'proto/envoy/service/auth/v3/external_auth.proto'))) return join(dir, 'proto/');
    const up = dirname(dir);
    if (up === dir) throw new Error(`proto/ not found above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
})();

/** The one set of loader options, for the service and for any test client. */
export const LOADER_OPTIONS: Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: false,
  oneofs: true,
  includeDirs: [PROTO_DIR],
};

export const AUTHORIZATION_SERVICE = 'envoy.service.auth.v3.Authorization';

let cached: PackageDefinition | undefined;
/**
 * proto/ through proto-loader's generic codec. The service itself speaks the lean codec
 * (envoy-codec.ts); this is the reference it is compared with (the benchmark's F4 floor).
 */
export function authorizationPackage(): PackageDefinition {
  cached ??= loadSync('envoy/service/auth/v3/external_auth.proto', LOADER_OPTIONS);
  return cached;
}

// Decoded CheckRequest, as far as sessiongate reads it. Every field may be absent.

export interface SocketAddressMsg {
  address?: string;
  port_value?: number;
}
export interface AddressMsg {
  socket_address?: SocketAddressMsg;
  pipe?: { path?: string };
}
export interface PeerMsg {
  address?: AddressMsg;
  principal?: string;
}
export interface HeaderValueMsg {
  key?: string;
  value?: string;
  raw_value?: Buffer;
}
export interface HttpRequestMsg {
  id?: string;
  method?: string;
  headers?: Record<string, string>;
  header_map?: { headers?: HeaderValueMsg[] };
  path?: string;
  host?: string;
  scheme?: string;
  protocol?: string;
}
export interface AttributeContextMsg {
  source?: PeerMsg;
  destination?: PeerMsg;
  request?: { http?: HttpRequestMsg };
  context_extensions?: Record<string, string>;
}
export interface CheckRequestMsg {
  attributes?: AttributeContextMsg;
  /** Set by the lean decoder when the message gave a field twice (envoy-codec.ts); not a proto field. */
  ambiguous?: true;
}

// CheckResponse as sessiongate writes it.

export type HeaderAppendAction = 'APPEND_IF_EXISTS_OR_ADD' | 'ADD_IF_ABSENT' | 'OVERWRITE_IF_EXISTS_OR_ADD' | 'OVERWRITE_IF_EXISTS';
export interface HeaderValueOptionMsg {
  header: { key: string; value: string };
  append_action: HeaderAppendAction;
}
export interface StructMsg {
  fields: Record<string, { stringValue: string }>;
}
export interface CheckResponseMsg {
  status: { code: number; message?: string };
  ok_response?: {
    headers: HeaderValueOptionMsg[];
    headers_to_remove: readonly string[];
    response_headers_to_add: HeaderValueOptionMsg[];
  };
  denied_response?: {
    status: { code: number };
    headers: HeaderValueOptionMsg[];
    body: string;
  };
  dynamic_metadata?: StructMsg;
}
