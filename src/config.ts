/**
 * Configuration, built once: embedded defaults, then the YAML file, then SESSIONGATE_*
 * environment variables, validated as a whole by one zod schema. Every problem is collected
 * and reported with its key path (and the variable it came from) before anything listens.
 * Secrets are read here and never appear in a message.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { z } from 'zod';
import { normalisePath } from './core/path.js';
import type { PolicySpec } from './core/policy.js';
import { REDIRECT_HOST } from './core/redirect.js';
import { externalSessionSchema, type ExternalSessionSpec } from './external/index.js';
import { ROLE_NAME, ROLE_NAME_HINT } from './session/record.js';
import type { CacheOptions } from './store/cached.js';
import type { RedisConnection } from './store/redis.js';
import { displayStoreUrl, parseStoreUrl, type StoreUrl } from './store/url.js';

export { maskUrl } from './store/url.js';

// ---------------------------------------------------------------------------------------------
// Durations: Go-style, as oauth2-proxy and Envoy users write them (`30s`, `15m`, `1h30m`,
// `500ms`, `7d`). The `ms` package reads single units only, hence this small parser.

const DURATION_PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/g;
const DURATION = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Milliseconds in a duration string, or null when it is not one. */
export function parseDuration(s: string): number | null {
  if (!DURATION.test(s)) return null;
  let total = 0;
  for (const m of s.matchAll(DURATION_PART)) total += Number(m[1]) * UNIT_MS[m[2]!]!;
  return Math.round(total);
}

const duration = (min: string) => {
  const minMs = parseDuration(min)!;
  return z
    .string({ error: 'must be a duration such as 30s, 15m, 12h or 1h30m' })
    .refine((s) => parseDuration(s) !== null, { error: (i) => `${JSON.stringify(i.input)} is not a duration (use e.g. 30s, 15m, 12h, 1h30m)` })
    .transform((s) => parseDuration(s)!)
    .refine((ms) => ms >= minMs, { error: `must be at least ${min}`, abort: true });
};

// ---------------------------------------------------------------------------------------------
// Field schemas.

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/; // RFC 9110 token: header and cookie names
/** Headers that carry protocol meaning; mapping identity onto them would break or open the proxy. */
const RESERVED_HEADERS = new Set([
  'host', 'connection', 'keep-alive', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'content-length',
  'content-type', 'cookie', 'set-cookie', 'authorization', 'proxy-authorization', 'location',
  'www-authenticate', 'x-original-uri', 'x-original-method', 'x-forwarded-for', 'x-forwarded-host',
  'x-forwarded-proto', 'x-forwarded-uri', 'x-forwarded-method', 'x-request-id', 'x-real-ip',
]);

const headerName = z
  .string()
  .regex(TOKEN, { error: 'must be a header name (letters, digits, -)' })
  .refine((n) => !RESERVED_HEADERS.has(n.toLowerCase()), { error: (i) => `${String(i.input)} is a reserved header and cannot carry identity` });

