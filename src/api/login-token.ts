/**
 * The login token check shared by the session API and the token API: the bearer token of a
 * request against the configured login token, in constant time (both sides hashed to the same
 * length first). The expected digest is recomputed only when a reload changes the token.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { bearerToken } from '../core/credential.js';

const digest = (b: Buffer | string): Buffer => createHash('sha256').update(b).digest();

export interface LoginTokenCheck {
  /** False when no login token is configured (the APIs that need it are off). */
  configured(): boolean;
  /** Whether the request's `Authorization: Bearer …` is the login token. */
  ok(headers: IncomingHttpHeaders): boolean;
}

export function createLoginTokenCheck(loginToken: () => Buffer | null): LoginTokenCheck {
  let expected: { token: Buffer; digest: Buffer } | null = null;
  const current = (): Buffer | null => {
    const token = loginToken();
    if (token === null) return null;
    if (expected?.token !== token) expected = { token, digest: digest(token) };
    return expected.digest;
  };
  return {
    configured: () => current() !== null,
    ok(headers) {
      const want = current();
      if (!want) return false;
      // Compared even when absent: the time taken says nothing about what was sent.
      const given = bearerToken(headers) ?? '';
      return timingSafeEqual(digest(given), want) && given !== '';
    },
  };
}
