import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatProblems, loadConfig, maskUrl, parseDuration } from '../../src/config.js';

const dir = mkdtempSync(join(tmpdir(), 'sg-config-'));
let n = 0;
function file(text: string): string {
  const p = join(dir, `c${n++}.yaml`);
  writeFileSync(p, text);
  return p;
}
const SECRET = 's'.repeat(32);
const load = (yaml: string | undefined, env: Record<string, string> = {}) =>
  loadConfig({ file: yaml === undefined ? undefined : file(yaml), env });
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
    expect(r.config.listen).toEqual({ host: '127.0.0.1', adminHost: '127.0.0.1', httpPort: 9180, grpcPort: 9181, adminPort: 9182 });
    expect(r.config.ephemeralSecret).toBe(true);
    expect(r.config.policy.secrets[0]!.length).toBe(32);
    expect(r.config.loginToken).toBeNull();
    expect(r.config.policy.cookie).toEqual({ name: 'sessiongate', domain: null, path: '/', httpOnly: true, secure: true, sameSite: 'lax', sessionOnly: false });
    expect(r.config.policy.times).toEqual({ absoluteTtl: 12 * 3600_000, idleTtl: 30 * 60_000, touchInterval: 60_000, rotateAfter: 30 * 60_000, rotationGrace: 30_000 });
    expect(r.config.policy.headers).toEqual({ 'X-User-Id': 'user_id', 'X-User-Roles': 'roles' });
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
    for (const on of [load('upstream: { pass_credentials: true }\n', { SESSIONGATE_SECRET: SECRET }), load(undefined, { SESSIONGATE_SECRET: SECRET, SESSIONGATE_UPSTREAM_PASS_CREDENTIALS: 'true' })]) {
      expect(on.ok && on.config.policy.passCredentials).toBe(true);
      expect(on.ok && on.warnings.join('\n')).toMatch(/upstream.pass_credentials is true: the application receives sessiongate's session cookie and API tokens/);
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
    const text = problems('secrets: ["' + secret + '"]\nlogin_token: "' + token + '"\n').join('\n');
    expect(text).toContain('secrets[0]');
    expect(text).toContain('login_token');
    expect(text).not.toContain(secret);
    expect(text).not.toContain(token);
  });

  it('reports unreadable files, bad YAML and conflicting sources', () => {
    expect(problems(undefined, { SESSIONGATE_SECRET_FILE: '/nonexistent/secret' }).join('\n')).toContain('secret_file (from SESSIONGATE_SECRET_FILE): cannot read "/nonexistent/secret" (ENOENT)');
    expect(problems('a: [1, 2').join('\n')).toContain('config file: invalid YAML');
    expect(problems('- a\n- b\n').join('\n')).toContain('config file: must be a YAML mapping');
    expect(problems(undefined, { SESSIONGATE_SECRET: SECRET, SESSIONGATE_SECRET_FILE: '/x' }).join('\n')).toContain('set only one');
    expect(loadConfig({ file: '/nonexistent.yaml', env: {} })).toMatchObject({ ok: false, problems: ['config file: cannot read "/nonexistent.yaml" (ENOENT)'] });
  });

  it('refuses an unknown or malformed store by its key, repeating nothing of the URL but its scheme', () => {
    const text = problems(undefined, { SESSIONGATE_STORE: 'mongodb://user:hunter2@db:27017' }).join('\n');
    expect(text).toBe('store (from SESSIONGATE_STORE): unknown scheme mongodb:// (use redis, rediss, redis+sentinel, redis+cluster)');
    expect(problems('store: "redis+sentinel://:pw@s1:26379"').join('\n')).toContain('needs the master name');
    // Never an exception, whatever the percent signs: a problem listed by key.
    expect(problems('store: "redis://u:s3cr%t@host"')).toEqual(['store: not a valid URL; percent-encode reserved characters (@ : / ? # %) in the user name and password']);
    expect(problems('store: "redis://:hunter2@secret@host"').join('\n')).not.toMatch(/hunter2|secret/);
    expect(maskUrl('redis://:pw@h:1/0')).toBe('redis://***@h:1');
  });

  it('shows the store without user information once built', () => {
    const r = load('store: "rediss://app:s3cret@r1.example.com:6380/2"');
    expect(r.ok && r.config.store.kind === 'redis' && r.config.store.displayUrl).toBe('rediss://***@r1.example.com:6380/2');
    expect(r.ok && r.config.store.kind === 'redis' && r.config.store.url).toMatchObject({ username: 'app', password: 's3cret' });
  });

  it('builds a Redis store with its options and the cache', () => {
    const pw = file('s3cret-password\n');
    const r = load(`
store: "redis+sentinel://s1:26379,s2:26380/mymaster/2"
redis: { key_prefix: "app1:", command_timeout: 50ms, password_file: "${pw}", sentinel: { tls: true } }
cache: { ttl: 1s, negative_ttl: 0s }
`);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.config.store).toMatchObject({
      kind: 'redis-sentinel',
      url: { kind: 'redis-sentinel', hosts: [{ host: 's1', port: 26379 }, { host: 's2', port: 26380 }], masterName: 'mymaster', db: 2 },
      keyPrefix: 'app1:',
      commandTimeout: 50,
      password: 's3cret-password',
      sentinel: { tls: true },
      cache: { enabled: true, ttl: 1000, negativeTtl: 0, maxEntries: 10_000, heartbeatInterval: 250, heartbeatTimeout: 750 },
    });
  });

  it('takes the cache heartbeat, and refuses a timeout that is not longer than the interval', () => {
    const r = load('store: redis://h:1\ncache: { heartbeat_interval: 100ms, heartbeat_timeout: 400ms }');
    expect(r.ok && r.config.store.kind === 'redis' && r.config.store.cache).toMatchObject({ heartbeatInterval: 100, heartbeatTimeout: 400 });
    expect(problems('store: redis://h:1\ncache: { heartbeat_interval: 1s, heartbeat_timeout: 1s }').join('\n')).toContain('cache.heartbeat_timeout: must be longer than heartbeat_interval');
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
    expect(problems(undefined, { SESSIONGATE_LOGIN_TOKEN_FILE: two }).join('\n')).toContain('login_token_file (from SESSIONGATE_LOGIN_TOKEN_FILE): must hold exactly one token');
    const pw = file('pa,ss\n');
    const redis = load(`store: redis://h:1\nredis: { password_file: "${pw}" }\n`);
    expect(redis.ok && redis.config.store.kind !== 'memory' && redis.config.store.password).toBe('pa,ss');
  });
});
