/**
 * A real OpenID Provider for the end-to-end tests: panva's oidc-provider (v9) in this process on a
 * free loopback port, behind a relay that is the issuer the relying party is given. The relay
 * forwards every request untouched, except that a tamper mode rewrites the ID token of
 * token-endpoint answers, so each ID-token check of the relying party can be proven to fail.
 *
 * Also here: the provider's signing key and a foreign one (to sign logout tokens and re-sign ID
 * tokens as the provider or as an impostor), the back-channel logout deliveries the provider makes,
 * and a provider-side "end every session of this user" for tests that skip the logout page.
 *
 * oidc-provider 9 asks for Node 22 and prints a warning on Node 20; it runs.
 */
import { randomBytes } from 'node:crypto';
import { createServer, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type CryptoKey, decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair, type JWK, type JWTPayload, SignJWT } from 'jose';
import Provider, { type AdapterPayload, type Adapter as ProviderAdapter, type ProviderContext } from 'oidc-provider';

// ---------------------------------------------------------------------------------------------
// Options

export interface OidcClientSpec {
  client_id: string;
  client_secret: string;
  redirect_uris: string[];
  post_logout_redirect_uris?: string[];
  backchannel_logout_uri?: string;
  /** Default true: logout tokens then carry `sid`. */
  backchannel_logout_session_required?: boolean;
  /** Default client_secret_basic; oidc-provider accepts only the registered method. */
  token_endpoint_auth_method?: 'client_secret_basic' | 'client_secret_post';
}

/** An account's claims; any further key becomes a claim of the `profile` scope (nested objects too). */
export interface OidcAccountClaims {
  sub: string;
  email?: string;
  email_verified?: boolean;
  name?: string;
  groups?: string[];
  [claim: string]: unknown;
}

export interface StartOidcProviderOptions {
  clients: OidcClientSpec[];
  /** Login name (typed into the provider's form) -> claims. Any password is accepted. */
  accounts: Record<string, OidcAccountClaims>;
  /** Host name of the issuer URL (the relay). Default 127.0.0.1; `localhost` when the relying party runs on 127.0.0.1 and the cookie jars must stay apart. */
  host?: string;
  /** ID token lifetime in seconds (default 3600). */
  idTokenTtl?: number;
}

export type TamperMode = 'wrong_issuer' | 'wrong_audience' | 'extra_audience_no_azp' | 'expired' | 'nonce_mismatch' | 'alg_none' | 'other_key' | 'unknown_kid';

export const TAMPER_MODES: readonly TamperMode[] = [
  'wrong_issuer',
  'wrong_audience',
  'extra_audience_no_azp',
  'expired',
  'nonce_mismatch',
  'alg_none',
  'other_key',
  'unknown_kid',
];

export interface SigningKey {
  readonly kid: string;
  readonly privateKey: CryptoKey;
  /** The public JWK (with kid, alg RS256, use sig). */
  readonly publicJwk: JWK;
}

export interface SignOptions {
  /** Whose private key signs: the provider's (default) or the foreign one. */
  key?: 'provider' | 'foreign';
  /** The header kid; default the chosen key's own kid. */
  kid?: string;
  /** RS256 (default) or `none` (no signature: header.payload.). */
  alg?: 'RS256' | 'none';
  /** The header typ; default `logout+jwt` for logout tokens, none for other tokens. */
  typ?: string | null;
}

export interface BackchannelDelivery {
  readonly clientId: string;
  /** True when the client answered 200 or 204. */
  readonly ok: boolean;
  /** The client's status when it answered something else; undefined on success or a network error. */
  readonly status: number | undefined;
  readonly error: string | undefined;
  /** The provider's account id, which is the account's `sub` here. */
  readonly accountId: string;
  readonly sid: string;
  readonly at: number;
}

export interface RelayedRequest {
  readonly method: string;
  readonly path: string;
  readonly status: number;
  /** The tamper mode applied to this answer, when one was. */
  readonly tampered: TamperMode | null;
  /** The request's Authorization scheme (`basic` for client_secret_basic), or null without one. */
  readonly authorization: string | null;
}

