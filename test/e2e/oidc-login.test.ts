/**
 * The built-in OpenID Connect login, end to end, the way a user runs it: a real OpenID Provider
 * (oidc-provider), sessiongate with `login.oidc`, the shipped nginx config in front of an
 * application, and a scripted browser (cookie jar, redirects, the provider's forms). Then the
 * same session through Envoy's gRPC CheckRequest. Then every refusal: each answered with its
 * reason, and nothing created or destroyed.
 */
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GRPC, RawEnvoyClient } from '../../harness/envoy-wire.js';
import { type Hop, UserAgent } from '../../harness/oidc-agent.js';
import { startOidcProvider, TAMPER_MODES } from '../../harness/oidc-provider.js';
import { startService } from '../../src/main.js';
import { ACCOUNTS, CLIENT_ID, loadOidcConfig, type OidcStack, startOidcStack } from '../support/oidc.js';
import { quietLogger } from '../support/service.js';

let stack: OidcStack;
const clock = { now: Date.now(), offset: 0 };
const now = () => Date.now() + clock.offset;

beforeAll(async () => {
  // Only staff may log in (mallory is a contractor).
  stack = await startOidcStack({ oidcYaml: '    allowed_roles: [staff]\n    auth_params: { ui_locales: en-GB }\n', clock: now });
}, 60_000);
afterAll(() => stack?.close());

const created = async () => (await stack.replicas[0]!.svc.metrics.registry.getSingleMetric('sessiongate_sessions_created_total')!.get()).values[0]!.value;
const logins = async (reason: string) =>
  (await stack.replicas[0]!.svc.metrics.registry.getSingleMetric('sessiongate_logins_total')!.get()).values.find((v) => v.labels['reason'] === reason)?.value ??
  0;
const sessionCookie = (hop: Hop | undefined) => hop?.setCookies.find((c) => /^sessiongate=[^;]/.test(c));
const app = (agent: UserAgent, path = '/app') => agent.get(`${stack.url}${path}`);
const echoed = (hop: Hop) => JSON.parse(hop.body) as { url: string; headers: Record<string, string | undefined> };
const reasonOf = (hop: Hop | undefined) => hop?.headers.get('x-sessiongate-reason');

/** Logs in at the provider from /~login?rd=…, stopping before sessiongate's callback: the callback URL the provider sent the browser to. */
async function toCallback(agent: UserAgent, login = 'alice', rd = '/app'): Promise<string> {
  const r = await agent.completeLogin(`${stack.url}/~login?rd=${encodeURIComponent(rd)}`, login, 'any-password', { stopAt: `${stack.url}/~login/callback` });
  if (!r.stoppedAt) throw new Error(`the provider did not send the browser back: ${r.hops.map((h) => `${h.status} ${h.url}`).join('\n')}`);
  return r.stoppedAt;
}

