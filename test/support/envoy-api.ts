/**
 * Envoy's published v3 API, as vendored by @grpc/grpc-js-xds (deps/envoy-api and its
 * dependencies), loaded with protobufjs for tests that check our files against it.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import protobuf from 'protobufjs';

const require = createRequire(import.meta.url);
const XDS = dirname(require.resolve('@grpc/grpc-js-xds/package.json'));
const ROOTS = ['deps/envoy-api', 'deps/xds', 'deps/googleapis', 'deps/protoc-gen-validate'].map((d) => join(XDS, d));

export function loadEnvoyApi(files: readonly string[]): protobuf.Root {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => {
    if (target.startsWith('google/protobuf/')) {
      // protobufjs has the common types built in, and ships descriptor.proto and a few others.
      const shipped = join(dirname(require.resolve('protobufjs/package.json')), target);
      return existsSync(shipped) ? shipped : target;
    }
    for (const r of ROOTS) {
      const p = join(r, target);
      if (existsSync(p)) return p;
    }
    return target;
  };
  root.loadSync([...files], { keepCase: true, alternateCommentMode: false });
  root.resolveAll();
  return root;
}

const WKT_SCALAR: Record<string, (v: unknown) => boolean> = {
  '.google.protobuf.Duration': (v) => typeof v === 'string' && /^-?\d+(\.\d+)?s$/.test(v),
  '.google.protobuf.Timestamp': (v) => typeof v === 'string',
  '.google.protobuf.BoolValue': (v) => typeof v === 'boolean',
  '.google.protobuf.UInt32Value': (v) => Number.isInteger(v),
  '.google.protobuf.UInt64Value': (v) => Number.isInteger(v) || typeof v === 'string',
  '.google.protobuf.Int64Value': (v) => Number.isInteger(v) || typeof v === 'string',
  '.google.protobuf.DoubleValue': (v) => typeof v === 'number',
  '.google.protobuf.StringValue': (v) => typeof v === 'string',
  '.google.protobuf.Struct': (v) => v !== null && typeof v === 'object',
  '.google.protobuf.Value': () => true,
};

function scalarOk(type: string, v: unknown): boolean {
  switch (type) {
    case 'string':
    case 'bytes':
      return typeof v === 'string';
    case 'bool':
      return typeof v === 'boolean';
    case 'double':
    case 'float':
      return typeof v === 'number';
    default: // integers
      return Number.isInteger(v) || (typeof v === 'string' && /^-?\d+$/.test(v));
  }
}

/**
 * Every problem with `value` read as the proto3 JSON/YAML form of `type`: unknown fields, unknown
 * enum values, wrong scalar kinds, `@type` URLs that name no message. Empty when it is valid.
 */
export function strictProblems(root: protobuf.Root, type: protobuf.Type, value: unknown, path = ''): string[] {
  const wkt = WKT_SCALAR[type.fullName];
  if (wkt) return wkt(value) ? [] : [`${path}: not a valid ${type.fullName}`];
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return [`${path}: expected an object for ${type.fullName}`];
  let target = type;
  const obj = { ...(value as Record<string, unknown>) };
  if (type.fullName === '.google.protobuf.Any') {
    const url = obj['@type'];
    delete obj['@type'];
    if (typeof url !== 'string' || !url.startsWith('type.googleapis.com/')) return [`${path}: Any without a type.googleapis.com/ @type`];
    try {
      target = root.lookupType(url.slice('type.googleapis.com/'.length));
    } catch {
      return [`${path}: @type ${url} names no message of Envoy's API`];
    }
  }
  const problems: string[] = [];
  const oneofsSeen = new Map<string, string>();
  for (const [key, v] of Object.entries(obj)) {
    const field = target.fields[key] ?? target.fieldsArray.find((f) => f.options?.['json_name'] === key);
    const at = path ? `${path}.${key}` : key;
    if (!field) {
      problems.push(`${at}: no field ${key} in ${target.fullName}`);
      continue;
    }
    if (field.partOf) {
      const other = oneofsSeen.get(field.partOf.name);
      if (other) problems.push(`${at}: oneof ${field.partOf.name} already set by ${other}`);
      oneofsSeen.set(field.partOf.name, key);
    }
    const check = (item: unknown, p: string) => {
      const rt = field.resolvedType;
      if (rt instanceof protobuf.Type) problems.push(...strictProblems(root, rt, item, p));
      else if (rt instanceof protobuf.Enum) {
        if (!(typeof item === 'string' && item in rt.values) && !(typeof item === 'number' && Object.values(rt.values).includes(item))) {
          problems.push(`${p}: ${String(item)} is not a value of ${rt.fullName}`);
        }
      } else if (!scalarOk(field.type, item)) problems.push(`${p}: not a valid ${field.type}`);
    };
    if (field.map) {
      if (v === null || typeof v !== 'object') problems.push(`${at}: expected a map`);
      else for (const [k, item] of Object.entries(v)) check(item, `${at}.${k}`);
    } else if (field.repeated) {
      if (!Array.isArray(v)) problems.push(`${at}: expected a list`);
      else for (const [i, item] of v.entries()) check(item, `${at}[${i}]`);
    } else check(v, at);
  }
  return problems;
}
