import { describe, expect, it } from 'vitest';
import { createIdentityHeaders } from '../../src/core/headers.js';
import type { ExternalStore } from '../../src/external/common.js';
import {
  compileMapping,
  createCookieReader,
  createExpressSessionSource,
  createTouchLimiter,
  type ExpressSessionSpec,
  expressSessionRecord,
  signatureOf,
  touchSeconds,
} from '../../src/external/express-session.js';

// Vectors from the cookie-signature package's sign() (express-session's signer).
const VECTORS: Array<[string, string, string]> = [
  ['hello', 'tobiiscool', 'DGDUkGlIkCzPz+C0B064FNgHdEjox7ch8tOBGslZ5QI'],
  ['abc', 'x', '5/eanZ1i3bVwYTkA9kRtACVv3Pa7cHK/oSZXwktxTzI'],
];
const SID = 'Yh3kq0w8Jm0pQ1x3o2d4kqzWg1yJr9cT';
/** The browser's value of connect.sid for SID signed with 'keyboard cat' (cookie.serialize URL-encodes it). */
const BROWSER_VALUE = 's%3AYh3kq0w8Jm0pQ1x3o2d4kqzWg1yJr9cT.yswi8UTXkyym3O1iQbr29iDy%2FdOjGYJ1AX2qGaXL3iY';

const signed = (sid: string, secret: string) => encodeURIComponent(`s:${sid}.${signatureOf(sid, secret)}`);

describe('express-session cookie signature', () => {
  it.each(VECTORS)('signs %j with %j as cookie-signature does', (value, secret, sig) => {
    expect(signatureOf(value, secret)).toBe(sig);
  });

  it('accepts a good cookie, URL-encoded or not, and returns the session ID', () => {
    const read = createCookieReader(['keyboard cat']);
    expect(read(BROWSER_VALUE)).toEqual({ ok: true, sid: SID });
    expect(read(decodeURIComponent(BROWSER_VALUE))).toEqual({ ok: true, sid: SID });
  });

  it('keeps dots in the session ID (the signature follows the last one)', () => {
    const read = createCookieReader(['k']);
    expect(read(signed('a.b.c', 'k'))).toEqual({ ok: true, sid: 'a.b.c' });
  });

  it('refuses a tampered session ID or signature', () => {
    const read = createCookieReader(['keyboard cat']);
    const raw = decodeURIComponent(BROWSER_VALUE);
    const otherSid = raw.replace('Yh3k', 'Yh3j');
    const lastSigChar = raw.at(-1) === 'Y' ? 'Z' : 'Y';
    expect(read(otherSid)).toEqual({ ok: false, reason: 'bad_signature' });
    expect(read(raw.slice(0, -1) + lastSigChar)).toEqual({ ok: false, reason: 'bad_signature' });
  });

  it('refuses a cookie signed with another secret', () => {
    expect(createCookieReader(['keyboard cat'])(signed(SID, 'another secret'))).toEqual({ ok: false, reason: 'bad_signature' });
  });

  it('accepts every configured secret, as express-session does when rotating', () => {
    const read = createCookieReader(['new secret', 'old secret']);
    expect(read(signed(SID, 'new secret'))).toEqual({ ok: true, sid: SID });
    expect(read(signed(SID, 'old secret'))).toEqual({ ok: true, sid: SID });
    expect(read(signed(SID, 'older secret'))).toEqual({ ok: false, reason: 'bad_signature' });
  });

  it('uses the secret as UTF-8 text, as Node does for a string key', () => {
    expect(createCookieReader(['clé secrète'])(signed(SID, 'clé secrète'))).toEqual({ ok: true, sid: SID });
  });

  it.each([
    ['empty', ''],
    ['unsigned (express-session ignores it too)', SID],
    ['no s: prefix', `${SID}.${signatureOf(SID, 'k')}`],
    ['no signature', `s:${SID}`],
    ['empty session ID', `s:.${signatureOf('', 'k')}`],
    ['short signature', `s:${SID}.abc`],
    ['padded signature', `s:${SID}.${signatureOf(SID, 'k')}=`],
    ['base64url signature', `s:${SID}.${signatureOf(SID, 'k').slice(0, 42)}_`],
    ['broken percent-encoding', 's%3A%E0%A4%A.x'],
    ['oversize', `s:${'a'.repeat(5000)}.${signatureOf('a'.repeat(5000), 'k')}`],
  ])('calls %s malformed', (_name, value) => {
    expect(createCookieReader(['k'])(value)).toEqual({ ok: false, reason: 'malformed_cookie' });
  });
});

