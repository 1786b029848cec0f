import { describe, expect, it } from 'vitest';
import { createTokenCodec, familyOf, storeKeyOf, TOKEN_LENGTH } from '../../src/session/token.js';
import { OTHER_SECRET, SECRET } from '../support/fixtures.js';

const SHAPE = /^[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{43}$/;

describe('token codec', () => {
  const codec = createTokenCodec([SECRET]);

  it('issues `<id>.<secret>.<mac>` tokens that verify, with a store key that is not the ID', () => {
    const { token, key, secret } = codec.issue();
    expect(token).toMatch(SHAPE);
    expect(token).toHaveLength(TOKEN_LENGTH);
    const [id, sec] = token.split('.') as [string, string];
    expect(sec).toBe(secret.toString('base64url'));
    const v = codec.verify(token);
    expect(v).toEqual({ ok: true, key, secret });
    expect(key).toBe(storeKeyOf(id));
    expect(key).toBe(`{${id.slice(0, 8)}}${key.slice(10)}`);
    expect(key).not.toContain(id);
    expect(key).not.toContain(sec);
  });

  it('keeps the family tag when rotating, so old and new key share a Cluster slot', () => {
    const first = codec.issue();
    const next = codec.issue(familyOf(first.key));
    expect(familyOf(next.key)).toBe(familyOf(first.key));
    expect(next.token.slice(0, 8)).toBe(first.token.slice(0, 8));
    expect(next.token.slice(8, 43)).not.toBe(first.token.slice(8, 43));
    expect(next.secret.equals(first.secret)).toBe(false);
  });

  it('issues a different ID and secret every time', () => {
    const tokens = Array.from({ length: 1000 }, () => codec.issue());
    expect(new Set(tokens.map((t) => t.token.split('.')[0])).size).toBe(1000);
    expect(new Set(tokens.map((t) => t.secret.toString('hex'))).size).toBe(1000);
  });

  it('rejects a token signed under another secret', () => {
    const foreign = createTokenCodec([OTHER_SECRET]).issue().token;
    expect(codec.verify(foreign)).toEqual({ ok: false, reason: 'bad_signature' });
  });

  it('verifies with every configured secret and signs with the first (rotation)', () => {
    const old = createTokenCodec([OTHER_SECRET]).issue();
    const rotated = createTokenCodec([SECRET, OTHER_SECRET]);
    expect(rotated.verify(old.token)).toEqual({ ok: true, key: old.key, secret: old.secret });
    const fresh = rotated.issue();
    expect(codec.verify(fresh.token).ok).toBe(true);
  });

  it('rejects a token whose ID or secret was changed', () => {
    const { token } = codec.issue();
    const flip = (i: number) => token.slice(0, i) + (token[i] === 'A' ? 'B' : 'A') + token.slice(i + 1);
    expect(codec.verify(flip(0))).toEqual({ ok: false, reason: 'bad_signature' });
    expect(codec.verify(flip(50))).toEqual({ ok: false, reason: 'bad_signature' });
    // The secret of one token with the ID and MAC of another.
    const other = codec.issue().token;
    expect(codec.verify(`${token.slice(0, 44)}${other.slice(44, 87)}${token.slice(87)}`)).toEqual({ ok: false, reason: 'bad_signature' });
  });

  it('rejects non-canonical encodings of the right bytes', () => {
    const { token } = codec.issue();
    // The last base64url character of 32 bytes carries 2 unused bits; setting one keeps the bytes.
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const twin = (c: string) => alphabet[alphabet.indexOf(c) ^ 1]!;
    expect(codec.verify(token.slice(0, -1) + twin(token.at(-1)!))).toEqual({ ok: false, reason: 'malformed_cookie' });
    expect(codec.verify(token.slice(0, 86) + twin(token[86]!) + token.slice(87))).toEqual({ ok: false, reason: 'malformed_cookie' });
  });

  it('remembers valid tokens, never invalid ones, and forgets them with the secret list', () => {
    const a = createTokenCodec([SECRET]);
    const { token, key, secret } = a.issue();
    expect(a.verify(token)).toEqual({ ok: true, key, secret });
    expect(a.verify(token)).toEqual({ ok: true, key, secret }); // from memory
    const flipped = token.slice(0, -2) + (token.endsWith('AA') ? 'BA' : 'AA');
    expect(a.verify(flipped)).toEqual({ ok: false, reason: 'bad_signature' });
    expect(a.verify(flipped)).toEqual({ ok: false, reason: 'bad_signature' });
    // A reload with the secret retired builds a new codec: the remembered answer is gone.
    expect(createTokenCodec([OTHER_SECRET]).verify(token)).toEqual({ ok: false, reason: 'bad_signature' });
  });

  it.each([
    ['empty', ''],
    ['two parts (the old format)', `${'a'.repeat(43)}.${'b'.repeat(43)}`],
    ['no dots', 'a'.repeat(131)],
    ['truncated', `${'a'.repeat(43)}.${'b'.repeat(43)}.${'c'.repeat(42)}`],
    ['too long', `${'a'.repeat(43)}.${'b'.repeat(43)}.${'c'.repeat(44)}`],
    ['standard base64 chars', `${'a'.repeat(42)}+.${'b'.repeat(43)}.${'c'.repeat(43)}`],
    ['padding', `${'a'.repeat(43)}.${'b'.repeat(43)}.${'c'.repeat(42)}=`],
    ['NUL', `${'a'.repeat(42)}\0.${'b'.repeat(43)}.${'c'.repeat(43)}`],
    ['CRLF', `${'a'.repeat(42)}\r\n${'b'.repeat(43)}.${'c'.repeat(43)}`],
    ['non-ASCII', `${'é'.repeat(43)}.${'b'.repeat(43)}.${'c'.repeat(43)}`],
    ['8 kB', 'a'.repeat(8192)],
  ])('calls %s malformed', (_name, token) => {
    expect(codec.verify(token)).toEqual({ ok: false, reason: 'malformed_cookie' });
  });
});
