/**
 * API tokens for service-to-service callers (`Authorization: Bearer <token>`). A token is a
 * session of its own kind: the same `<id>.<secret>.<mac>` credential, stored under the hash of
 * its ID with its identity sealed under its secret, resolved by the same rules and header
 * mappings, but `fixed` (no idle timeout, no touch, no rotation) and long-lived. It is shown
 * once, at creation; the store keeps only hashes and sealed data. Revoking one destroys it in
 * the shared store and publishes the invalidation, so every replica refuses it at once.
 *
 * The list (`GET /tokens`) comes from a catalog entry per token, sealed under a key derived from
 * the server secret: a store dump shows neither tokens nor who they belong to.
 *
 * Served on a listener of its own (`listen.api_host`/`api_port`, loopback by default; never the
 * admin port, which is scraped and probed from the cluster), authorised by the login token:
 *   POST /tokens {user_id, roles, ttl, name}  → 201 {token, id, …}   (the token, once)
 *   GET /tokens                                → 200 [{id, user_id, roles, name, created_at, expires_at}]
 *   DELETE /tokens/:id                         → 204 | 404
 */
import { createHash } from 'node:crypto';
import express, { type Express, type Response, Router } from 'express';
import { z } from 'zod';
import { parseDuration } from '../config/duration.js';
import type { Policy } from '../core/policy.js';
import type { Logger } from '../ops/logger.js';
import { open, seal } from '../session/aead.js';
import { refuseBadText, rolesField, userIdField } from '../session/identity.js';
import type { SessionRecord } from '../session/record.js';
import { sealRecord } from '../session/seal.js';
import { deriveKey } from '../session/token.js';
import type { SessionOperations, TokenCatalog } from '../store/types.js';
import { jsonErrors, notFound } from './errors.js';
import { createLoginTokenCheck } from './login-token.js';

export const TOKEN_CATALOG = 'api-tokens';
/** `tok_` and 16 base64url characters of the key's hash (see POST /tokens). */
const TOKEN_ID = /^tok_[A-Za-z0-9_-]{16}$/;
const MAX_TTL = 3 * 365 * 86_400_000;

/** `90d`, `12h`, `1h30m`: milliseconds, or undefined; the configuration's duration grammar. */
export function parseTtl(s: string): number | undefined {
  return parseDuration(s.trim()) ?? undefined;
}

export interface TokenInfo {
  id: string;
  user_id: string;
  roles: string[];
  name: string | null;
  created_at: string;
  expires_at: string;
}

interface Meta {
  key: string;
  user_id: string;
  roles: string[];
  name: string | null;
  created_at: number;
  expires_at: number;
}

const createBody = z.strictObject({
  user_id: userIdField,
  roles: rolesField,
  ttl: z
    .string({ error: 'must be a duration like 90d, 12h' })
    .refine(
      (s) => {
        const ms = parseTtl(s);
        return ms !== undefined && ms > 0 && ms <= MAX_TTL;
      },
      { error: 'must be a duration like 90d, 12h, 1h30m, at most 1095d' },
    )
    .default('90d'),
  name: z.string().max(128).superRefine(refuseBadText).nullable().default(null),
});

function metaKey(secret: Buffer): Buffer {
  return deriveKey(secret, 'sessiongate/v2 token catalog');
}

function sealMeta(meta: Meta, secret: Buffer, id: string): string {
  return seal(metaKey(secret), Buffer.from(JSON.stringify(meta)), id);
}

function openMeta(value: string, secrets: readonly Buffer[], id: string): Meta | null {
  for (const secret of secrets) {
    const plain = open(metaKey(secret), value, id);
    if (plain === null) continue; // another secret, or not ours
    try {
      return JSON.parse(plain.toString('utf8')) as Meta;
    } catch {
      /* not ours */
    }
  }
  return null;
}

const info = (id: string, m: Meta): TokenInfo => ({
  id,
  user_id: m.user_id,
  roles: m.roles,
  name: m.name,
  created_at: new Date(m.created_at).toISOString(),
  expires_at: new Date(m.expires_at).toISOString(),
});

export interface TokenDeps {
  readonly policy: () => Policy;
  /** The server secrets (the first seals, all open). */
  readonly secrets: () => readonly Buffer[];
  /** Tokens are sessions (create, destroy); their list is the catalog. */
  readonly store: Pick<SessionOperations, 'create' | 'destroy'> & TokenCatalog;
  readonly clock: () => number;
  readonly loginToken: () => Buffer | null;
  readonly log: Logger;
}

