/**
 * The session API on the HTTP port, `/~session`:
 *   POST   creates a session for a trusted login service (login token, constant-time compare);
 *   DELETE ends every session the request presents and clears the cookie (idempotent);
 *   GET    shows the caller's session's public fields.
 * Session data is checked at creation: no control characters and no lone surrogates anywhere,
 * bounded size and depth, so nothing a login service sends can later inject into a header or
 * fail to become one.
 */
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { z } from 'zod';
import { lookupSession } from '../core/check.js';
import { readCredential } from '../core/credential.js';
import { resolveSession } from '../core/decide.js';
import { firstValue } from '../core/header-values.js';
import type { Policy } from '../core/policy.js';
import type { Logger } from '../ops/logger.js';
import type { Metrics } from '../ops/metrics.js';
import { rolesField, userIdField } from '../session/identity.js';
import type { SessionRecord } from '../session/record.js';
import { textProblem } from '../session/record.js';
import type { SessionOperations } from '../store/types.js';
import { createLoginTokenCheck } from './login-token.js';
import { endPresentedSessions } from './logout.js';
import { startSession } from './start-session.js';

export interface SessionApiDeps {
  readonly policy: () => Policy;
  readonly store: SessionOperations;
  readonly clock: () => number;
  /** The current login token (a getter: a reload may change it); null disables creation. */
  readonly loginToken: () => Buffer | null;
  readonly log: Logger;
  readonly metrics?: Pick<Metrics, 'sessionCreated' | 'sessionsDestroyed'> | undefined;
  /** GET /~session/dev (development login); only ever true on a loopback-bound service. */
  readonly devLogin?: () => boolean;
}

/** What to do when POST /~session is disabled (also said at start-up). */
export const NO_LOGIN_TOKEN =
  'no login token is configured: a login service creates sessions with one (set SESSIONGATE_LOGIN_TOKEN or SESSIONGATE_LOGIN_TOKEN_FILE); to try sessiongate without one, run npm run demo, or set dev_login: true on a loopback address and log in at GET /~session/dev';

const MAX_DEPTH = 5;
const MAX_KEYS = 256;

/** Problems with attribute values: control characters, lone surrogates, depth, size. Empty when fine. */
export function attributeProblems(value: unknown, path = 'attributes', depth = 0, budget = { keys: MAX_KEYS }): string[] {
  if (typeof value === 'string') {
    const p = textProblem(value);
    return p === undefined ? [] : [`${path}: ${p}`];
  }
  if (value === null || typeof value === 'number' || typeof value === 'boolean') return [];
  if (depth >= MAX_DEPTH) return [`${path}: nested deeper than ${MAX_DEPTH} levels`];
  const out: string[] = [];
  const entries = Array.isArray(value) ? value.map((v, i) => [`[${i}]`, v] as const) : Object.entries(value as object).map(([k, v]) => [`.${k}`, v] as const);
  for (const [k, v] of entries) {
    if (--budget.keys < 0) return [`${path}: more than ${MAX_KEYS} values`];
    const keyProblem = Array.isArray(value) ? undefined : textProblem(k);
    if (keyProblem !== undefined) out.push(`${path}: in a key: ${keyProblem}`);
    out.push(...attributeProblems(v, path + k, depth + 1, budget));
    if (out.length > 10) break;
  }
  return out;
}

const createBody = z.strictObject({
  user_id: userIdField,
  roles: rolesField,
  attributes: z.record(z.string(), z.unknown(), { error: 'must be an object' }).default({}),
});

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function publicView(r: SessionRecord) {
  return {
    user_id: r.user_id,
    roles: r.roles,
    attributes: r.attributes,
    created_at: iso(r.created_at),
    expires_at: iso(r.expires_at),
    idle_expires_at: iso(r.idle_expires_at),
  };
}

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!);

