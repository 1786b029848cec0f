import { describe, expect, it } from 'vitest';
import { canonicalHeaderName, createIdentityHeaders, toHeaderValue } from '../../src/core/headers.js';
import { record } from '../support/fixtures.js';

describe('identity headers', () => {
  const ids = createIdentityHeaders(
    { 'X-User-Id': 'user_id', 'X-User-Roles': 'roles', 'X-Org': 'attributes.org.id', 'X-Email': 'email', 'X-Since': 'created_at' },
    ['X-Auth-User', 'x-user-id'],
  );

  it('lists every protected header once, mapped first', () => {
    expect(ids.protectedNames).toEqual(['X-User-Id', 'X-User-Roles', 'X-Org', 'X-Email', 'X-Since', 'X-Auth-User']);
  });

  it('maps top-level fields and dotted attribute paths', () => {
    const r = record({ roles: ['a', 'b'], attributes: { email: 'e@x', org: { id: 42 } }, created_at: 1_700_000_000_123 });
    expect(ids.identityFor(r)).toEqual([
      ['X-User-Id', 'alice'],
      ['X-User-Roles', 'a,b'],
      ['X-Org', '42'],
      ['X-Email', 'e@x'],
      ['X-Since', '1700000000'],
    ]);
  });

  it('leaves out missing, empty and structured values', () => {
    const r = record({ roles: [], attributes: { org: 'flat', email: { nested: true } } });
    expect(ids.identityFor(r)).toEqual([
      ['X-User-Id', 'alice'],
      ['X-Since', expect.any(String)],
    ]);
  });

  it('does not read inherited properties through a path', () => {
    const spec = createIdentityHeaders({ 'X-P': 'attributes.constructor' }, []);
    expect(spec.identityFor(record({ attributes: {} }))).toEqual([]);
  });

  it.each([
    ['x-user-id', true],
    ['X-USER-ID', true],
    ['x_user_id', true],
    ['x.user.id', true],
    ['X_User.Id', true],
    [' x-user-id ', true],
    ['x-auth-user', true],
    ['x-user-ids', false],
    ['x-userid', false],
    ['cookie', false],
  ])('recognises %j as protected: %s', (name, spoofed) => {
    expect(ids.findSpoofed({ [name]: 'v', accept: '*/*' })).toEqual(spoofed ? [name] : []);
  });

  it('canonicalises aliases to one spelling', () => {
    expect(canonicalHeaderName(' X_User.Id ')).toBe('x-user-id');
  });
});

describe('toHeaderValue', () => {
  it.each([
    ['plain', 'alice', 'alice'],
    ['number', 7, '7'],
    ['boolean', false, 'false'],
    ['array', ['a', 1, true], 'a,1,true'],
    ['non-ASCII is percent-encoded', 'Zoë Ünal', 'Zo%C3%AB %C3%9Cnal'],
    ['empty string', '', undefined],
    ['null', null, undefined],
    ['object', { a: 1 }, undefined],
    ['nested array', [['a']], undefined],
    ['NaN', Number.NaN, undefined],
    ['CRLF', 'a\r\nSet-Cookie: x=1', undefined],
    ['LF alone', 'a\nb', undefined],
    ['NUL', 'a\0b', undefined],
    ['C1 control', 'a\u0085b', undefined],
    ['CRLF inside an array', ['ok', 'x\r\ny'], undefined],
  ])('%s', (_n, input, expected) => {
    expect(toHeaderValue(input)).toBe(expected);
  });
});

describe('headersToRemove', () => {
  const ids = createIdentityHeaders({ 'X-User-Id': 'user_id', 'X-User-Roles': 'roles' }, ['X-Auth-User']);
  const allow = (identity: Array<[string, string]>, spoofed: string[] = []) => ({ result: 'allow' as const, reason: 'authenticated' as const, identity, spoofed });

  it('lists protected headers the decision does not set, never those it sets', () => {
    expect(ids.headersToRemove(allow([['X-User-Id', 'a']]))).toEqual(['x-user-roles', 'x-auth-user']);
    expect(ids.headersToRemove(allow([]))).toEqual(['x-user-id', 'x-user-roles', 'x-auth-user']);
  });

  it('adds every alias the client sent, once, lower-cased', () => {
    const d = allow([['X-User-Id', 'a'], ['X-User-Roles', 'r']], ['x_user_id', 'X.User.Id', 'x-user-id', 'x-auth-user']);
    expect(ids.headersToRemove(d)).toEqual(['x-auth-user', 'x_user_id', 'x.user.id']);
  });
});
