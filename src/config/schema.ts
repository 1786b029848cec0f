/**
 * The configuration schema: every key, its default and every rule between keys, in one place.
 * Its output is the built configuration (`Config` is inferred from it, not written again).
 * Reading files and the environment is config/load.ts's business; this module does no I/O.
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { normalisePath } from '../core/path.js';
import type { PolicySpec } from '../core/policy.js';
import { createRedirectPolicy, REDIRECT_HOST } from '../core/redirect.js';
import { externalSessionSchema } from '../external/index.js';
import { FIELD_PATH } from '../session/field-path.js';
import { ROLE_NAME, ROLE_NAME_HINT } from '../session/record.js';
import type { StoreConfig } from '../store/index.js';
import { displayStoreUrl, parseStoreUrl } from '../store/url.js';
import { DURATION_HINT, parseDuration } from './duration.js';

// ---------------------------------------------------------------------------------------------
// One wording per kind of problem, whatever the key and whatever the source (file or variable).

const TYPE_WORDS: Record<string, string> = {
  boolean: 'must be true or false',
  number: 'must be a number',
  int: 'must be a whole number',
  string: 'must be text',
  array: 'must be a list',
  object: 'must be a mapping of keys',
  record: 'must be a mapping of keys',
};

/** zod's error map for the configuration: messages that hold no input value (a secret may be one). */
export function configError(issue: z.core.$ZodRawIssue): string | undefined {
  switch (issue.code) {
    case 'invalid_type':
      if (issue.input === undefined) return 'is required';
      // z.int() expects a `number` of an integer format.
      if (issue.expected === 'number' && /int/.test(String((issue.inst as { _zod?: { def?: { format?: unknown } } } | undefined)?._zod?.def?.format)))
        return TYPE_WORDS['int'];
      return TYPE_WORDS[issue.expected] ?? `must be ${issue.expected}`;
    case 'invalid_value':
      return `must be one of ${issue.values.map(String).join(', ')}`;
    case 'too_small':
      if (issue.origin === 'array') return `must have at least ${issue.minimum} entr${issue.minimum === 1 ? 'y' : 'ies'}`;
      if (issue.origin === 'string') return issue.minimum === 1 ? 'must not be empty' : `must be at least ${issue.minimum} characters`;
      return `must be at least ${issue.minimum}`;
    case 'too_big':
      if (issue.origin === 'array') return `must have at most ${issue.maximum} entries`;
      if (issue.origin === 'string') return `must be at most ${issue.maximum} characters`;
      return `must be at most ${issue.maximum}`;
    default:
      return undefined;
  }
}

const duration = (min: string) => {
  const minMs = parseDuration(min)!;
  return z
    .string({ error: `must be a duration (${DURATION_HINT})` })
    .refine((s) => parseDuration(s) !== null, { error: (i) => `${JSON.stringify(i.input)} is not a duration (${DURATION_HINT})` })
    .transform((s) => parseDuration(s)!)
    .refine((ms) => ms >= minMs, { error: `must be at least ${min}`, abort: true });
};

// ---------------------------------------------------------------------------------------------
// Field schemas.

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/; // RFC 9110 token: header and cookie names
/** Headers that carry protocol meaning; mapping identity onto them would break or open the proxy. */
const RESERVED_HEADERS = new Set([
  'host',
  'connection',
  'keep-alive',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'content-length',
  'content-type',
  'cookie',
  'set-cookie',
  'authorization',
  'proxy-authorization',
  'location',
  'www-authenticate',
  'x-original-uri',
  'x-original-method',
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-proto',
  'x-forwarded-uri',
  'x-forwarded-method',
  'x-request-id',
  'x-real-ip',
]);

const headerName = z
  .string()
  .regex(TOKEN, { error: 'must be a header name (letters, digits, -)' })
  .refine((n) => !RESERVED_HEADERS.has(n.toLowerCase()), { error: (i) => `${String(i.input)} is a reserved header and cannot carry identity` });

