import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../../harness/processes.js';
import { loadConfig } from '../../src/config.js';

const dir = mkdtempSync(join(tmpdir(), 'sg-oidc-config-'));
let n = 0;
function file(text: string): string {
  const p = join(dir, `c${n++}`);
  writeFileSync(p, text);
  return p;
}
const SECRET_TEXT = 'client-secret-value-1234567890';
const load = (yaml: string, env: Record<string, string> = {}) => loadConfig({ file: file(yaml), env });
const problemsOf = (yaml: string, env: Record<string, string> = {}) => {
  const r = load(yaml, env);
  if (r.ok) throw new Error('expected a bad config');
  return r.problems;
};
const block = (extra = '') => `login:\n  oidc:\n    issuer: https://accounts.example.com\n    client_id: sessiongate\n${extra}`;

describe('login.oidc configuration', () => {
  it('builds the provider with every default, and login_url becomes /~login', () => {
    const r = load(block(`    client_secret_file: ${file(`${SECRET_TEXT}\n`)}\n`));
    if (!r.ok) throw new Error(r.problems.join('\n'));
    expect(r.config.oidc).toMatchObject({
      name: 'oidc',
      issuer: 'https://accounts.example.com',
      clientId: 'sessiongate',
      clientSecret: SECRET_TEXT,
      redirectUrl: null,
      scopes: ['openid', 'profile', 'email'],
      claims: { userId: 'sub', roles: 'groups', attributes: { email: 'email', name: 'name' } },
      allowedRoles: [],
      userinfo: true,
      timeout: 5000,
      allowInsecureIssuer: false,
    });
    expect(r.config.oidc?.idTokenAlgorithms).not.toContain('none');
    expect(r.config.policy.loginUrl).toBe('/~login');
  });

  it('keeps an explicit login_url', () => {
    const r = load(`login_url: https://login.example.com/start\n${block()}`, { SESSIONGATE_OIDC_CLIENT_SECRET: SECRET_TEXT });
    expect(r.ok && r.config.policy.loginUrl).toBe('https://login.example.com/start');
  });

  it('takes the issuer, client ID and secret from the environment', () => {
    const r = loadConfig({
      env: {
        SESSIONGATE_OIDC_ISSUER: 'https://idp.example.org/realms/x',
        SESSIONGATE_OIDC_CLIENT_ID: 'app',
        SESSIONGATE_OIDC_CLIENT_SECRET_FILE: file(SECRET_TEXT),
      },
    });
    if (!r.ok) throw new Error(r.problems.join('\n'));
    expect(r.config.oidc).toMatchObject({ issuer: 'https://idp.example.org/realms/x', clientId: 'app', clientSecret: SECRET_TEXT });
  });

  it('stops start-up without a client secret, naming where one comes from', () => {
    expect(problemsOf(block())).toEqual([expect.stringMatching(/^login\.oidc\.client_secret_file: is required: .*SESSIONGATE_OIDC_CLIENT_SECRET/)]);
  });

  it('refuses the secret inline in the file, and never echoes it', () => {
    const p = problemsOf(block(`    client_secret: ${SECRET_TEXT}\n`));
    expect(p.join('\n')).toMatch(/login\.oidc\.client_secret: unknown key/);
    expect(p.join('\n')).not.toContain(SECRET_TEXT);
  });

  it('refuses both secret variables at once', () => {
    expect(problemsOf(block(), { SESSIONGATE_OIDC_CLIENT_SECRET: SECRET_TEXT, SESSIONGATE_OIDC_CLIENT_SECRET_FILE: file(SECRET_TEXT) }).join('\n')).toMatch(
      /SESSIONGATE_OIDC_CLIENT_SECRET and SESSIONGATE_OIDC_CLIENT_SECRET_FILE: set only one/,
    );
  });

  it('refuses an http:// issuer without allow_insecure_issuer, and with it unless loopback', () => {
    const env = { SESSIONGATE_OIDC_CLIENT_SECRET: SECRET_TEXT };
    const http = 'login:\n  oidc:\n    issuer: http://idp.example.com\n    client_id: x\n';
    expect(problemsOf(http, env)).toEqual([expect.stringMatching(/^login\.oidc\.issuer: must be https:\/\//)]);
    expect(problemsOf(`${http}    allow_insecure_issuer: true\n`, env)).toEqual([
      expect.stringMatching(/^login\.oidc\.issuer: http:\/\/ is allowed only for a loopback/),
    ]);
    const loop = load('login:\n  oidc:\n    issuer: http://127.0.0.1:4000\n    client_id: x\n    allow_insecure_issuer: true\n', env);
    expect(loop.ok).toBe(true);
    expect(loop.warnings.join('\n')).toMatch(/allow_insecure_issuer is true/);
  });

  it('refuses a redirect_url on a host allowed_redirect_hosts does not allow', () => {
    const env = { SESSIONGATE_OIDC_CLIENT_SECRET: SECRET_TEXT };
    const yaml = `allowed_redirect_hosts: [app.example.com]\n${block('    redirect_url: https://evil.example.net/~login/callback\n')}`;
    expect(problemsOf(yaml, env)).toEqual([expect.stringMatching(/^login\.oidc\.redirect_url: names host evil\.example\.net/)]);
    const ok = `allowed_redirect_hosts: [app.example.com]\n${block('    redirect_url: https://app.example.com/~login/callback\n')}`;
    expect(load(ok, env).ok).toBe(true);
  });

  it('refuses cookie.same_site strict (a login loop) and a redirect_url outside cookie.domain', () => {
    const env = { SESSIONGATE_OIDC_CLIENT_SECRET: SECRET_TEXT };
    expect(problemsOf(`cookie: { same_site: strict }\n${block()}`, env)).toEqual([
      expect.stringMatching(/^cookie\.same_site: strict does not work with login\.oidc/),
    ]);
    const outside = `cookie: { domain: .example.com }\n${block('    redirect_url: https://auth.example.net/~login/callback\n')}`;
    expect(problemsOf(outside, env)).toEqual([expect.stringMatching(/^login\.oidc\.redirect_url: names host auth\.example\.net, outside cookie\.domain/)]);
    const inside = load(`cookie: { domain: .example.com }\n${block('    redirect_url: https://auth.example.com/~login/callback\n')}`, env);
    expect(inside.ok).toBe(true);
    const hostOnly = load(block('    redirect_url: https://app.example.com/~login/callback\n'), env);
    expect(hostOnly.warnings.join('\n')).toMatch(/redirect_url is set and cookie\.domain is not/);
  });

  it('takes extra authorization parameters, but none that sessiongate sets itself', () => {
    const env = { SESSIONGATE_OIDC_CLIENT_SECRET: SECRET_TEXT };
    const ok = load(block('    auth_params: { prompt: login, hd: example.com }\n    token_endpoint_auth_method: client_secret_post\n'), env);
    if (!ok.ok) throw new Error(ok.problems.join('\n'));
    expect(ok.config.oidc).toMatchObject({ authParams: { prompt: 'login', hd: 'example.com' }, tokenEndpointAuthMethod: 'client_secret_post' });
    const bad = problemsOf(block('    auth_params: { state: fixed, redirect_uri: https://evil.example/, code_challenge_method: plain }\n'), env);
    expect(bad).toEqual([
      expect.stringMatching(/^login\.oidc\.auth_params\.state: state is set by sessiongate itself/),
      expect.stringMatching(/^login\.oidc\.auth_params\.redirect_uri: redirect_uri is set by sessiongate itself/),
      expect.stringMatching(/^login\.oidc\.auth_params\.code_challenge_method: code_challenge_method is set by sessiongate itself/),
    ]);
  });

  it('lists every problem by key: algorithm none, scopes without openid, a bad claim path', () => {
    const p = problemsOf(block('    id_token_algorithms: [none]\n    scopes: [profile]\n    claims: { user_id: "a b" }\n    timeout: 1ms\n'));
    expect(p.map((x) => x.split(':')[0]).sort()).toEqual(
      ['login.oidc.claims.user_id', 'login.oidc.client_secret_file', 'login.oidc.id_token_algorithms[0]', 'login.oidc.scopes', 'login.oidc.timeout'].sort(),
    );
  });
});

describe('the shipped and documented login.oidc examples load', () => {
  const env = { SESSIONGATE_OIDC_CLIENT_SECRET: SECRET_TEXT, SESSIONGATE_SECRET: 's'.repeat(40) };

  it('deploy/config.example.yaml with its login.oidc block uncommented (and its demo login_url removed)', () => {
    const text = readFileSync(join(ROOT, 'deploy/config.example.yaml'), 'utf8')
      .split('\n')
      .filter((l) => !l.startsWith('login_url:'))
      .map((l) => (/^# (login:| {2})/.test(l) ? l.slice(2) : l))
      .join('\n');
    expect(text).toMatch(/^login:\n {2}oidc:/m);
    const r = load(text, env);
    if (!r.ok) throw new Error(r.problems.join('\n'));
    expect(r.config.oidc?.issuer).toBe('https://accounts.example.com');
    expect(r.config.policy.loginUrl).toBe('/~login');
  });

  it('every YAML example in docs/oidc.md', () => {
    const doc = readFileSync(join(ROOT, 'docs/oidc.md'), 'utf8');
    const blocks = [...doc.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!).filter((b) => /^\s*login:/m.test(b));
    expect(blocks.length).toBeGreaterThanOrEqual(5);
    for (const block of blocks) {
      // Keys a reader fills in (<tenant>) stay placeholders; everything else must be a valid config.
      const r = load(block.replace(/<[^>\n]+>/g, 'placeholder'), env);
      if (!r.ok) throw new Error(`${block}\n${r.problems.join('\n')}`);
      expect(r.config.oidc).not.toBeNull();
    }
  });
});
