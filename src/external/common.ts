/**
 * What the external session adapters share: configuration pieces, the read-only client for an
 * application's Redis, and the checks that turn values an application wrote into a fixed
 * SessionRecord. The application wrote those values, not sessiongate, so nothing in them is
 * trusted: a user ID with a control character or a lone surrogate, a role that is not a role
 * name, an expiry that cannot be read, all end as "no session" or are left out, never as a
 * header (nor as an error).
 */
import { z } from 'zod';
import { FIELD_PATH } from '../session/field-path.js';
import { isUserId, MAX_ROLES } from '../session/identity.js';
import { ROLE_NAME, type SessionRecord } from '../session/record.js';
import { createRedisClient, type RedisClient } from '../store/redis.js';
import { StoreUnavailableError } from '../store/types.js';
import { maskUrl, parseStoreUrl, type StoreUrl } from '../store/url.js';

// --- Configuration pieces.

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/; // RFC 9110 token, as config.ts uses for cookie names

/** zod's type error, saying "is required" when the key is missing. */
export const required = (what: string) => ({ error: (i: { input: unknown }) => (i.input === undefined ? `is required (${what})` : `must be ${what}`) });

export const cookieName = z.string(required('a cookie name')).regex(TOKEN, { error: 'must be a cookie name (letters, digits, - _ .)' });

/** A dotted path into the application's session object: `passport.user`, `profile.email`. */
export const fieldPath = z.string({ error: 'must be a dotted path such as passport.user' }).regex(FIELD_PATH, {
  error: 'must be a dotted path into the session object, such as passport.user',
});

/** The application's Redis: any store URL but `memory`; never echoed with its password. */
export const redisUrl = z.string(required("the application's Redis URL")).superRefine((s, ctx) => {
  const u = parseStoreUrl(s);
  if (typeof u === 'string') ctx.addIssue({ code: 'custom', message: `${JSON.stringify(maskUrl(s))}: ${u}` });
  else if (u.kind === 'memory')
    ctx.addIssue({ code: 'custom', message: "must be the application's Redis (redis://, rediss://, redis+sentinel://, redis+cluster://)" });
});

// --- Reading the application's values.

/**
 * A user ID from an application value: a non-empty string or a finite number; null otherwise,
 * and null for text no header can carry (controls; a lone surrogate, which `"\ud800"` in the
 * application's JSON gives).
 */
export function userIdFrom(v: unknown): string | null {
  let s: string;
  if (typeof v === 'string') s = v;
  else if (typeof v === 'number' && Number.isFinite(v)) s = String(v);
  else return null;
  return isUserId(s) ? s : null;
}

/**
 * Roles from an array of strings or a comma-separated string. Anything that is not a role name
 * is dropped: a role holding a comma or a space would read as two roles to the upstream.
 */
export function rolesFrom(v: unknown): string[] {
  const items = typeof v === 'string' ? v.split(',').map((r) => r.trim()) : Array.isArray(v) ? v : [];
  const out: string[] = [];
  for (const r of items) {
    if (typeof r === 'string' && ROLE_NAME.test(r) && !out.includes(r)) out.push(r);
    if (out.length >= MAX_ROLES) break;
  }
  return out;
}

/** A plain JSON object, or null (arrays, scalars, invalid JSON). */
export function parseObject(text: string): Record<string, unknown> | null {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return null;
  }
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
}

/**
 * A fixed record for an application's session. The application keeps no creation time that
 * sessiongate could read, so created_at, issued_at and touched_at are the lookup time;
 * `expiresAt` is Infinity when the session ends only with its key.
 */
export function fixedRecord(
  user_id: string,
  roles: readonly string[],
  attributes: Readonly<Record<string, unknown>>,
  expiresAt: number,
  now: number,
): SessionRecord {
  return { user_id, roles, attributes, created_at: now, issued_at: now, touched_at: now, expires_at: expiresAt, idle_expires_at: expiresAt, fixed: true };
}

// --- The application's store: GET, and EXPIRE for the optional touch. Nothing else.

export interface ExternalStore {
  /** The value at `key`, or null when absent or not a string. Throws StoreUnavailableError. */
  get(key: string): Promise<string | null>;
  /** Sets the key's TTL, only if it exists and already has one. Throws StoreUnavailableError. */
  expire(key: string, seconds: number): Promise<void>;
  close(): Promise<void>;
}

/** Only a key that exists and expires: never revives a deleted key, never adds a TTL the application did not set. */
const EXPIRE_IF_EXPIRING = `
if redis.call('PTTL', KEYS[1]) > 0 then return redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return 0`;

/** Fail fast, as the session store does by default (store/redis.ts). */
export const EXTERNAL_REDIS = { commandTimeout: 100, connectTimeout: 1000, maxRetriesPerRequest: 1 } as const;

export function openExternalStore(url: string): ExternalStore {
  const parsed = parseStoreUrl(url) as Exclude<StoreUrl, { kind: 'memory' }>; // validated by redisUrl
  const displayUrl = maskUrl(url);
  const client = createRedisClient({ url: parsed, displayUrl, keyPrefix: '', ...EXTERNAL_REDIS, clock: Date.now }) as RedisClient & {
    sgExpireIfExpiring(key: string, seconds: number): Promise<number>;
  };
  client.defineCommand('sgExpireIfExpiring', { numberOfKeys: 1, lua: EXPIRE_IF_EXPIRING });
  // Connection errors surface as command failures; an unhandled 'error' event would crash.
  client.on('error', () => {});
  const fail = (op: string, err: unknown) => new StoreUnavailableError(`${displayUrl}: ${op} failed: ${(err as Error).message}`, { cause: err });
  return {
    async get(key) {
      try {
        return await client.get(key);
      } catch (err) {
        // The key holds a hash, list…: not a session this adapter can read, and not an outage.
        if ((err as Error).message?.startsWith('WRONGTYPE')) return null;
        throw fail('read', err);
      }
    },
    async expire(key, seconds) {
      try {
        await client.sgExpireIfExpiring(key, seconds);
      } catch (err) {
        throw fail('touch', err);
      }
    },
    async close() {
      client.disconnect();
    },
  };
}
