/**
 * Sessions at rest. A store holds a StoredSession: the clock fields in the clear (a store must
 * expire, touch and rotate without the key), a keyed hash of the user ID (the per-user index
 * for revocation), and the identity (user ID, roles, attributes) sealed with AES-256-GCM under a
 * key derived from the per-session secret that only the cookie holder has. A dump of the store
 * yields neither usable cookies nor identities.
 */
import { createHmac } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { open, seal } from './aead.js';
import type { LoginOrigin, SessionClock, SessionRecord } from './record.js';
import { deriveKey } from './token.js';

export interface StoredSession extends SessionClock {
  readonly v: 2;
  /** Keyed hash of the user ID (see createUserRefs). */
  readonly user: string;
  /** base64url(nonce ‖ ciphertext ‖ tag) of the identity JSON. */
  readonly data: string;
  /**
   * More index references the session is filed under besides its user's (keyed hashes of the
   * OpenID provider's sid and sub), so a back-channel logout finds it. Absent when none.
   */
  readonly links?: readonly string[] | undefined;
}

interface SealedIdentity {
  u: string;
  r: string[];
  a: Record<string, unknown>;
  f?: 1;
  l?: LoginOrigin;
}

function recordKey(secret: Buffer, storeKey: string): Buffer {
  return deriveKey(secret, `sessiongate/v2 record ${storeKey}`);
}

function clockOf(r: SessionClock): SessionClock {
  const c: { -readonly [K in keyof SessionClock]: SessionClock[K] } = {
    created_at: r.created_at,
    issued_at: r.issued_at,
    expires_at: r.expires_at,
    touched_at: r.touched_at,
    idle_expires_at: r.idle_expires_at,
  };
  if (r.grace_until !== undefined) c.grace_until = r.grace_until;
  if (r.successor !== undefined) c.successor = r.successor;
  return c;
}

/** Seals a session for the store under `storeKey` (bound in as associated data). */
export function sealRecord(r: SessionRecord, storeKey: string, secret: Buffer, userRef: string, links: readonly string[] = []): StoredSession {
  const id: SealedIdentity = { u: r.user_id, r: r.roles as string[], a: r.attributes as Record<string, unknown> };
  if (r.fixed) id.f = 1;
  if (r.login) id.l = r.login;
  const data = seal(recordKey(secret, storeKey), Buffer.from(JSON.stringify(id)), storeKey);
  // A rotated-away ID's record (grace_until, successor) is written by the stores, not sealed anew.
  if (r.grace_until !== undefined || r.successor !== undefined) return { v: 2, ...clockOf(r), user: userRef, data, ...(links.length > 0 ? { links } : {}) };
  // Literals, not spreads: a literal's fields live inside the object, where a spread's go to a
  // separate property array; the memory store keeps one of these per session.
  const { created_at, issued_at, expires_at, touched_at, idle_expires_at } = r;
  if (links.length > 0) return { v: 2, created_at, issued_at, expires_at, touched_at, idle_expires_at, user: userRef, data, links };
  return { v: 2, created_at, issued_at, expires_at, touched_at, idle_expires_at, user: userRef, data };
}

/** The identity fields of an opened record (everything but the clock). */
function identityOf(id: SealedIdentity): Pick<SessionRecord, 'user_id' | 'roles' | 'attributes' | 'fixed' | 'login'> {
  const out: { -readonly [K in 'user_id' | 'roles' | 'attributes' | 'fixed' | 'login']?: SessionRecord[K] } = { user_id: id.u, roles: id.r, attributes: id.a };
  if (id.f === 1) out.fixed = true;
  if (id.l) out.login = id.l;
  return out as Pick<SessionRecord, 'user_id' | 'roles' | 'attributes' | 'fixed' | 'login'>;
}

/** Opens a stored session; null when it was not sealed for this key and secret (or was altered). */
export function openRecord(s: StoredSession, storeKey: string, secret: Buffer): SessionRecord | null {
  const plain = open(recordKey(secret, storeKey), s.data, storeKey);
  if (plain === null) return null;
  try {
    const id = JSON.parse(plain.toString('utf8')) as SealedIdentity;
    return { ...clockOf(s), ...identityOf(id) };
  } catch {
    return null;
  }
}

export interface RecordOpener {
  /** openRecord, remembering the last identity opened for each store key. */
  open(s: StoredSession, storeKey: string, secret: Buffer): SessionRecord | null;
}

/**
 * Opening a record costs a key derivation and an AES-GCM pass on every request; a session's
 * sealed identity changes only on rotation. So the identity opened from a given ciphertext
 * under a given secret is remembered (bounded LRU) and reused while both stay the same; the
 * clock fields always come from the stored record as read.
 */
export function createRecordOpener(maxEntries: number): RecordOpener {
  const memo = new LRUCache<string, { stored: StoredSession; secret: Buffer; record: SessionRecord }>({ max: maxEntries });
  return {
    open(s, storeKey, secret) {
      const hit = memo.get(storeKey);
      if (hit && hit.stored.data === s.data && (hit.secret === secret || hit.secret.equals(secret))) {
        // The very record object a store hands out again (memory store, local cache): no copy.
        if (hit.stored === s) return hit.record;
        const record: SessionRecord = {
          ...clockOf(s),
          user_id: hit.record.user_id,
          roles: hit.record.roles,
          attributes: hit.record.attributes,
          ...(hit.record.fixed ? { fixed: true as const } : {}),
          ...(hit.record.login ? { login: hit.record.login } : {}),
        };
        memo.set(storeKey, { stored: s, secret, record });
        return record;
      }
      const r = openRecord(s, storeKey, secret);
      if (r) memo.set(storeKey, { stored: s, secret, record: r });
      return r;
    },
  };
}

export interface UserRefs {
  /** The index reference new sessions are filed under (first server secret). */
  ref(userId: string): string;
  /** Every reference a user's sessions may be filed under (one per configured secret). */
  all(userId: string): string[];
  /** The other references a session is filed under: its OpenID provider's sid and sub (first secret). */
  links(login: LoginOrigin | undefined): string[];
  /** Every reference sessions of a provider's `sid` (or, with `kind: 'sub'`, its subject) may be filed under. */
  allLinks(provider: string, kind: 'sid' | 'sub', value: string): string[];
}

/** Keyed hashes of user IDs: a dictionary of e-mail addresses does not reverse them without the server secret. */
export function createUserRefs(secrets: readonly Buffer[]): UserRefs {
  const keys = secrets.map((s) => deriveKey(s, 'sessiongate/v2 user index'));
  const hash = (key: Buffer, userId: string) => createHmac('sha256', key).update(userId).digest('base64url');
  // A NUL never occurs in a user ID (refused at creation), so these never equal a user's reference.
  const link = (provider: string, kind: 'sid' | 'sub', value: string) => `\u0000oidc-${kind}\u0000${provider}\u0000${value}`;
  return {
    ref: (userId) => hash(keys[0]!, userId),
    all: (userId) => [...new Set(keys.map((k) => hash(k, userId)))],
    links: (login) => {
      if (!login) return [];
      const out = [hash(keys[0]!, link(login.provider, 'sub', login.sub))];
      if (login.sid !== undefined) out.push(hash(keys[0]!, link(login.provider, 'sid', login.sid)));
      return out;
    },
    allLinks: (provider, kind, value) => [...new Set(keys.map((k) => hash(k, link(provider, kind, value))))],
  };
}
