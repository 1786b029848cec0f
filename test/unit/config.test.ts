import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { ROOT } from '../../harness/processes.js';
import { formatProblems, loadConfig, maskUrl, parseDuration } from '../../src/config.js';
import { canonicalHeaderName } from '../../src/core/headers.js';
import { EXPOSED_ENDPOINTS } from '../support/endpoint-surface.js';

const dir = mkdtempSync(join(tmpdir(), 'sg-config-'));
let n = 0;
function file(text: string): string {
  const p = join(dir, `c${n++}.yaml`);
  writeFileSync(p, text);
  return p;
}
const SECRET = 's'.repeat(32);
const load = (yaml: string | undefined, env: Record<string, string> = {}) => loadConfig({ file: yaml === undefined ? undefined : file(yaml), env });
const problems = (yaml: string | undefined, env: Record<string, string> = {}) => {
  const r = load(yaml, env);
  if (r.ok) throw new Error('expected a bad config');
  return r.problems;
};

describe('parseDuration', () => {
  it.each([
    ['500ms', 500],
    ['30s', 30_000],
    ['15m', 900_000],
    ['12h', 43_200_000],
    ['1h30m', 5_400_000],
    ['7d', 604_800_000],
    ['1.5s', 1500],
  ])('%s', (s, ms) => expect(parseDuration(s)).toBe(ms));
  it.each(['', '10', '10x', 'm', '1 h', '-1s', '1h-30m', 'abc'])('refuses %j', (s) => expect(parseDuration(s)).toBeNull());
});