const NOW = Date.UTC(2026, 0, 15, 12, 0, 0);
const iso = (ms: number) => new Date(ms).toISOString();
const cookie = (expires: number | null, originalMaxAge: number | null = expires === null ? null : expires - NOW) => ({
  originalMaxAge,
  expires: expires === null ? null : iso(expires),
  secure: false,
  httpOnly: true,
  path: '/',
});
const map = (user_id = 'passport.user', roles: string | null = null) => compileMapping({ user_id, roles });
const rec = (sess: unknown, m = map(), now = NOW) => expressSessionRecord(JSON.stringify(sess), m, now);

describe('express-session record mapping', () => {
  it('maps passport.user, roles and the whole session (without cookie) as a fixed record', () => {
    const sess = { cookie: cookie(NOW + 3600_000), passport: { user: 'alice' }, profile: { email: 'alice@example.com' }, roles: ['user', 'editor'] };
    const s = rec(sess, map('passport.user', 'roles'))!;
    expect(s.record).toEqual({
      user_id: 'alice',
      roles: ['user', 'editor'],
      attributes: { passport: { user: 'alice' }, profile: { email: 'alice@example.com' }, roles: ['user', 'editor'] },
      created_at: NOW,
      issued_at: NOW,
      touched_at: NOW,
      expires_at: NOW + 3600_000,
      idle_expires_at: NOW + 3600_000,
      fixed: true,
    });
    expect(s.cookie).toEqual({ expires: NOW + 3600_000, originalMaxAge: 3600_000 });
  });

  it('reads a numeric user ID as its decimal text', () => {
    expect(rec({ cookie: cookie(null), passport: { user: 42 } })!.record.user_id).toBe('42');
  });

  it('lives as long as the key without cookie.expires', () => {
    expect(rec({ cookie: cookie(null), passport: { user: 'a' } })!.record.expires_at).toBe(Infinity);
    expect(rec({ passport: { user: 'a' } })!.record.expires_at).toBe(Infinity);
  });

  it('is no session once cookie.expires has passed, or when it cannot be read', () => {
    expect(rec({ cookie: cookie(NOW), passport: { user: 'a' } })).toBeNull();
    expect(rec({ cookie: cookie(NOW - 1), passport: { user: 'a' } })).toBeNull();
    expect(rec({ cookie: { expires: 'soon' }, passport: { user: 'a' } })).toBeNull();
    expect(rec({ cookie: { expires: true }, passport: { user: 'a' } })).toBeNull();
    expect(rec({ cookie: 'x', passport: { user: 'a' } })).toBeNull();
  });

  it('is no session without a usable user ID', () => {
    for (const user of [undefined, null, '', {}, ['a'], true, Number.NaN, 'x'.repeat(257), 'alice\r\nX-User-Roles: admin', 'a\u0000b', 'a\u0085b']) {
      expect(rec({ cookie: cookie(null), passport: { user } }), JSON.stringify(user)).toBeNull();
    }
    expect(rec({ cookie: cookie(null) })).toBeNull(); // an anonymous visitor's session
    expect(rec({ cookie: cookie(null), passport: 'alice' })).toBeNull();
  });

  it('does not follow inherited properties', () => {
    expect(expressSessionRecord('{"passport":{}}', map('passport.constructor'), NOW)).toBeNull();
    expect(expressSessionRecord('{"__proto__":{"user":"x"},"passport":{}}', map('passport.user'), NOW)).toBeNull();
  });

  it('is no session for text that is not a JSON object', () => {
    for (const text of ['', 'not json', '[]', '"alice"', '42', 'null']) expect(expressSessionRecord(text, map(), NOW)).toBeNull();
  });

  it('takes roles from an array or a comma-separated string, dropping what is not a role name', () => {
    const roles = (v: unknown) => rec({ passport: { user: 'a' }, r: v }, map('passport.user', 'r'))!.record.roles;
    expect(roles(['user', 'admin'])).toEqual(['user', 'admin']);
    expect(roles('user, admin,,')).toEqual(['user', 'admin']);
    expect(roles(['user,admin', 'two words', 'ok', 7, null, 'a\nb', 'ok'])).toEqual(['ok']);
    expect(roles(undefined)).toEqual([]);
    expect(roles({ admin: true })).toEqual([]);
  });

  it('never turns a control character in the session into a header', () => {
    const identity = createIdentityHeaders(
      { 'X-User-Id': 'user_id', 'X-User-Email': 'attributes.profile.email', 'X-User-Name': 'attributes.profile.name' },
      [],
    );
    const s = rec({ passport: { user: 'alice' }, profile: { email: 'alice@example.com\r\nX-Admin: 1', name: 'Zoë' } })!;
    expect(identity.identityFor(s.record)).toEqual([
      ['X-User-Id', 'alice'],
      ['X-User-Name', 'Zo%C3%AB'],
    ]);
  });
});