const fieldPath = z.string().regex(FIELD_PATH, {
  error: 'must be a session field: user_id, roles, created_at, expires_at, or a dotted path into attributes',
});

const PORT = 'must be a port number (0-65535; 0 picks a free one)';
const port = z.int({ error: PORT }).min(0, { error: PORT }).max(65535, { error: PORT });
const roleName = z.string().regex(ROLE_NAME, { error: ROLE_NAME_HINT });
const method = z
  .string()
  .regex(/^[A-Za-z]{1,20}$/, { error: 'must be an HTTP method' })
  .transform((m) => m.toUpperCase());

const rulePath = z.string().refine((p) => p.startsWith('/') && normalisePath(p) === p, {
  error: (i) => `${JSON.stringify(i.input)} must be an absolute, normalised path (no '..', '//', ';', '?', '#', encoded '/')`,
});

function rolesMatchAccess(r: { access: string; roles?: string[] | undefined }, ctx: z.RefinementCtx): void {
  if (r.access === 'roles' && !r.roles) ctx.addIssue({ code: 'custom', path: ['roles'], message: 'is required when access is roles' });
  if (r.access !== 'roles' && r.roles) ctx.addIssue({ code: 'custom', path: ['roles'], message: 'is only meaningful with access: roles' });
}

const ACCESS = z.enum(['public', 'anonymous', 'authenticated', 'roles']);

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
    same_site: z.enum(['lax', 'strict', 'none']).default('lax'),
    session_only: z.boolean().default(false),
  })
  .superRefine((c, ctx) => {
    if (c.same_site === 'none' && !c.secure)
      ctx.addIssue({ code: 'custom', path: ['same_site'], message: 'none requires secure: true (browsers drop it otherwise)' });
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

/** The store URL, parsed once here; url.ts says what is wrong (nothing of the URL but its scheme). */
const storeUrl = z.string().transform((s, ctx) => {
  const u = parseStoreUrl(s);
  if (typeof u !== 'string') return u;
  ctx.addIssue({ code: 'custom', message: u });
  return z.NEVER;
});

/** A password read by the loader from a *_file key; not a key of its own in a config file. */
const loadedPassword = z.string().optional();

/** Where secrets can be configured, for messages. */
const SECRET_SOURCES = 'SESSIONGATE_SECRET, SESSIONGATE_SECRET_FILE or secret_file';

/** 127.0.0.0/8, ::1, localhost. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/**
 * A claim of an ID token or UserInfo answer: its name, or a dotted path into nested claims
 * (`realm_access.roles`). A name that is itself a claim (`https://example.com/roles`) is read
 * whole first.
 */
const claimPath = z.string().regex(/^[\x21-\x7e]{1,256}$/, { error: 'must be a claim name or a dotted path (realm_access.roles)' });

/** The signing algorithms an ID token may use (`none` is not one of them, ever). */
export const ID_TOKEN_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;

/** Authorization request parameters sessiongate sets itself; `auth_params` may not override them. */
const RESERVED_AUTH_PARAMS = new Set([
  'client_id',
  'redirect_uri',
  'response_type',
  'response_mode',
  'scope',
  'state',
  'nonce',
  'code_challenge',
  'code_challenge_method',
  'request',
  'request_uri',
]);

const absoluteUrl = z.url({ protocol: /^https?$/, error: 'must be an absolute http(s) URL' });

const oidc = z.strictObject({
  name: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,64}$/, { error: 'must be a provider name (letters, digits, _ . -)' })
    .default('oidc'),
  issuer: absoluteUrl,
  client_id: z.string().min(1).max(512),
  client_secret_file: z.string().nullable().default(null),
  client_secret: loadedPassword,
  redirect_url: absoluteUrl.nullable().default(null),
  post_logout_redirect_url: absoluteUrl.nullable().default(null),
  scopes: z
    .array(z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]+$/, { error: 'must be a scope name' }))
    .default(['openid', 'profile', 'email'])
    .refine((s) => s.includes('openid'), { error: 'must include openid' }),
  claims: z
    .strictObject({
      user_id: claimPath.default('sub'),
      roles: claimPath.nullable().default('groups'),
      attributes: z
        .record(z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, { error: 'must be an attribute name (letters, digits, _ -)' }), claimPath)
        .default({ email: 'email', name: 'name' }),
    })
    .prefault({}),
  allowed_roles: z.array(roleName).default([]),
  id_token_algorithms: z
    .array(z.enum(ID_TOKEN_ALGORITHMS))
    .min(1)
    .default([...ID_TOKEN_ALGORITHMS]),
  userinfo: z.boolean().default(true),
  token_endpoint_auth_method: z.enum(['client_secret_basic', 'client_secret_post']).default('client_secret_basic'),
  auth_params: z
    .record(
      z
        .string()
        .regex(/^[A-Za-z0-9_.-]{1,64}$/, { error: 'must be a parameter name' })
        .refine((k) => !RESERVED_AUTH_PARAMS.has(k), { error: (i) => `${String(i.input)} is set by sessiongate itself` }),
      z
        .string()
        .max(512)
        .regex(/^[^\x00-\x1f\x7f]*$/, { error: 'must be text without control characters' }),
    )
    .default({}),
  timeout: duration('100ms').default(5000),
  allow_insecure_issuer: z.boolean().default(false),
});

