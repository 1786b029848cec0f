import { describe, expect, it } from 'vitest';
import { maskUrl, parseStoreUrl } from '../../src/store/url.js';

describe('parseStoreUrl', () => {
  it.each([
    ['memory', { kind: 'memory' }],
    ['redis://localhost', { kind: 'redis', tls: false, hosts: [{ host: 'localhost', port: 6379 }], db: 0 }],
    ['redis://:p%40ss@10.0.0.1:6380/3', { kind: 'redis', hosts: [{ host: '10.0.0.1', port: 6380 }], password: 'p@ss', db: 3 }],
    ['rediss://app:pw@redis.example.com:6380', { kind: 'redis', tls: true, username: 'app', password: 'pw' }],
    ['redis://[::1]:6379', { kind: 'redis', hosts: [{ host: '::1', port: 6379 }] }],
    ['redis+sentinel://s1,s2:26380,s3/mymaster', { kind: 'redis-sentinel', masterName: 'mymaster', hosts: [{ host: 's1', port: 26379 }, { host: 's2', port: 26380 }, { host: 's3', port: 26379 }] }],
    ['redis+cluster://n1:7000,n2:7001', { kind: 'redis-cluster', hosts: [{ host: 'n1', port: 7000 }, { host: 'n2', port: 7001 }] }],
    ['rediss+cluster://n1:7000', { kind: 'redis-cluster', tls: true }],
  ])('%s', (url, expected) => {
    expect(parseStoreUrl(url)).toMatchObject(expected);
  });

  it.each([
    ['postgres://h', 'unknown scheme'],
    ['redis://a:1,b:2', 'takes one host'],
    ['redis+sentinel://s1:26379', 'needs the master name'],
    ['redis+cluster://n1:7000/2', 'takes no database number'],
    ['redis://h:99999', 'out of range'],
    ['redis://h/x', 'not a database number'],
    ['redis:/h', 'must be memory'],
  ])('refuses %s', (url, problem) => {
    expect(parseStoreUrl(url)).toEqual(expect.stringContaining(problem));
  });

  it('masks passwords, and only passwords', () => {
    expect(maskUrl('redis://user:hunter2@h:1/0')).toBe('redis://user:***@h:1/0');
    expect(maskUrl('redis+sentinel://:pw@s1,s2/m')).toBe('redis+sentinel://:***@s1,s2/m');
    expect(maskUrl('redis://h:1')).toBe('redis://h:1');
  });
});