describe('a protected page, through the shipped nginx config', () => {
  it('sends the browser to the provider and back, and the application sees the mapped identity', async () => {
    const agent = new UserAgent();
    const first = await app(agent, '/app/page?x=1');
    expect(first.status).toBe(302);
    expect(first.location).toBe(`${stack.url}/~login?rd=${encodeURIComponent(`${stack.url}/app/page?x=1`)}`);

    const start = await agent.get(first.location!);
    expect(start.status).toBe(302);
    const auth = new URL(start.location!);
    expect(auth.origin).toBe(new URL(stack.op.issuer).origin);
    expect(Object.fromEntries(auth.searchParams)).toMatchObject({
      client_id: CLIENT_ID,
      response_type: 'code',
      redirect_uri: `${stack.url}/~login/callback`,
      scope: 'openid profile email',
      code_challenge_method: 'S256',
      ui_locales: 'en-GB', // auth_params
    });
    for (const p of ['state', 'nonce', 'code_challenge']) expect(auth.searchParams.get(p)).toMatch(/^[A-Za-z0-9_-]{43,}$/);
    const flowCookie = start.setCookies.find((c) => c.startsWith('sessiongate_login_'))!;
    expect(flowCookie).toMatch(/HttpOnly/);
    expect(flowCookie).toMatch(/SameSite=Lax/);
    expect(flowCookie).toMatch(/Path=\/~login/);

    const before = await created();
    const done = await agent.completeLogin(start.location!, 'alice', 'any-password');
    expect(done.loginSubmitted).toBe(true);
    const callback = done.hops.find((h) => h.url.startsWith(`${stack.url}/~login/callback?`))!;
    expect(callback.status).toBe(302);
    expect(callback.location).toBe(`${stack.url}/app/page?x=1`);
    const set = sessionCookie(callback)!;
    expect(set).toMatch(/HttpOnly/);
    expect(set).toMatch(/Secure/);
    expect(set).toMatch(/SameSite=Lax/);
    expect(set).toMatch(/Path=\//);
    // The flow cookie is dropped with the login.
    expect(callback.setCookies.some((c) => c.startsWith(flowCookie.split('=')[0]!) && /Max-Age=0/.test(c))).toBe(true);
    expect(await created()).toBe(before + 1);

    const landed = done.last!;
    expect(landed.status).toBe(200);
    const seen = echoed(landed);
    expect(seen.url).toBe('/app/page?x=1');
    expect(seen.headers['x-user-id']).toBe(ACCOUNTS['alice']!.sub);
    expect(seen.headers['x-user-roles']).toBe('staff,admin');
    expect(seen.headers['x-user-email']).toBe('alice@example.com');
    // Neither sessiongate's cookie nor the flow's reaches the application.
    expect(seen.headers['cookie'] ?? '').not.toMatch(/sessiongate/);
  });

  it('through an Envoy gRPC CheckRequest: a browser without a session is sent to /~login, and after the login allowed with the identity headers', async () => {
    const grpc = new RawEnvoyClient(`127.0.0.1:${stack.replicas[0]!.svc.ports.grpc}`);
    try {
      const out = await grpc.check({ method: 'GET', path: '/app?a=1', host: 'app.example.com', scheme: 'https', headers: { accept: 'text/html' } });
      if ('error' in out) throw new Error(out.error.message);
      expect(out.response.denied!.status).toBe(302);
      expect(out.response.denied!.headers.find((h) => h.key === 'location')?.value).toBe(`/~login?rd=${encodeURIComponent('https://app.example.com/app?a=1')}`);
    } finally {
      grpc.close();
    }
    const agent = new UserAgent();
    await agent.completeLogin(`${stack.url}/app`, 'bob', 'pw');
    const cookie = agent.jar.header(new URL(stack.url), { method: 'GET', crossSite: false });
    expect(cookie).toMatch(/sessiongate=/);
    const client = new RawEnvoyClient(`127.0.0.1:${stack.replicas[0]!.svc.ports.grpc}`);
    try {
      const out = await client.check({ method: 'GET', path: '/app', host: 'app.example.com', headers: { cookie } });
      if ('error' in out) throw new Error(out.error.message);
      expect(out.response.code).toBe(GRPC.OK);
      expect(out.response.ok!.headers.find((h) => h.key === 'x-user-id')?.value).toBe(ACCOUNTS['bob']!.sub);
    } finally {
      client.close();
    }
  });

  it('keeps the provider tokens out of what the user can read back', async () => {
    const agent = new UserAgent();
    await agent.completeLogin(`${stack.url}/app`, 'alice', 'pw');
    const who = await agent.get(`${stack.url}/~session`);
    expect(who.status).toBe(200);
    expect(JSON.parse(who.body)).toMatchObject({
      user_id: ACCOUNTS['alice']!.sub,
      roles: ['staff', 'admin'],
      attributes: { email: 'alice@example.com', name: 'Alice Example' },
    });
    expect(who.body).not.toMatch(/eyJ/); // no JWT of any kind
  });

  it('two logins in one browser at once both succeed (a cookie per flow)', async () => {
    const agent = new UserAgent();
    const one = await toCallback(agent, 'alice', '/app/one');
    const two = await toCallback(agent, 'alice', '/app/two');
    expect(agent.jar.all().filter((c) => c.name.startsWith('sessiongate_login_'))).toHaveLength(2);
    const second = await agent.get(two);
    const first = await agent.get(one);
    expect([first.status, first.location]).toEqual([302, `${stack.url}/app/one`]);
    expect([second.status, second.location]).toEqual([302, `${stack.url}/app/two`]);
  });
});

describe('a provider that takes the client secret in the form body (client_secret_post)', () => {
  it('logs in with token_endpoint_auth_method: client_secret_post', async () => {
    const own = await startOidcStack({ clientAuth: 'client_secret_post' });
    try {
      const agent = new UserAgent();
      const done = await agent.completeLogin(`${own.url}/app`, 'alice', 'pw');
      expect(done.last?.status).toBe(200);
      expect(echoed(done.last!).headers['x-user-id']).toBe(ACCOUNTS['alice']!.sub);
      // oidc-provider takes either method from any client: what was sent is what shows.
      const token = own.op.relayed.filter((r) => r.method === 'POST' && r.path.startsWith(new URL(own.op.endpoints.token).pathname));
      expect(token.map((r) => r.authorization)).toEqual([null]);
      expect(stack.op.relayed.some((r) => r.method === 'POST' && r.authorization === 'basic')).toBe(true);
    } finally {
      await own.close();
    }
  });
});

describe('logout reaches the provider', () => {
  it('ends the session, clears the cookie and sends the browser to end_session with id_token_hint', async () => {
    const agent = new UserAgent();
    await agent.completeLogin(`${stack.url}/app`, 'alice', 'pw');
    const cookie = agent.jar.header(new URL(stack.url), { method: 'GET', crossSite: false });
    expect((await app(agent)).status).toBe(200);

    const out = await agent.get(`${stack.url}/~logout?rd=/bye`);
    expect(out.status).toBe(302);
    expect(out.setCookies.some((c) => /^sessiongate=;/.test(c))).toBe(true);
    const end = new URL(out.location!);
    expect(`${end.origin}${end.pathname}`).toBe(stack.op.endpoints.endSession);
    expect(end.searchParams.get('post_logout_redirect_uri')).toBe(`${stack.url}/bye`);
    expect(end.searchParams.get('client_id')).toBe(CLIENT_ID);
    const hint = decodeJwt(end.searchParams.get('id_token_hint')!);
    expect(hint).toMatchObject({ sub: ACCOUNTS['alice']!.sub, aud: CLIENT_ID, iss: stack.op.issuer });

    // The old cookie is dead, whatever the browser does next (a script's request: 401).
    const replay = await fetch(`${stack.url}/app`, { headers: { Cookie: cookie }, redirect: 'manual' });
    expect(replay.status).toBe(401);

    // The provider asks, then logs the user out there too and comes back to /bye.
    const atProvider = await agent.logoutAtProvider(out.location!, { stopAt: `${stack.url}/bye` });
    expect(atProvider.confirmPage).toBeDefined();
    expect(atProvider.stoppedAt).toBe(`${stack.url}/bye`);
    // Logged out at the provider: the next login shows its form again.
    const again = await agent.completeLogin(`${stack.url}/app`, 'alice', 'pw');
    expect(again.loginSubmitted).toBe(true);
  });

  it('without a provider session to end, goes to rd; an unsafe rd is dropped and the logout still happens', async () => {
    const agent = new UserAgent();
    const plain = await agent.get(`${stack.url}/~logout?rd=/bye`);
    expect([plain.status, plain.location]).toEqual([302, `${stack.url}/bye`]);

    await agent.completeLogin(`${stack.url}/app`, 'bob', 'pw');
    const evil = await agent.get(`${stack.url}/~logout?rd=${encodeURIComponent('https://evil.example/')}`);
    expect(evil.status).toBe(302);
    const end = new URL(evil.location!);
    expect(`${end.origin}${end.pathname}`).toBe(stack.op.endpoints.endSession);
    expect(end.searchParams.get('post_logout_redirect_uri')).toBe(`${stack.url}/`);
    expect((await app(agent)).status).toBe(302);
  });
});

describe('refused callbacks: a reason each, and no session', () => {
  async function refused(agent: UserAgent, url: string, status: number, reason: string): Promise<void> {
    const before = await created();
    const counted = await logins(reason);
    const r = await agent.get(url);
    expect({ status: r.status, reason: reasonOf(r) }).toEqual({ status, reason });
    expect(await logins(reason)).toBe(counted + 1);
    expect(r.body).toContain(`<code id="reason">${reason}</code>`);
    expect(sessionCookie(r)).toBeUndefined();
    expect(await created()).toBe(before);
  }

  it('a state that is not this browser’s flow: state_mismatch', async () => {
    const agent = new UserAgent();
    const cb = new URL(await toCallback(agent));
    cb.searchParams.set('state', 'x'.repeat(43));
    await refused(agent, cb.href, 400, 'state_mismatch');
  });

  it('a replayed callback (the state used once already): flow_not_found, even with the old flow cookie back', async () => {
    const agent = new UserAgent();
    const cb = await toCallback(agent);
    const flowCookies = agent.jar.header(new URL(`${stack.url}/~login/callback`), { method: 'GET', crossSite: false });
    expect((await agent.get(cb)).status).toBe(302);
    await refused(agent, cb, 400, 'flow_not_found');
    const before = await created();
    const r = await fetch(cb, { headers: { Cookie: flowCookies }, redirect: 'manual' });
    expect([r.status, r.headers.get('x-sessiongate-reason')]).toEqual([400, 'flow_not_found']);
    expect(await created()).toBe(before);
  });

  it('a callback in a browser that never started the flow (no PKCE verifier; login CSRF): flow_not_found', async () => {
    const victim = new UserAgent();
    const cb = await toCallback(new UserAgent());
    await refused(victim, cb, 400, 'flow_not_found');
  });

  it('a code from another flow (its PKCE verifier differs): the provider refuses, code_exchange_failed', async () => {
    const agent = new UserAgent();
    const a = new URL(await toCallback(agent));
    const b = new URL(await toCallback(agent));
    b.searchParams.set('code', a.searchParams.get('code')!);
    await refused(agent, b.href, 400, 'code_exchange_failed');
  });

  it('the provider answered an error: provider_error', async () => {
    const agent = new UserAgent();
    const cb = new URL(await toCallback(agent));
    const state = cb.searchParams.get('state')!;
    await refused(agent, `${stack.url}/~login/callback?error=access_denied&state=${state}&iss=${encodeURIComponent(stack.op.issuer)}`, 400, 'provider_error');
  });

  for (const mode of TAMPER_MODES) {
    it(`an ID token altered on the way (${mode}): id_token_invalid`, async () => {
      const agent = new UserAgent();
      const cb = await toCallback(agent);
      stack.op.setTamper(mode);
      try {
        await refused(agent, cb, 400, 'id_token_invalid');
      } finally {
        stack.op.setTamper(null);
      }
      expect(stack.op.relayed.some((r) => r.tampered === mode)).toBe(true);
    });
  }

  it('a user without an allowed role: 403 role_not_allowed', async () => {
    const agent = new UserAgent();
    const cb = await toCallback(agent, 'mallory');
    await refused(agent, cb, 403, 'role_not_allowed');
    expect((await app(agent)).status).toBe(302);
  });

  it('an rd beyond ASCII arrives percent-encoded (a header carries no more)', async () => {
    const agent = new UserAgent();
    const cb = await toCallback(agent, 'bob', '/caf\u00e9/\u2713?q=\u00fc');
    const r = await agent.get(cb);
    expect([r.status, r.headers.get('location')]).toEqual([302, '/caf%C3%A9/%E2%9C%93?q=%C3%BC']);
    expect(sessionCookie(r)).toBeDefined();
  });

  it.each([
    'https://evil.example/',
    '//evil.example/',
    '/\\evil.example/',
    '/%2F%2Fevil.example/',
    'javascript:alert(1)',
    'http://127.0.0.1@evil.example/',
    'https:evil.example',
  ])('an open-redirect rd (%s) is dropped: the login lands on /', async (rd) => {
    const agent = new UserAgent();
    const cb = await toCallback(agent, 'bob', rd);
    const r = await agent.get(cb);
    expect([r.status, r.location]).toEqual([302, `${stack.url}/`]);
    expect(r.headers.get('location')).toBe('/');
    expect(sessionCookie(r)).toBeDefined();
  });
});

describe('refused logout tokens: a reason each, and nothing ends', () => {
  let agent: UserAgent;
  beforeAll(async () => {
    agent = new UserAgent();
    await agent.completeLogin(`${stack.url}/app`, 'bob', 'pw');
  });
  const post = (token: string) =>
    fetch(`${stack.url}/~login/backchannel-logout`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ logout_token: token }),
    });
  const bob = ACCOUNTS['bob']!.sub;

  const cases: Array<[string, () => Promise<string>]> = [
    ['signed by another key', () => stack.op.signLogoutToken({ sub: bob }, { key: 'foreign', kid: undefined })],
    ['signed by another key under the provider’s kid', () => stack.op.signLogoutToken({ sub: bob }, { key: 'foreign', kid: stack.op.signingKey.kid })],
    ['alg none', () => stack.op.signLogoutToken({ sub: bob }, { alg: 'none' })],
    ['carrying a nonce', () => stack.op.signLogoutToken({ sub: bob, nonce: 'n-1' })],
    ['for another audience', () => stack.op.signLogoutToken({ sub: bob, aud: 'another-client' })],
    ['from another issuer', () => stack.op.signLogoutToken({ sub: bob, iss: 'https://evil.example' })],
    ['without the back-channel event', () => stack.op.signLogoutToken({ sub: bob, events: { 'http://example.com/other': {} } })],
    ['issued an hour ago', () => stack.op.signLogoutToken({ sub: bob, iat: Math.floor(Date.now() / 1000) - 3600 })],
    ['naming neither sid nor sub', () => stack.op.signLogoutToken({ sub: undefined, sid: undefined })],
  ];
  for (const [name, make] of cases) {
    it(`a logout token ${name}: 400 logout_token_invalid`, async () => {
      const r = await post(await make());
      expect(r.status).toBe(400);
      expect(await r.json()).toEqual({ error: 'invalid_request', error_description: 'logout_token_invalid' });
      expect((await app(agent)).status).toBe(200);
    });
  }

  it('a replayed jti: 400 logout_token_replayed (the first use counted, the second not)', async () => {
    const token = await stack.op.signLogoutToken({ sub: 'nobody-with-this-sub' });
    expect((await post(token)).status).toBe(200);
    const again = await post(token);
    expect(again.status).toBe(400);
    expect(await again.json()).toEqual({ error: 'invalid_request', error_description: 'logout_token_replayed' });
    expect((await app(agent)).status).toBe(200);
  });

  it('a valid logout token for the subject ends its sessions', async () => {
    const other = new UserAgent();
    await other.completeLogin(`${stack.url}/app`, 'bob', 'pw');
    expect((await post(await stack.op.signLogoutToken({ sub: bob }))).status).toBe(200);
    expect((await app(agent)).status).toBe(302);
    expect((await app(other)).status).toBe(302);
  });
});

