/**
 * envoy/*.yaml against Envoy's published v3 API (as vendored by @grpc/grpc-js-xds): every field
 * name, enum value and @type must exist there. Then what the files must say for sessiongate:
 * the ext_authz settings, HTTP/2 to the gRPC service, the headers of deploy/config.example.yaml,
 * and the removal of every client copy of them before ext_authz runs.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { ROOT } from '../../harness/processes.js';
import { canonicalHeaderName } from '../../src/core/headers.js';
import { EXPOSED_ENDPOINTS, NEVER_EXPOSED, TRIED_METHODS } from '../support/endpoint-surface.js';
import { loadEnvoyApi, strictProblems } from '../support/envoy-api.js';

const api = loadEnvoyApi([
  'envoy/config/bootstrap/v3/bootstrap.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/http/ext_authz/v3/ext_authz.proto',
  'envoy/extensions/filters/http/header_mutation/v3/header_mutation.proto',
  'envoy/extensions/filters/http/router/v3/router.proto',
  'envoy/extensions/upstreams/http/v3/http_protocol_options.proto',
]);
const Bootstrap = api.lookupType('envoy.config.bootstrap.v3.Bootstrap');

type Obj = Record<string, any>;
const read = (f: string): Obj => parse(readFileSync(join(ROOT, 'envoy', f), 'utf8')) as Obj;
const example = parse(readFileSync(join(ROOT, 'deploy/config.example.yaml'), 'utf8')) as Obj;
const protectedHeaders = [...Object.keys(example['headers']), ...example['strip_headers']].map((h: string) => h.toLowerCase()).sort();
/** What only sessiongate may set, besides the identity headers (core/headers.ts DEGRADED_HEADER). */
const DEGRADED = 'x-sessiongate-degraded';

/** Every spelling of a header name with `-`, `_` or `.` between its words (Envoy lower-cases names). */
function spellings(name: string): string[] {
  let out = [''];
  name.split('-').forEach((word, i) => {
    out = out.flatMap((prefix) => (i === 0 ? [word] : ['-', '_', '.'].map((sep) => prefix + sep + word)));
  });
  return out;
}

function hcm(cfg: Obj): Obj {
  return cfg['static_resources'].listeners[0].filter_chains[0].filters[0].typed_config;
}
function extAuthz(cfg: Obj): Obj {
  return hcm(cfg).http_filters.find((f: Obj) => f.name === 'envoy.filters.http.ext_authz').typed_config;
}
function headerMutation(cfg: Obj): Obj {
  return hcm(cfg).http_filters.find((f: Obj) => f.name === 'envoy.filters.http.header_mutation').typed_config;
}
function routes(cfg: Obj): Obj[] {
  return hcm(cfg).route_config.virtual_hosts[0].routes;
}
function cluster(cfg: Obj, name: string): Obj {
  return cfg['static_resources'].clusters.find((c: Obj) => c.name === name);
}

/** Envoy's safe_regex (RE2) matches the whole string; JavaScript's test() searches. */
const fullMatch = (regex: string, value: string) => new RegExp(`^(?:${regex})$`).test(value);

/** A StringMatcher as Envoy applies it (exact or safe_regex; nothing else is used here). */
function stringMatches(m: Obj, value: string): boolean {
  const keys = Object.keys(m);
  if (keys.length !== 1) throw new Error(`unsupported string matcher ${JSON.stringify(m)}`);
  if ('exact' in m) return m.exact === value;
  if ('safe_regex' in m) return fullMatch(m.safe_regex.regex, value);
  throw new Error(`unsupported string matcher ${JSON.stringify(m)}`);
}

/**
 * The route Envoy picks for a request: the first whose match holds (route_components.proto:
 * routes are tried in order). Only the match kinds the shipped files use are understood; any
 * other throws, so a new kind cannot be silently misread.
 */
function routeFor(list: readonly Obj[], method: string, path: string): Obj {
  const found = list.find((route) => {
    const { path: exact, prefix, safe_regex, headers, ...rest } = route.match as Obj;
    if (Object.keys(rest).length > 0) throw new Error(`unsupported route match ${JSON.stringify(route.match)}`);
    if (exact !== undefined && exact !== path) return false;
    if (prefix !== undefined && !path.startsWith(prefix)) return false;
    if (safe_regex !== undefined && !fullMatch(safe_regex.regex, path)) return false;
    for (const h of (headers ?? []) as Obj[]) {
      const { name, string_match, ...other } = h;
      if (name !== ':method' || Object.keys(other).length > 0) throw new Error(`unsupported header match ${JSON.stringify(h)}`);
      if (!stringMatches(string_match, method)) return false;
    }
    return true;
  });
  if (!found) throw new Error(`no route for ${method} ${path}`);
  return found;
}

