/**
 * Session tokens: `<id>.<secret>.<mac>`, 131 characters of base64url.
 *
 * - `id`: 32 random bytes. Its first 8 characters are the session's family tag, kept when the
 *   session rotates, so every ID of one session hashes to the same Redis Cluster slot and a
 *   rotation stays one atomic script.
 * - `secret`: 32 random bytes, known only to the cookie holder: the session record is encrypted
 *   under a key derived from it, so a store dump reveals no identity.
 * - `mac`: HMAC-SHA256 of `id.secret` under a key derived (HKDF) from each configured server
 *   secret: the first signs, all verify, so server secrets rotate without logging anyone out.
 *   Checked in constant time before any store lookup: forged tokens cost no round trip.
 *
 * The store only ever sees `{tag}` + SHA-256(id): no usable token.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { LRUCache } from 'lru-cache';

const B64 = 43; // base64url of 32 bytes, unpadded
export const TAG_LENGTH = 8;
export const TOKEN_LENGTH = B64 * 3 + 2;
/** A token's shape, unanchored (to search a header for one): ID, secret and MAC, base64url of 32 bytes each. */
export const TOKEN_PATTERN = '[A-Za-z0-9_-]{43}\\.[A-Za-z0-9_-]{43}\\.[A-Za-z0-9_-]{43}';
const TOKEN_SHAPE = new RegExp(`^${TOKEN_PATTERN}$`);

export type VerifyResult =
  | { readonly ok: true; readonly key: string; readonly secret: Buffer }
  | { readonly ok: false; readonly reason: 'malformed_cookie' | 'bad_signature' };

export interface IssuedToken {
  readonly token: string;
  /** Store key: `{tag}` + SHA-256 of the ID. */
  readonly key: string;
  /** The per-session secret the record is sealed with. */
  readonly secret: Buffer;
}

export interface TokenCodec {
  /** A fresh session: new ID (in `family`'s tag when rotating), new secret, token and store key. */
  issue(family?: string): IssuedToken;
  verify(token: string): VerifyResult;
  /** True when the string has the shape of a token (says nothing about its MAC). */
  looksLikeToken(s: string): boolean;
}

const SALT = 'sessiongate';
const ONE = Buffer.from([1]);

/**
 * HKDF-SHA256 (RFC 5869) for one 32-byte block: extract, then expand with counter 1. The same
 * bytes as crypto.hkdfSync, at half the cost (no KeyObjects): it runs once per request.
 */
export function deriveKey(secret: Buffer, info: string): Buffer {
  const prk = createHmac('sha256', SALT).update(secret).digest();
  return createHmac('sha256', prk).update(info).update(ONE).digest();
}

/** The store key of a session ID: its family tag in braces (a Redis Cluster hash tag), then SHA-256(id). */
export function storeKeyOf(id: string): string {
  return `{${id.slice(0, TAG_LENGTH)}}${createHash('sha256').update(id).digest('base64url')}`;
}

/** The family tag of a store key. */
export function familyOf(key: string): string {
  return key.slice(1, 1 + TAG_LENGTH);
}

/** A canonical base64url encoding of exactly 32 bytes, or undefined. */
function bytes32(s: string): Buffer | undefined {
  const b = Buffer.from(s, 'base64url');
  // A string whose unused low bits are set decodes to the same bytes as another: refuse it.
  return b.length === 32 && b.toString('base64url') === s ? b : undefined;
}

export function createTokenCodec(secrets: readonly Buffer[], rememberValid = 10_000): TokenCodec {
  if (secrets.length === 0) throw new Error('token codec needs at least one secret');
  const keys = secrets.map((s) => deriveKey(s, 'sessiongate/v2 session token mac'));
  const mac = (key: Buffer, body: string) => createHmac('sha256', key).update(body).digest();
  // A token that verified once verifies again under the same secrets (a new secret list builds a
  // new codec): the recently seen valid ones skip the HMAC and the SHA-256. Only valid tokens
  // are remembered, so garbage cannot crowd them out faster than real traffic refreshes them.
  const valid = new LRUCache<string, { key: string; secret: Buffer }>({ max: Math.max(1, rememberValid) });

  return {
    issue(family) {
      let id = randomBytes(32).toString('base64url');
      if (family !== undefined) id = family + id.slice(TAG_LENGTH);
      const secret = randomBytes(32);
      const body = `${id}.${secret.toString('base64url')}`;
      return { token: `${body}.${mac(keys[0]!, body).toString('base64url')}`, key: storeKeyOf(id), secret };
    },
    looksLikeToken(s) {
      return s.length === TOKEN_LENGTH && TOKEN_SHAPE.test(s);
    },
    verify(token) {
      const known = valid.get(token);
      if (known) return { ok: true, key: known.key, secret: known.secret };
      if (token.length !== TOKEN_LENGTH || !TOKEN_SHAPE.test(token)) return { ok: false, reason: 'malformed_cookie' };
      const body = token.slice(0, B64 * 2 + 1);
      const given = bytes32(token.slice(B64 * 2 + 2));
      const secret = bytes32(token.slice(B64 + 1, B64 * 2 + 1));
      if (!given || !secret) return { ok: false, reason: 'malformed_cookie' };
      let ok = false;
      for (const key of keys) ok = timingSafeEqual(mac(key, body), given) || ok; // try all: no early exit
      if (!ok) return { ok: false, reason: 'bad_signature' };
      const key = storeKeyOf(token.slice(0, B64));
      valid.set(token, { key, secret });
      return { ok: true, key, secret };
    },
  };
}