describe('the provider unreachable', () => {
  it('at start-up: a clear error naming the key, the discovery URL and what failed', async () => {
    const op = await startOidcProvider({ accounts: ACCOUNTS, clients: [] });
    const issuer = op.issuer;
    await op.close();
    const config = loadOidcConfig(issuer);
    await expect(startService(config, quietLogger())).rejects.toThrow(
      new RegExp(
        `^login\\.oidc\\.issuer: cannot discover the OpenID provider at ${issuer.replace(/[.]/g, '\\.')}/\\.well-known/openid-configuration: ECONNREFUSED`,
      ),
    );
  });

  it('at start-up, a misconfigured provider: the issuer its document names differs, or there is no document', async () => {
    const op = await startOidcProvider({ accounts: ACCOUNTS, clients: [] });
    try {
      await expect(startService(loadOidcConfig(op.directUrl), quietLogger())).rejects.toThrow(
        /^login\.oidc\.issuer: .*discovered metadata issuer does not match the expected issuer$/,
      );
      await expect(startService(loadOidcConfig(`${op.issuer}/nothing-here`), quietLogger())).rejects.toThrow(
        /^login\.oidc\.issuer: cannot discover the OpenID provider at .*\/nothing-here\/\.well-known\/openid-configuration: the provider answered HTTP 404$/,
      );
    } finally {
      await op.close();
    }
  });

  it('later: /~login answers 503 provider_unavailable, and existing sessions keep working', async () => {
    const own = await startOidcStack({ clock: now });
    try {
      const agent = new UserAgent();
      await agent.completeLogin(`${own.url}/app`, 'alice', 'pw');
      await own.op.close();
      clock.offset += 61_000; // past the discovery's freshness: the next login looks again
      const r = await agent.get(`${own.url}/~login?rd=/app`);
      expect([r.status, r.headers.get('x-sessiongate-reason')]).toEqual([503, 'provider_unavailable']);
      expect((await agent.get(`${own.url}/app`)).status).toBe(200);
    } finally {
      clock.offset = 0;
      await own.close();
    }
  });
});