describe('loadConfig', () => {
  it('runs on embedded defaults with an ephemeral secret and says so', () => {
    const r = load(undefined);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.config.listen).toEqual({
      host: '127.0.0.1',
      adminHost: '127.0.0.1',
      httpPort: 9180,
      grpcPort: 9181,
      adminPort: 9182,
      apiHost: '127.0.0.1',
      apiPort: 9183,
    });
    expect(r.config.ephemeralSecret).toBe(true);
    expect(r.config.policy.secrets[0]!.length).toBe(32);
    expect(r.config.loginToken).toBeNull();
    expect(r.config.policy.cookie).toEqual({ name: 'sessiongate', domain: null, path: '/', httpOnly: true, secure: true, sameSite: 'lax', sessionOnly: false });
    expect(r.config.policy.times).toEqual({
      absoluteTtl: 12 * 3600_000,
      idleTtl: 30 * 60_000,
      touchInterval: 60_000,
      rotateAfter: 30 * 60_000,
      rotationGrace: 30_000,
    });
    expect(r.config.policy.headers).toEqual({ 'X-User-Id': 'user_id', 'X-User-Roles': 'roles', 'X-User-Email': 'attributes.email' });
    expect(r.config.policy.stripHeaders).toEqual(['X-Auth-User']);
    expect(r.config.policy.rules).toEqual([
      { path: '/~assets/', access: 'public' },
      { path: '/', access: 'authenticated' },
    ]);
    expect(r.config.policy.policies).toEqual({ admin: { access: 'roles', roles: ['admin'] } });
    expect(r.config.policy.spoofGuard).toBe('deny');
    expect(r.config.policy.failureMode).toBe('closed');
    expect(r.warnings.join('\n')).toMatch(/random one; sessions will not survive a restart/);
    expect(r.warnings.join('\n')).toMatch(/POST \/~session is disabled/);
  });

  it('reads the documented YAML example', () => {
    const r = load(`
cookie: { name: sg, domain: example.com, path: /, http_only: true, secure: true, same_site: strict, session_only: true }
session: { absolute_ttl: 8h, idle_ttl: 20m, touch_interval: 30s, rotate_after: 15m, rotation_grace: 10s }
headers:
  X-User-Id: user_id
  X-User-Email: attributes.email
strip_headers: [X-Auth-User]
rules:
  - { path: /~assets/, access: public }
  - { path: /admin/, access: roles, roles: [admin], methods: [get, POST] }
login_url: https://login.example.com/login
failure_mode: open
secrets: ["${SECRET}"]
login_token: "${'t'.repeat(16)}"
`);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.config.policy.cookie).toMatchObject({ name: 'sg', domain: 'example.com', sameSite: 'strict', sessionOnly: true });
    expect(r.config.policy.times.rotateAfter).toBe(15 * 60_000);
    expect(r.config.policy.rules[1]).toEqual({ path: '/admin/', access: 'roles', roles: ['admin'], methods: ['GET', 'POST'] });
    expect(r.config.policy.failureMode).toBe('open');
    expect(r.config.ephemeralSecret).toBe(false);
    expect(r.config.loginToken?.toString()).toBe('t'.repeat(16));
  });

  it('lets environment variables override the file', () => {
    const r = load('listen: { http_port: 1000 }\ncookie: { name: fromfile, secure: true }\n', {
      SESSIONGATE_HTTP_PORT: '2000',
      SESSIONGATE_HOST: '0.0.0.0',
      SESSIONGATE_COOKIE_NAME: 'fromenv',
      SESSIONGATE_COOKIE_SECURE: 'false',
      SESSIONGATE_SECRET: `${SECRET}, ${'o'.repeat(40)}`,
    });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.config.listen.httpPort).toBe(2000);
    expect(r.config.listen.host).toBe('0.0.0.0');
    expect(r.config.policy.cookie.name).toBe('fromenv');
    expect(r.config.policy.cookie.secure).toBe(false);
    expect(r.config.policy.secrets.map((s) => s.toString())).toEqual([SECRET, 'o'.repeat(40)]);
  });

  it("passes sessiongate's credentials to the application only when upstream.pass_credentials says so, with a warning", () => {
    const off = load(undefined, { SESSIONGATE_SECRET: SECRET });
    expect(off.ok && off.config.policy.passCredentials).toBe(false);
    expect(off.ok && off.warnings.join('\n')).not.toMatch(/pass_credentials/);
    for (const on of [
      load('upstream: { pass_credentials: true }\n', { SESSIONGATE_SECRET: SECRET }),
      load(undefined, { SESSIONGATE_SECRET: SECRET, SESSIONGATE_UPSTREAM_PASS_CREDENTIALS: 'true' }),
    ]) {
      expect(on.ok && on.config.policy.passCredentials).toBe(true);
      expect(on.ok && on.warnings.join('\n')).toMatch(
        /upstream.pass_credentials is true: the application receives sessiongate's session cookie and API tokens/,
      );
    }
    expect(problems('upstream: { pass_credentials: yes please }\n')).toContain('upstream.pass_credentials: must be true or false');
    expect(problems('upstream: { pass_cookie: true }\n')).toContain('upstream.pass_cookie: unknown key');
  });

  it('reads secret and login token files (newline separated)', () => {
    const secrets = file(`${SECRET}\n${'n'.repeat(33)}\n`);
    const token = file(`${'t'.repeat(20)}\n`);
    const r = load(undefined, { SESSIONGATE_SECRET_FILE: secrets, SESSIONGATE_LOGIN_TOKEN_FILE: token });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.config.policy.secrets).toHaveLength(2);
    expect(r.config.loginToken?.toString()).toBe('t'.repeat(20));
  });

  it('lists every problem by key path at once', () => {
    const p = problems(
      `
bogus: 1
listen: { http_port: 70000, extra: true }
session: { idle_ttl: 10x, absolute_ttl: 1h }
rules:
  - { path: /ok/, access: public }
  - { path: admin, access: everyone }
  - { path: /a/, access: roles }
  - { path: /b/../c, access: public }
cookie: { same_site: none, secure: false }
headers: { Set-Cookie: user_id, X-Ok: "bad path!" }
login_url: javascript:alert(1)
`,
      { SESSIONGATE_SECRET: 'short' },
    );
    const text = p.join('\n');
    for (const key of [
      'bogus: unknown key',
      'listen.extra: unknown key',
      'listen.http_port',
      'session.idle_ttl: "10x" is not a duration',
      'rules[1].path',
      'rules[1].access: must be one of public, anonymous, authenticated, roles',
      'rules[2].roles: is required when access is roles',
      'rules[3].path',
      'cookie.same_site',
      'headers.Set-Cookie',
      'headers.X-Ok',
      'login_url',
      'secrets[0] (from SESSIONGATE_SECRET): must be at least 32 bytes long',
    ]) {
      expect(text).toContain(key);
    }
    expect(p.length).toBeGreaterThanOrEqual(13);
  });

  it('checks relations between session times', () => {
    const text = problems('session: { absolute_ttl: 1h, idle_ttl: 2h, touch_interval: 3h, rotate_after: 1m, rotation_grace: 5m }').join('\n');
    expect(text).toContain('session.idle_ttl: must not exceed absolute_ttl');
    expect(text).toContain('session.touch_interval: must be shorter than idle_ttl');
    expect(text).toContain('session.rotation_grace: must not exceed rotate_after');
  });

  it('never prints a secret or login token in a problem', () => {
    const secret = 'TOPSECRET-but-too-short';
    const token = 'TOKEN-x';
    const text = problems(`secrets: ["${secret}"]\nlogin_token: "${token}"\n`).join('\n');
    expect(text).toContain('secrets[0]');
    expect(text).toContain('login_token');
    expect(text).not.toContain(secret);
    expect(text).not.toContain(token);
  });

  it('reports unreadable files, bad YAML and conflicting sources', () => {
    expect(problems(undefined, { SESSIONGATE_SECRET_FILE: '/nonexistent/secret' }).join('\n')).toContain(
      'secret_file (from SESSIONGATE_SECRET_FILE): cannot read "/nonexistent/secret" (ENOENT)',
    );
    expect(problems('a: [1, 2').join('\n')).toContain('config file: invalid YAML');
    expect(problems('- a\n- b\n').join('\n')).toContain('config file: must be a YAML mapping');
    expect(problems(undefined, { SESSIONGATE_SECRET: SECRET, SESSIONGATE_SECRET_FILE: '/x' }).join('\n')).toContain('set only one');
    expect(loadConfig({ file: '/nonexistent.yaml', env: {} })).toMatchObject({
      ok: false,
      problems: ['config file: cannot read "/nonexistent.yaml" (ENOENT)'],
    });
  });

  it('refuses an unknown or malformed store by its key, repeating nothing of the URL but its scheme', () => {
    const text = problems(undefined, { SESSIONGATE_STORE: 'mongodb://user:hunter2@db:27017' }).join('\n');
    expect(text).toBe('store (from SESSIONGATE_STORE): unknown scheme mongodb:// (use redis, rediss, redis+sentinel, redis+cluster)');
    expect(problems('store: "redis+sentinel://:pw@s1:26379"').join('\n')).toContain('needs the master name');
    // Never an exception, whatever the percent signs: a problem listed by key.
    expect(problems('store: "redis://u:s3cr%t@host"')).toEqual([
      'store: not a valid URL; percent-encode reserved characters (@ : / ? # %) in the user name and password',
    ]);
    expect(problems('store: "redis://:hunter2@secret@host"').join('\n')).not.toMatch(/hunter2|secret/);
    expect(maskUrl('redis://:pw@h:1/0')).toBe('redis://***@h:1');
  });

  it('shows the store without user information once built', () => {
    const r = load('store: "rediss://app:s3cret@r1.example.com:6380/2"', { SESSIONGATE_SECRET: SECRET });
    expect(r.ok && r.config.store.kind === 'redis' && r.config.store.displayUrl).toBe('rediss://***@r1.example.com:6380/2');
    expect(r.ok && r.config.store.kind === 'redis' && r.config.store.url).toMatchObject({ username: 'app', password: 's3cret' });
  });

  it('builds a Redis store with its options and the cache', () => {
    const pw = file('s3cret-password\n');
    const r = load(
      `
store: "redis+sentinel://s1:26379,s2:26380/mymaster/2"
redis: { key_prefix: "app1:", command_timeout: 50ms, password_file: "${pw}", sentinel: { tls: true } }
cache: { ttl: 1s, negative_ttl: 0s }
`,
      { SESSIONGATE_SECRET: SECRET },
    );
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.config.store).toMatchObject({
      kind: 'redis-sentinel',
      url: {
        kind: 'redis-sentinel',
        hosts: [
          { host: 's1', port: 26379 },
          { host: 's2', port: 26380 },
        ],
        masterName: 'mymaster',
        db: 2,
      },
      keyPrefix: 'app1:',
      commandTimeout: 50,
      password: 's3cret-password',
      sentinel: { tls: true },
      cache: { enabled: true, ttl: 1000, negativeTtl: 0, maxEntries: 10_000, heartbeatInterval: 250, heartbeatTimeout: 750 },
    });
  });

  it('takes the cache heartbeat, and refuses a timeout that is not longer than the interval', () => {
    const r = load('store: redis://h:1\ncache: { heartbeat_interval: 100ms, heartbeat_timeout: 400ms }', { SESSIONGATE_SECRET: SECRET });
    expect(r.ok && r.config.store.kind === 'redis' && r.config.store.cache).toMatchObject({ heartbeatInterval: 100, heartbeatTimeout: 400 });
    expect(problems('store: redis://h:1\ncache: { heartbeat_interval: 1s, heartbeat_timeout: 1s }').join('\n')).toContain(
      'cache.heartbeat_timeout: must be longer than heartbeat_interval',
    );
  });

  it('refuses a key prefix with braces (they would break Cluster hash tags)', () => {
    expect(problems('store: redis://h:1\nredis: { key_prefix: "a{b}:" }').join('\n')).toContain('redis.key_prefix');
  });

  it('formats problems for people', () => {
    expect(formatProblems('/etc/sg.yaml', ['a: x', 'b: y'])).toBe('sessiongate: invalid configuration (/etc/sg.yaml): 2 problems\n  - a: x\n  - b: y\n');
  });
});

