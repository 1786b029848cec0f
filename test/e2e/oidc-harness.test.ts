/**
 * The OpenID Connect test harness, proven against a relying party that is not sessiongate:
 * openid-client v6 used directly. A real oidc-provider behind the tampering relay, the scripted
 * user agent, and Debian's chromium (a missing chromium fails this file: scripts/test.sh
 * installs it).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import {
  allowInsecureRequests,
  authorizationCodeGrant,
  buildAuthorizationUrl,
  buildEndSessionUrl,
  ClientSecretBasic,
  type Configuration,
  calculatePKCECodeChallenge,
  discovery,
  enableNonRepudiationChecks,
  fetchUserInfo,
  randomNonce,
  randomPKCECodeVerifier,
  randomState,
} from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumProblem, type LaunchedBrowser, launchChromium, submitProviderLogin } from '../../harness/browser.js';
import { CookieJar, parseForms, UserAgent } from '../../harness/oidc-agent.js';
import {
  BACKCHANNEL_LOGOUT_EVENT,
  FOREIGN_KID,
  type LogoutReceiver,
  type OidcProviderHarness,
  PROVIDER_KID,
  startLogoutReceiver,
  startOidcProvider,
  TAMPER_MODES,
  type TamperMode,
} from '../../harness/oidc-provider.js';

const ALICE = { sub: 'u-alice', email: 'alice@example.com', name: 'Alice Example', groups: ['admin', 'dev'] };

let op: OidcProviderHarness;
let receiver: LogoutReceiver;
let rp: Server;
let rpBase: string;
let callback: string;
let config: Configuration;
/** The same client with the ID token's signature checked against the JWKS too. */
let strict: Configuration;
const rpSeen: string[] = [];

beforeAll(async () => {
  // The mini relying party's own server: the browser lands on it; the agent stops before it.
  rp = createServer((req, res) => {
    rpSeen.push(req.url ?? '');
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    res.end(`rp ${req.url}`);
  });
  await new Promise<void>((r) => rp.listen(0, '127.0.0.1', r));
  rpBase = `http://127.0.0.1:${(rp.address() as AddressInfo).port}`;
  callback = `${rpBase}/cb`;
  receiver = await startLogoutReceiver();
  op = await startOidcProvider({
    clients: [
      {
        client_id: 'rp',
        client_secret: 'rp-secret',
        redirect_uris: [callback],
        post_logout_redirect_uris: [`${rpBase}/bye`],
        backchannel_logout_uri: receiver.url,
      },
    ],
    accounts: { alice: ALICE },
  });
  config = await discovery(new URL(op.issuer), 'rp', undefined, ClientSecretBasic('rp-secret'), { execute: [allowInsecureRequests] });
  strict = await discovery(new URL(op.issuer), 'rp', undefined, ClientSecretBasic('rp-secret'), {
    execute: [allowInsecureRequests, enableNonRepudiationChecks],
  });
});

afterAll(async () => {
  await op?.close();
  await receiver?.close();
  await new Promise<void>((r) => (rp ? rp.close(() => r()) : r()));
});

interface Flow {
  url: URL;
  verifier: string;
  nonce: string;
  state: string;
}

async function startFlow(extra: Record<string, string> = {}): Promise<Flow> {
  const verifier = randomPKCECodeVerifier();
  const nonce = randomNonce();
  const state = randomState();
  const url = buildAuthorizationUrl(config, {
    redirect_uri: callback,
    scope: 'openid profile email',
    code_challenge: await calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    nonce,
    state,
    ...extra,
  });
  return { url, verifier, nonce, state };
}

/** A fresh user agent through the provider's login form, stopped at the callback with a code. */
async function agentLogin(agent = new UserAgent()): Promise<Flow & { back: URL; agent: UserAgent; loginPage: string }> {
  const flow = await startFlow();
  const r = await agent.completeLogin(flow.url.href, 'alice', 'any password at all', { stopAt: callback });
  expect(r.loginSubmitted).toBe(true);
  expect(r.stoppedAt, JSON.stringify(r.hops.map((h) => [h.status, h.url]))).toBeDefined();
  const loginPage = r.hops.find((h) => h.status === 200 && h.body.includes('type="password"'))!;
  return { ...flow, back: new URL(r.stoppedAt!), agent, loginPage: loginPage.body };
}

function exchange(flow: Flow & { back: URL }, with_: Configuration = config) {
  return authorizationCodeGrant(with_, flow.back, {
    pkceCodeVerifier: flow.verifier,
    expectedNonce: flow.nonce,
    expectedState: flow.state,
    idTokenExpected: true,
  });
}

