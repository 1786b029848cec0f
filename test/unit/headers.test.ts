import { describe, expect, it } from 'vitest';
import { canonicalHeaderName, createIdentityHeaders, toHeaderValue } from '../../src/core/headers.js';
import { record } from '../support/fixtures.js';

describe('identity headers', () => {
  const ids = createIdentityHeaders(
    { 'X-User-Id': 'user_id', 'X-User-Roles': 'roles', 'X-Org': 'attributes.org.id', 'X-Email': 'email', 'X-Since': 'created_at' },
    ['X-Auth-User', 'x-user-id'],
  );

  it('lists every protected header once, mapped first, X-Sessiongate-Degraded last', () => {
    expect(ids.protectedNames).toEqual(['X-User-Id', 'X-User-Roles', 'X-Org', 'X-Email', 'X-Since', 'X-Auth-User', 'X-Sessiongate-Degraded']);
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
    ['X-Sessiongate-Degraded', true],
    ['x_sessiongate.degraded', true],
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
    ['astral characters too', 'a😀', 'a%F0%9F%98%80'],
    ['% is encoded: the literal encoding of josé is not josé', 'jos%C3%A9', 'jos%25C3%25A9'],
    ['leading spaces are encoded (HTTP would drop them)', '  alice', '%20%20alice'],
    ['trailing spaces too', 'alice ', 'alice%20'],
    ['a space alone', ' ', '%20'],
    ['inner spaces are kept', 'a b  c', 'a b  c'],
    ['a comma in a scalar is encoded', 'Doe, John', 'Doe%2C John'],
    ['a comma inside a list item is encoded', ['a,b', 'c'], 'a%2Cb,c'],
    ['list items are encoded one by one', [' a', 'é', '%'], '%20a,%C3%A9,%25'],
    ['visible ASCII is kept', '!"#$&\'()*+-./:;<=>?@[\\]^_`{|}~', '!"#$&\'()*+-./:;<=>?@[\\]^_`{|}~'],
    ['empty array', [], undefined],
    ['a lone high surrogate', 'jos\ud800', undefined],
    ['a lone low surrogate', '\udc00', undefined],
    ['a reversed pair', '\udc00\ud800', undefined],
    ['a lone surrogate inside an array', ['ok', 'x\ud800'], undefined],
    ['TAB', 'a\tb', undefined],
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

describe('toHeaderValue is injective', () => {
  it('no two different values of a kind share a header value, and percent-decoding gives each back', () => {
    const texts = [
      'alice',
      ' alice',
      'alice ',
      '  alice',
      'al ice',
      '%20alice',
      'josé',
      'jos%C3%A9',
      'jos%25C3%25A9',
      'a,b',
      'a%2Cb',
      'Zoë',
      'Zo%C3%AB',
      '%',
      '%25',
      '😀',
      '%F0%9F%98%80',
    ];
    const seen = new Map<string, unknown>();
    for (const t of texts) {
      const h = toHeaderValue(t)!;
      expect(seen.get(h), `${JSON.stringify(t)} and ${JSON.stringify(seen.get(h))}`).toBeUndefined();
      seen.set(h, t);
      expect(decodeURIComponent(h)).toBe(t);
    }
    const lists: unknown[][] = [['a', 'b'], ['a,b'], ['a', 'b', ''], ['', 'a', 'b'], ['a b'], [' a', 'b']];
    const seenLists = new Map<string, unknown>();
    for (const l of lists) {
      const h = toHeaderValue(l)!;
      expect(seenLists.get(h), JSON.stringify(l)).toBeUndefined();
      seenLists.set(h, l);
      expect(h.split(',').map(decodeURIComponent)).toEqual(l);
    }
    // A list is not a scalar that happens to hold its separator.
    expect(toHeaderValue(['a', 'b'])).not.toBe(toHeaderValue('a,b'));
  });
});

describe('headersToRemove', () => {
  const ids = createIdentityHeaders({ 'X-User-Id': 'user_id', 'X-User-Roles': 'roles' }, ['X-Auth-User']);
  const remove = (identity: Array<[string, string]>, spoofed: string[] = [], cookie = false, authorization = false) =>
    ids.headersToRemove(identity, spoofed, cookie, authorization);

  it('lists protected headers the decision does not set, never those it sets', () => {
    expect(remove([['X-User-Id', 'a']])).toEqual(['x-user-roles', 'x-auth-user', 'x-sessiongate-degraded']);
    expect(remove([])).toEqual(['x-user-id', 'x-user-roles', 'x-auth-user', 'x-sessiongate-degraded']);
    expect(remove([['X-Sessiongate-Degraded', 'store_unavailable']])).toEqual(['x-user-id', 'x-user-roles', 'x-auth-user']);
  });

  it('adds every alias the client sent, once, lower-cased', () => {
    expect(
      remove(
        [
          ['X-User-Id', 'a'],
          ['X-User-Roles', 'r'],
        ],
        ['x_user_id', 'X.User.Id', 'x-user-id', 'x-auth-user'],
      ),
    ).toEqual(['x-auth-user', 'x-sessiongate-degraded', 'x_user_id', 'x.user.id']);
  });

  it('ends with cookie and authorization when the upstream gets none of them', () => {
    expect(remove([['X-User-Id', 'a']], [], true, true)).toEqual(['x-user-roles', 'x-auth-user', 'x-sessiongate-degraded', 'cookie', 'authorization']);
    expect(remove([['X-User-Id', 'a']], ['x_user_id'], false, true)).toEqual([
      'x-user-roles',
      'x-auth-user',
      'x-sessiongate-degraded',
      'x_user_id',
      'authorization',
    ]);
  });

  it('hands the same frozen list to every allow of one shape (no allocation per request)', () => {
    const a = remove(
      [
        ['X-User-Id', 'a'],
        ['X-User-Roles', 'r'],
      ],
      [],
      true,
    );
    expect(
      remove(
        [
          ['X-User-Id', 'b'],
          ['X-User-Roles', 's'],
        ],
        [],
        true,
      ),
    ).toBe(a);
    expect(Object.isFrozen(a)).toBe(true);
    expect(
      remove(
        [
          ['X-User-Id', 'b'],
          ['X-User-Roles', 's'],
        ],
        [],
        false,
      ),
    ).not.toBe(a);
  });
});
