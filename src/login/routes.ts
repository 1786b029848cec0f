/**
 * The built-in OpenID Connect login on the HTTP port:
 *   GET  /~login?rd=                    starts a flow (code + PKCE S256, state, nonce)
 *   GET  /~login/callback               ends it: checks, exchanges, validates, creates the session
 *   GET  /~logout?rd= (and POST)        ends the session and sends the browser to the provider's logout
 *   POST /~login/backchannel-logout     OpenID Connect Back-Channel Logout 1.0
 * Sessions begin through the same startSession as POST /~session (a fresh ID, never a
 * presented one) and end through the same store operations as every logout, so every replica
 * hears of it through the invalidation channel.
 */
import { createHash } from 'node:crypto';
import express, { type Request, type Response, type Router } from 'express';
import * as jose from 'jose';
import * as client from 'openid-client';
import { endPresentedSessions } from '../api/logout.js';
import { startSession } from '../api/start-session.js';
import { firstValue } from '../core/header-values.js';
import type { Policy } from '../core/policy.js';
import type { Logger } from '../ops/logger.js';
import type { Metrics } from '../ops/metrics.js';
import type { OneTimeValues, SessionOperations } from '../store/types.js';
import { mapClaims } from './claims.js';
import { type FlowCookies, startFlow, takeFlow } from './flow.js';
import { describeProviderError, isOutage, type Provider } from './provider.js';
import type { LoginReason } from './reasons.js';

export interface LoginDeps {
  readonly provider: Provider;
  readonly policy: () => Policy;
  readonly store: SessionOperations & OneTimeValues;
  readonly clock: () => number;
  readonly log: Logger;
  readonly metrics?: Pick<Metrics, 'sessionCreated' | 'sessionsDestroyed' | 'login'> | undefined;
}

const BACKCHANNEL_EVENT = 'http://schemas.openid.net/event/backchannel-logout';
/** How old a logout token may be (by its iat), and how long its jti is remembered (longer). */
const LOGOUT_TOKEN_MAX_AGE_S = 600;
const CLOCK_TOLERANCE_S = 60;
const HOST = /^(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.?|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$/;

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!);

const REASON_TEXT: Record<LoginReason, string> = {
  invalid_host: 'The request named no usable host.',
  provider_error: 'The identity provider refused the login.',
  flow_not_found: 'This login is unknown, used already or expired (logins last 10 minutes). Start again.',
  state_mismatch: 'This answer does not belong to a login this browser started.',
  code_exchange_failed: 'The identity provider did not accept the authorization code.',
  id_token_invalid: 'The identity provider sent an ID token that failed validation.',
  userinfo_failed: "The identity provider's user information could not be read.",
  claims_invalid: 'The identity provider sent no usable user ID.',
  role_not_allowed: 'Your account has none of the roles this site requires.',
  store_unavailable: 'Sessions cannot be stored right now. Try again shortly.',
  provider_unavailable: 'The identity provider cannot be reached right now. Try again shortly.',
};

/** A small page for the browser, the reason in an element and in a header (for scripts and logs). */
function page(res: Response, status: number, reason: LoginReason, extra: string[] = []): void {
  const title = status === 403 ? 'Access denied' : 'Login failed';
  res
    .status(status)
    .set({
      'Content-Type': 'text/html; charset=utf-8',
      'Cache-Control': 'no-store',
      'Content-Security-Policy': "default-src 'none'",
      'X-Sessiongate-Reason': reason,
    })
    .append('Set-Cookie', extra)
    .send(
      `<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>${title}</title></head>\n<body>\n<h1>${title}</h1>\n<p>${escapeHtml(REASON_TEXT[reason])}</p>\n<p>Reason: <code id="reason">${reason}</code></p>\n<p><a href="/~login">Log in again</a></p>\n</body></html>\n`,
    );
}

/** `<proto>://<host>` of the request as the proxy passed it (Host, X-Forwarded-Proto); undefined when the Host is unusable. */
export function requestOrigin(req: Request): string | undefined {
  const host = req.headers.host;
  if (host === undefined || !HOST.test(host)) return undefined;
  const proto = firstValue(req.headers['x-forwarded-proto'])?.split(',')[0]?.trim().toLowerCase();
  return `${proto === 'http' ? 'http' : 'https'}://${host}`;
}