export interface OidcProviderHarness {
  /** The issuer the relying party is given: the relay's URL (no trailing slash). */
  readonly issuer: string;
  /** The provider's own address, bypassing the relay (its pages still name the issuer). */
  readonly directUrl: string;
  readonly provider: Provider;
  readonly signingKey: SigningKey;
  readonly foreignKey: SigningKey;
  /** The public JWKS the provider publishes at <issuer>/jwks. */
  readonly jwks: { keys: JWK[] };
  readonly endpoints: { authorization: string; token: string; userinfo: string; jwks: string; endSession: string };
  /** What went through the relay, oldest first. */
  readonly relayed: readonly RelayedRequest[];
  /** Every back-channel logout delivery the provider made, oldest first. */
  readonly backchannelDeliveries: readonly BackchannelDelivery[];
  setTamper(mode: TamperMode | null): void;
  /** Signs claims as the provider (or an impostor) would; `claims` replace the defaults key by key. */
  signLogoutToken(claims?: JWTPayload, opts?: SignOptions & { clientId?: string }): Promise<string>;
  signJwt(payload: JWTPayload, opts?: SignOptions): Promise<string>;
  /**
   * The first delivery to `clientId` (for `sid`, when given) that no earlier call returned;
   * deliveries already made count. Rejects after `timeoutMs` (default 5000).
   */
  waitForBackchannel(clientId: string, opts?: { sid?: string; timeoutMs?: number }): Promise<BackchannelDelivery>;
  /**
   * Ends every provider session of the account with this sub the way an administrator's "sign
   * out everywhere" does: a back-channel logout to every client the session signed in to, then
   * the session and its grants are gone. Resolves with the deliveries made.
   */
  endSessionsOf(sub: string): Promise<BackchannelDelivery[]>;
  /** Provider sessions currently stored (for assertions). */
  sessions(): Array<{ id: string; accountId: string | undefined; clients: string[] }>;
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Keys and signing

export const PROVIDER_KID = 'harness-rs256-1';
export const FOREIGN_KID = 'foreign-rs256-1';
export const BACKCHANNEL_LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';

async function rsaKey(kid: string): Promise<SigningKey & { privateJwk: JWK }> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  const base = { kid, alg: 'RS256', use: 'sig' };
  return { kid, privateKey, publicJwk: { ...(await exportJWK(publicKey)), ...base }, privateJwk: { ...(await exportJWK(privateKey)), ...base } };
}

function b64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

async function sign(payload: JWTPayload, header: { kid: string; typ?: string | null }, key: SigningKey, alg: 'RS256' | 'none'): Promise<string> {
  const typ = header.typ ?? undefined;
  if (alg === 'none') return `${b64url({ alg: 'none', ...(typ ? { typ } : {}) })}.${b64url(payload)}.`;
  return new SignJWT(payload).setProtectedHeader({ alg: 'RS256', kid: header.kid, ...(typ ? { typ } : {}) }).sign(key.privateKey);
}

// ---------------------------------------------------------------------------------------------
// Storage the harness can look into (sessions for endSessionsOf)

type Stored = Map<string, { payload: AdapterPayload; expiresAt: number }>;

class MapAdapter implements ProviderAdapter {
  private readonly store: Stored;

  constructor(
    readonly name: string,
    all: Map<string, Stored>,
  ) {
    let s = all.get(name);
    if (!s) all.set(name, (s = new Map()));
    this.store = s;
  }

  private live(id: string): AdapterPayload | undefined {
    const e = this.store.get(id);
    if (!e) return undefined;
    if (e.expiresAt <= Date.now()) {
      this.store.delete(id);
      return undefined;
    }
    return e.payload;
  }

  async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
    this.store.set(id, { payload: structuredClone(payload), expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : Number.POSITIVE_INFINITY });
  }
  async find(id: string): Promise<AdapterPayload | undefined> {
    const p = this.live(id);
    return p && structuredClone(p);
  }
  async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
    for (const [id, e] of this.store) if (e.payload.userCode === userCode) return this.find(id);
    return undefined;
  }
  async findByUid(uid: string): Promise<AdapterPayload | undefined> {
    for (const [id, e] of this.store) if (e.payload.uid === uid) return this.find(id);
    return undefined;
  }
  async consume(id: string): Promise<void> {
    const e = this.store.get(id);
    if (e) e.payload.consumed = Math.floor(Date.now() / 1000);
  }
  async destroy(id: string): Promise<void> {
    this.store.delete(id);
  }
  async revokeByGrantId(grantId: string): Promise<void> {
    for (const [id, e] of this.store) if (e.payload.grantId === grantId) this.store.delete(id);
  }
}

// ---------------------------------------------------------------------------------------------

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((res, rej) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => res(Buffer.concat(chunks)));
    req.on('error', rej);
  });
}