export function createTokenApi(deps: TokenDeps): Router {
  const { store, clock, log } = deps;
  const router = Router();
  const problem = (res: Response, status: number, error: string, extra: Record<string, unknown> = {}) =>
    void res
      .status(status)
      .set('Cache-Control', 'no-store')
      .json({ error, ...extra });

  const login = createLoginTokenCheck(deps.loginToken);
  router.use('/tokens', (req, res, next) => {
    if (!login.configured()) return problem(res, 403, 'token_api_disabled', { detail: 'configure a login token' });
    if (!login.ok(req.headers)) {
      res.set('WWW-Authenticate', 'Bearer realm="sessiongate-admin"');
      return problem(res, 401, 'invalid_login_token');
    }
    next();
  });

  async function list(): Promise<Array<{ id: string; meta: Meta }>> {
    const now = clock();
    const out: Array<{ id: string; meta: Meta }> = [];
    for (const [id, value] of Object.entries(await store.catalogList(TOKEN_CATALOG))) {
      const meta = openMeta(value, deps.secrets(), id);
      if (meta && meta.expires_at > now) out.push({ id, meta });
      // Expired (the store already dropped the token) or sealed under a retired secret: tidy up.
      else await store.catalogDelete(TOKEN_CATALOG, id).catch(() => {});
    }
    return out.sort((a, b) => a.meta.created_at - b.meta.created_at);
  }

  router.post('/tokens', express.json({ limit: '4kb', strict: true }), async (req, res) => {
    const parsed = createBody.safeParse(req.body ?? {});
    if (!parsed.success) {
      return problem(res, 400, 'invalid_body', {
        problems: parsed.error.issues.map((i) =>
          i.code === 'unrecognized_keys' ? `${i.keys.join(', ')}: unknown field` : `${i.path.join('.') || 'body'}: ${i.message}`,
        ),
      });
    }
    const { user_id, roles, ttl, name } = parsed.data;
    const policy = deps.policy();
    const now = clock();
    const expires = now + parseTtl(ttl)!;
    const issued = policy.tokens.issue();
    const record: SessionRecord = {
      user_id,
      roles,
      attributes: name ? { token_name: name } : {},
      created_at: now,
      issued_at: now,
      expires_at: expires,
      touched_at: now,
      idle_expires_at: expires,
      fixed: true,
    };
    const id = `tok_${createHash('sha256').update(issued.key).digest('base64url').slice(0, 16)}`;
    const meta: Meta = { key: issued.key, user_id, roles, name, created_at: now, expires_at: expires };
    try {
      await store.create(issued.key, sealRecord(record, issued.key, issued.secret, policy.userRefs.ref(user_id)));
      await store.catalogPut(TOKEN_CATALOG, id, sealMeta(meta, deps.secrets()[0]!, id));
    } catch (err) {
      log.warn({ msg: 'API token creation failed', reason: 'store_unavailable', err: (err as Error).message });
      return problem(res, 503, 'store_unavailable');
    }
    log.info({ msg: 'API token created', token_id: id, user_id, expires_at: new Date(expires).toISOString() });
    res
      .status(201)
      .set('Cache-Control', 'no-store')
      .json({ token: issued.token, ...info(id, meta) });
  });

  router.get('/tokens', async (_req, res) => {
    try {
      res.set('Cache-Control', 'no-store').json((await list()).map(({ id, meta }) => info(id, meta)));
    } catch {
      problem(res, 503, 'store_unavailable');
    }
  });

  router.delete('/tokens/:id', async (req, res) => {
    const id = String(req.params['id']);
    // Only a token ID is looked up, and only as the catalog's own entry: `__proto__` or
    // `toString` would otherwise read Object.prototype's.
    if (!TOKEN_ID.test(id)) return problem(res, 404, 'no_such_token');
    try {
      const catalog = await store.catalogList(TOKEN_CATALOG);
      const value = Object.hasOwn(catalog, id) ? catalog[id] : undefined;
      const meta = typeof value === 'string' ? openMeta(value, deps.secrets(), id) : null;
      if (!meta) return problem(res, 404, 'no_such_token');
      // The token first (published to every replica's cache), then its catalog entry.
      await store.destroy(meta.key);
      await store.catalogDelete(TOKEN_CATALOG, id);
      log.info({ msg: 'API token revoked', token_id: id, user_id: meta.user_id });
      res.status(204).set('Cache-Control', 'no-store').end();
    } catch (err) {
      log.warn({ msg: 'API token revocation failed', reason: 'store_unavailable', err: (err as Error).message });
      problem(res, 503, 'store_unavailable');
    }
  });
  return router;
}

/** The token API's listener: `/tokens` and nothing else, errors and unknown paths as JSON. */
export function createTokenApp(deps: TokenDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.use(createTokenApi(deps));
  app.use(notFound);
  app.use(jsonErrors(deps.log));
  return app;
}
