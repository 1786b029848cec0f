import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { cookieValues, createCookieWriter } from '../../src/session/cookie.js';

describe('cookieValues', () => {
  it.each([
    [undefined, []],
    ['', []],
    ['a=1', []],
    ['sessiongate=v', ['v']],
    ['a=1; sessiongate=v; b=2', ['v']],
    ['a=1;sessiongate=v;b=2', ['v']],
    ['  sessiongate = v  ', ['v']],
    ['sessiongate="v"', ['v']],
    ['xsessiongate=1; sessiongatex=2', []],
    ['sessiongate=a; sessiongate=b', ['a', 'b']],
    ['sessiongate=', ['']],
    ['sessiongate', []],
    ['a=sessiongate=x', []],
  ] as const)('%j', (header, expected) => {
    expect(cookieValues(header, 'sessiongate')).toEqual(expected);
  });

  // The reading as specified: split at `;`, the name is the text before the piece's first `=`,
  // trimmed. cookieValues skips from one occurrence of the name to the next instead; both must agree.
  function reference(header: string, name: string): string[] {
    const out: string[] = [];
    for (const piece of header.split(';')) {
      const eq = piece.indexOf('=');
      if (eq < 0 || piece.slice(0, eq).trim() !== name) continue;
      let value = piece.slice(eq + 1).trim();
      if (value.length >= 2 && value[0] === '"' && value[value.length - 1] === '"') value = value.slice(1, -1);
      out.push(value);
    }
    return out;
  }

  it('agrees with split-and-trim on arbitrary headers and names (5000 runs)', () => {
    const unit = fc.constantFrom('s', 'g', 'sg', ';', '=', ' ', '\t', '\u00a0', '\u2028', '\ufeff', '\u0085', '"', 'x', '\n');
    const name = fc.oneof(fc.constant('sg'), fc.constant('s g'), fc.string({ unit, minLength: 0, maxLength: 4 }));
    fc.assert(
      fc.property(fc.string({ unit, maxLength: 40 }), name, (header, n) => {
        expect(cookieValues(header, n)).toEqual(reference(header, n));
      }),
      { numRuns: 5000 },
    );
  });

  it('reads every Cookie header when there are several', () => {
    expect(cookieValues(['a=1', 'sessiongate=v1', 'sessiongate=v2'], 'sessiongate')).toEqual(['v1', 'v2']);
  });
});

describe('cookie writer', () => {
  const base = { name: 'sg', domain: null, path: '/', httpOnly: true, secure: true, sameSite: 'lax' as const, sessionOnly: false };

  it('writes the configured attributes and the absolute expiry', () => {
    const w = createCookieWriter(base);
    const now = Date.UTC(2026, 0, 1);
    const c = w.issue('tok', now + 3600_000, now);
    expect(c).toBe('sg=tok; Max-Age=3600; Path=/; Expires=Thu, 01 Jan 2026 01:00:00 GMT; HttpOnly; Secure; SameSite=Lax');
  });

  it('writes a browser-session cookie without expiry when session_only', () => {
    const w = createCookieWriter({ ...base, sessionOnly: true, domain: '.example.com', sameSite: 'strict' });
    const c = w.issue('tok', Date.now() + 1000, Date.now());
    expect(c).toBe('sg=tok; Domain=.example.com; Path=/; HttpOnly; Secure; SameSite=Strict');
  });

  it('clears with an expired, empty cookie of the same name, path and domain', () => {
    const w = createCookieWriter({ ...base, domain: 'example.com', path: '/app' });
    expect(w.clear()).toBe('sg=; Max-Age=0; Domain=example.com; Path=/app; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; Secure; SameSite=Lax');
  });
});