describe('express-session touch', () => {
  it('uses the TTL connect-redis sets when express-session touches: originalMaxAge, else ttl', () => {
    expect(touchSeconds({ expires: NOW + 10_000, originalMaxAge: 3600_500 }, 86_400, NOW)).toBe(3601);
    expect(touchSeconds({ expires: NOW + 10_200 }, 86_400, NOW)).toBe(11);
    expect(touchSeconds({}, 86_400, NOW)).toBe(86_400);
    expect(touchSeconds({}, 600, NOW)).toBe(600);
  });

  it('touches a session at most once a minute', () => {
    const due = createTouchLimiter();
    expect(due('a', NOW)).toBe(true);
    expect(due('a', NOW + 59_999)).toBe(false);
    expect(due('b', NOW + 1)).toBe(true);
    expect(due('a', NOW + 60_000)).toBe(true);
    expect(due('a', NOW + 60_001)).toBe(false);
  });
});

/** A store that records every call: the adapter may only GET, and EXPIRE when touch is on. */
function fakeStore(data: Record<string, string>) {
  const calls: string[] = [];
  const store: ExternalStore = {
    async get(key) {
      calls.push(`get ${key}`);
      return data[key] ?? null;
    },
    async expire(key, seconds) {
      calls.push(`expire ${key} ${seconds}`);
    },
    async close() {
      calls.push('close');
    },
  };
  return { store, calls };
}

const SPEC: ExpressSessionSpec = {
  kind: 'express-session',
  cookie: 'connect.sid',
  secrets: ['keyboard cat'],
  store: 'redis://127.0.0.1:6379',
  prefix: 'sess:',
  user_id: 'passport.user',
  roles: null,
  touch: false,
  ttl: 86_400,
};

describe('express-session source', () => {
  const data = {
    'sess:live': JSON.stringify({ cookie: cookie(NOW + 7200_000, 7200_000), passport: { user: 'alice' } }),
    'sess:gone': JSON.stringify({ cookie: cookie(NOW - 1, 7200_000), passport: { user: 'bob' } }),
  };

  it('reads <prefix><sid> and only reads', async () => {
    const { store, calls } = fakeStore(data);
    const src = createExpressSessionSource(SPEC, store);
    expect(src.kind).toBe('express-session');
    expect(src.cookie).toBe('connect.sid');
    expect((await src.lookup('live', NOW))?.user_id).toBe('alice');
    expect(await src.lookup('gone', NOW)).toBeNull();
    expect(await src.lookup('missing', NOW)).toBeNull();
    await src.lookup('live', NOW + 120_000);
    expect(calls).toEqual(['get sess:live', 'get sess:gone', 'get sess:missing', 'get sess:live']);
  });

  it('with touch, refreshes the TTL of a live session at most once a minute', async () => {
    const { store, calls } = fakeStore(data);
    const src = createExpressSessionSource({ ...SPEC, touch: true }, store);
    await src.lookup('live', NOW);
    await src.lookup('live', NOW + 30_000);
    await src.lookup('gone', NOW);
    await src.lookup('live', NOW + 61_000);
    expect(calls).toEqual(['get sess:live', 'expire sess:live 7200', 'get sess:live', 'get sess:gone', 'get sess:live', 'expire sess:live 7200']);
  });

  it('a failed touch does not fail the lookup', async () => {
    const { store } = fakeStore(data);
    const errors: unknown[] = [];
    const failing: ExternalStore = { ...store, expire: () => Promise.reject(new Error('down')) };
    const src = createExpressSessionSource({ ...SPEC, touch: true }, failing, (e) => errors.push(e));
    expect((await src.lookup('live', NOW))?.user_id).toBe('alice');
    await new Promise((r) => setImmediate(r));
    expect(errors).toHaveLength(1);
  });

  it('passes a store failure on to check() as a throw', async () => {
    const { store } = fakeStore(data);
    const src = createExpressSessionSource(SPEC, { ...store, get: () => Promise.reject(new Error('down')) });
    await expect(src.lookup('live', NOW)).rejects.toThrow('down');
  });
});