describe('single-value secret files', () => {
  it('take the whole line, commas included, and refuse several lines', () => {
    const token = file('tok,en-with,commas-0123456789\n');
    const r = load(undefined, { SESSIONGATE_LOGIN_TOKEN_FILE: token });
    expect(r.ok && r.config.loginToken?.toString()).toBe('tok,en-with,commas-0123456789');
    const two = file('first-token-0123456789\nsecond-token-0123456789\n');
    expect(problems(undefined, { SESSIONGATE_LOGIN_TOKEN_FILE: two }).join('\n')).toContain(
      'login_token_file (from SESSIONGATE_LOGIN_TOKEN_FILE): must hold exactly one token',
    );
    const pw = file('pa,ss\n');
    const redis = load(`store: redis://h:1\nredis: { password_file: "${pw}" }\n`, { SESSIONGATE_SECRET: SECRET });
    expect(redis.ok && redis.config.store.kind !== 'memory' && redis.config.store.password).toBe('pa,ss');
  });
});

describe('one wording for each kind of problem, whatever the source', () => {
  it('says the same of a bad boolean from a file and from a variable', () => {
    expect(problems('cookie: { secure: maybe }\n')).toEqual(['cookie.secure: must be true or false']);
    expect(problems(undefined, { SESSIONGATE_COOKIE_SECURE: 'maybe' })).toEqual(['cookie.secure (from SESSIONGATE_COOKIE_SECURE): must be true or false']);
    expect(problems('cache: { enabled: "yes" }\n')).toEqual(['cache.enabled: must be true or false']);
  });

  it('says the same of a bad number from a file and from a variable', () => {
    expect(problems('workers: many\n')).toEqual(['workers: must be a whole number of worker processes']);
    expect(problems(undefined, { SESSIONGATE_WORKERS: 'many' })).toEqual(['workers (from SESSIONGATE_WORKERS): must be a whole number of worker processes']);
    expect(problems('listen: { http_port: "x" }\n')).toEqual(['listen.http_port: must be a port number (0-65535; 0 picks a free one)']);
    expect(problems(undefined, { SESSIONGATE_HTTP_PORT: '99999' })).toEqual([
      'listen.http_port (from SESSIONGATE_HTTP_PORT): must be a port number (0-65535; 0 picks a free one)',
    ]);
    expect(problems('cache: { max_entries: 0 }\n')).toEqual(['cache.max_entries: must be at least 1']);
    expect(problems('memory: { max_entries: lots }\n')).toEqual(['memory.max_entries: must be a whole number']);
  });

  it('lists the allowed values of every closed set', () => {
    expect(problems('log_level: loud\n')).toEqual(['log_level: must be one of fatal, error, warn, info, debug, trace, silent']);
    expect(problems(undefined, { SESSIONGATE_LOG_LEVEL: 'loud' })).toEqual([
      'log_level (from SESSIONGATE_LOG_LEVEL): must be one of fatal, error, warn, info, debug, trace, silent',
    ]);
    expect(problems('cookie: { same_site: sometimes }\n')).toEqual(['cookie.same_site: must be one of lax, strict, none']);
    expect(problems('spoof_guard: ignore\nfailure_mode: maybe\n')).toEqual([
      'spoof_guard: must be one of deny, strip',
      'failure_mode: must be one of closed, open',
    ]);
  });

  it('names the kind of value a key takes, not the type system', () => {
    expect(problems('rules: { path: / }\nlisten: 7\n')).toEqual(['listen: must be a mapping of keys', 'rules: must be a list']);
    expect(problems('login_url: 7\n').join('\n')).not.toMatch(/expected|received/);
  });

  it('says where a YAML file is broken and what is wrong, in one clean line', () => {
    expect(problems('a: [1, 2')).toEqual([
      'config file: invalid YAML at line 1, column 9: flow sequence in block collection must be sufficiently indented and end with a ]',
    ]);
    expect(problems('listen:\n  host: a: b\n')).toEqual(['config file: invalid YAML at line 2, column 9: nested mappings are not allowed in compact mappings']);
    const secretLine = `secrets: ["${'x'.repeat(40)}]\n`; // unterminated: the code frame would repeat it
    const p = problems(secretLine).join('\n');
    expect(p).toMatch(/^config file: invalid YAML at line \d+, column \d+: [a-z]/);
    expect(p).not.toContain('x'.repeat(10));
    expect(p).not.toMatch(/:\s*$/);
  });
});