// ---------------------------------------------------------------------------------------------
// Defaults the shipped proxy files are written for (nginx/sessiongate/protect.conf, envoy/*.yaml,
// deploy/): the headers they overwrite or remove and the paths they let through unchecked.

const DEFAULT_HEADERS: Readonly<Record<string, string>> = { 'X-User-Id': 'user_id', 'X-User-Roles': 'roles', 'X-User-Email': 'attributes.email' };
const DEFAULT_STRIP_HEADERS: readonly string[] = ['X-Auth-User'];
/** /~assets/ is public (nginx's location and Envoy's unchecked route); the rest needs a session. */
const DEFAULT_RULES = () => [
  { path: '/~assets/', access: 'public' as const },
  { path: '/', access: 'authenticated' as const },
];
/** The policy envoy/envoy.yaml names for /admin/ (context_extensions: { policy: admin }). */
const DEFAULT_POLICIES = () => ({ admin: { access: 'roles' as const, roles: ['admin'] } });

// ---------------------------------------------------------------------------------------------
// The schema.

const fileSchema = z
  .strictObject({
    listen: z
      .strictObject({
        host: z.string().min(1).default('127.0.0.1'),
        admin_host: z.string().min(1).nullable().default(null),
        // The token API mints credentials for any user with any roles: its own listener,
        // loopback unless api_allow_remote says otherwise (never inherited from host or admin_host).
        api_host: z.string().min(1).default('127.0.0.1'),
        api_allow_remote: z.boolean().default(false),
        http_port: port.default(9180),
        grpc_port: port.default(9181),
        admin_port: port.default(9182),
        api_port: port.default(9183),
      })
      .prefault({}),
    store: storeUrl.default({ kind: 'memory' }),
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
        password: loadedPassword,
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
            password: loadedPassword,
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
        if (c.heartbeat_timeout <= c.heartbeat_interval)
          ctx.addIssue({ code: 'custom', path: ['heartbeat_timeout'], message: 'must be longer than heartbeat_interval' });
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
    headers: z.record(headerName, fieldPath).default({ ...DEFAULT_HEADERS }),
    strip_headers: z.array(headerName).default([...DEFAULT_STRIP_HEADERS]),
    spoof_guard: z.enum(['deny', 'strip']).default('deny'),
    rules: z.array(rule).prefault(DEFAULT_RULES),
    policies: z
      .record(z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, { error: 'must be a policy name (letters, digits, _ . -)' }), policyRule)
      .prefault(DEFAULT_POLICIES),
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
    login: z
      .strictObject({
        oidc: oidc.optional(),
      })
      .prefault({}),
    allowed_redirect_hosts: z
      .array(
        z.string().regex(REDIRECT_HOST, { error: 'must be a host name (app.example.com), a domain with a leading dot (.example.com), optionally with :port' }),
      )
      .default([]),
    failure_mode: z.enum(['closed', 'open']).default('closed'),
    upstream: z
      .strictObject({
        // sessiongate's own cookie and API tokens reach the application too (never by default).
        pass_credentials: z.boolean().default(false),
      })
      .prefault({}),
    external_sessions: z.array(externalSessionSchema).default([]),
    dev_login: z.boolean().default(false),
    proxy_cache: z
      .strictObject({
        ttl: duration('0s').default(0),
      })
      .prefault({}),
    workers: z.int({ error: 'must be a whole number of worker processes' }).min(1).max(64).default(1),
    log_level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  })
  .superRefine((c, ctx) => {
    const ports = [c.listen.http_port, c.listen.grpc_port, c.listen.admin_port, c.listen.api_port].filter((p) => p !== 0);
    if (new Set(ports).size !== ports.length)
      ctx.addIssue({ code: 'custom', path: ['listen'], message: 'http_port, grpc_port, admin_port and api_port must differ' });
    // Refused rather than warned: a warning scrolls past in a pod's log, and the token API on a
    // cluster address lets anyone who learns the login token mint a token for any user.
    if (!isLoopback(c.listen.api_host) && !c.listen.api_allow_remote) {
      ctx.addIssue({
        code: 'custom',
        path: ['listen', 'api_host'],
        message: `refused: ${c.listen.api_host} is not a loopback address; the token API creates credentials for any user, so it listens on 127.0.0.1, ::1 or localhost unless listen.api_allow_remote is true`,
      });
    }
    if (c.workers > 1 && c.store.kind === 'memory') {
      ctx.addIssue({
        code: 'custom',
        path: ['workers'],
        message: 'more than one worker needs a shared store (redis…): with the memory store each worker would keep its own sessions',
      });
    }
    if (c.secrets === undefined && c.workers > 1) {
      ctx.addIssue({
        code: 'custom',
        path: ['workers'],
        message: `more than one worker needs configured secrets (${SECRET_SOURCES}): a random one would differ per worker`,
      });
    }
    if (c.secrets === undefined && c.store.kind !== 'memory') {
      ctx.addIssue({
        code: 'custom',
        path: ['store'],
        message: `a Redis store needs configured secrets (${SECRET_SOURCES}): with a random one, replicas could not read each other's sessions and a restart would log everyone out`,
      });
    }
    const o = c.login.oidc;
    if (o) {
      const issuer = new URL(o.issuer);
      if (issuer.protocol === 'http:' && !(o.allow_insecure_issuer && isLoopback(issuer.hostname.replace(/^\[|\]$/g, '')))) {
        ctx.addIssue({
          code: 'custom',
          path: ['login', 'oidc', 'issuer'],
          message: o.allow_insecure_issuer
            ? 'http:// is allowed only for a loopback issuer (127.0.0.1, ::1, localhost); use https://'
            : 'must be https:// (http:// only with allow_insecure_issuer: true, for a loopback test provider)',
        });
      }
      if (issuer.search !== '' || issuer.hash !== '')
        ctx.addIssue({ code: 'custom', path: ['login', 'oidc', 'issuer'], message: 'must not carry a query or fragment' });
      if (c.cookie.same_site === 'strict')
        ctx.addIssue({
          code: 'custom',
          path: ['cookie', 'same_site'],
          message:
            'strict does not work with login.oidc: the browser would not send the new session cookie on the way back from the provider (a login loop); use lax',
        });
      if (o.redirect_url !== null) {
        const r = new URL(o.redirect_url);
        const domain = c.cookie.domain?.replace(/^\./, '').toLowerCase();
        if (domain !== undefined && r.hostname !== domain && !r.hostname.endsWith(`.${domain}`))
          ctx.addIssue({
            code: 'custom',
            path: ['login', 'oidc', 'redirect_url'],
            message: `names host ${r.hostname}, outside cookie.domain ${c.cookie.domain}: the callback could not read the login's cookie nor set the session's`,
          });
        if (c.allowed_redirect_hosts.length > 0 && !createRedirectPolicy(c.allowed_redirect_hosts).hostAllowed(r.host))
          ctx.addIssue({
            code: 'custom',
            path: ['login', 'oidc', 'redirect_url'],
            message: `names host ${r.host}, which allowed_redirect_hosts does not allow`,
          });
        if (r.search !== '' || r.hash !== '')
          ctx.addIssue({ code: 'custom', path: ['login', 'oidc', 'redirect_url'], message: 'must not carry a query or fragment' });
      }
    }
    if (c.dev_login && !isLoopback(c.listen.host)) {
      ctx.addIssue({
        code: 'custom',
        path: ['dev_login'],
        message: `refused: listen.host is ${c.listen.host}; the development login lets anyone log in as anyone, so it only runs on a loopback address (127.0.0.1, ::1, localhost)`,
      });
    }
  });