const fieldPath = z.string().regex(/^[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*$/, {
  error: 'must be a session field: user_id, roles, created_at, expires_at, or a dotted path into attributes',
});

const port = z.int({ error: 'must be a port number (0-65535; 0 picks a free one)' }).min(0).max(65535);
const roleName = z.string().regex(ROLE_NAME, { error: ROLE_NAME_HINT });
const method = z
  .string()
  .regex(/^[A-Za-z]{1,20}$/, { error: 'must be an HTTP method' })
  .transform((m) => m.toUpperCase());

const rulePath = z
  .string()
  .refine((p) => p.startsWith('/') && normalisePath(p) === p, {
    error: (i) => `${JSON.stringify(i.input)} must be an absolute, normalised path (no '..', '//', ';', '?', '#', encoded '/')`,
  });

function rolesMatchAccess(r: { access: string; roles?: string[] | undefined }, ctx: z.RefinementCtx): void {
  if (r.access === 'roles' && !r.roles) ctx.addIssue({ code: 'custom', path: ['roles'], message: 'is required when access is roles' });
  if (r.access !== 'roles' && r.roles) ctx.addIssue({ code: 'custom', path: ['roles'], message: 'is only meaningful with access: roles' });
}

const ACCESS = z.enum(['public', 'anonymous', 'authenticated', 'roles'], { error: 'must be one of public, anonymous, authenticated, roles' });

const rule = z
  .strictObject({
    path: rulePath,
    access: ACCESS,
    roles: z.array(roleName).min(1, { error: 'must name at least one role' }).optional(),
    methods: z.array(method).min(1, { error: 'must name at least one method' }).optional(),
    case_sensitive: z.boolean().optional(),
    body_method_override: z.boolean().optional(),
  })
  .superRefine(rolesMatchAccess);

const policyRule = z
  .strictObject({
    access: ACCESS,
    roles: z.array(roleName).min(1, { error: 'must name at least one role' }).optional(),
    methods: z.array(method).min(1, { error: 'must name at least one method' }).optional(),
    body_method_override: z.boolean().optional(),
  })
  .superRefine(rolesMatchAccess);

const cookie = z
  .strictObject({
    name: z.string().regex(TOKEN, { error: 'must be a cookie name (letters, digits, -, _)' }).default('sessiongate'),
    domain: z
      .string()
      .regex(/^\.?[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*$/, { error: 'must be a domain name' })
      .nullable()
      .default(null),
    path: z
      .string()
      .regex(/^\/[\x21-\x3a\x3c-\x7e]*$/, { error: 'must be a path starting with / (no ; or spaces)' })
      .default('/'),
    http_only: z.boolean().default(true),
    secure: z.boolean().default(true),
    same_site: z.enum(['lax', 'strict', 'none'], { error: 'must be lax, strict or none' }).default('lax'),
    session_only: z.boolean().default(false),
  })
  .superRefine((c, ctx) => {
    if (c.same_site === 'none' && !c.secure) ctx.addIssue({ code: 'custom', path: ['same_site'], message: 'none requires secure: true (browsers drop it otherwise)' });
    if (c.name.startsWith('__Secure-') && !c.secure) ctx.addIssue({ code: 'custom', path: ['secure'], message: 'must be true for a __Secure- cookie' });
    if (c.name.startsWith('__Host-') && (!c.secure || c.domain !== null || c.path !== '/')) {
      ctx.addIssue({ code: 'custom', path: ['name'], message: 'a __Host- cookie needs secure: true, domain: null and path: /' });
    }
  });

const session = z
  .strictObject({
    absolute_ttl: duration('1s').default(parseDuration('12h')!),
    idle_ttl: duration('1s').default(parseDuration('30m')!),
    touch_interval: duration('100ms').default(parseDuration('1m')!),
    rotate_after: duration('1s').default(parseDuration('30m')!),
    rotation_grace: duration('100ms').default(parseDuration('30s')!),
  })
  .superRefine((s, ctx) => {
    if (s.idle_ttl > s.absolute_ttl) ctx.addIssue({ code: 'custom', path: ['idle_ttl'], message: 'must not exceed absolute_ttl' });
    if (s.touch_interval >= s.idle_ttl) ctx.addIssue({ code: 'custom', path: ['touch_interval'], message: 'must be shorter than idle_ttl' });
    if (s.rotation_grace > s.rotate_after) ctx.addIssue({ code: 'custom', path: ['rotation_grace'], message: 'must not exceed rotate_after' });
  });

const MIN_SECRET_BYTES = 32;
const MIN_LOGIN_TOKEN_BYTES = 16;
const secretValue = z.string().refine((s) => Buffer.byteLength(s) >= MIN_SECRET_BYTES, {
  error: `must be at least ${MIN_SECRET_BYTES} bytes long`,
});

const schema = z
  .strictObject({
    listen: z
      .strictObject({
        host: z.string().min(1).default('127.0.0.1'),
        admin_host: z.string().min(1).nullable().default(null),
        http_port: port.default(9180),
        grpc_port: port.default(9181),
        admin_port: port.default(9182),
      })
      .prefault({}),
    store: z
      .string()
      .superRefine((s, ctx) => {
        const u = parseStoreUrl(s);
        // The problem alone: no part of a URL that does not parse is safe to repeat (url.ts).
        if (typeof u === 'string') ctx.addIssue({ code: 'custom', message: u });
      })
      .default('memory'),
    redis: z
      .strictObject({
        key_prefix: z
          .string()
          .regex(/^[A-Za-z0-9:_.-]{0,64}$/, { error: 'must be letters, digits, : _ . - (no braces: they are Cluster hash tags)' })
          .default('sg:'),
        command_timeout: duration('1ms').default(100),
        connect_timeout: duration('10ms').default(1000),
        max_retries_per_request: z.int().min(0).max(5).default(1),
        startup_timeout: duration('0s').default(10_000),
        password_file: z.string().nullable().default(null),
        tls: z
          .strictObject({
            ca_file: z.string().nullable().default(null),
            cert_file: z.string().nullable().default(null),
            key_file: z.string().nullable().default(null),
            server_name: z.string().nullable().default(null),
          })
          .prefault({}),
        sentinel: z
          .strictObject({
            username: z.string().nullable().default(null),
            password_file: z.string().nullable().default(null),
            tls: z.boolean().default(false),
          })
          .prefault({}),
      })
      .prefault({}),
    cache: z
      .strictObject({
        enabled: z.boolean().default(true),
        max_entries: z.int().min(1).default(10_000),
        ttl: duration('1ms').default(10_000),
        negative_ttl: duration('0s').default(500),
        // The cache is used only while a heartbeat on the invalidation channel, sent every
        // heartbeat_interval, comes back within heartbeat_timeout (see store/redis-bus.ts).
        heartbeat_interval: duration('10ms').default(250),
        heartbeat_timeout: duration('50ms').default(750),
      })
      .superRefine((c, ctx) => {
        if (c.heartbeat_timeout <= c.heartbeat_interval) ctx.addIssue({ code: 'custom', path: ['heartbeat_timeout'], message: 'must be longer than heartbeat_interval' });
      })
      .prefault({}),
    memory: z
      .strictObject({
        max_entries: z.int().min(1).default(100_000),
        sweep_interval: duration('1s').default(parseDuration('1m')!),
      })
      .prefault({}),
    secrets: z.array(secretValue).min(1, { error: 'must hold at least one secret' }).optional(),
    secret_file: z.string().optional(),
    login_token: z
      .string()
      .refine((s) => Buffer.byteLength(s) >= MIN_LOGIN_TOKEN_BYTES, { error: `must be at least ${MIN_LOGIN_TOKEN_BYTES} bytes long` })
      .optional(),
    login_token_file: z.string().optional(),
    cookie: cookie.prefault({}),
    session: session.prefault({}),
    headers: z.record(headerName, fieldPath).default({ 'X-User-Id': 'user_id', 'X-User-Roles': 'roles' }),
    strip_headers: z.array(headerName).default([]),
    spoof_guard: z.enum(['deny', 'strip'], { error: 'must be deny or strip' }).default('deny'),
    rules: z.array(rule).default([]),
    policies: z
      .record(z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, { error: 'must be a policy name (letters, digits, _ . -)' }), policyRule)
      .default({}),
    envoy: z
      .strictObject({
        http_path_prefix: z
          .string()
          .regex(/^\/[A-Za-z0-9._~-]+(?:\/[A-Za-z0-9._~-]+)*$/, { error: 'must be a path like /envoy (no trailing slash)' })
          .refine((p) => p !== '/auth' && !p.startsWith('/~session'), { error: 'must not overlap /auth or /~session' })
          .default('/envoy'),
      })
      .prefault({}),
    login_url: z
      .url({ protocol: /^https?$/, error: 'must be an absolute http(s) URL' })
      .nullable()
      .default(null),
    allowed_redirect_hosts: z
      .array(z.string().regex(REDIRECT_HOST, { error: 'must be a host name (app.example.com), a domain with a leading dot (.example.com), optionally with :port' }))
      .default([]),
    failure_mode: z.enum(['closed', 'open'], { error: 'must be closed or open' }).default('closed'),
    upstream: z
      .strictObject({
        // sessiongate's own cookie and API tokens reach the application too (never by default).
        pass_credentials: z.boolean({ error: 'must be true or false' }).default(false),
      })
      .prefault({}),
    external_sessions: z.array(externalSessionSchema).default([]),
    dev_login: z.boolean({ error: 'must be true or false' }).default(false),
    proxy_cache: z
      .strictObject({
        ttl: duration('0s').default(0),
      })
      .prefault({}),
    workers: z.int({ error: 'must be a whole number of worker processes' }).min(1).max(64).default(1),
    log_level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], { error: 'must be a log level' }).default('info'),
  })
  .superRefine((c, ctx) => {
    const ports = [c.listen.http_port, c.listen.grpc_port, c.listen.admin_port].filter((p) => p !== 0);
    if (new Set(ports).size !== ports.length) ctx.addIssue({ code: 'custom', path: ['listen'], message: 'http_port, grpc_port and admin_port must differ' });
    if (c.workers > 1 && c.store === 'memory') {
      ctx.addIssue({ code: 'custom', path: ['workers'], message: 'more than one worker needs a shared store (redis…): with the memory store each worker would keep its own sessions' });
    }
  });

