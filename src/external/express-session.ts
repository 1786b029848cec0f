/**
 * `kind: express-session`: sessions of an Express application using express-session with
 * connect-redis. The cookie (`connect.sid` by default) is `s:<sid>.<sig>`, URL-encoded, with
 * sig = base64(HMAC-SHA256(secret, sid)) without padding (the cookie-signature package);
 * express-session signs with its first secret and accepts any of them, and so does this. The
 * session is the JSON connect-redis keeps at `<prefix><sid>` (`sess:` by default).
 *
 * Read-only: one GET per lookup. With `touch: true` it also refreshes the key's TTL the way
 * express-session's touch through connect-redis does, at most once a minute per session.
 */
import { createHmac, createSecretKey, type KeyObject, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { LRUCache } from 'lru-cache';
import { z } from 'zod';
import type { ExternalRead, ExternalSource } from '../core/external.js';
import { compilePath } from '../session/field-path.js';
import type { SessionRecord } from '../session/record.js';
import { cookieName, type ExternalStore, fieldPath, fixedRecord, parseObject, redisUrl, rolesFrom, userIdFrom } from './common.js';

export const expressSessionSchema = z
  .strictObject({
    kind: z.literal('express-session'),
    cookie: cookieName.default('connect.sid'),
    secrets: z
      .array(z.string({ error: 'must be a string' }).min(1, { error: 'must not be empty' }), { error: 'must be a list of secrets' })
      .min(1, { error: 'must hold at least one secret' })
      .optional(),
    secret_file: z.string({ error: 'must be a file path' }).min(1, { error: 'must be a file path' }).optional(),
    store: redisUrl,
    prefix: z
      .string({ error: 'must be a key prefix' })
      .regex(/^[\x21-\x7e]{0,128}$/, { error: 'must be printable ASCII without spaces (connect-redis default: sess:)' })
      .default('sess:'),
    user_id: fieldPath.default('passport.user'),
    roles: fieldPath.optional(),
    touch: z.boolean({ error: 'must be true or false' }).default(false),
    ttl: z.int({ error: 'must be a whole number of seconds' }).min(1, { error: 'must be at least 1 (seconds)' }).default(86_400),
  })
  .transform((s, ctx) => {
    let secrets = s.secrets;
    if (s.secrets !== undefined && s.secret_file !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['secret_file'], message: 'set only one of secrets and secret_file' });
      return z.NEVER;
    }
    if (s.secret_file !== undefined) {
      const read = readSecretLines(s.secret_file);
      if (typeof read === 'string') {
        ctx.addIssue({ code: 'custom', path: ['secret_file'], message: read });
        return z.NEVER;
      }
      secrets = read;
    }
    if (secrets === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['secrets'],
        message: "is required (or secret_file): the application's express-session secret, the signing one first",
      });
      return z.NEVER;
    }
    return {
      kind: s.kind,
      cookie: s.cookie,
      secrets,
      store: s.store,
      prefix: s.prefix,
      user_id: s.user_id,
      roles: s.roles ?? null,
      touch: s.touch,
      ttl: s.ttl,
    };
  });

export type ExpressSessionSpec = z.output<typeof expressSessionSchema>;

/** One secret per line (surrounding spaces and empty lines ignored); a problem text otherwise. Never includes a secret. */
export function readSecretLines(path: string): string[] | string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    return `cannot read ${JSON.stringify(path)} (${(err as NodeJS.ErrnoException).code ?? 'error'})`;
  }
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
  return lines.length > 0 ? lines : `${JSON.stringify(path)} holds no secret`;
}

// --- The cookie.

const MAX_COOKIE_VALUE = 4096;
/** base64 of 32 bytes, padding removed. */
const SIGNATURE = /^[A-Za-z0-9+/]{43}$/;
const MALFORMED: ExternalRead = { ok: false, reason: 'malformed_cookie' };
const BAD_SIGNATURE: ExternalRead = { ok: false, reason: 'bad_signature' };

/** The signature cookie-signature's sign() appends: base64 HMAC-SHA256 without `=`. */
export function signatureOf(sid: string, key: KeyObject | string): string {
  return createHmac('sha256', key).update(sid).digest('base64').replace(/=+$/, '');
}

/**
 * Reads an express-session cookie value as the browser sends it: URL-decoded when it holds a
 * `%` (as the cookie package does), then `s:<sid>.<sig>` checked against every secret. An
 * unsigned value is malformed: express-session ignores it too.
 */