describe('the provider behind the relay', () => {
  it('discovery through the relay names the relay everywhere', () => {
    const m = config.serverMetadata();
    expect(m.issuer).toBe(op.issuer);
    expect(m.authorization_endpoint).toBe(op.endpoints.authorization);
    expect(m.token_endpoint).toBe(op.endpoints.token);
    expect(m.userinfo_endpoint).toBe(op.endpoints.userinfo);
    expect(m.jwks_uri).toBe(op.endpoints.jwks);
    expect(m.end_session_endpoint).toBe(op.endpoints.endSession);
    expect(m['backchannel_logout_supported']).toBe(true);
    expect(m['backchannel_logout_session_supported']).toBe(true);
    expect(m.code_challenge_methods_supported).toEqual(['S256']);
    expect(m.claims_supported).toEqual(expect.arrayContaining(['sub', 'email', 'name', 'groups', 'sid']));
    expect(op.relayed.some((r) => r.method === 'GET' && r.path === '/.well-known/openid-configuration' && r.status === 200)).toBe(true);
  });

  it('a code + PKCE login through the login form: ID token with sub, email, groups, sid and nonce; the same claims at userinfo', async () => {
    const flow = await agentLogin();
    // The devInteractions login form, as the agent and browser helpers expect it.
    const form = parseForms(flow.loginPage, op.issuer).find((f) => f.passwordFields.length > 0)!;
    expect(form.method).toBe('POST');
    expect(form.action).toMatch(new RegExp(`^${op.issuer}/interaction/[\\w-]+$`));
    expect(form.fields.map(([k]) => k)).toEqual(['prompt', 'login', 'password']);
    expect(form.fields[0]).toEqual(['prompt', 'login']);
    expect(flow.back.searchParams.get('state')).toBe(flow.state);
    expect(flow.back.searchParams.get('iss')).toBe(op.issuer);

    const tokens = await exchange(flow);
    const claims = tokens.claims()!;
    expect(claims).toMatchObject({ iss: op.issuer, aud: 'rp', sub: ALICE.sub, email: ALICE.email, name: ALICE.name, groups: ALICE.groups, nonce: flow.nonce });
    expect(claims.sid).toEqual(expect.any(String));
    expect(decodeProtectedHeader(tokens.id_token!)).toMatchObject({ alg: 'RS256', kid: PROVIDER_KID });
    await expect(jwtVerify(tokens.id_token!, createLocalJWKSet(op.jwks), { issuer: op.issuer, audience: 'rp' })).resolves.toBeTruthy();
    expect(op.relayed.filter((r) => r.path === '/token').at(-1)).toMatchObject({ status: 200, tampered: null });

    const info = await fetchUserInfo(config, tokens.access_token, ALICE.sub);
    expect(info).toMatchObject({ sub: ALICE.sub, email: ALICE.email, name: ALICE.name, groups: ALICE.groups });
  });

  it('host localhost: the issuer (relay) is http://localhost:<port>, discovery and a login work through it', async () => {
    const other = await startOidcProvider({
      host: 'localhost',
      clients: [{ client_id: 'rp2', client_secret: 's2', redirect_uris: [callback] }],
      accounts: { alice: ALICE },
    });
    try {
      expect(other.issuer).toMatch(/^http:\/\/localhost:\d+$/);
      const c = await discovery(new URL(other.issuer), 'rp2', undefined, ClientSecretBasic('s2'), { execute: [allowInsecureRequests] });
      expect(c.serverMetadata().token_endpoint).toBe(`${other.issuer}/token`);
      const verifier = randomPKCECodeVerifier();
      const url = buildAuthorizationUrl(c, {
        redirect_uri: callback,
        scope: 'openid email',
        code_challenge: await calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
      });
      const agent = new UserAgent();
      const r = await agent.completeLogin(url.href, 'alice', 'x', { stopAt: callback });
      // The provider's cookies belong to localhost, apart from anything on 127.0.0.1.
      expect(agent.jar.all().every((k) => k.domain === 'localhost')).toBe(true);
      expect(agent.jar.get('localhost', '_session')).toBeDefined();
      const tokens = await authorizationCodeGrant(c, new URL(r.stoppedAt!), { pkceCodeVerifier: verifier, idTokenExpected: true });
      expect(tokens.claims()).toMatchObject({ iss: other.issuer, sub: ALICE.sub, email: ALICE.email });
    } finally {
      await other.close();
    }
  });

  it('PKCE is required, and an unknown login ends the flow with access_denied', async () => {
    const noPkce = buildAuthorizationUrl(config, { redirect_uri: callback, scope: 'openid', nonce: randomNonce(), state: 's1' });
    const r1 = await new UserAgent().follow(noPkce.href, { stopAt: callback });
    const e1 = new URL(r1.stoppedAt!);
    expect(e1.searchParams.get('error')).toBe('invalid_request');
    expect(e1.searchParams.get('error_description')).toMatch(/PKCE/);

    const flow = await startFlow();
    const r2 = await new UserAgent().completeLogin(flow.url.href, 'mallory', 'x', { stopAt: callback });
    expect(r2.loginSubmitted).toBe(true);
    expect(new URL(r2.stoppedAt!).searchParams.get('error')).toBe('access_denied');
  });

  it('a second authorization in the same agent is a single sign-on: no form, straight back with a code', async () => {
    const first = await agentLogin();
    const again = await startFlow();
    const r = await first.agent.completeLogin(again.url.href, 'alice', 'x', { stopAt: callback });
    expect(r.loginSubmitted).toBe(false);
    expect(new URL(r.stoppedAt!).searchParams.get('code')).toEqual(expect.any(String));
  });
});