// ---------------------------------------------------------------------------------------------
// The built configuration.

export type StoreConfig =
  | { readonly kind: 'memory'; readonly maxEntries: number; readonly sweepInterval: number }
  | (RedisConnection & {
      readonly kind: 'redis' | 'redis-sentinel' | 'redis-cluster';
      /** How long start-up retries the store's self-test. */
      readonly startupTimeout: number;
      readonly cache: CacheOptions & { readonly enabled: boolean };
    });

export interface Config {
  readonly source: string | null;
  readonly listen: { readonly host: string; readonly adminHost: string; readonly httpPort: number; readonly grpcPort: number; readonly adminPort: number };
  readonly store: StoreConfig;
  /** True when no secret was configured and a random one was made for this process. */
  readonly ephemeralSecret: boolean;
  readonly loginToken: Buffer | null;
  readonly policy: PolicySpec;
  readonly envoy: { readonly httpPathPrefix: string };
  readonly logLevel: string;
  /** Worker processes sharing the listeners (node:cluster); 1 runs in this process. */
  readonly workers: number;
  /** Applications' own session stores (src/external/). Not reloadable: they hold connections. */
  readonly external: readonly ExternalSessionSpec[];
  /** GET /~session/dev: sessions without the login service (loopback only). */
  readonly devLogin: boolean;
}