/** Every ext_authz filter config (`@type` …ext_authz.v3.ExtAuthz) anywhere in `node`. */
function extAuthzConfigs(node: unknown): Obj[] {
  if (Array.isArray(node)) return node.flatMap(extAuthzConfigs);
  if (node === null || typeof node !== 'object') return [];
  const o = node as Obj;
  const here = o['@type'] === 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz' ? [o] : [];
  return [...here, ...Object.values(o).flatMap(extAuthzConfigs)];
}

/** Every Istio ext_authz provider (`envoyExtAuthzGrpc` / `envoyExtAuthzHttp`) anywhere in `node`. */
function istioProviders(node: unknown): Obj[] {
  if (Array.isArray(node)) return node.flatMap(istioProviders);
  if (node === null || typeof node !== 'object') return [];
  const o = node as Obj;
  return [o['envoyExtAuthzGrpc'], o['envoyExtAuthzHttp']].filter(Boolean).concat(Object.values(o).flatMap(istioProviders));
}

describe.each(['envoy.yaml', 'envoy-http.yaml'])('%s', (file) => {
  const cfg = read(file);

  it("uses only fields, enum values and types of Envoy's v3 API", () => {
    expect(strictProblems(api, Bootstrap, cfg)).toEqual([]);
  });

  it('refuses, never allows, when sessiongate fails', () => {
    const f = extAuthz(cfg);
    expect(f.transport_api_version).toBe('V3');
    expect(f.failure_mode_allow).toBe(false);
    expect(f.include_peer_certificate).toBe(false);
    expect(f.status_on_error).toEqual({ code: 'ServiceUnavailable' });
    // An invalid mutation becomes Envoy's own 500 rather than being applied (Envoy 1.31+).
    expect(f.validate_mutations).toBe(true);
    // Headers on two lines reach sessiongate as two entries, not joined with `,`.
    expect(f.encode_raw_headers).toBe(true);
    expect(hcm(cfg).http_filters.map((x: Obj) => x.name)).toEqual([
      'envoy.filters.http.header_mutation',
      'envoy.filters.http.ext_authz',
      'envoy.filters.http.router',
    ]);
  });

  it("turns the check off only for sessiongate's own endpoints and public assets", () => {
    const r = routes(cfg);
    const disabled = r.filter((x) => x.typed_per_filter_config?.['envoy.filters.http.ext_authz']?.disabled === true);
    for (const x of disabled) {
      if (x.name === 'public-assets') continue;
      expect(
        EXPOSED_ENDPOINTS.map((e) => e.path),
        x.name,
      ).toContain(x.match.path);
    }
    const assets = r.find((x) => x.name === 'public-assets')!;
    // Plain paths only: no `;`, no `%`, no `\\`, so path tricks fall through to checked routes.
    const re = new RegExp(assets.match.safe_regex.regex);
    expect(re.test('/~assets/app.css')).toBe(true);
    for (const trick of ['/~assets/..;/admin/', '/~assets/%2e%2e/admin', '/~assets/a\\b', '/~assetsX/a']) expect(re.test(trick), trick).toBe(false);
    // No ext_authz answer strips sessiongate's credential there: the application gets none of it.
    expect(assets.route.cluster).toBe('app');
    expect([...assets.request_headers_to_remove].sort()).toEqual(['authorization', 'cookie']);
    expect(r.at(-1)!.match).toEqual({ prefix: '/' });
  });

  describe('the endpoint surface (test/support/endpoint-surface.ts)', () => {
    const r = routes(cfg);
    const off = (x: Obj) => x.typed_per_filter_config?.['envoy.filters.http.ext_authz']?.disabled === true;

    it.each(EXPOSED_ENDPOINTS.flatMap((e) => TRIED_METHODS.map((m) => [m, e.path, e.methods.includes(m)] as const)))(
      '%s %s: passed to sessiongate unchecked: %s (any other method refused by Envoy)',
      (method, path, passed) => {
        const route = routeFor(r, method, path);
        expect(off(route), route.name).toBe(true);
        if (passed) {
          expect(route.route, route.name).toEqual({ cluster: 'sessiongate_http' });
          expect(route.direct_response, route.name).toBeUndefined();
        } else {
          expect(route.route, route.name).toBeUndefined();
          expect([403, 405], route.name).toContain(route.direct_response?.status);
        }
      },
    );

    it.each(NEVER_EXPOSED.map((e) => [e.method, e.path] as const))('%s %s goes through the check to the application', (method, path) => {
      const route = routeFor(r, method, path);
      expect(route.route, route.name).toEqual({ cluster: 'app' });
      expect(off(route), route.name).toBe(false);
    });

    it("routes nothing else to sessiongate unchecked, and only the doctor's probe checked", () => {
      const exposed = EXPOSED_ENDPOINTS.map((e) => e.path);
      for (const x of r.filter((y) => y.route?.cluster === 'sessiongate_http')) {
        if (off(x)) expect(exposed, x.name).toContain(x.match.path);
        else expect(x.match, x.name).toEqual({ prefix: '/~sessiongate/probe/' });
      }
    });
  });

  it('removes every client copy of a protected header before ext_authz, so none survives an ext_authz that fails open', () => {
    // Envoy's failure_mode_allow continues a request on any ext_authz error without applying a
    // single removal or overwrite: what reaches the upstream then is the request as the filters
    // before ext_authz left it. Simulated here: the connection manager drops names with `_`
    // (headers_with_underscores_action: DROP_HEADER), then header_mutation applies its removals.
    const filters = hcm(cfg).http_filters.map((x: Obj) => x.name);
    expect(filters.indexOf('envoy.filters.http.header_mutation')).toBeLessThan(filters.indexOf('envoy.filters.http.ext_authz'));
    const m = headerMutation(cfg);
    expect(m['@type']).toBe('type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation');
    expect(m.mutations.response_mutations).toBeUndefined();
    const removed = new Set<string>();
    for (const mutation of m.mutations.request_mutations) {
      expect(Object.keys(mutation), 'removals only').toEqual(['remove']);
      removed.add(mutation.remove);
    }
    // No route turns it off.
    for (const r of routes(cfg)) expect(r.typed_per_filter_config?.['envoy.filters.http.header_mutation'], r.name).toBeUndefined();

    const dropsUnderscores = hcm(cfg).common_http_protocol_options.headers_with_underscores_action === 'DROP_HEADER';
    const forged = [...protectedHeaders, DEGRADED].flatMap(spellings);
    expect(forged).toContain('x.user_id');
    const upstream = forged.filter((h) => !(dropsUnderscores && h.includes('_'))).filter((h) => !removed.has(h));
    expect(upstream.filter((h) => [...protectedHeaders, DEGRADED].includes(canonicalHeaderName(h)))).toEqual([]);
    // And nothing else: the filter removes what only sessiongate may set, not the application's headers.
    for (const h of removed) expect([...protectedHeaders, DEGRADED], h).toContain(canonicalHeaderName(h));
  });

  it('drops underscore header names and refuses encoded slashes', () => {
    const h = hcm(cfg);
    expect(h.common_http_protocol_options.headers_with_underscores_action).toBe('DROP_HEADER');
    expect(h.path_with_escaped_slashes_action).toBe('REJECT_REQUEST');
    expect(h.normalize_path).toBe(true);
    expect(h.merge_slashes).toBe(true);
  });
});

