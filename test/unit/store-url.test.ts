import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatProblems, loadConfig } from '../../src/config.js';
import { redisUrl } from '../../src/external/common.js';
import { displayStoreUrl, maskUrl, parseStoreUrl } from '../../src/store/url.js';

describe('parseStoreUrl', () => {
  it.each([
    ['memory', { kind: 'memory' }],
    ['redis://localhost', { kind: 'redis', tls: false, hosts: [{ host: 'localhost', port: 6379 }], db: 0 }],
    ['redis://:p%40ss@10.0.0.1:6380/3', { kind: 'redis', hosts: [{ host: '10.0.0.1', port: 6380 }], password: 'p@ss', db: 3 }],
    ['rediss://app:pw@redis.example.com:6380', { kind: 'redis', tls: true, username: 'app', password: 'pw' }],
    ['redis://u:p%40%3A%2F%3F%23%25w:x@h', { kind: 'redis', username: 'u', password: 'p@:/?#%w:x', hosts: [{ host: 'h', port: 6379 }] }],
    ['redis://[::1]:6379', { kind: 'redis', hosts: [{ host: '::1', port: 6379 }] }],
    [
      'redis+sentinel://s1,s2:26380,s3/mymaster',
      {
        kind: 'redis-sentinel',
        masterName: 'mymaster',
        hosts: [
          { host: 's1', port: 26379 },
          { host: 's2', port: 26380 },
          { host: 's3', port: 26379 },
        ],
      },
    ],
    [
      'redis+cluster://n1:7000,n2:7001',
      {
        kind: 'redis-cluster',
        hosts: [
          { host: 'n1', port: 7000 },
          { host: 'n2', port: 7001 },
        ],
      },
    ],
    ['rediss+cluster://n1:7000', { kind: 'redis-cluster', tls: true }],
  ])('%s', (url, expected) => {
    expect(parseStoreUrl(url)).toMatchObject(expected);
  });

  it.each([
    ['postgres://h', 'unknown scheme postgres://'],
    ['constructor://h', 'unknown scheme'],
    ['redis://a:1,b:2', 'takes one host'],
    ['redis+sentinel://s1:26379', 'needs the master name'],
    ['redis+cluster://n1:7000/2', 'takes no database number'],
    ['redis://h:99999', 'out of range'],
    ['redis://h/x', 'not a database number'],
    ['redis:/h', 'must be memory'],
    ['redis://h/0?x=1', 'no query'],
    ['redis://:hunter2@secret@host', 'percent-encode'],
    ['redis://u:s3cr%t@host', 'percent-encode'],
    ['redis://u:s3cr%C3%28@host', 'percent-encode'],
    ['redis://:pa/ss@host', 'percent-encode'],
    ['redis://:pa#ss@host', 'percent-encode'],
    ['redis://:pa?ss@host', 'percent-encode'],
  ])('refuses %s', (url, problem) => {
    expect(parseStoreUrl(url)).toEqual(expect.stringContaining(problem));
  });

  it('shows a URL without any of its user information, and nothing of one it cannot read', () => {
    expect(maskUrl('redis://user:hunter2@h:1/0')).toBe('redis://***@h:1');
    expect(maskUrl('redis://user:hunter2@h:1/5')).toBe('redis://***@h:1/5');
    expect(maskUrl('redis+sentinel://:pw@s1,s2/m')).toBe('redis+sentinel://***@s1:26379,s2:26379/m');
    expect(maskUrl('rediss+cluster://[::1]:7000')).toBe('rediss+cluster://[::1]:7000');
    expect(maskUrl('redis://h:1')).toBe('redis://h:1');
    expect(maskUrl('redis://:hunter2@secret@host')).toBe('redis://…');
    expect(maskUrl('hunter2')).toBe('(not a store URL)');
    const u = parseStoreUrl('redis://pw-in-user-slot@h');
    expect(typeof u !== 'string' && displayStoreUrl(u)).toBe('redis://***@h:6379');
  });
});

/** Every 3-character piece of `secret` that `text` contains, except those the URL shows anyway (scheme, hosts). */
function leaks(text: string, secret: string, publicText: string): string[] {
  const out: string[] = [];
  for (let i = 0; i + 3 <= secret.length; i++) {
    const piece = secret.slice(i, i + 3);
    if (text.includes(piece) && !publicText.includes(piece)) out.push(piece);
  }
  return out;
}

describe('store URL messages never carry a credential byte', () => {
  const TEMPLATES = [
    'redis://u:PW@h.example:6380/1',
    'rediss://:PW@10.0.0.9',
    'redis+sentinel://sentinel:PW@s1:26379,s2/main',
    'redis+cluster://PW@n1:7000,n2:7001',
    'redis://PW:PW@h',
  ];
  // Letters that appear in no message, and the characters a password must have encoded.
  const passwordChar = fc.constantFrom(...'QJXZKVW@:/%#?!$&*+;=[]'.split(''), 'QJ', 'XZ', '%4', '%G', '%%');

  it('whatever the password holds: no exception, and no piece of it in any message', () => {
    fc.assert(
      fc.property(fc.array(passwordChar, { minLength: 3, maxLength: 12 }), fc.constantFrom(...TEMPLATES), (parts, template) => {
        const password = parts.join('');
        const url = template.split('PW').join(password);
        // The mask itself (`***@`) is public: a password of asterisks is not leaked by it.
        const publicText = `${template.split('PW').join('')} ***@`;
        let decoded = password;
        try {
          decoded = decodeURIComponent(password);
        } catch {
          /* not decodable: the raw form is the one to look for */
        }
        const texts: string[] = [];
        const parsed = parseStoreUrl(url);
        if (typeof parsed === 'string') texts.push(parsed);
        else texts.push(displayStoreUrl(parsed));
        texts.push(maskUrl(url));
        const ext = redisUrl.safeParse(url);
        if (!ext.success) texts.push(...ext.error.issues.map((i) => i.message));
        const r = loadConfig({ env: { SESSIONGATE_STORE: url, SESSIONGATE_SECRET: 's'.repeat(32) } });
        if (r.ok) texts.push(r.config.store.kind === 'memory' ? '' : r.config.store.displayUrl, ...r.warnings);
        else {
          texts.push(formatProblems(null, r.problems));
          // A malformed URL is a problem of the key, said as such.
          expect(r.problems.join('\n')).toMatch(/^store \(from SESSIONGATE_STORE\): /);
        }
        const all = texts.join('\n');
        expect(leaks(all, password, publicText)).toEqual([]);
        expect(leaks(all, decoded, publicText)).toEqual([]);
      }),
      { numRuns: 400 },
    );
  });

  it('the examples of the issue', () => {
    for (const url of ['redis://:hunter2@secret@host', 'redis://u:s3cr%t@host']) {
      const r = loadConfig({ env: { SESSIONGATE_STORE: url } });
      expect(r.ok).toBe(false);
      const text = r.ok ? '' : r.problems.join('\n');
      expect(text).toBe('store (from SESSIONGATE_STORE): not a valid URL; percent-encode reserved characters (@ : / ? # %) in the user name and password');
    }
  });
});