export type ConfigResult =
  | { readonly ok: true; readonly config: Config; readonly warnings: string[] }
  | { readonly ok: false; readonly source: string | null; readonly problems: string[] };

type Env = Readonly<Record<string, string | undefined>>;

/** Environment variables and the key each overrides. */
export const ENV_KEYS = {
  SESSIONGATE_HOST: 'listen.host',
  SESSIONGATE_ADMIN_HOST: 'listen.admin_host',
  SESSIONGATE_HTTP_PORT: 'listen.http_port',
  SESSIONGATE_GRPC_PORT: 'listen.grpc_port',
  SESSIONGATE_ADMIN_PORT: 'listen.admin_port',
  SESSIONGATE_STORE: 'store',
  SESSIONGATE_SECRET: 'secrets',
  SESSIONGATE_SECRET_FILE: 'secret_file',
  SESSIONGATE_LOGIN_TOKEN: 'login_token',
  SESSIONGATE_LOGIN_TOKEN_FILE: 'login_token_file',
  SESSIONGATE_COOKIE_NAME: 'cookie.name',
  SESSIONGATE_COOKIE_SECURE: 'cookie.secure',
  SESSIONGATE_LOG_LEVEL: 'log_level',
  SESSIONGATE_WORKERS: 'workers',
  SESSIONGATE_LOGIN_URL: 'login_url',
  SESSIONGATE_ALLOWED_REDIRECT_HOSTS: 'allowed_redirect_hosts',
  SESSIONGATE_DEV_LOGIN: 'dev_login',
  SESSIONGATE_UPSTREAM_PASS_CREDENTIALS: 'upstream.pass_credentials',
} as const;

