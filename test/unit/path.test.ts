import { describe, expect, it } from 'vitest';
import { normalisePath } from '../../src/core/path.js';

describe('normalisePath', () => {
  it.each([
    ['/', '/'],
    ['/a/b', '/a/b'],
    ['/a/b/', '/a/b/'],
    ['/a/b?x=1', '/a/b'],
    ['/private?x=/~assets/', '/private'],
    ['//admin', '/admin'],
    ['/a//b///c', '/a/b/c'],
    ['/./a/./b', '/a/b'],
    ['/admin;x', '/admin'],
    ['/admin;jsessionid=1/x', '/admin/x'],
    ['/%61dmin', '/admin'],
    ['/%7Euser', '/~user'],
    ['/a%20b', '/a%20b'],
    ['/a%2cb', '/a%2Cb'],
    ['/caf%C3%A9', '/caf%C3%A9'],
    ['http://evil.example/admin', '/admin'],
    ['HTTPS://h', '/'],
  ])('%s -> %s', (input, expected) => {
    expect(normalisePath(input)).toBe(expected);
  });

  it.each([
    ['empty', ''],
    ['no leading slash', 'admin'],
    ['a fragment (never sent by clients; /pub/#/../../admin is /admin to some apps)', '/a/b#frag'],
    ['a fragment after the query', '/a?x#/../../admin'],
    ['a double-encoded dot', '/~assets/%252e%252e/admin'],
    ['a double-encoded dot with encoded hex digits', '/%25%32%65%25%32%65/admin'],
    ['.. (resolved, /private/.. is / but /private to a prefix router on the raw path)', '/private/..'],
    ['.. in the middle', '/a/b/../c'],
    ['.. above the root', '/../../a'],
    ['.. out of a public prefix', '/~assets/../admin'],
    ['encoded ..', '/~assets/%2e%2e/admin'],
    ['encoded .. (upper case)', '/~assets/%2E%2E/admin'],
    ['half-encoded ..', '/~assets/.%2e/admin'],
    ['..;', '/~assets/..;/admin'],
    ['..; after an empty param segment', '/private/;/..'],
    ['a double-encoded slash', '/a%252fb'],
    ['asterisk form', '*'],
    ['encoded slash', '/~assets/..%2fadmin'],
    ['encoded slash upper', '/~assets/..%2Fadmin'],
    ['encoded backslash', '/~assets/..%5cadmin'],
    ['raw backslash', '/~assets\\..\\admin'],
    ['NUL', '/admin%00.css'],
    ['encoded CR', '/a%0db'],
    ['encoded LF', '/a%0Ab'],
    ['encoded DEL', '/a%7f'],
    ['raw space', '/a b'],
    ['raw tab', '/a\tb'],
    ['raw non-ASCII', '/café'],
    ['bad escape', '/a%zz'],
    ['truncated escape', '/a%2'],
    ['overlong UTF-8 dot', '/%c0%ae%c0%ae/admin'],
    ['overlong UTF-8 slash', '/a%c0%afb'],
    ['lone continuation byte', '/a%80'],
    ['too long', '/' + 'a'.repeat(9000)],
  ])('refuses %s', (_name, input) => {
    expect(normalisePath(input)).toBeNull();
  });

  it('is idempotent on its own output', () => {
    for (const p of ['/a/./b/c/', '//x//y', '/%61%62%2C', '/a;b/c;d']) {
      const once = normalisePath(p)!;
      expect(normalisePath(once)).toBe(once);
    }
  });
});