type Parsed = z.output<typeof fileSchema>;

function storeConfig(c: Parsed): StoreConfig {
  const url = c.store;
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
    password: r.password,
    tls: { caFile: orUndef(r.tls.ca_file), certFile: orUndef(r.tls.cert_file), keyFile: orUndef(r.tls.key_file), serverName: orUndef(r.tls.server_name) },
    sentinel: { username: orUndef(r.sentinel.username), password: r.sentinel.password, tls: r.sentinel.tls },
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

/** The built configuration (what main.ts wires, in the shape its parts take) and its warnings. */
function build(c: Parsed) {
  const policy: PolicySpec = {
    rules: c.rules,
    policies: c.policies,
    headers: c.headers,
    stripHeaders: c.strip_headers,
    spoofGuard: c.spoof_guard,
    // No secret configured: a random one for this process (allowed only where that is safe, above).
    secrets: c.secrets?.map((s) => Buffer.from(s)) ?? [randomBytes(32)],
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
    // The built-in login, when there is one, is where browsers go to log in (same host).
    loginUrl: c.login_url ?? (c.login.oidc ? '/~login' : null),
    allowedRedirectHosts: c.allowed_redirect_hosts,
    failureMode: c.failure_mode,
    proxyCacheTtl: c.proxy_cache.ttl,
    passCredentials: c.upstream.pass_credentials,
  };
  const config = {
    listen: {
      host: c.listen.host,
      adminHost: c.listen.admin_host ?? c.listen.host,
      httpPort: c.listen.http_port,
      grpcPort: c.listen.grpc_port,
      adminPort: c.listen.admin_port,
      /** The token API (`/tokens`): loopback unless `api_allow_remote`. */
      apiHost: c.listen.api_host,
      apiPort: c.listen.api_port,
    },
    store: storeConfig(c),
    /** True when no secret was configured and a random one was made for this process. */
    ephemeralSecret: c.secrets === undefined,
    loginToken: c.login_token === undefined ? null : Buffer.from(c.login_token),
    policy,
    envoy: { httpPathPrefix: c.envoy.http_path_prefix },
    logLevel: c.log_level,
    /** Worker processes sharing the listeners (node:cluster); 1 runs in this process. */
    workers: c.workers,
    /** Applications' own session stores (src/external/). Not reloadable: they hold connections. */
    external: c.external_sessions,
    /** GET /~session/dev: sessions without the login service (loopback only). */
    devLogin: c.dev_login,
    /** The built-in OpenID Connect login (src/login/), or null. Not reloadable: discovered at start-up. */
    oidc: c.login.oidc ? oidcConfig(c.login.oidc) : null,
  };
  return { config, warnings: warnings(c) };
}

function oidcConfig(o: NonNullable<Parsed['login']['oidc']>) {
  return {
    name: o.name,
    issuer: o.issuer,
    clientId: o.client_id,
    clientSecret: o.client_secret ?? '',
    redirectUrl: o.redirect_url,
    postLogoutRedirectUrl: o.post_logout_redirect_url,
    scopes: o.scopes,
    claims: { userId: o.claims.user_id, roles: o.claims.roles, attributes: o.claims.attributes },
    allowedRoles: o.allowed_roles,
    idTokenAlgorithms: o.id_token_algorithms,
    userinfo: o.userinfo,
    tokenEndpointAuthMethod: o.token_endpoint_auth_method,
    authParams: o.auth_params,
    timeout: o.timeout,
    allowInsecureIssuer: o.allow_insecure_issuer,
  };
}

export type OidcConfig = ReturnType<typeof oidcConfig>;

function warnings(c: Parsed): string[] {
  const w: string[] = [];
  if (c.secrets === undefined) {
    w.push(
      'no secret configured (SESSIONGATE_SECRET or SESSIONGATE_SECRET_FILE): using a random one; sessions will not survive a restart and replicas will not share them',
    );
  }
  // With the built-in login, no login service needs POST /~session: nothing to warn about.
  if (c.login_token === undefined && !c.login.oidc)
    w.push(
      'no login token configured (SESSIONGATE_LOGIN_TOKEN or SESSIONGATE_LOGIN_TOKEN_FILE): POST /~session is disabled; a login service needs one of them set; to try sessiongate without one, run npm run demo, or set dev_login: true on a loopback address and log in at GET /~session/dev',
    );
  if (c.listen.api_allow_remote && !isLoopback(c.listen.api_host))
    w.push(
      `listen.api_host is ${c.listen.api_host} (api_allow_remote): the token API, which creates credentials for any user, is reachable beyond this machine; only the login token guards it`,
    );
  if (!c.cookie.secure) w.push('cookie.secure is false: the session cookie will be sent over plain HTTP');
  if (c.failure_mode === 'open') w.push('failure_mode is open: requests are allowed (without identity) while the store is unavailable');
  if (c.proxy_cache.ttl > 0)
    w.push(
      `proxy_cache.ttl is ${c.proxy_cache.ttl / 1000}s: a proxy that caches decisions keeps honouring a session for up to that long after logout or revocation`,
    );
  if (c.login.oidc && c.cookie.path !== '/')
    w.push(`cookie.path is ${c.cookie.path} with login.oidc: /~logout only ends a session whose cookie the browser sends there`);
  if (c.login.oidc?.redirect_url && c.cookie.domain === null)
    w.push(
      'login.oidc.redirect_url is set and cookie.domain is not: the callback must be on the very host users log in from (the login and session cookies are host-only)',
    );
  if (c.login.oidc?.allow_insecure_issuer)
    w.push('login.oidc.allow_insecure_issuer is true: the OpenID provider may be reached over plain http:// on loopback (tests only)');
  if (c.dev_login) w.push('DEVELOPMENT LOGIN IS ON (dev_login: true): GET /~session/dev?user=…&roles=… logs anyone in as anyone. Never in production.');
  if (c.upstream.pass_credentials)
    w.push("upstream.pass_credentials is true: the application receives sessiongate's session cookie and API tokens, working credentials of every user");
  if (c.spoof_guard === 'strip') w.push('spoof_guard is strip: requests carrying identity headers are let on; the proxy must remove those headers');
  return w;
}

/** Raw keys (snake_case, as in the file) in, the built configuration out. */
export const configSchema = fileSchema.transform(build);

export type BuiltConfig = z.output<typeof configSchema>['config'];