function setPath(obj: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.');
  let o = obj;
  for (const p of parts.slice(0, -1)) {
    const next = o[p];
    if (next === null || typeof next !== 'object' || Array.isArray(next)) o[p] = {};
    o = o[p] as Record<string, unknown>;
  }
  o[parts[parts.length - 1]!] = value;
}

/** A list of secrets as written in a variable or file: comma or newline separated. */
export function splitList(s: string): string[] {
  return s
    .split(/[,\n]/)
    .map((x) => x.trim())
    .filter((x) => x !== '');
}

function envValue(key: string, value: string): unknown {
  if (key.endsWith('_port') || key === 'workers') return /^\d+$/.test(value) ? Number(value) : value;
  if (key === 'cookie.secure' || key === 'dev_login' || key === 'upstream.pass_credentials') return value === 'true' ? true : value === 'false' ? false : value;
  if (key === 'secrets' || key === 'allowed_redirect_hosts') return splitList(value);
  return value;
}

function pathString(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out === '' ? String(p) : `.${String(p)}`;
  return out;
}

/** A file's text, or undefined with the problem recorded under `key`. */
function readText(path: string, key: string, problems: string[], origin: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    problems.push(`${key}${origin}: cannot read ${JSON.stringify(path)} (${code})`);
    return undefined;
  }
}

function readFileList(path: string, key: string, problems: string[], origin: string): string[] | undefined {
  const text = readText(path, key, problems, origin);
  return text === undefined ? undefined : splitList(text);
}

export interface LoadOptions {
  /** Config file path from `--config`; falls back to SESSIONGATE_CONFIG. */
  readonly file?: string | undefined;
  readonly env: Env;
}