/** The development login's form: a user, roles, and the (already checked) place to go back to. */
function devLoginForm(rd: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>sessiongate: development login</title></head>
<body>
<h1>Development login</h1>
<p>Anyone can log in here as anyone (<code>dev_login: true</code>): a try-out only, never in production.</p>
<form method="get" action="/~session/dev">
<p><label>User <input name="user" required autofocus></label></p>
<p><label>Roles <input name="roles" placeholder="admin,ops"></label> (comma-separated, optional)</p>
<input type="hidden" name="rd" value="${escapeHtml(rd)}">
<p><button type="submit">Log in</button></p>
</form>
</body></html>
`;
}

function problem(res: Response, status: number, error: string, extra: Record<string, unknown> = {}): void {
  res
    .status(status)
    .set('Cache-Control', 'no-store')
    .json({ error, ...extra });
}

export function createSessionApi(deps: SessionApiDeps): Router {
  const { store, clock, log, metrics } = deps;
  const router = express.Router();
  const login = createLoginTokenCheck(deps.loginToken);
  /** The login service's calls: 403 without a configured login token, 401 without the right one. */
  const loginService = (req: Request, res: Response, next: NextFunction) => {
    if (!login.configured()) return problem(res, 403, 'session_creation_disabled', { detail: NO_LOGIN_TOKEN });
    if (!login.ok(req.headers)) {
      res.set('WWW-Authenticate', 'Bearer realm="sessiongate-login"');
      return problem(res, 401, 'invalid_login_token');
    }
    next();
  };

  router.post('/~session', loginService);
  router.post('/~session', express.json({ limit: '16kb', strict: true }), async (req, res) => {
    if (!req.is('application/json')) return problem(res, 415, 'unsupported_media_type', { detail: 'send application/json' });
    const parsed = createBody.safeParse(req.body);
    if (!parsed.success) {
      const problems = parsed.error.issues.flatMap((i) =>
        i.code === 'unrecognized_keys' ? i.keys.map((k) => `${k}: unknown field`) : [`${i.path.join('.') || 'body'}: ${i.message}`],
      );
      return problem(res, 400, 'invalid_body', { problems });
    }
    const attrProblems = attributeProblems(parsed.data.attributes);
    if (attrProblems.length > 0) return problem(res, 400, 'invalid_body', { problems: attrProblems });

    const started = await startSession(deps, deps.policy(), parsed.data, 'api');
    if (!started) return problem(res, 503, 'store_unavailable');
    const { record, setCookie } = started;
    res
      .status(201)
      .set('Cache-Control', 'no-store')
      .append('Set-Cookie', setCookie)
      .json({ user_id: record.user_id, expires_at: iso(record.expires_at), idle_expires_at: iso(record.idle_expires_at) });
  });

  // Development login: `GET /~session/dev?user=alice&roles=admin,ops&rd=/app` creates a session
  // without the login service and sends the browser back; without `user`, a form asking for one.
  // Off unless `dev_login: true`, which start-up refuses on anything but a loopback address.
  router.get('/~session/dev', async (req, res) => {
    if (!deps.devLogin?.()) return void res.status(404).set('Content-Length', '0').end();
    const policy = deps.policy();
    const q = req.query;
    const rd = typeof q['rd'] === 'string' ? q['rd'] : '/';
    // The Host the proxy passed on (the shipped endpoints.conf passes the client's, port included).
    const target = policy.redirects.safeTarget(rd, req.headers.host);
    if (target === undefined) return problem(res, 400, 'invalid_redirect');
    if (q['user'] === undefined) {
      return void res
        .status(200)
        .set({ 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store', 'Content-Security-Policy': "default-src 'none'; form-action 'self'" })
        .send(devLoginForm(target));
    }
    const user = typeof q['user'] === 'string' ? q['user'] : '';
    const roles =
      typeof q['roles'] === 'string' && q['roles'] !== ''
        ? q['roles']
            .split(',')
            .map((r) => r.trim())
            .filter((r) => r !== '')
        : [];
    const parsed = createBody.safeParse({ user_id: user, roles });
    if (!parsed.success)
      return problem(res, 400, 'invalid_query', { problems: parsed.error.issues.map((i) => `${i.path.join('.').replace('user_id', 'user')}: ${i.message}`) });
    const started = await startSession(deps, policy, parsed.data, 'dev');
    if (!started) return problem(res, 503, 'store_unavailable');
    res.status(302).set({ 'Cache-Control': 'no-store', Location: target }).append('Set-Cookie', started.setCookie).end();
  });

  // Logout. `?rd=<url>`: where the page should go next, answered as JSON for the page to follow
  // (a DELETE is sent by script, not by navigation). An unsafe rd is refused before anything
  // changes: the session stays, and the answer says why.
  router.delete('/~session', async (req, res) => {
    const policy = deps.policy();
    let redirect: string | undefined;
    const rd = req.query['rd'];
    if (rd !== undefined) {
      // The Host the proxy passed on (nginx: `proxy_set_header Host $host`); never a client's
      // X-Forwarded-Host, which would let the caller name the host it may be sent to.
      redirect = typeof rd === 'string' ? policy.redirects.safeTarget(rd, req.headers.host) : undefined;
      if (redirect === undefined) return problem(res, 400, 'invalid_redirect');
    }
    // Every session the request presents ends (see logout.ts); a store failure part-way is a
    // 503 and the retry finishes. An API token is not ended by a logout (it is revoked with the
    // token API): a request showing one is refused before anything changes.
    const result = await endPresentedSessions(store, policy, req.headers);
    if (!result.ok && result.error === 'api_token') {
      return problem(res, 400, 'api_token', {
        detail: 'a logout does not revoke API tokens; revoke one with DELETE /tokens/<id> (sessiongate token revoke)',
      });
    }
    if (!result.ok) {
      // Keep the cookie: clearing it would look like a logout that did not happen.
      log.warn({ msg: 'session destroy failed', reason: 'store_unavailable', err: (result.cause as Error).message });
      return problem(res, 503, 'store_unavailable');
    }
    if (result.ended > 0) {
      const userId = result.users.length > 1 ? result.users : result.users[0];
      log.info({ msg: 'session destroyed', user_id: userId, request_id: firstValue(req.headers['x-request-id']), sessions: result.ended });
      metrics?.sessionsDestroyed('logout', result.ended);
    }
    res.set('Cache-Control', 'no-store').append('Set-Cookie', policy.cookies.clear());
    if (redirect === undefined) res.status(204).end();
    else res.status(200).json({ redirect });
  });

  router.get('/~session', async (req, res) => {
    const policy = deps.policy();
    const cred = readCredential(req.headers, policy.cookies.name, policy.tokens);
    const now = clock();
    const lookup = await lookupSession(cred, { store, records: policy.records, external: [], now });
    if (lookup.kind === 'failed') return problem(res, 503, 'store_unavailable');
    const r = resolveSession(cred, lookup, now);
    if (!r.ok) return problem(res, 401, 'unauthenticated', { reason: r.reason });
    res.status(200).set('Cache-Control', 'no-store').json(publicView(r.session));
  });

  // Revoke every session of a user (account disabled, password changed): the login service's call.
  router.delete('/~session/user/:userId', loginService, async (req, res) => {
    const userId = String(req.params['userId']);
    let removed: string[];
    try {
      removed = await store.destroyUser(deps.policy().userRefs.all(userId));
    } catch (err) {
      log.warn({ msg: 'user revocation failed', reason: 'store_unavailable', err: (err as Error).message });
      return problem(res, 503, 'store_unavailable');
    }
    log.info({ msg: 'user sessions revoked', user_id: userId, sessions: removed.length });
    metrics?.sessionsDestroyed('revoked', removed.length);
    res.status(200).set('Cache-Control', 'no-store').json({ user_id: userId, revoked: removed.length });
  });

  // Body-parser failures: bad JSON is a 400, an oversize body a 413; never a stack trace.
  router.use((err: unknown, _req: Request, res: Response, next: NextFunction) => {
    const e = err as { type?: string; status?: number };
    if (e.type === 'entity.too.large') return problem(res, 413, 'body_too_large');
    if (e.type === 'entity.parse.failed') return problem(res, 400, 'invalid_json');
    if (typeof e.status === 'number' && e.status >= 400 && e.status < 500) return problem(res, e.status, 'bad_request');
    next(err);
  });
  return router;
}
