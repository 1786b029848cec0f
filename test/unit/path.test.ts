import { describe, expect, it } from 'vitest';
import { normalisePath, readPath } from '../../src/core/path.js';

describe('normalisePath', () => {
  it.each([
    ['/', '/'],
    ['/a/b', '/a/b'],
    ['/a/b/', '/a/b/'],
    ['/a/b?x=1', '/a/b'],
    ['/private?x=/~assets/', '/private'],
    ['/a//b///c', '/a/b/c'],
    ['/./a/./b', '/a/b'],
    ['/a/b/.', '/a/b/'],
    ['/%61dmin', '/admin'],
    ['/%7Euser', '/~user'],
    ['/a%20b', '/a%20b'],
    ['/a%2cb', '/a%2Cb'],
    ['/caf%C3%A9', '/caf%C3%A9'],
    ['/caf%c3%a9/men%C3%BC', '/caf%C3%A9/men%C3%BC'],
    ['/%E6%97%A5%E6%9C%AC', '/%E6%97%A5%E6%9C%AC'],
    ['/%D0%B0dmin', '/%D0%B0dmin'], // Cyrillic а: no normalisation or case mapping makes it ASCII
    ['/a.b/c-d_e~f', '/a.b/c-d_e~f'],
    ['/a+b/x', '/a+b/x'],
    ['/a%20b', '/a%20b'],
    ['/v1/x:run', '/v1/x:run'],
    ['/~assets/', '/~assets/'],
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
    // `;` in any form: Tomcat and Spring cut `;params`, some stacks decode `%3b` and cut then.
    ['a path parameter', '/admin;x'],
    ['jsessionid', '/admin;jsessionid=1/x'],
    ['..%3b (encoded ..;)', '/~assets/..%3b/admin/x'],
    ['..%3B (encoded ..;, upper case)', '/~assets/..%3B/admin/x'],
    ['%3b after a protected segment', '/admin%3b/x'],
    ['%3B param', '/admin%3Bx=1/x'],
    ['.%2e%3b', '/~assets/.%2e%3b/admin'],
    // Encoded delimiters: an application that decodes and parses again cuts there.
    ['encoded ?', '/admin%3f/x'],
    ['encoded #', '/admin%23/x'],
    // A first segment that is empty: an authority to WHATWG URL and urlsplit.
    ['// at the start', '//admin'],
    ['// at the start before a public prefix', '//~assets/admin/secret'],
    ['/// at the start', '///~assets/admin'],
    ['// after a . segment', '/.//~assets/admin'],
    ['// after an encoded . segment', '/%2e//~assets/admin'],
    ['// alone', '//'],
    ['absolute form with // after the authority', 'http://h//~assets/admin'],
    // Unicode that folds to ASCII under NFKC or a case mapping.
    ['fullwidth dots (NFKC ..)', '/~assets/%ef%bc%8e%ef%bc%8e/admin/secret'],
    ['two-dot leader (NFKC ..)', '/~assets/%e2%80%a5/admin/secret'],
    ['one-dot leaders', '/~assets/%e2%80%a4%e2%80%a4/admin'],
    ['ellipsis', '/~assets/%e2%80%a6/admin'],
    ['small full stop', '/~assets/%ef%b9%92%ef%b9%92/admin'],
    ['fullwidth solidus', '/~assets/%ef%bc%8e%ef%bc%8e%ef%bc%8fadmin'],
    ['fullwidth reverse solidus', '/~assets/x%ef%bc%bcadmin'],
    ['fullwidth letter', '/%ef%bd%81dmin/x'],
    ['dotless i (.NET OrdinalIgnoreCase, Java equalsIgnoreCase)', '/adm%c4%b1n/x'],
    ['dotted capital I (lower case is i + dot)', '/adm%c4%b0n/x'],
    ['long s (upper case S)', '/admin/%c5%bfecret'],
    ['Kelvin sign (lower case k)', '/%e2%84%aaey'],
    ['sharp s capital (folds to ss)', '/a%e1%ba%9e'],
    ['ligature ff', '/%ef%ac%80'],
    ['account-of (NFKC a/c)', '/x%e2%84%80y'],
    ['superscript two', '/x%c2%b2'],
    ['no-break space', '/admin%c2%a0/x'],
    ['ideographic space', '/admin%e3%80%80/x'],
    ['zero-width space', '/ad%e2%80%8bmin/x'],
    ['byte order mark (trimmed by JS trim)', '/%ef%bb%bfadmin/x'],
    ['soft hyphen', '/ad%c2%admin/x'],
    ['right-to-left override', '/x%e2%80%aey'],
    ['C1 control NEL', '/admin%c2%85/x'],
    ['halfwidth katakana (NFKC changes it)', '/%ef%bd%b6'],
    ['Angstrom sign (NFC changes it)', '/%e2%84%ab'],
    // Segments that trimming matchers and Windows read shorter.
    ['trailing %20', '/admin%20/x'],
    ['leading %20', '/%20admin/x'],
    ['trailing +', '/admin+/x'],
    ['leading +', '/+admin/x'],
    ['trailing %2B', '/admin%2B/x'],
    ['trailing dot (IIS)', '/admin./x'],
    ['trailing encoded dot', '/admin%2e/x'],
    ['trailing dot and space', '/admin.%20/x'],
    ['trailing dots in the last segment', '/admin/secret..'],
    ['three dots', '/~assets/.../admin'],
    ['8.3 short name', '/ADMINI~1/x'],
    ['8.3 short name with encoded digit', '/ADMINI~%31/x'],
    ['NTFS stream', '/admin::$INDEX_ALLOCATION/x'],
    ['NTFS stream, encoded', '/admin%3a%3a%24INDEX_ALLOCATION/x'],
    ['IIS %u escape', '/~assets/%u002e%u002e/admin'],
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
    ['too long', `/${'a'.repeat(9000)}`],
  ])('refuses %s', (_name, input) => {
    expect(normalisePath(input)).toBeNull();
  });

  it('is idempotent on its own output', () => {
    for (const p of ['/a/./b/c/', '/x//y', '/%61%62%2C', '/caf%c3%a9']) {
      const once = normalisePath(p)!;
      expect(normalisePath(once)).toBe(once);
    }
  });

  it('lists the other readings backends make of what it merged or decoded', () => {
    expect(readPath('/a/b?x=1')).toEqual({ path: '/a/b', readings: [] });
    expect(readPath('/caf%c3%a9')).toEqual({ path: '/caf%C3%A9', readings: [] }); // hex case is no reading
    expect(readPath('/api//public/x')).toEqual({ path: '/api/public/x', readings: ['/api//public/x'] });
    expect(readPath('/api/./public/x?q')).toEqual({ path: '/api/public/x', readings: ['/api/./public/x'] });
    // express keeps all of it; a slash-merging middleware keeps `.`; WHATWG URL resolves `.` (and
    // `%2e`) but keeps empty segments and escapes.
    expect(readPath('/api/.//public/x')).toEqual({ path: '/api/public/x', readings: ['/api/.//public/x', '/api/./public/x', '/api//public/x'] });
    expect(readPath('/%61pi/%2e/public/')).toEqual({ path: '/api/public/', readings: ['/api/./public/', '/%61pi/%2E/public/', '/%61pi/public/'] });
    expect(readPath('/%7Eassets/x')).toEqual({ path: '/~assets/x', readings: ['/%7Eassets/x'] });
  });
});
