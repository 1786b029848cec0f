/**
 * core/upstream.ts: what replaces the client's Cookie and Authorization upstream. The same cases
 * run end to end through nginx and both Envoy adapters in test/adversarial/upstream.test.ts.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createUpstreamCredentials } from '../../src/core/upstream.js';
import { createTokenCodec } from '../../src/session/token.js';
import { OTHER_SECRET, SECRET } from '../support/fixtures.js';

const tokens = createTokenCodec([SECRET]);
const T = tokens.issue().token;
const FOREIGN = createTokenCodec([OTHER_SECRET]).issue().token;
const up = createUpstreamCredentials('sessiongate', tokens);
const rewrite = (headers: Record<string, string | string[]>) => up.rewrite(headers);

describe('the Cookie header the upstream gets', () => {
  it.each<[string, string | string[], string | undefined]>([
    ['between others', `theme=dark; sessiongate=${T}; other=1`, 'theme=dark; other=1'],
    ['alone', `sessiongate=${T}`, ''],
    ['first, then others without spaces', `sessiongate=${T};a=1;b=2`, 'a=1;b=2'],
    ['several headers, as Node or Envoy hand them over', ['a=1', `sessiongate=${T}; b=2`], 'a=1; b=2'],
    ['twice', `sessiongate=${T}; a=1; sessiongate=${T}`, 'a=1'],
    ['with a prefix', `a=1; __Host-sessiongate=${T}; __secure-SessionGate=x`, 'a=1'],
    ['in another case', `a=1; SESSIONGATE=x; SessionGate=${T}`, 'a=1'],
    ['with spaces around the name', `a=1;   sessiongate   =x;\tsessiongate=y`, 'a=1'],
    ['without a value', 'a=1; sessiongate; b=2', 'a=1; b=2'],
    ['garbage under our name', 'a=1; sessiongate=garbage', 'a=1'],
    ['quoted', `a=1; sessiongate="${T}"`, 'a=1'],
    ['a live token under another name', `a=1; remember=${T}; b=2`, 'a=1; b=2'],
    ['a live token inside another value', `a=1; other=sessiongate=${T}; b=2`, 'a=1; b=2'],
    ['a live token glued to other text', `a=1; x=v${T}.w; b=2`, 'a=1; b=2'],
    ['a live token as a name', `a=1; ${T}=1`, 'a=1'],
    [
      'more token-shaped values than are worth verifying: those past the eighth go unverified',
      `a=1; ${Array.from({ length: 10 }, (_, i) => `f${i}=${FOREIGN}`).join('; ')}; b=2`,
      `a=1; ${Array.from({ length: 8 }, (_, i) => `f${i}=${FOREIGN}`).join('; ')}; b=2`,
    ],
    ['nothing but separators left', `; sessiongate=${T};;`, ''],
  ])('%s', (_n, cookie, expected) => {
    expect(rewrite({ cookie })?.cookie).toBe(expected);
  });

  it.each<[string, string]>([
    ['no cookie of ours', 'a=1; b=2'],
    ['names that only contain ours', 'sessiongate-theme=dark; my_sessiongate=1; sessiongate2=x'],
    ['a token-shaped value signed by someone else', `remember=${FOREIGN}`],
    ['odd cookies', 'flag; empty=; eq=a=b; q="x y"'],
  ])('leaves the header alone with %s', (_n, cookie) => {
    expect(rewrite({ cookie })).toBeUndefined();
  });

  it('keeps every other cookie byte for byte and in order', () => {
    const others = ['z=1', ' flag', ' eq=a=b', '  q="x y"', ' pct=%E2%9C%93', ' caf\u00e9=1'];
    const cookie = [others[0], ` sessiongate=${T}`, ...others.slice(1)].join(';');
    expect(rewrite({ cookie })?.cookie).toBe(others.join(';'));
  });

  it.each(['a=1\r\nX-Evil: 1', 'a=1\nX-Evil: 1', 'a=1\rb', 'a=\u0000b'])('never echoes a value that would break a header (%j)', (other) => {
    expect(rewrite({ cookie: `${other}; sessiongate=${T}` })?.cookie).toBe('');
    expect(rewrite({ cookie: `sessiongate=${T}; ${other}` })?.cookie).toBe('');
  });

  it('honours the configured name, prefix or not', () => {
    const host = createUpstreamCredentials('__Host-sg', tokens);
    expect(host.rewrite({ cookie: 'a=1; __Host-sg=x; sg=y; sgx=z' })?.cookie).toBe('a=1; sgx=z');
  });
});

describe('Authorization', () => {
  it.each([`Bearer ${T}`, `bearer ${T}`, `BEARER   ${T}  `, `Basic dXNlcg==,Bearer ${T}`, `Bearer x${T}`])(
    'is dropped when it carries a token of ours: %s',
    (authorization) => {
      expect(rewrite({ authorization })).toEqual({ cookie: undefined, dropAuthorization: true });
    },
  );

  it.each(['Basic dXNlcjpwYXNz', 'Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln', `Bearer ${FOREIGN}`])(
    "is the application's otherwise: %s",
    (authorization) => {
      expect(rewrite({ authorization })).toBeUndefined();
    },
  );
});

describe('finding tokens: the linear scan finds what a search at every offset finds', () => {
  // The reference: the token shape tried at every offset, each match verified.
  const SHAPE = /^[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{43}/;
  const reference = (s: string) => {
    for (let i = 0; i + 131 <= s.length; i++) {
      const m = SHAPE.exec(s.slice(i));
      if (m && tokens.verify(m[0]).ok) return true;
    }
    return false;
  };
  const alphabet = 'aZ09_-.'.split('');
  const filler = fc.array(fc.constantFrom(...alphabet, '.', 'x'.repeat(43), 'y'.repeat(42), 'z'.repeat(44)), { maxLength: 12 }).map((a) => a.join(''));

  it('over generated strings around a live token, a foreign one, or none', () => {
    fc.assert(
      fc.property(filler, fc.constantFrom(T, FOREIGN, '', T.slice(1), `${T.slice(0, 87)}.${T.slice(88)}`), filler, (a, middle, b) => {
        const s = `${a}${middle}${b}`;
        // The Authorization header is scanned whole: its verdict is the reference's.
        expect(rewrite({ authorization: s })?.dropAuthorization ?? false).toBe(reference(s));
      }),
      { numRuns: 500 },
    );
  });

  it('a long JWT-like bearer is scanned once, not at every offset', () => {
    const jwt = `Bearer ${'a'.repeat(5000)}.${'b'.repeat(5000)}.${'c'.repeat(5000)}`;
    expect(rewrite({ authorization: jwt })).toBeUndefined();
    expect(rewrite({ authorization: `${jwt}${T}` })?.dropAuthorization).toBe(true);
  });
});

describe('upstream.pass_credentials: true', () => {
  it('changes nothing', () => {
    const pass = createUpstreamCredentials('sessiongate', tokens, true);
    expect(pass.rewrite({ cookie: `sessiongate=${T}`, authorization: `Bearer ${T}` })).toBeUndefined();
  });
});