describe('the tampering relay: each mode makes openid-client refuse the ID token', () => {
  // openid-client's own code and the detail in its cause (the message itself is generic).
  const expected: Record<TamperMode, [string, RegExp]> = {
    wrong_issuer: ['OAUTH_JWT_CLAIM_COMPARISON_FAILED', /unexpected JWT "iss" \(issuer\) claim value/],
    wrong_audience: ['OAUTH_JWT_CLAIM_COMPARISON_FAILED', /unexpected JWT "aud" \(audience\) claim value/],
    extra_audience_no_azp: ['OAUTH_JWT_CLAIM_COMPARISON_FAILED', /"aud" \(audience\) claim includes additional untrusted audiences/],
    expired: ['OAUTH_JWT_TIMESTAMP_CHECK_FAILED', /"exp" \(expiration time\) claim value, expiration is past current timestamp/],
    nonce_mismatch: ['OAUTH_JWT_CLAIM_COMPARISON_FAILED', /unexpected ID Token "nonce" claim value/],
    alg_none: ['OAUTH_INVALID_RESPONSE', /unexpected JWT "alg" header parameter/],
    other_key: ['OAUTH_INVALID_RESPONSE', /JWT signature verification failed/],
    unknown_kid: ['OAUTH_KEY_SELECTION_FAILED', /no applicable keys found/],
  };

  async function refusal(p: Promise<unknown>): Promise<{ code: string | undefined; detail: string }> {
    const err = await p.then(
      () => null,
      (e: unknown) => e as Error & { code?: string; cause?: Error & { code?: string } },
    );
    if (!err) throw new Error('authorizationCodeGrant accepted the tampered ID token');
    return { code: err.code, detail: `${err.message} / ${err.cause?.message ?? ''}` };
  }

  for (const mode of TAMPER_MODES) {
    it(mode, async () => {
      const flow = await agentLogin();
      op.setTamper(mode);
      try {
        const r = await refusal(exchange(flow, strict));
        expect(r.code, r.detail).toBe(expected[mode][0]);
        expect(r.detail).toMatch(expected[mode][1]);
      } finally {
        op.setTamper(null);
      }
      expect(op.relayed.filter((r) => r.path === '/token').at(-1)).toMatchObject({ status: 200, tampered: mode });
    });
  }

  it('openid-client does NOT check the signature of an ID token from the token endpoint unless enableNonRepudiationChecks is on', async () => {
    // OIDC Core 3.1.3.7 lets a client trust TLS instead; a relying party that wants the
    // signature checked (sessiongate: the foreign-key modes) must turn it on.
    for (const mode of ['other_key', 'unknown_kid'] as const) {
      const flow = await agentLogin();
      op.setTamper(mode);
      try {
        expect((await exchange(flow)).claims()?.sub, mode).toBe(ALICE.sub);
      } finally {
        op.setTamper(null);
      }
      expect(op.relayed.filter((r) => r.path === '/token').at(-1)).toMatchObject({ status: 200, tampered: mode });
    }
  });

  it('an unknown mode is refused', () => {
    expect(() => op.setTamper('bogus' as TamperMode)).toThrow(/unknown tamper mode/);
  });
});