describe('envoy.yaml (gRPC)', () => {
  const cfg = read('envoy.yaml');

  it('calls sessiongate over gRPC on an HTTP/2 cluster, with a timeout and health checks', () => {
    const f = extAuthz(cfg);
    expect(f.grpc_service).toEqual({ envoy_grpc: { cluster_name: 'sessiongate_grpc' }, timeout: '0.25s' });
    const c = cluster(cfg, 'sessiongate_grpc');
    expect(c.typed_extension_protocol_options['envoy.extensions.upstreams.http.v3.HttpProtocolOptions'].explicit_http_config).toEqual({
      http2_protocol_options: {},
    });
    expect(c.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value).toBe(9181);
    expect(c.health_checks[0].grpc_health_check.service_name).toBe('envoy.service.auth.v3.Authorization');
  });

  it('names a per-route policy that deploy/config.example.yaml defines', () => {
    const named = routes(cfg)
      .map((r) => r.typed_per_filter_config?.['envoy.filters.http.ext_authz']?.check_settings?.context_extensions?.policy)
      .filter(Boolean);
    expect(named.length).toBeGreaterThan(0);
    for (const p of named) expect(Object.keys(example['policies'])).toContain(p);
  });
});

describe('envoy-http.yaml (HTTP)', () => {
  const cfg = read('envoy-http.yaml');
  const f = extAuthz(cfg);

  it("calls sessiongate's HTTP port under its Envoy prefix", () => {
    expect(f.http_service.server_uri).toEqual({ uri: 'http://127.0.0.1:9180', cluster: 'sessiongate_http', timeout: '0.25s' });
    expect(f.http_service.path_prefix).toBe(example['envoy']?.http_path_prefix ?? '/envoy');
  });

  it('copies exactly the identity headers, the degraded marker and the stripped Cookie upstream, and Set-Cookie to the client on success', () => {
    const up = f.http_service.authorization_response.allowed_upstream_headers.patterns.map((p: Obj) => p.exact);
    expect(up.sort()).toEqual([...Object.keys(example['headers']).map((h) => h.toLowerCase()), DEGRADED, 'cookie'].sort());
    expect(f.http_service.authorization_response.allowed_client_headers_on_success.patterns).toEqual([{ exact: 'set-cookie' }]);
  });

  it('lets sessiongate see the cookie and every spelling of a protected header', () => {
    const patterns: Obj[] = f.allowed_headers.patterns;
    expect(patterns).toContainEqual({ exact: 'cookie' });
    expect(patterns).toContainEqual({ exact: 'accept' });
    const regexes = patterns.filter((p) => p.safe_regex).map((p) => new RegExp(p.safe_regex.regex));
    for (const h of [...protectedHeaders, DEGRADED]) {
      for (const spelling of spellings(h))
        expect(
          regexes.some((re) => re.test(spelling)),
          spelling,
        ).toBe(true);
    }
  });
});