describe('misspelled SESSIONGATE_* variables', () => {
  it('warns by name with the nearest real variable, never with the value', () => {
    const r = load(undefined, { SESSIONGATE_PORT: '8080', SESSIONGATE_SECRETS: SECRET, SESSIONGATE_LOGLEVEL: 'debug' });
    expect(r.ok).toBe(true);
    expect(r.warnings).toEqual(
      expect.arrayContaining([
        'SESSIONGATE_LOGLEVEL is not a sessiongate variable and is ignored: did you mean SESSIONGATE_LOG_LEVEL?',
        'SESSIONGATE_PORT is not a sessiongate variable and is ignored: did you mean SESSIONGATE_API_PORT, SESSIONGATE_HTTP_PORT, SESSIONGATE_GRPC_PORT or SESSIONGATE_ADMIN_PORT?',
        'SESSIONGATE_SECRETS is not a sessiongate variable and is ignored: did you mean SESSIONGATE_SECRET?',
      ]),
    );
    expect(r.warnings.join('\n')).not.toContain(SECRET);
    expect(r.warnings.join('\n')).not.toContain('8080');
  });

  it('points to the documentation when nothing is near, and says nothing of real or foreign variables', () => {
    const r = load(undefined, { SESSIONGATE_FROBNICATE: 'x', SESSIONGATE_SECRET: SECRET, SESSIONGATE_CONFIG: '', HOME: '/root', SESSIONGATEWAY: 'x' });
    expect(r.warnings.filter((w) => w.includes('not a sessiongate variable'))).toEqual([
      'SESSIONGATE_FROBNICATE is not a sessiongate variable and is ignored: the variables are listed in docs/configuration.md',
    ]);
  });

  it('warns also when the configuration is refused (the misspelling may be why)', () => {
    const r = load(undefined, { SESSIONGATE_STORE: 'redis://h:1', SESSIONGATE_SECRETS: SECRET });
    expect(r.ok).toBe(false);
    expect(r.warnings).toContain('SESSIONGATE_SECRETS is not a sessiongate variable and is ignored: did you mean SESSIONGATE_SECRET?');
  });
});