describe('back-channel logout', () => {
  it('logging out at the provider (its confirmation page) sends a logout_token to the client, verifiable against the JWKS', async () => {
    const flow = await agentLogin();
    const tokens = await exchange(flow);
    const sid = tokens.claims()!.sid as string;
    expect(op.sessions().filter((s) => s.accountId === ALICE.sub && s.clients.includes('rp')).length).toBeGreaterThan(0);
    const before = receiver.received.length;

    const end = buildEndSessionUrl(config, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: `${rpBase}/bye`, state: 'bye-state' });
    const out = await flow.agent.logoutAtProvider(end.href, { stopAt: `${rpBase}/bye` });
    expect(out.confirmPage?.body).toContain('id="op.logoutForm"');
    expect(new URL(out.stoppedAt!).searchParams.get('state')).toBe('bye-state');

    const delivery = await op.waitForBackchannel('rp', { sid });
    expect(delivery).toMatchObject({ clientId: 'rp', ok: true, accountId: ALICE.sub, sid });
    // Only this session's client heard of it: the other provider sessions of alice (one per
    // earlier test's agent) are other browsers.
    expect(receiver.received.length).toBe(before + 1);
    const token = await receiver.next({ sid });
    expect(receiver.received.at(-1)!.contentType).toBe('application/x-www-form-urlencoded');
    const { payload, protectedHeader } = await jwtVerify(token, createLocalJWKSet(op.jwks), { issuer: op.issuer, audience: 'rp', typ: 'logout+jwt' });
    expect(protectedHeader.kid).toBe(PROVIDER_KID);
    expect(payload).toMatchObject({ sub: ALICE.sub, sid, events: { [BACKCHANNEL_LOGOUT_EVENT]: {} } });
    expect(payload.jti).toEqual(expect.any(String));
    expect(payload).not.toHaveProperty('nonce');
    // The provider session is gone: the next authorization shows the login form again.
    const again = await startFlow();
    expect((await flow.agent.completeLogin(again.url.href, 'alice', 'x', { stopAt: callback })).loginSubmitted).toBe(true);
  });

  it('endSessionsOf ends the provider session and delivers a logout token for it', async () => {
    const flow = await agentLogin();
    const sid = (await exchange(flow)).claims()!.sid as string;
    const made = await op.endSessionsOf(ALICE.sub);
    expect(made.map((d) => [d.clientId, d.ok, d.sid])).toContainEqual(['rp', true, sid]);
    expect(decodeJwt(await receiver.next({ sid }))).toMatchObject({ sid, sub: ALICE.sub });
    expect(op.sessions().filter((s) => s.accountId === ALICE.sub)).toEqual([]);
    const again = await startFlow();
    expect((await flow.agent.completeLogin(again.url.href, 'alice', 'x', { stopAt: callback })).loginSubmitted).toBe(true);
  });

  it('a failing client endpoint is recorded as a failed delivery with its status', async () => {
    const flow = await agentLogin();
    const sid = (await exchange(flow)).claims()!.sid as string;
    receiver.status = 500;
    try {
      await op.endSessionsOf(ALICE.sub);
      const d = await op.waitForBackchannel('rp', { sid });
      expect(d).toMatchObject({ ok: false, status: 500 });
    } finally {
      receiver.status = 200;
    }
  });

  it('signLogoutToken: provider-signed tokens verify; foreign key, unknown kid and alg none do not', async () => {
    const jwks = createLocalJWKSet(op.jwks);
    const verify = (t: string) => jwtVerify(t, jwks, { issuer: op.issuer, audience: 'rp', typ: 'logout+jwt' });
    const good = await op.signLogoutToken({ sub: ALICE.sub, sid: 'sid-1' });
    const { payload } = await verify(good);
    expect(payload).toMatchObject({ iss: op.issuer, aud: 'rp', sub: ALICE.sub, sid: 'sid-1', events: { [BACKCHANNEL_LOGOUT_EVENT]: {} } });
    expect(Math.abs(payload.iat! - Date.now() / 1000)).toBeLessThan(5);
    expect(payload.jti).not.toBe(decodeJwt(await op.signLogoutToken({ sub: ALICE.sub })).jti);

    const foreign = await op.signLogoutToken({ sub: ALICE.sub }, { key: 'foreign', kid: PROVIDER_KID });
    await expect(verify(foreign)).rejects.toMatchObject({ code: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' });
    const unknown = await op.signLogoutToken({ sub: ALICE.sub }, { key: 'foreign' });
    expect(decodeProtectedHeader(unknown).kid).toBe(FOREIGN_KID);
    await expect(verify(unknown)).rejects.toMatchObject({ code: 'ERR_JWKS_NO_MATCHING_KEY' });
    const none = await op.signLogoutToken({ sub: ALICE.sub }, { alg: 'none' });
    expect(none.endsWith('.')).toBe(true);
    expect(decodeProtectedHeader(none).alg).toBe('none');
    await expect(verify(none)).rejects.toThrow();
  });
});

describe('the agent cookie jar', () => {
  it('host-only cookies belong to the host name whatever the port; Path, Max-Age and Secure on loopback only', () => {
    const jar = new CookieJar();
    jar.setCookie('a=1; Path=/', new URL('http://127.0.0.1:1111/x'));
    jar.setCookie('flow=2; Path=/~login; Max-Age=600; HttpOnly; SameSite=Lax', new URL('http://127.0.0.1:1111/~login?rd=/'));
    jar.setCookie('s=3; Secure; Path=/', new URL('http://localhost:2222/'));
    jar.setCookie('s=4; Secure; Path=/', new URL('http://app.example.test/'));
    expect(jar.header(new URL('http://127.0.0.1:9999/'))).toBe('a=1');
    expect(jar.header(new URL('http://127.0.0.1:9999/~login/callback'))).toBe('flow=2; a=1');
    expect(jar.header(new URL('http://127.0.0.1:9999/~loginx'))).toBe('a=1');
    expect(jar.header(new URL('http://localhost:1/'))).toBe('s=3');
    expect(jar.header(new URL('http://app.example.test/'))).toBe('');
    expect(jar.rejected.map((r) => r.reason)).toEqual(['Secure cookie from an insecure origin']);
    jar.setCookie('flow=; Path=/~login; Max-Age=0', new URL('http://127.0.0.1:1/~login/callback'));
    expect(jar.header(new URL('http://127.0.0.1:9999/~login/callback'))).toBe('a=1');
    jar.setCookie('a=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT', new URL('http://127.0.0.1:1/'));
    expect(jar.all().map((c) => c.name)).toEqual(['s']);
  });

  it('SameSite: Strict withheld across sites, Lax only on GET across sites', () => {
    const jar = new CookieJar();
    jar.setCookie('st=1; SameSite=Strict', new URL('http://127.0.0.1/'));
    jar.setCookie('lx=1; SameSite=Lax', new URL('http://127.0.0.1/'));
    expect(jar.header(new URL('http://127.0.0.1/'), { crossSite: false })).toBe('st=1; lx=1');
    expect(jar.header(new URL('http://127.0.0.1/'), { crossSite: true })).toBe('lx=1');
    expect(jar.header(new URL('http://127.0.0.1/'), { crossSite: true, method: 'POST' })).toBe('');
  });
});

describe('chromium', () => {
  let browser: LaunchedBrowser;

  beforeAll(async () => {
    const problem = chromiumProblem();
    if (problem) throw new Error(problem);
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('stores and sends Secure cookies set over http://localhost and http://127.0.0.1', async () => {
    for (const host of ['localhost', '127.0.0.1']) {
      const { context, page } = await browser.newSession();
      // Set a Secure cookie from a loopback page over http and read what the next request sends.
      const srv = createServer((req, res) => {
        if (req.url === '/set') res.setHeader('Set-Cookie', ['sec=1; Secure; HttpOnly; Path=/; SameSite=Lax', '__Host-h=1; Secure; Path=/']);
        res.end(req.headers.cookie ?? '');
      });
      await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
      const base = `http://${host}:${(srv.address() as AddressInfo).port}`;
      try {
        await page.goto(`${base}/set`);
        const echoed = await (await page.goto(`${base}/echo`))!.text();
        expect(echoed, host).toBe('sec=1; __Host-h=1');
        expect((await context.cookies(base)).map((c) => [c.name, c.secure]).sort(), host).toEqual([
          ['__Host-h', true],
          ['sec', true],
        ]);
      } finally {
        await context.close();
        await new Promise<void>((r) => srv.close(() => r()));
      }
    }
  });

  it('completes the provider login form and lands on the relying party callback with a code', async () => {
    const flow = await startFlow();
    const { page } = await browser.newSession();
    await page.goto(flow.url.href);
    await submitProviderLogin(page, 'alice', 'whatever', (u) => u.href.startsWith(callback));
    const back = new URL(page.url());
    expect(back.searchParams.get('code')).toEqual(expect.any(String));
    expect(back.searchParams.get('state')).toBe(flow.state);
    expect(rpSeen.some((u) => u.startsWith('/cb?'))).toBe(true);
    const tokens = await exchange({ ...flow, back });
    expect(tokens.claims()).toMatchObject({ sub: ALICE.sub, groups: ALICE.groups });
  });
});