/** Where the ID token failed, by openid-client's error: the provider's outage, its refusal, or a bad token. */
function exchangeReason(err: unknown): LoginReason {
  if (isOutage(err)) return 'provider_unavailable';
  if (err instanceof client.ResponseBodyError) return 'code_exchange_failed';
  // A 4xx from the token endpoint without an OAuth error body: a refusal all the same.
  if ((err as { code?: string }).code === 'OAUTH_RESPONSE_IS_NOT_CONFORM') return 'code_exchange_failed';
  if (err instanceof client.AuthorizationResponseError) return 'provider_error';
  return 'id_token_invalid';
}

const sha = (s: string) => createHash('sha256').update(s).digest('base64url');

export function createLoginRoutes(deps: LoginDeps): Router {
  const { provider, store, clock, log, metrics } = deps;
  const s = provider.settings;
  const router = express.Router();
  const flowCookies = (policy: Policy): FlowCookies => ({ baseName: policy.cookies.name, secure: policy.cookies.secure, domain: policy.cookies.domain });
  const requestId = (req: Request) => firstValue(req.headers['x-request-id']);

  router.get('/~login', async (req, res) => {
    const policy = deps.policy();
    const origin = requestOrigin(req);
    if (origin === undefined) return page(res, 400, 'invalid_host');
    const rdRaw = req.query['rd'];
    // An unsafe rd is dropped (the login still works, and lands on /).
    const rd = (typeof rdRaw === 'string' ? policy.redirects.safeTarget(rdRaw, req.headers.host) : undefined) ?? '/';
    let discovered: Awaited<ReturnType<Provider['current']>>;
    try {
      discovered = await provider.current();
    } catch (err) {
      log.warn({ msg: 'login not started', reason: 'provider_unavailable', provider: provider.name, err: (err as Error).message, request_id: requestId(req) });
      return page(res, 503, 'provider_unavailable');
    }
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    const redirectUri = s.redirectUrl ?? `${origin}/~login/callback`;
    let setCookie: string;
    try {
      ({ setCookie } = await startFlow(store, flowCookies(policy), {
        provider: provider.name,
        state,
        nonce,
        verifier,
        rd,
        redirectUri,
        createdAt: clock(),
      }));
    } catch (err) {
      log.warn({ msg: 'login not started', reason: 'store_unavailable', err: (err as Error).message, request_id: requestId(req) });
      return page(res, 503, 'store_unavailable');
    }
    const url = client.buildAuthorizationUrl(discovered.config, {
      // The operator's extras first (prompt, login_hint, hd, acr_values…): sessiongate's own
      // parameters below can never be overridden (the schema refuses those names too).
      ...s.authParams,
      redirect_uri: redirectUri,
      scope: s.scopes.join(' '),
      response_type: 'code',
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    });
    res.status(302).set({ 'Cache-Control': 'no-store', Location: url.href }).append('Set-Cookie', setCookie).end();
  });

  router.get('/~login/callback', async (req, res) => {
    const policy = deps.policy();
    const cookies = flowCookies(policy);
    const state = typeof req.query['state'] === 'string' ? req.query['state'] : '';
    const fail = (status: number, reason: LoginReason, detail: Record<string, unknown> = {}, extra: string[] = []) => {
      log.warn({ msg: 'login refused', reason, provider: provider.name, request_id: requestId(req), ...detail });
      metrics?.login(reason);
      page(res, status, reason, extra);
    };
    let taken: Awaited<ReturnType<typeof takeFlow>>;
    try {
      taken = await takeFlow(store, cookies, req.headers.cookie, state);
    } catch (err) {
      return fail(503, 'store_unavailable', { err: (err as Error).message });
    }
    if (!taken.ok) return fail(400, taken.reason);
    const { flow, clearCookie } = taken;
    if (flow.provider !== provider.name) return fail(400, 'flow_not_found', {}, [clearCookie]);
    const providerError = req.query['error'];
    if (typeof providerError === 'string') {
      // The provider's own code only (a short token), never its free text.
      return fail(400, 'provider_error', { error: /^[A-Za-z0-9_.-]{1,64}$/.test(providerError) ? providerError : 'invalid' }, [clearCookie]);
    }
    const query = req.originalUrl.indexOf('?');
    const currentUrl = new URL(flow.redirectUri);
    currentUrl.search = query >= 0 ? req.originalUrl.slice(query) : '';

    let tokens: Awaited<ReturnType<typeof client.authorizationCodeGrant>>;
    let discovered: ReturnType<Provider['last']>;
    try {
      discovered = provider.last();
      tokens = await client.authorizationCodeGrant(discovered.config, currentUrl, {
        pkceCodeVerifier: flow.verifier,
        expectedState: flow.state,
        expectedNonce: flow.nonce,
        idTokenExpected: true,
      });
    } catch (err) {
      const reason = exchangeReason(err);
      return fail(reason === 'provider_unavailable' ? 503 : 400, reason, { err: describeProviderError(err) }, [clearCookie]);
    }
    const idClaims = tokens.claims();
    if (!idClaims || tokens.id_token === undefined) return fail(400, 'id_token_invalid', { err: 'no ID token' }, [clearCookie]);
    // openid-client checks azp only when aud has several values; an azp naming another party is refused always.
    if (idClaims['azp'] !== undefined && idClaims['azp'] !== s.clientId)
      return fail(400, 'id_token_invalid', { err: 'azp names another client' }, [clearCookie]);
    let claims: Record<string, unknown> = { ...idClaims };
    if (s.userinfo && discovered.hasUserinfo && tokens.access_token) {
      try {
        const info = await client.fetchUserInfo(discovered.config, tokens.access_token, idClaims.sub);
        // The ID token's claims win where both name one.
        claims = { ...info, ...idClaims };
      } catch (err) {
        const outage = isOutage(err);
        return fail(outage ? 503 : 400, outage ? 'provider_unavailable' : 'userinfo_failed', { err: describeProviderError(err) }, [clearCookie]);
      }
    }
    const mapped = mapClaims(claims, s.claims);
    if (!mapped.ok) return fail(400, 'claims_invalid', { problem: mapped.problem }, [clearCookie]);
    if (mapped.droppedRoles > 0) log.info({ msg: 'roles dropped at login: not role names', count: mapped.droppedRoles, user_id: mapped.userId });
    if (s.allowedRoles.length > 0 && !mapped.roles.some((r) => s.allowedRoles.includes(r)))
      return fail(403, 'role_not_allowed', { user_id: mapped.userId }, [clearCookie]);
    const sid = typeof idClaims['sid'] === 'string' ? idClaims['sid'] : undefined;
    const started = await startSession(
      deps,
      policy,
      {
        user_id: mapped.userId,
        roles: mapped.roles,
        attributes: mapped.attributes,
        login: { provider: provider.name, sub: idClaims.sub, ...(sid !== undefined ? { sid } : {}), id_token: tokens.id_token },
      },
      'oidc',
    );
    if (!started) return fail(503, 'store_unavailable', {}, [clearCookie]);
    metrics?.login('ok');
    res.status(302).set({ 'Cache-Control': 'no-store', Location: flow.rd }).append('Set-Cookie', [started.setCookie, clearCookie]).end();
  });

  /** Logout: end what the request presents, then the provider's session (RP-initiated logout) when this provider made it. */
  const logout = async (req: Request, res: Response) => {
    const policy = deps.policy();
    const origin = requestOrigin(req);
    // An unsafe rd is dropped, not refused: a logout link must log out, whatever it carries.
    const rdRaw = req.query['rd'];
    const rd = (typeof rdRaw === 'string' ? policy.redirects.safeTarget(rdRaw, req.headers.host) : undefined) ?? '/';
    const result = await endPresentedSessions(store, policy, req.headers);
    if (!result.ok && result.error === 'api_token')
      return void res.status(400).set('Cache-Control', 'no-store').json({ error: 'api_token', detail: 'a logout does not revoke API tokens' });
    if (!result.ok) {
      log.warn({ msg: 'session destroy failed', reason: 'store_unavailable', err: (result.cause as Error).message });
      return void res.status(503).set('Cache-Control', 'no-store').json({ error: 'store_unavailable' });
    }
    if (result.ended > 0) {
      log.info({
        msg: 'session destroyed',
        user_id: result.users.length > 1 ? result.users : result.users[0],
        request_id: requestId(req),
        sessions: result.ended,
      });
      metrics?.sessionsDestroyed('logout', result.ended);
    }
    let location = rd;
    const mine = result.origins.find((o) => o.provider === provider.name && o.id_token !== undefined);
    const endpoint = provider.last().endSessionEndpoint;
    if (mine && endpoint !== undefined) {
      const back = s.postLogoutRedirectUrl ?? (rd.startsWith('/') ? (origin === undefined ? undefined : `${origin}${rd}`) : rd);
      const params: Record<string, string> = { id_token_hint: mine.id_token!, client_id: s.clientId };
      if (back !== undefined) params['post_logout_redirect_uri'] = back;
      location = client.buildEndSessionUrl(provider.last().config, params).href;
    }
    res.status(302).set({ 'Cache-Control': 'no-store', Location: location }).append('Set-Cookie', policy.cookies.clear()).end();
  };
  router.get('/~logout', logout);
  router.post('/~logout', logout);

  router.post('/~login/backchannel-logout', express.urlencoded({ extended: false, limit: '16kb' }), async (req, res) => {
    const refuse = (status: number, description: string, detail: Record<string, unknown> = {}) => {
      log.warn({ msg: 'back-channel logout refused', provider: provider.name, reason: description, ...detail });
      res
        .status(status)
        .set('Cache-Control', 'no-store')
        .json({ error: status === 503 ? 'temporarily_unavailable' : 'invalid_request', error_description: description });
    };
    const token = (req.body as Record<string, unknown> | undefined)?.['logout_token'];
    if (typeof token !== 'string' || token.length > 8192) return refuse(400, 'logout_token_invalid', { err: 'no logout_token' });
    const discovered = provider.last();
    let payload: jose.JWTPayload;
    try {
      ({ payload } = await jose.jwtVerify(token, discovered.jwks, {
        issuer: discovered.issuer,
        audience: s.clientId,
        algorithms: [...s.idTokenAlgorithms],
        maxTokenAge: LOGOUT_TOKEN_MAX_AGE_S,
        clockTolerance: CLOCK_TOLERANCE_S,
        requiredClaims: ['iat', 'jti'],
      }));
    } catch (err) {
      const e = err as { code?: string; message?: string };
      if (e.code === 'ERR_JWKS_TIMEOUT' || err instanceof TypeError) return refuse(503, 'provider_unavailable', { err: e.message });
      return refuse(400, 'logout_token_invalid', { err: e.code ?? e.message });
    }
    // OpenID Connect Back-Channel Logout 1.0, section 2.6: the event, no nonce, a sid or a sub.
    const events = payload['events'];
    const event = events !== null && typeof events === 'object' ? (events as Record<string, unknown>)[BACKCHANNEL_EVENT] : undefined;
    if (event === null || typeof event !== 'object' || Array.isArray(event))
      return refuse(400, 'logout_token_invalid', { err: 'no back-channel logout event' });
    if (payload['nonce'] !== undefined) return refuse(400, 'logout_token_invalid', { err: 'carries a nonce' });
    const sid = typeof payload['sid'] === 'string' && payload['sid'] !== '' ? payload['sid'] : undefined;
    const sub = typeof payload.sub === 'string' && payload.sub !== '' ? payload.sub : undefined;
    if (sid === undefined && sub === undefined) return refuse(400, 'logout_token_invalid', { err: 'neither sid nor sub' });
    if (typeof payload.jti !== 'string' || payload.jti === '') return refuse(400, 'logout_token_invalid', { err: 'no jti' });
    const policy = deps.policy();
    const jtiKey = `bcl:${sha(`${provider.name}\u0000${payload.jti}`)}`;
    let removed: string[];
    try {
      // Claimed before anything ends: of two deliveries of one token, one acts.
      if (!(await store.onceClaim(jtiKey, (LOGOUT_TOKEN_MAX_AGE_S + 2 * CLOCK_TOLERANCE_S) * 1000))) return refuse(400, 'logout_token_replayed');
    } catch (err) {
      return refuse(503, 'store_unavailable', { err: (err as Error).message });
    }
    try {
      // A sid names one provider session; without one, every session of the subject ends.
      removed = await store.destroyUser(
        sid !== undefined ? policy.userRefs.allLinks(provider.name, 'sid', sid) : policy.userRefs.allLinks(provider.name, 'sub', sub!),
      );
    } catch (err) {
      // Unfinished: give the jti back, so the provider's retry is not refused as a replay.
      await store.onceTake(jtiKey).catch(() => {});
      return refuse(503, 'store_unavailable', { err: (err as Error).message });
    }
    log.info({ msg: 'back-channel logout', provider: provider.name, by: sid !== undefined ? 'sid' : 'sub', sessions: removed.length });
    if (removed.length > 0) metrics?.sessionsDestroyed('backchannel', removed.length);
    res.status(200).set('Cache-Control', 'no-store').end();
  });

  return router;
}