export function createCookieReader(secrets: readonly string[]): (value: string) => ExternalRead {
  const keys = secrets.map((s) => createSecretKey(Buffer.from(s, 'utf8')));
  return (value) => {
    if (value.length > MAX_COOKIE_VALUE) return MALFORMED;
    let raw = value;
    if (raw.includes('%')) {
      try {
        raw = decodeURIComponent(raw);
      } catch {
        return MALFORMED;
      }
    }
    if (!raw.startsWith('s:')) return MALFORMED;
    const dot = raw.lastIndexOf('.');
    if (dot <= 2) return MALFORMED;
    const sid = raw.slice(2, dot);
    const sig = raw.slice(dot + 1);
    if (!SIGNATURE.test(sig)) return MALFORMED;
    const given = Buffer.from(sig, 'latin1');
    for (const key of keys) {
      // Both are 43 ASCII characters, so the lengths match and the comparison is constant-time.
      if (timingSafeEqual(Buffer.from(signatureOf(sid, key), 'latin1'), given)) return { ok: true, sid };
    }
    return BAD_SIGNATURE;
  };
}

// --- The record.

export interface ExpressSessionMapping {
  readonly userId: (s: unknown) => unknown;
  readonly roles: ((s: unknown) => unknown) | null;
}

export function compileMapping(spec: { readonly user_id: string; readonly roles: string | null }): ExpressSessionMapping {
  return { userId: compilePath(spec.user_id), roles: spec.roles === null ? null : compilePath(spec.roles) };
}

/** What the session's `cookie` says about its lifetime (ms); undefined when it does not say. */
export interface SessionCookie {
  readonly expires?: number | undefined;
  readonly originalMaxAge?: number | undefined;
}

export interface ExpressSession {
  readonly record: SessionRecord;
  readonly cookie: SessionCookie;
}

/**
 * The stored JSON as a fixed record, or null: not a JSON object, expired by its
 * `cookie.expires` (an unreadable one counts as expired), or no usable user ID (an anonymous
 * visitor's session, or one whose user ID holds a control character). `attributes` is the whole
 * session but its `cookie`, so header mappings can name `attributes.passport.user`.
 */
export function expressSessionRecord(json: string, m: ExpressSessionMapping, now: number): ExpressSession | null {
  const sess = parseObject(json);
  if (sess === null) return null;
  const { cookie: rawCookie, ...attributes } = sess;
  const cookie = readCookie(rawCookie);
  if (cookie === null) return null;
  const expiresAt = cookie.expires ?? Infinity;
  if (now >= expiresAt) return null;
  const userId = userIdFrom(m.userId(sess));
  if (userId === null) return null;
  const roles = m.roles === null ? [] : rolesFrom(m.roles(sess));
  return { record: fixedRecord(userId, roles, attributes, expiresAt, now), cookie };
}

function readCookie(c: unknown): SessionCookie | null {
  if (c === undefined || c === null) return {};
  if (typeof c !== 'object' || Array.isArray(c)) return null;
  const { expires, originalMaxAge } = c as Record<string, unknown>;
  let at: number | undefined;
  if (typeof expires === 'string') at = Date.parse(expires);
  else if (typeof expires === 'number') at = expires;
  else if (expires !== undefined && expires !== null) return null;
  if (at !== undefined && !Number.isFinite(at)) return null;
  const maxAge = typeof originalMaxAge === 'number' && Number.isFinite(originalMaxAge) && originalMaxAge > 0 ? originalMaxAge : undefined;
  return { expires: at, originalMaxAge: maxAge };
}

/**
 * The TTL connect-redis sets when express-session touches a session: express-session first
 * resets the cookie (expires = now + originalMaxAge), and connect-redis turns that into seconds;
 * a cookie without maxAge (a browser-session cookie) gets connect-redis's `ttl` (86400 s).
 */
export function touchSeconds(cookie: SessionCookie, ttl: number, now: number): number {
  if (cookie.originalMaxAge !== undefined) return Math.ceil(cookie.originalMaxAge / 1000);
  if (cookie.expires !== undefined) return Math.max(1, Math.ceil((cookie.expires - now) / 1000));
  return ttl;
}

/** At most one touch per session per interval; forgets the least recently touched past `max`. */
export function createTouchLimiter(intervalMs = 60_000, max = 10_000): (sid: string, now: number) => boolean {
  const last = new LRUCache<string, number>({ max });
  return (sid, now) => {
    const t = last.get(sid);
    if (t !== undefined && now - t < intervalMs && now >= t) return false;
    last.set(sid, now);
    return true;
  };
}

export function createExpressSessionSource(spec: ExpressSessionSpec, store: ExternalStore, onTouchError: (err: unknown) => void = () => {}): ExternalSource {
  const read = createCookieReader(spec.secrets);
  const mapping = compileMapping(spec);
  const touchDue = spec.touch ? createTouchLimiter() : null;
  return {
    kind: 'express-session',
    cookie: spec.cookie,
    read,
    async lookup(sid, now) {
      const key = spec.prefix + sid;
      const json = await store.get(key);
      if (json === null) return null;
      const s = expressSessionRecord(json, mapping, now);
      if (s === null) return null;
      // Not awaited: the session was read, and a failed touch must not delay or deny the request.
      if (touchDue?.(sid, now)) store.expire(key, touchSeconds(s.cookie, spec.ttl, now)).catch(onTouchError);
      return s.record;
    },
    close: () => store.close(),
  };
}
