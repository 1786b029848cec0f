import { describe, expect, it } from 'vitest';
import { createTokenCodec, storeKeyOf } from '../../src/session/token.js';
import { OTHER_SECRET, SECRET } from '../support/fixtures.js';

describe('token codec', () => {
  const codec = createTokenCodec([SECRET]);

  it('issues tokens that verify, with a store key that is not the ID', () => {
    const { token, key } = codec.issue();
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{43}$/);
    const v = codec.verify(token);
    expect(v).toEqual({ ok: true, key });
    const id = token.split('.')[0]!;
    expect(key).toBe(storeKeyOf(id));
    expect(key).not.toContain(id);
  });

  it('issues a different ID every time', () => {
    const ids = new Set(Array.from({ length: 1000 }, () => codec.issue().token.split('.')[0]));
    expect(ids.size).toBe(1000);
  });

  it('rejects a token signed under another secret', () => {
    const foreign = createTokenCodec([OTHER_SECRET]).issue().token;
    expect(codec.verify(foreign)).toEqual({ ok: false, reason: 'bad_signature' });
  });

  it('verifies with every configured secret and signs with the first (rotation)', () => {
    const old = createTokenCodec([OTHER_SECRET]).issue();
    const rotated = createTokenCodec([SECRET, OTHER_SECRET]);
    expect(rotated.verify(old.token)).toEqual({ ok: true, key: old.key });
    const fresh = rotated.issue();
    expect(codec.verify(fresh.token).ok).toBe(true);
  });

  it('rejects a token whose ID was changed', () => {
    const { token } = codec.issue();
    const flipped = (token[0] === 'A' ? 'B' : 'A') + token.slice(1);
    expect(codec.verify(flipped)).toEqual({ ok: false, reason: 'bad_signature' });
  });

  it('rejects a non-canonical signature encoding of the right MAC', () => {
    const { token } = codec.issue();
    // The last base64url character of 32 bytes carries 2 unused bits; setting one keeps the bytes.
    const last = token[token.length - 1]!;
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const twin = alphabet[alphabet.indexOf(last) ^ 1]!;
    expect(codec.verify(token.slice(0, -1) + twin)).toEqual({ ok: false, reason: 'malformed_cookie' });
  });

  it.each([
    ['empty', ''],
    ['no dot', 'a'.repeat(87)],
    ['truncated', 'a'.repeat(43) + '.' + 'b'.repeat(42)],
    ['too long', 'a'.repeat(43) + '.' + 'b'.repeat(44)],
    ['standard base64 chars', 'a'.repeat(42) + '+' + '.' + 'b'.repeat(43)],
    ['padding', 'a'.repeat(43) + '.' + 'b'.repeat(42) + '='],
    ['NUL', 'a'.repeat(42) + '\0.' + 'b'.repeat(43)],
    ['CRLF', 'a'.repeat(42) + '\r\n' + 'b'.repeat(43)],
    ['non-ASCII', 'é'.repeat(43) + '.' + 'b'.repeat(43)],
    ['8 kB', 'a'.repeat(8192)],
  ])('calls %s malformed', (_name, token) => {
    expect(codec.verify(token)).toEqual({ ok: false, reason: 'malformed_cookie' });
  });
});