/** Reads, merges and validates the configuration; never throws for bad input. */
export function loadConfig(opts: LoadOptions): ConfigResult {
  const source = opts.file ?? opts.env['SESSIONGATE_CONFIG'] ?? null;
  const problems: string[] = [];
  let raw: Record<string, unknown> = {};

  if (source !== null) {
    const text = readText(source, 'config file', problems, '');
    if (text !== undefined) {
      try {
        const doc: unknown = parseYaml(text);
        if (doc === null || doc === undefined) raw = {};
        else if (typeof doc === 'object' && !Array.isArray(doc)) raw = doc as Record<string, unknown>;
        else problems.push('config file: must be a YAML mapping of keys');
      } catch (err) {
        const msg = err instanceof YAMLParseError ? err.message.split('\n')[0] : String(err);
        problems.push(`config file: invalid YAML: ${msg}`);
      }
    }
  }

  // Environment overrides. Each variable replaces its key; a secret given by value replaces a
  // secret file from YAML and vice versa, so the operator's last word wins.
  const origin = new Map<string, string>();
  for (const [name, key] of Object.entries(ENV_KEYS)) {
    const value = opts.env[name];
    if (value === undefined || value === '') continue;
    setPath(raw, key, envValue(key, value));
    origin.set(key, name);
  }
  const both = (a: keyof typeof ENV_KEYS, b: keyof typeof ENV_KEYS) => {
    if (origin.has(ENV_KEYS[a]) && origin.has(ENV_KEYS[b])) problems.push(`${a} and ${b}: set only one of them`);
  };
  both('SESSIONGATE_SECRET', 'SESSIONGATE_SECRET_FILE');
  both('SESSIONGATE_LOGIN_TOKEN', 'SESSIONGATE_LOGIN_TOKEN_FILE');
  if (origin.has('secrets')) delete raw['secret_file'];
  if (origin.has('secret_file')) delete raw['secrets'];
  if (origin.has('login_token')) delete raw['login_token_file'];
  if (origin.has('login_token_file')) delete raw['login_token'];
  const from = (key: string) => (origin.has(key) ? ` (from ${origin.get(key)})` : '');

  if (raw['secrets'] !== undefined && raw['secret_file'] !== undefined) problems.push('secrets, secret_file: set only one of them');
  if (raw['login_token'] !== undefined && raw['login_token_file'] !== undefined) problems.push('login_token, login_token_file: set only one of them');

  // Files holding secrets are read now, so their contents are validated like inline values.
  if (typeof raw['secret_file'] === 'string') {
    const list = readFileList(raw['secret_file'], 'secret_file', problems, from('secret_file'));
    if (list) {
      raw['secrets'] = list;
      if (origin.has('secret_file')) origin.set('secrets', origin.get('secret_file')!);
    }
    delete raw['secret_file'];
  }
  if (typeof raw['login_token_file'] === 'string') {
    const token = readOneValue(raw['login_token_file'], 'login_token_file', problems, from('login_token_file'), 'token');
    if (token !== undefined) {
      raw['login_token'] = token;
      if (origin.has('login_token_file')) origin.set('login_token', origin.get('login_token_file')!);
    }
    delete raw['login_token_file'];
  }

  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      if (issue.code === 'unrecognized_keys') {
        for (const key of issue.keys) problems.push(`${pathString([...issue.path, key])}: unknown key`);
        continue;
      }
      const key = pathString(issue.path);
      // A record key's own problem is nested one level down; say that, not "Invalid key".
      const message = issue.code === 'invalid_key' ? (issue.issues[0]?.message ?? issue.message) : issue.message;
      // A secret's value is never echoed: messages here come from our own texts or zod's
      // type descriptions, which do not include input values.
      const top = key.replace(/\[\d+\].*$/, '').replace(/\..*$/, '');
      problems.push(`${key || '(top level)'}${from(key) || from(top)}: ${message}`);
    }
  }
  if (!parsed.success || problems.length > 0) return { ok: false, source, problems };

  const c = parsed.data;
  const warnings: string[] = [];
  const store = storeConfig(c, problems);
  if (problems.length > 0) return { ok: false, source, problems };
  let secrets = c.secrets?.map((s) => Buffer.from(s));
  const ephemeralSecret = secrets === undefined;
  if (ephemeralSecret && c.workers > 1) {
    return { ok: false, source, problems: [`workers${from('workers')}: more than one worker needs configured secrets (SESSIONGATE_SECRET or SESSIONGATE_SECRET_FILE): a random one would differ per worker`] };
  }
  if (!secrets) {
    secrets = [randomBytes(32)];
    warnings.push('no secret configured (SESSIONGATE_SECRET or SESSIONGATE_SECRET_FILE): using a random one; sessions will not survive a restart and replicas will not share them');
  }
  if (c.login_token === undefined) {
    warnings.push('no login token configured (SESSIONGATE_LOGIN_TOKEN or SESSIONGATE_LOGIN_TOKEN_FILE): POST /~session is disabled; a login service needs one of them set; to try sessiongate without one, run npm run demo, or set dev_login: true on a loopback address and log in at GET /~session/dev');
  }
  if (!c.cookie.secure) warnings.push('cookie.secure is false: the session cookie will be sent over plain HTTP');
  if (c.failure_mode === 'open') warnings.push('failure_mode is open: requests are allowed (without identity) while the store is unavailable');
  if (c.proxy_cache.ttl > 0) warnings.push(`proxy_cache.ttl is ${c.proxy_cache.ttl / 1000}s: a proxy that caches decisions keeps honouring a session for up to that long after logout or revocation`);
  if (c.dev_login) {
    if (!isLoopback(c.listen.host)) {
      return { ok: false, source, problems: [`dev_login${from('dev_login')}: refused: listen.host is ${c.listen.host}; the development login lets anyone log in as anyone, so it only runs on a loopback address (127.0.0.1, ::1, localhost)`] };
    }
    warnings.push('DEVELOPMENT LOGIN IS ON (dev_login: true): GET /~session/dev?user=…&roles=… logs anyone in as anyone. Never in production.');
  }
  if (c.upstream.pass_credentials) warnings.push("upstream.pass_credentials is true: the application receives sessiongate's session cookie and API tokens, working credentials of every user");
  if (c.spoof_guard === 'strip') warnings.push('spoof_guard is strip: requests carrying identity headers are let on; the proxy must remove those headers');

  return {
    ok: true,
    warnings,
    config: {
      source,
      listen: { host: c.listen.host, adminHost: c.listen.admin_host ?? c.listen.host, httpPort: c.listen.http_port, grpcPort: c.listen.grpc_port, adminPort: c.listen.admin_port },
      store,
      ephemeralSecret,
      loginToken: c.login_token === undefined ? null : Buffer.from(c.login_token),
      logLevel: c.log_level,
      workers: c.workers,
      external: c.external_sessions,
      devLogin: c.dev_login,
      envoy: { httpPathPrefix: c.envoy.http_path_prefix },
      policy: {
        rules: c.rules,
        policies: c.policies,
        headers: c.headers,
        stripHeaders: c.strip_headers,
        spoofGuard: c.spoof_guard,
        secrets,
        cookie: {
          name: c.cookie.name,
          domain: c.cookie.domain,
          path: c.cookie.path,
          httpOnly: c.cookie.http_only,
          secure: c.cookie.secure,
          sameSite: c.cookie.same_site,
          sessionOnly: c.cookie.session_only,
        },
        times: {
          absoluteTtl: c.session.absolute_ttl,
          idleTtl: c.session.idle_ttl,
          touchInterval: c.session.touch_interval,
          rotateAfter: c.session.rotate_after,
          rotationGrace: c.session.rotation_grace,
        },
        loginUrl: c.login_url,
        allowedRedirectHosts: c.allowed_redirect_hosts,
        failureMode: c.failure_mode,
        proxyCacheTtl: c.proxy_cache.ttl,
        passCredentials: c.upstream.pass_credentials,
      },
    },
  };
}