describe('a Redis store without a configured secret', () => {
  it('is refused, as more than one worker is, naming where a secret goes', () => {
    for (const [yaml, env, key] of [
      ['store: redis://h:1\n', {}, 'store'],
      [undefined, { SESSIONGATE_STORE: 'redis+sentinel://s1:26379/main' }, 'store (from SESSIONGATE_STORE)'],
      [undefined, { SESSIONGATE_STORE: 'redis+cluster://n1:7000' }, 'store (from SESSIONGATE_STORE)'],
    ] as const) {
      expect(problems(yaml, env)).toEqual([
        `${key}: a Redis store needs configured secrets (SESSIONGATE_SECRET, SESSIONGATE_SECRET_FILE or secret_file): with a random one, replicas could not read each other's sessions and a restart would log everyone out`,
      ]);
    }
  });

  it('starts with a secret from a variable, a file or the config', () => {
    const secretFile = file(`${SECRET}\n`);
    for (const [yaml, env] of [
      ['store: redis://h:1\n', { SESSIONGATE_SECRET: SECRET }],
      ['store: redis://h:1\n', { SESSIONGATE_SECRET_FILE: secretFile }],
      [`store: redis://h:1\nsecret_file: ${secretFile}\n`, {}],
      [`store: redis://h:1\nsecrets: ["${SECRET}"]\n`, {}],
    ] as const) {
      const r = load(yaml, env);
      expect(r.ok && r.config.ephemeralSecret).toBe(false);
    }
  });

  it('the memory store still runs on a random secret, with the warning', () => {
    const r = load(undefined);
    expect(r.ok && r.config.ephemeralSecret).toBe(true);
  });
});

