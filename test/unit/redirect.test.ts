import { describe, expect, it } from 'vitest';
import { createRedirectPolicy } from '../../src/core/redirect.js';

describe('safe redirect targets', () => {
  const p = createRedirectPolicy(['app.example.com', '.example.org']);

  it.each([
    ['/app?x=1#top', '/app?x=1#top'],
    ['/caf\u00e9/\u2713', '/caf%C3%A9/%E2%9C%93'],
    ['https://app.example.com/x', 'https://app.example.com/x'],
    ['https://a.example.org/\u2713', 'https://a.example.org/%E2%9C%93'],
  ])('keeps %s (as %s: a header carries ASCII)', (raw, out) => {
    expect(p.safeTarget(raw)).toBe(out);
  });

  it.each([
    '//evil.example/',
    '/\\evil.example/',
    '/%2F%2Fevil.example/',
    'https://evil.example/',
    'https:evil.example',
    'javascript:alert(1)',
    'http://app.example.com@evil.example/',
    '/a\r\nSet-Cookie: x=1',
    '/a%0d%0aX: y',
    '/\ud800',
    '',
  ])('refuses %j', (raw) => {
    expect(p.safeTarget(raw)).toBeUndefined();
  });

  it('with no list, allows only the host the request came to', () => {
    const own = createRedirectPolicy([]);
    expect(own.safeTarget('http://127.0.0.1:8000/x', '127.0.0.1:8000')).toBe('http://127.0.0.1:8000/x');
    expect(own.safeTarget('http://127.0.0.1:8001/x', '127.0.0.1:8000')).toBeUndefined();
  });
});