/** An error with its cause (fetch's "fetch failed" says nothing without it). */
function describe(err: Error): string {
  return err.cause instanceof Error ? `${err.message}: ${err.cause.message}` : err.message;
}

function listen(server: Server, host: string): Promise<number> {
  return new Promise((res, rej) => {
    server.once('error', rej);
    server.listen(0, host, () => res((server.address() as AddressInfo).port));
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((res) => {
    server.close(() => res());
    server.closeAllConnections();
  });
}

/** Starts the provider and its relay; the caller closes them. */
export async function startOidcProvider(opts: StartOidcProviderOptions): Promise<OidcProviderHarness> {
  const host = opts.host ?? '127.0.0.1';
  const bindHost = host === 'localhost' ? '127.0.0.1' : host;
  const [signingKey, foreignKey] = await Promise.all([rsaKey(PROVIDER_KID), rsaKey(FOREIGN_KID)]);

  // The relay listens first: its address is the issuer the provider must be built with.
  const relay = createServer();
  const relayPort = await listen(relay, bindHost);
  const issuer = `http://${host}:${relayPort}`;

  const byLogin = new Map(Object.entries(opts.accounts));
  const bySub = new Map(Object.values(opts.accounts).map((c) => [c.sub, c]));
  const standard = new Set(['sub', 'email', 'email_verified', 'name', 'groups']);
  const extraClaims = [...new Set(Object.values(opts.accounts).flatMap((c) => Object.keys(c)))].filter((k) => !standard.has(k));

  const stores = new Map<string, Stored>();
  const provider = new Provider(issuer, {
    adapter: class extends MapAdapter {
      constructor(name: string) {
        super(name, stores);
      }
    },
    clients: opts.clients.map((c) => ({
      client_id: c.client_id,
      client_secret: c.client_secret,
      redirect_uris: c.redirect_uris,
      post_logout_redirect_uris: c.post_logout_redirect_uris ?? [],
      ...(c.backchannel_logout_uri
        ? { backchannel_logout_uri: c.backchannel_logout_uri, backchannel_logout_session_required: c.backchannel_logout_session_required ?? true }
        : {}),
      token_endpoint_auth_method: c.token_endpoint_auth_method ?? 'client_secret_basic',
      response_types: ['code'],
      grant_types: ['authorization_code'],
      id_token_signed_response_alg: 'RS256',
    })),
    // The account id is the sub, so logout tokens (which carry the account id) name the same sub
    // as the ID token; the login form's name is mapped to it in the interaction handler below.
    findAccount: (_ctx: unknown, id: string) => {
      const claims = bySub.get(id);
      return claims ? { accountId: id, claims: () => structuredClone(claims) } : undefined;
    },
    claims: {
      openid: ['sub'],
      profile: ['name', 'groups', ...extraClaims],
      email: ['email', 'email_verified'],
      groups: ['groups'],
    },
    scopes: ['openid', 'profile', 'email', 'groups'],
    // Every claim of the granted scopes in the ID token too, not only at userinfo.
    conformIdTokenClaims: false,
    // Consent is granted on the spot: a login is authorization request -> login form -> client.
    loadExistingGrant: async (ctx: ProviderContext) => {
      const { oidc } = ctx;
      const accountId = oidc.session.accountId;
      if (!accountId) return undefined;
      const grantId = oidc.result?.consent?.grantId ?? oidc.session.grantIdFor(oidc.client.clientId);
      const grant = (grantId && (await oidc.provider.Grant.find(grantId))) || new oidc.provider.Grant({ clientId: oidc.client.clientId, accountId });
      grant.addOIDCScope([...oidc.requestParamOIDCScopes].join(' '));
      if (oidc.requestParamClaims.size) grant.addOIDCClaims([...oidc.requestParamClaims]);
      await grant.save();
      return grant;
    },
    pkce: { required: () => true },
    features: {
      devInteractions: { enabled: true },
      rpInitiatedLogout: { enabled: true },
      backchannelLogout: { enabled: true },
      userinfo: { enabled: true },
      revocation: { enabled: false },
      introspection: { enabled: false },
    },
    // oidc-provider 9 refuses outgoing requests to special-use addresses (SSRF protection), and
    // loopback is one: back-channel logout to a test client on 127.0.0.1 needs the plain fetch.
    fetch: (url: string, init: RequestInit & { dispatcher?: unknown }) => globalThis.fetch(url, { ...init, dispatcher: undefined } as RequestInit),
    jwks: { keys: [signingKey.privateJwk] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    ttl: {
      AccessToken: 3600,
      AuthorizationCode: 60,
      IdToken: opts.idTokenTtl ?? 3600,
      Interaction: 600,
      Session: 3600,
      Grant: 3600,
    },
  });
  // A provider bug is otherwise only a 500 page in the middle of a redirect chain.
  provider.on('server_error', (_ctx: unknown, err: unknown) => console.error('oidc-provider server_error', err));

  const deliveries: BackchannelDelivery[] = [];
  const waiters: Array<() => void> = [];
  const record = (d: BackchannelDelivery) => {
    deliveries.push(d);
    for (const w of waiters.splice(0)) w();
  };
  provider.on('backchannel.success', (_ctx, client, accountId, sid) =>
    record({ clientId: client.clientId, ok: true, status: undefined, error: undefined, accountId, sid, at: Date.now() }),
  );
  provider.on('backchannel.error', (_ctx, err, client, accountId, sid) =>
    record({ clientId: client.clientId, ok: false, status: err.response?.status, error: describe(err), accountId, sid, at: Date.now() }),
  );

  // The provider's own server. The devInteractions form posts the login name; the handler in
  // front maps it to the account's sub (an unknown name ends the flow with access_denied).
  const handle = provider.callback();
  const op = createServer((req, res) => {
    if (req.method === 'POST' && /^\/interaction\/[^/?]+$/.test(req.url ?? '')) {
      void readBody(req)
        .then(async (buf) => {
          const form = Object.fromEntries(new URLSearchParams(buf.toString()));
          if (form['prompt'] !== 'login') {
            (req as IncomingMessage & { body?: Record<string, string> }).body = form;
            return handle(req, res);
          }
          const account = byLogin.get(form['login'] ?? '');
          const result = account
            ? { login: { accountId: account.sub } }
            : { error: 'access_denied', error_description: `unknown login ${JSON.stringify(form['login'] ?? '')}` };
          await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
        })
        .catch((err: unknown) => {
          if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain' });
          res.end(`harness interaction handler: ${String(err)}`);
        });
      return;
    }
    handle(req, res);
  });
  const opPort = await listen(op, bindHost);

  // ---- the relay
  let tamper: TamperMode | null = null;
  const relayed: RelayedRequest[] = [];
  const tokenPath = '/token';

  const tamperIdToken = async (idToken: string, mode: TamperMode): Promise<string> => {
    const payload = decodeJwt(idToken);
    const header = decodeProtectedHeader(idToken);
    const now = Math.floor(Date.now() / 1000);
    const clientId = Array.isArray(payload.aud) ? payload.aud[0]! : payload.aud!;
    const resign = (p: JWTPayload, key: SigningKey = signingKey, kid = signingKey.kid) => sign(p, { kid, typ: header.typ ?? null }, key, 'RS256');
    switch (mode) {
      case 'wrong_issuer':
        return resign({ ...payload, iss: `${issuer}/not-the-issuer` });
      case 'wrong_audience':
        return resign({ ...payload, aud: 'another-client' });
      case 'extra_audience_no_azp': {
        const { azp: _azp, ...rest } = payload;
        return resign({ ...rest, aud: [clientId, 'another-client'] });
      }
      case 'expired':
        return resign({ ...payload, iat: now - 7200, exp: now - 3600 });
      case 'nonce_mismatch':
        return resign({ ...payload, nonce: `tampered-${randomBytes(6).toString('hex')}` });
      case 'alg_none':
        return sign(payload, { kid: signingKey.kid }, signingKey, 'none');
      case 'other_key':
        return resign(payload, foreignKey, signingKey.kid);
      case 'unknown_kid':
        return resign(payload, foreignKey, foreignKey.kid);
    }
  };

  const relayRequest = (req: IncomingMessage, res: ServerResponse) => {
    const path = req.url ?? '/';
    const authorization = req.headers.authorization?.split(' ')[0]?.toLowerCase() ?? null;
    const headers: IncomingHttpHeaders = { ...req.headers };
    delete headers['connection'];
    delete headers['keep-alive'];
    const up = httpRequest({ host: bindHost, port: opPort, method: req.method, path, headers }, (upRes) => {
      const outHeaders: IncomingHttpHeaders = { ...upRes.headers };
      delete outHeaders['connection'];
      delete outHeaders['keep-alive'];
      const mode = tamper;
      const isToken = req.method === 'POST' && path.split('?')[0] === tokenPath && upRes.statusCode === 200;
      if (!mode || !isToken) {
        relayed.push({ method: req.method ?? 'GET', path, status: upRes.statusCode ?? 0, tampered: null, authorization });
        res.writeHead(upRes.statusCode ?? 502, outHeaders);
        upRes.pipe(res);
        return;
      }
      void readBody(upRes)
        .then(async (buf) => {
          const json = JSON.parse(buf.toString()) as Record<string, unknown>;
          if (typeof json['id_token'] === 'string') json['id_token'] = await tamperIdToken(json['id_token'], mode);
          const body = Buffer.from(JSON.stringify(json));
          delete outHeaders['transfer-encoding'];
          delete outHeaders['etag'];
          outHeaders['content-length'] = String(body.length);
          relayed.push({ method: 'POST', path, status: upRes.statusCode ?? 0, tampered: mode, authorization });
          res.writeHead(upRes.statusCode ?? 502, outHeaders);
          res.end(body);
        })
        .catch((err: unknown) => {
          res.writeHead(502, { 'Content-Type': 'text/plain' });
          res.end(`relay could not tamper: ${String(err)}`);
        });
    });
    up.on('error', (err) => {
      relayed.push({ method: req.method ?? 'GET', path, status: 502, tampered: null, authorization });
      if (!res.headersSent) res.writeHead(502, { 'Content-Type': 'text/plain' });
      res.end(`relay: ${err.message}`);
    });
    req.pipe(up);
  };
  relay.on('request', relayRequest);
  // `localhost` may resolve to ::1 first (the relying party's resolver decides): answer there too.
  const relay6 = host === 'localhost' ? createServer(relayRequest) : null;
  if (relay6) await new Promise<void>((r) => relay6.once('error', () => r()).listen(relayPort, '::1', () => r()));

  const jwks = { keys: [signingKey.publicJwk] };
  const signJwt = (payload: JWTPayload, o: SignOptions = {}) => {
    const key = o.key === 'foreign' ? foreignKey : signingKey;
    return sign(payload, { kid: o.kid ?? key.kid, typ: o.typ ?? null }, key, o.alg ?? 'RS256');
  };
  const returned = new Set<number>();

  const harness: OidcProviderHarness = {
    issuer,
    directUrl: `http://${bindHost}:${opPort}`,
    provider,
    signingKey: { kid: signingKey.kid, privateKey: signingKey.privateKey, publicJwk: signingKey.publicJwk },
    foreignKey: { kid: foreignKey.kid, privateKey: foreignKey.privateKey, publicJwk: foreignKey.publicJwk },
    jwks,
    endpoints: {
      authorization: `${issuer}/auth`,
      token: `${issuer}${tokenPath}`,
      userinfo: `${issuer}/me`,
      jwks: `${issuer}/jwks`,
      endSession: `${issuer}/session/end`,
    },
    relayed,
    backchannelDeliveries: deliveries,
    setTamper(mode) {
      if (mode !== null && !TAMPER_MODES.includes(mode)) throw new Error(`unknown tamper mode ${String(mode)}`);
      tamper = mode;
    },
    signJwt,
    signLogoutToken(claims = {}, o = {}) {
      const now = Math.floor(Date.now() / 1000);
      const payload: JWTPayload = {
        iss: issuer,
        aud: o.clientId ?? opts.clients[0]?.client_id ?? 'client',
        iat: now,
        exp: now + 120,
        jti: randomBytes(12).toString('base64url'),
        events: { [BACKCHANNEL_LOGOUT_EVENT]: {} },
        ...claims,
      };
      return signJwt(payload, { ...o, typ: o.typ === undefined ? 'logout+jwt' : o.typ });
    },
    waitForBackchannel(clientId, o = {}) {
      const timeoutMs = o.timeoutMs ?? 5000;
      return new Promise((resolve, reject) => {
        const check = (): boolean => {
          const i = deliveries.findIndex((d, n) => !returned.has(n) && d.clientId === clientId && (o.sid === undefined || d.sid === o.sid));
          if (i < 0) return false;
          returned.add(i);
          resolve(deliveries[i]!);
          return true;
        };
        if (check()) return;
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(onDelivery), 1);
          reject(
            new Error(
              `no back-channel logout delivery to ${clientId}${o.sid ? ` for sid ${o.sid}` : ''} within ${timeoutMs} ms (deliveries: ${JSON.stringify(deliveries)})`,
            ),
          );
        }, timeoutMs);
        const onDelivery = () => {
          if (check()) clearTimeout(timer);
          else waiters.push(onDelivery);
        };
        waiters.push(onDelivery);
      });
    },
    async endSessionsOf(sub) {
      const sessionStore: Stored = stores.get('Session') ?? new Map();
      const made: BackchannelDelivery[] = [];
      for (const [id, { payload }] of [...sessionStore]) {
        if (payload.accountId !== sub) continue;
        for (const [clientId, auth] of Object.entries(payload.authorizations ?? {})) {
          const client = await provider.Client.find(clientId);
          if (client?.backchannelLogoutUri) {
            const d = await client.backchannelLogout(sub, auth.sid ?? '').then(
              () => ({ ok: true, status: undefined, error: undefined }),
              (err: Error & { response?: { status: number } }) => ({ ok: false, status: err.response?.status, error: describe(err) }),
            );
            const delivery: BackchannelDelivery = { clientId, accountId: sub, sid: auth.sid ?? '', at: Date.now(), ...d };
            record(delivery);
            made.push(delivery);
          }
          if (auth.grantId) await stores.get('Grant')?.delete(auth.grantId);
        }
        sessionStore.delete(id);
      }
      return made;
    },
    sessions() {
      return [...(stores.get('Session') ?? (new Map() as Stored))].map(([id, { payload }]) => ({
        id,
        accountId: payload.accountId,
        clients: Object.keys(payload.authorizations ?? {}),
      }));
    },
    async close() {
      await Promise.all([closeServer(relay), closeServer(op), ...(relay6?.listening ? [closeServer(relay6)] : [])]);
    },
  };
  return harness;
}