describe('passwords come from files only', () => {
  it('refuses a password written into the config, pointing at the file key', () => {
    expect(problems(`store: redis://h:1\nsecrets: ["${SECRET}"]\nredis: { password: hunter2, sentinel: { password: hunter3 } }\n`)).toEqual([
      'redis.password: unknown key (use redis.password_file)',
      'redis.sentinel.password: unknown key (use redis.sentinel.password_file)',
    ]);
  });
});

describe('one set of defaults: the embedded ones are what the shipped proxy files are written for', () => {
  type Obj = Record<string, any>;
  const text = (p: string) => readFileSync(join(ROOT, p), 'utf8');
  const lower = (xs: Iterable<string>) => [...new Set([...xs].map((x) => x.toLowerCase()))].sort();
  const defaults = (() => {
    const r = load(undefined);
    if (!r.ok) throw new Error(r.problems.join('\n'));
    return r.config.policy;
  })();
  const mapped = lower(Object.keys(defaults.headers));
  const stripped = lower(defaults.stripHeaders);
  const publicPaths = defaults.rules
    .filter((r) => r.access === 'public')
    .map((r) => r.path)
    .sort();
  const DEGRADED = 'x-sessiongate-degraded';

  it('nginx/sessiongate/protect.conf sets the mapped headers from the answer and empties the stripped ones', () => {
    const sets = [...text('nginx/sessiongate/protect.conf').matchAll(/^\s*proxy_set_header\s+(\S+)\s+(\S+);/gm)].map(
      (m) => [m[1]!.toLowerCase(), m[2]!] as const,
    );
    const fromAnswer = sets.filter(([h, v]) => /^\$sessiongate_/.test(v) && h.startsWith('x-') && h !== DEGRADED).map(([h]) => h);
    expect(lower(fromAnswer)).toEqual(mapped);
    expect(lower(sets.filter(([, v]) => v === '""').map(([h]) => h))).toEqual(stripped);
  });

  it('nginx/nginx.conf sends to the application without a session only what the defaults make public', () => {
    // Every location but / and the doctor's probe is a path the file treats as public.
    const locations = [...text('nginx/nginx.conf').matchAll(/^\s*location\s+(?:\^~\s+)?(\/\S*)\s*\{/gm)].map((m) => m[1]!);
    expect(locations.filter((l) => l !== '/' && l !== '/~sessiongate/probe/').sort()).toEqual(publicPaths);
  });

  it.each(['envoy/envoy.yaml', 'envoy/envoy-http.yaml'])(
    '%s removes the protected headers, skips the check for the public paths, and names defined policies',
    (f) => {
      const cfg = parseYaml(text(f)) as Obj;
      const hcm = cfg['static_resources'].listeners[0].filter_chains[0].filters[0].typed_config;
      const mutation = hcm.http_filters.find((x: Obj) => x.name === 'envoy.filters.http.header_mutation').typed_config;
      const removed = mutation.mutations.request_mutations.map((m: Obj) => canonicalHeaderName(m.remove) as string).filter((h: string) => h !== DEGRADED);
      expect(lower(removed)).toEqual(lower([...mapped, ...stripped]));
      const routes: Obj[] = hcm.route_config.virtual_hosts[0].routes;
      // sessiongate's own endpoints (the session API, the login) are exact paths; public paths are prefixes.
      const own = new Set(EXPOSED_ENDPOINTS.map((e) => e.path));
      const unchecked = routes.filter((r) => r.typed_per_filter_config?.['envoy.filters.http.ext_authz']?.disabled === true && !own.has(r.match.path));
      const prefixes = unchecked.map((r) => (r.match.prefix as string | undefined) ?? /^\^(\/[^[(]*\/)/.exec(r.match.safe_regex.regex)![1]!);
      expect(prefixes.sort()).toEqual(publicPaths);
      const named = routes
        .map((r) => r.typed_per_filter_config?.['envoy.filters.http.ext_authz']?.check_settings?.context_extensions?.policy)
        .filter((p): p is string => p !== undefined);
      for (const p of named) expect(Object.keys(defaults.policies ?? {}), p).toContain(p);
      const ext = hcm.http_filters.find((x: Obj) => x.name === 'envoy.filters.http.ext_authz').typed_config;
      const upstream = ext.http_service?.authorization_response?.allowed_upstream_headers?.patterns;
      if (upstream) expect(lower(upstream.map((p: Obj) => p.exact).filter((h: string) => h.startsWith('x-user') || h.startsWith('x-auth')))).toEqual(mapped);
    },
  );

  it('deploy/config.example.yaml names the same headers and public paths as the defaults', () => {
    const example = parseYaml(text('deploy/config.example.yaml')) as Obj;
    expect(lower(Object.keys(example['headers']))).toEqual(mapped);
    expect(example['headers']).toEqual(defaults.headers);
    expect(lower(example['strip_headers'])).toEqual(stripped);
    expect(
      example['rules']
        .filter((r: Obj) => r.access === 'public')
        .map((r: Obj) => r.path)
        .sort(),
    ).toEqual(publicPaths);
  });
});
