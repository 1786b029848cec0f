import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { ExternalStore } from '../../src/external/common.js';
import { compileGenericMapping, compileKey, createGenericSource, type GenericSpec, genericRecord, instantFrom } from '../../src/external/generic.js';

const NOW = Date.UTC(2026, 0, 15, 12, 0, 0);
const TOKEN = 'f3b1c2d4e5a6978877665544332211ff';

describe('generic key template', () => {
  it('puts the token, or its hex SHA-256, in place', () => {
    expect(compileKey('session:{token}')(TOKEN)).toBe(`session:${TOKEN}`);
    expect(compileKey('app:{sha256}:data')(TOKEN)).toBe(`app:${createHash('sha256').update(TOKEN).digest('hex')}:data`);
    expect(compileKey('{token}')(TOKEN)).toBe(TOKEN);
  });
});

describe('generic expiry', () => {
  it.each([
    [1_768_478_400, 1_768_478_400_000], // seconds
    [1_768_478_400_000, 1_768_478_400_000], // milliseconds
    ['1768478400', 1_768_478_400_000],
    ['2026-01-15T12:00:00Z', NOW],
    ['2026-01-15T13:00:00.000+01:00', NOW],
  ])('reads %j', (v, ms) => expect(instantFrom(v)).toBe(ms));
  it.each([null, undefined, '', 'tomorrow', 'Thu, 15 Jan 2026 12:00:00 GMT', '2026-13-45T99:00:00Z', Number.NaN, Infinity, {}, true])('refuses %j', (v) =>
    expect(instantFrom(v)).toBeNull(),
  );
});

const json = compileGenericMapping({ format: 'json', user_id: 'user.id', roles: 'user.roles', expires_at: 'exp' });

describe('generic record mapping', () => {
  it('maps a JSON record: user ID, roles, expiry and the whole object as attributes', () => {
    const value = { user: { id: 'alice', roles: 'user,admin' }, exp: Math.floor(NOW / 1000) + 60, email: 'alice@example.com' };
    expect(genericRecord(JSON.stringify(value), json, NOW)).toEqual({
      user_id: 'alice',
      roles: ['user', 'admin'],
      attributes: value,
      created_at: NOW,
      issued_at: NOW,
      touched_at: NOW,
      expires_at: NOW + 60_000,
      idle_expires_at: NOW + 60_000,
      fixed: true,
    });
  });

  it('with expires_at configured, refuses a record whose expiry is past, missing or unreadable', () => {
    const at = (exp: unknown) => genericRecord(JSON.stringify({ user: { id: 'a' }, exp }), json, NOW);
    expect(at(Math.floor(NOW / 1000))).toBeNull();
    expect(at(NOW - 1)).toBeNull();
    expect(at(undefined)).toBeNull();
    expect(at('later')).toBeNull();
    expect(at(new Date(NOW + 1000).toISOString())?.expires_at).toBe(NOW + 1000);
  });

  it('without expires_at, lives as long as its key', () => {
    const m = compileGenericMapping({ format: 'json', user_id: 'uid', roles: null, expires_at: null });
    expect(genericRecord('{"uid":7}', m, NOW)).toMatchObject({ user_id: '7', roles: [], expires_at: Infinity });
  });

  it('refuses a JSON record without a usable user ID, or that is not an object', () => {
    const m = compileGenericMapping({ format: 'json', user_id: 'uid', roles: null, expires_at: null });
    for (const v of ['{}', '{"uid":""}', '{"uid":"a\\nb"}', '{"uid":{"x":1}}', '[]', 'alice', '']) expect(genericRecord(v, m, NOW), v).toBeNull();
  });

  it('reads a string record as the user ID itself', () => {
    const m = compileGenericMapping({ format: 'string', user_id: 'user_id', roles: null, expires_at: null });
    expect(genericRecord('alice@example.com', m, NOW)).toMatchObject({
      user_id: 'alice@example.com',
      roles: [],
      attributes: {},
      expires_at: Infinity,
      fixed: true,
    });
    expect(genericRecord('{"uid":1}', m, NOW)?.user_id).toBe('{"uid":1}');
    for (const v of ['', 'alice\r\nX-User-Roles: admin', 'a\tb']) expect(genericRecord(v, m, NOW)).toBeNull();
  });
});

describe('generic source', () => {
  const spec: GenericSpec = {
    kind: 'generic',
    cookie: 'app_session',
    store: 'redis://127.0.0.1:6379',
    key: 'session:{token}',
    format: 'string',
    user_id: 'user_id',
    roles: null,
    expires_at: null,
  };
  const calls: string[] = [];
  const store: ExternalStore = {
    async get(key) {
      calls.push(key);
      return key === `session:${TOKEN}` ? 'alice' : null;
    },
    expire: () => Promise.reject(new Error('must never write')),
    close: async () => {},
  };
  const src = createGenericSource(spec, store);

  it('accepts a sane opaque token and looks it up', async () => {
    expect(src.read(TOKEN)).toEqual({ ok: true, sid: TOKEN });
    expect((await src.lookup(TOKEN, NOW))?.user_id).toBe('alice');
    expect(await src.lookup(`${TOKEN}00`, NOW)).toBeNull();
  });

  it.each([
    ['too short', 'abc123'],
    ['too long', 'a'.repeat(513)],
    ['a brace (Cluster hash tag)', `{x}${TOKEN}`],
    ['a space', `${TOKEN} x`],
    ['a percent sign', `${TOKEN}%0d`],
    ['a control character', `${TOKEN}\u0000`],
    ['a colon', `${TOKEN}:*`],
    ['non-ASCII', `${TOKEN}é`],
  ])('refuses a token with %s as malformed before any store call', (_n, token) => {
    const before = calls.length;
    expect(src.read(token)).toEqual({ ok: false, reason: 'malformed_cookie' });
    expect(calls.length).toBe(before);
  });

  it.each(['9f8e7d6c-5b4a-4392-8a1b-0c1d2e3f4a5b', 'dGhpcyBpcyBhIHRva2VuIQ==', 'eyJhbGciOi.eyJzdWIiOi.sig-nature_ok'])('accepts %s', (token) => {
    expect(src.read(token)).toEqual({ ok: true, sid: token });
  });
});