/** 127.0.0.0/8, ::1, localhost. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** A file holding one value (a token, a password): the whole first line, commas included. */
function readOneValue(path: string, key: string, problems: string[], origin: string, what: string): string | undefined {
  const text = readText(path, key, problems, origin);
  if (text === undefined) return undefined;
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
  if (lines.length !== 1) {
    problems.push(`${key}${origin}: must hold exactly one ${what}`);
    return undefined;
  }
  return lines[0];
}

function readSecretFile(path: string | null, key: string, problems: string[]): string | undefined {
  return path === null ? undefined : readOneValue(path, key, problems, '', 'password');
}

function storeConfig(c: z.output<typeof schema>, problems: string[]): StoreConfig {
  const url = parseStoreUrl(c.store) as StoreUrl; // validated by the schema
  if (url.kind === 'memory') return { kind: 'memory', maxEntries: c.memory.max_entries, sweepInterval: c.memory.sweep_interval };
  const r = c.redis;
  const orUndef = (v: string | null) => v ?? undefined;
  return {
    kind: url.kind,
    url,
    displayUrl: displayStoreUrl(url),
    keyPrefix: r.key_prefix,
    commandTimeout: r.command_timeout,
    connectTimeout: r.connect_timeout,
    maxRetriesPerRequest: r.max_retries_per_request,
    startupTimeout: r.startup_timeout,
    password: readSecretFile(r.password_file, 'redis.password_file', problems),
    tls: { caFile: orUndef(r.tls.ca_file), certFile: orUndef(r.tls.cert_file), keyFile: orUndef(r.tls.key_file), serverName: orUndef(r.tls.server_name) },
    sentinel: { username: orUndef(r.sentinel.username), password: readSecretFile(r.sentinel.password_file, 'redis.sentinel.password_file', problems), tls: r.sentinel.tls },
    cache: {
      enabled: c.cache.enabled,
      maxEntries: c.cache.max_entries,
      ttl: c.cache.ttl,
      negativeTtl: c.cache.negative_ttl,
      heartbeatInterval: c.cache.heartbeat_interval,
      heartbeatTimeout: c.cache.heartbeat_timeout,
    },
  };
}

export function formatProblems(source: string | null, problems: readonly string[]): string {
  const where = source ? ` (${source})` : '';
  const n = problems.length;
  return `sessiongate: invalid configuration${where}: ${n} problem${n === 1 ? '' : 's'}\n${problems.map((p) => `  - ${p}`).join('\n')}\n`;
}