describe('methods in HTTP mode', () => {
  it('lets sessiongate see every method override header spelling and the Content-Type', () => {
    const patterns: Obj[] = extAuthz(read('envoy-http.yaml')).allowed_headers.patterns;
    expect(patterns).toContainEqual({ exact: 'content-type' });
    const regexes = patterns.filter((p) => p.safe_regex).map((p) => new RegExp(p.safe_regex.regex));
    for (const h of ['x-http-method-override', 'x-http-method', 'x-method-override']) {
      for (const spelling of [h, h.replace(/-/g, '_'), h.replace(/-/g, '.')])
        expect(
          regexes.some((re) => re.test(spelling)),
          spelling,
        ).toBe(true);
    }
  });
});

describe('the API check itself', () => {
  it('catches misspelled fields, unknown enum values, unknown @types and clashing oneofs', () => {
    const cfg = read('envoy.yaml');
    const f = extAuthz(cfg);
    f.failure_mode_allowed = false;
    f.status_on_error = { code: 'Teapot' };
    hcm(cfg).http_filters.find((x: Obj) => x.name === 'envoy.filters.http.router').typed_config['@type'] =
      'type.googleapis.com/envoy.extensions.filters.http.router.v3.Routr';
    headerMutation(cfg).mutations.request_mutations.push({ remove: 'x-a', append: { header: { key: 'x-b', value: 'c' } } });
    f.http_service = { path_prefix: '/x' };
    cluster(cfg, 'app').connect_timeout = '1 second';
    const problems = strictProblems(api, Bootstrap, cfg).join('\n');
    expect(problems).toContain('failure_mode_allowed: no field failure_mode_allowed in .envoy.extensions.filters.http.ext_authz.v3.ExtAuthz');
    expect(problems).toContain('status_on_error.code: Teapot is not a value of .envoy.type.v3.StatusCode');
    expect(problems).toContain('names no message');
    expect(problems).toContain('oneof services already set by grpc_service');
    expect(problems).toContain('connect_timeout: not a valid .google.protobuf.Duration');
    expect(problems).toContain('oneof action already set by remove');
  });
});

describe('every ext_authz config shown', () => {
  const docs = readFileSync(join(ROOT, 'docs/envoy.md'), 'utf8');
  const blocks = [...docs.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!);
  const parsed = blocks.flatMap((b) => parseAllDocuments(b).map((d) => d.toJS() as unknown));

  it("answers 503, not Envoy's default 403, when sessiongate fails: the shipped files and docs/envoy.md", () => {
    const shipped = ['envoy.yaml', 'envoy-http.yaml'].flatMap((f) => extAuthzConfigs(read(f)));
    expect(shipped).toHaveLength(2);
    const shown = extAuthzConfigs(parsed);
    expect(shown.length).toBeGreaterThan(0);
    for (const f of [...shipped, ...shown]) {
      expect(f.status_on_error).toEqual({ code: 'ServiceUnavailable' });
      expect(f.failure_mode_allow ?? false).toBe(false);
    }
    // Istio's mesh config spells it statusOnError, a string (istio/api mesh/v1alpha1/config.proto).
    const istio = istioProviders(parsed);
    expect(istio.length).toBeGreaterThan(0);
    for (const p of istio) {
      expect(p.statusOnError).toBe('503');
      expect(p.failOpen ?? false).toBe(false);
    }
  });
});