/** A back-channel logout endpoint for a test client: records each POSTed logout_token. */
export interface LogoutReceiver {
  readonly url: string;
  readonly received: ReadonlyArray<{ logoutToken: string; contentType: string | undefined; at: number }>;
  /** The status answered (default 200). */
  status: number;
  /**
   * The first token received (whose `sid` claim is `sid`, when given) that no earlier call
   * returned; tokens already received count. Rejects after `timeoutMs` (default 5000).
   */
  next(opts?: { sid?: string; timeoutMs?: number }): Promise<string>;
  close(): Promise<void>;
}

export async function startLogoutReceiver(path = '/backchannel-logout'): Promise<LogoutReceiver> {
  const received: Array<{ logoutToken: string; contentType: string | undefined; at: number }> = [];
  const returned = new Set<number>();
  const waiters: Array<() => void> = [];
  const sidOf = (token: string): unknown => {
    try {
      return decodeJwt(token)['sid'];
    } catch {
      return undefined;
    }
  };
  const server = createServer((req, res) => {
    void readBody(req).then((buf) => {
      if (req.method === 'POST' && (req.url ?? '').split('?')[0] === path) {
        const token = new URLSearchParams(buf.toString()).get('logout_token') ?? '';
        received.push({ logoutToken: token, contentType: req.headers['content-type'], at: Date.now() });
        for (const w of waiters.splice(0)) w();
        res.writeHead(receiver.status, { 'Cache-Control': 'no-store', 'Content-Length': '0' });
      } else res.writeHead(404, { 'Content-Length': '0' });
      res.end();
    });
  });
  const port = await listen(server, '127.0.0.1');
  const receiver: LogoutReceiver = {
    url: `http://127.0.0.1:${port}${path}`,
    received,
    status: 200,
    next(o = {}) {
      const timeoutMs = o.timeoutMs ?? 5000;
      return new Promise((resolve, reject) => {
        const take = (): boolean => {
          const i = received.findIndex((r, n) => !returned.has(n) && (o.sid === undefined || sidOf(r.logoutToken) === o.sid));
          if (i < 0) return false;
          returned.add(i);
          resolve(received[i]!.logoutToken);
          return true;
        };
        if (take()) return;
        const timer = setTimeout(
          () => reject(new Error(`no logout token${o.sid ? ` for sid ${o.sid}` : ''} at ${receiver.url} within ${timeoutMs} ms`)),
          timeoutMs,
        );
        const again = () => (take() ? clearTimeout(timer) : waiters.push(again));
        waiters.push(again);
      });
    },
    close: () => closeServer(server),
  };
  return receiver;
}
