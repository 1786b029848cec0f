/**
 * `kind: generic`: a home-grown session store. The cookie holds an opaque token; the session is
 * a Redis string at a key built from it (`session:{token}`, or `session:{sha256}` for the hex
 * SHA-256 of the token), holding either JSON (user ID, roles and expiry at dotted paths) or the
 * user ID itself. A token outside a sane charset and length is refused before any store call.
 * Read-only: one GET per lookup.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { ExternalRead, ExternalSource } from '../core/external.js';
import { compilePath } from '../session/field-path.js';
import type { SessionRecord } from '../session/record.js';
import { cookieName, type ExternalStore, fieldPath, fixedRecord, parseObject, redisUrl, required, rolesFrom, userIdFrom } from './common.js';

/** Printable ASCII but braces (Redis Cluster hash tags) around exactly one placeholder. */
const KEY_TEMPLATE = /^[\x21-\x7a|~]*\{(?:token|sha256)\}[\x21-\x7a|~]*$/;

export const genericSchema = z
  .strictObject({
    kind: z.literal('generic'),
    cookie: cookieName,
    store: redisUrl,
    key: z.string(required('a key template such as session:{token}')).regex(KEY_TEMPLATE, {
      error: 'must hold exactly one {token} or {sha256} and otherwise printable ASCII without spaces or braces, such as session:{token}',
    }),
    format: z.enum(['json', 'string'], { error: 'must be json or string' }).default('json'),
    user_id: fieldPath.optional(),
    roles: fieldPath.optional(),
    expires_at: fieldPath.optional(),
  })
  .transform((s, ctx) => {
    if (s.format === 'string') {
      const extra = (['user_id', 'roles', 'expires_at'] as const).filter((k) => s[k] !== undefined);
      for (const k of extra) ctx.addIssue({ code: 'custom', path: [k], message: 'is only meaningful with format: json (a string value is the user ID)' });
      if (extra.length > 0) return z.NEVER;
    }
    return {
      kind: s.kind,
      cookie: s.cookie,
      store: s.store,
      key: s.key,
      format: s.format,
      user_id: s.user_id ?? 'user_id',
      roles: s.roles ?? null,
      expires_at: s.expires_at ?? null,
    };
  });

export type GenericSpec = z.output<typeof genericSchema>;

/** URL-safe and standard base64, hex, UUIDs, JWT-like dotted tokens. */
export const GENERIC_TOKEN = /^[A-Za-z0-9._~+/=-]{16,512}$/;

/** The store key for a token, from the configured template. */
export function compileKey(template: string): (token: string) => string {
  const at = template.indexOf('{');
  const close = template.indexOf('}', at);
  const before = template.slice(0, at);
  const after = template.slice(close + 1);
  if (template.slice(at, close + 1) === '{sha256}') return (t) => before + createHash('sha256').update(t).digest('hex') + after;
  return (t) => before + t + after;
}

/** Seconds or milliseconds since the epoch (told apart by size), as a number or digits, or an ISO 8601 time; null otherwise. */
export function instantFrom(v: unknown): number | null {
  let n: number;
  if (typeof v === 'number') n = v;
  else if (typeof v === 'string' && /^\d{1,16}$/.test(v)) n = Number(v);
  else if (typeof v === 'string' && /^\d{4}-\d{2}-\d{2}T/.test(v)) n = Date.parse(v);
  else return null;
  if (!Number.isFinite(n)) return null;
  // 1e11 seconds is the year 5138; 1e11 milliseconds is 1973.
  return Math.abs(n) < 1e11 ? n * 1000 : n;
}

export interface GenericMapping {
  readonly format: 'json' | 'string';
  readonly userId: (s: unknown) => unknown;
  readonly roles: ((s: unknown) => unknown) | null;
  readonly expiresAt: ((s: unknown) => unknown) | null;
}

export function compileGenericMapping(spec: Pick<GenericSpec, 'format' | 'user_id' | 'roles' | 'expires_at'>): GenericMapping {
  return {
    format: spec.format,
    userId: compilePath(spec.user_id),
    roles: spec.roles === null ? null : compilePath(spec.roles),
    expiresAt: spec.expires_at === null ? null : compilePath(spec.expires_at),
  };
}

/**
 * The stored value as a fixed record, or null. `string`: the value is the user ID, no roles,
 * no attributes. `json`: user ID and roles at their paths, attributes the whole object; with
 * `expires_at` configured, a record whose expiry is missing, unreadable or past is no session.
 */
export function genericRecord(value: string, m: GenericMapping, now: number): SessionRecord | null {
  if (m.format === 'string') {
    const userId = userIdFrom(value);
    return userId === null ? null : fixedRecord(userId, [], {}, Infinity, now);
  }
  const obj = parseObject(value);
  if (obj === null) return null;
  let expiresAt = Infinity;
  if (m.expiresAt !== null) {
    const at = instantFrom(m.expiresAt(obj));
    if (at === null || now >= at) return null;
    expiresAt = at;
  }
  const userId = userIdFrom(m.userId(obj));
  if (userId === null) return null;
  const roles = m.roles === null ? [] : rolesFrom(m.roles(obj));
  return fixedRecord(userId, roles, obj, expiresAt, now);
}

const MALFORMED: ExternalRead = { ok: false, reason: 'malformed_cookie' };

export function createGenericSource(spec: GenericSpec, store: ExternalStore): ExternalSource {
  const keyFor = compileKey(spec.key);
  const mapping = compileGenericMapping(spec);
  return {
    kind: 'generic',
    cookie: spec.cookie,
    read: (value) => (GENERIC_TOKEN.test(value) ? { ok: true, sid: value } : MALFORMED),
    async lookup(token, now) {
      const value = await store.get(keyFor(token));
      return value === null ? null : genericRecord(value, mapping, now);
    },
    close: () => store.close(),
  };
}
