/**
 * Session tokens: `<id>.<mac>`. The ID is 256 bits from the CSPRNG; the MAC is HMAC-SHA256 of
 * the ID under a key derived with HKDF from each configured secret (the first signs, all
 * verify, so secrets rotate without logging anyone out). Verification is constant-time and
 * happens before any store lookup, so forged tokens cost no round trip. The store only ever
 * sees SHA-256(id), so a store dump holds no usable token.
 */
import { createHash, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';

export const ID_BYTES = 32;
const B64_LEN = 43; // base64url of 32 bytes, unpadded
const TOKEN_LEN = B64_LEN * 2 + 1;
const TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{43}$/;

export type VerifyResult =
  | { readonly ok: true; readonly key: string }
  | { readonly ok: false; readonly reason: 'malformed_cookie' | 'bad_signature' };

export interface IssuedToken {
  readonly token: string;
  readonly key: string;
}

export interface TokenCodec {
  /** A fresh session ID, its token and its store key. */
  issue(): IssuedToken;
  verify(token: string): VerifyResult;
  /** True when the string has the shape of a token (says nothing about its signature). */
  looksLikeToken(s: string): boolean;
}

export function deriveMacKey(secret: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', secret, 'sessiongate', 'sessiongate/v1 session token mac', 32));
}

export function storeKeyOf(id: string): string {
  return createHash('sha256').update(id).digest('base64url');
}

export function createTokenCodec(secrets: readonly Buffer[]): TokenCodec {
  if (secrets.length === 0) throw new Error('token codec needs at least one secret');
  const keys = secrets.map(deriveMacKey);
  const mac = (key: Buffer, id: string) => createHmac('sha256', key).update(id).digest();

  return {
    issue() {
      const id = randomBytes(ID_BYTES).toString('base64url');
      return { token: `${id}.${mac(keys[0]!, id).toString('base64url')}`, key: storeKeyOf(id) };
    },
    looksLikeToken(s) {
      return s.length === TOKEN_LEN && TOKEN_SHAPE.test(s);
    },
    verify(token) {
      if (token.length !== TOKEN_LEN || !TOKEN_SHAPE.test(token)) return { ok: false, reason: 'malformed_cookie' };
      const id = token.slice(0, B64_LEN);
      const given = Buffer.from(token.slice(B64_LEN + 1), 'base64url');
      // Canonical encoding only: a base64url string whose unused low bits are set decodes
      // to the same bytes as another string, which would give one ID two valid tokens.
      if (given.length !== 32 || given.toString('base64url') !== token.slice(B64_LEN + 1)) {
        return { ok: false, reason: 'malformed_cookie' };
      }
      let ok = false;
      for (const key of keys) ok = timingSafeEqual(mac(key, id), given) || ok; // try all: no early exit
      return ok ? { ok: true, key: storeKeyOf(id) } : { ok: false, reason: 'bad_signature' };
    },
  };
}
