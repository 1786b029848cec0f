import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import type { ExternalStore } from '../../src/external/common.js';
import { createExternalSources } from '../../src/external/index.js';

const dir = mkdtempSync(join(tmpdir(), 'sg-external-config-'));
let n = 0;
function file(text: string): string {
  const p = join(dir, `f${n++}`);
  writeFileSync(p, text);
  return p;
}
const load = (yaml: string) => loadConfig({ file: file(yaml), env: {} });
const problems = (yaml: string) => {
  const r = load(yaml);
  if (r.ok) throw new Error('expected a bad config');
  return r.problems;
};

describe('external_sessions configuration', () => {
  it('fills in the documented defaults', () => {
    const r = load(`
external_sessions:
  - { kind: express-session, store: "redis://127.0.0.1:6379", secrets: [keyboard cat] }
  - { kind: generic, cookie: app_session, store: "redis://127.0.0.1:6379/2", key: "session:{sha256}" }
`);
    if (!r.ok) throw new Error(r.problems.join('\n'));
    expect(r.config.external).toEqual([
      {
        kind: 'express-session',
        cookie: 'connect.sid',
        secrets: ['keyboard cat'],
        store: 'redis://127.0.0.1:6379',
        prefix: 'sess:',
        user_id: 'passport.user',
        roles: null,
        touch: false,
        ttl: 86_400,
      },
      {
        kind: 'generic',
        cookie: 'app_session',
        store: 'redis://127.0.0.1:6379/2',
        key: 'session:{sha256}',
        format: 'json',
        user_id: 'user_id',
        roles: null,
        expires_at: null,
      },
    ]);
  });

  it('reads secret_file: one secret per line, the signing one first', () => {
    const secrets = file('new secret, with a comma\n\n  old secret  \r\n');
    const r = load(`external_sessions: [{ kind: express-session, store: "redis://h:1", secret_file: ${JSON.stringify(secrets)} }]`);
    if (!r.ok) throw new Error(r.problems.join('\n'));
    expect(r.config.external[0]).toMatchObject({ secrets: ['new secret, with a comma', 'old secret'] });
  });

  it('lists every problem by key path, and never a secret', () => {
    const p = problems(`
external_sessions:
  - { kind: express-session, store: "redis://u:hunter2@h:1", secrets: [] , user_id: "a..b", touch: "yes", ttl: 0, color: red }
  - { kind: express-session, store: memory, secrets: ["topsecret"], secret_file: /x }
  - { kind: express-session, store: "redis://h:1" }
  - { kind: express-session, store: "redis://h:1", secret_file: /nonexistent/secrets }
  - { kind: generic, store: "mysql://h", key: "session:{id}", format: xml }
  - { kind: generic, cookie: "a b", store: "redis://h:1", key: "{sess}:{token}", format: string, roles: roles }
  - { kind: memcached }
  - 7
`);
    const text = p.join('\n');
    expect(text).not.toContain('hunter2');
    expect(text).not.toContain('topsecret');
    for (const expected of [
      /^external_sessions\[0\]\.secrets: must hold at least one secret$/m,
      /^external_sessions\[0\]\.user_id: must be a dotted path/m,
      /^external_sessions\[0\]\.touch: must be true or false$/m,
      /^external_sessions\[0\]\.ttl: must be at least 1/m,
      /^external_sessions\[0\]\.color: unknown key$/m,
      /^external_sessions\[1\]\.store: must be the application's Redis/m,
      /^external_sessions\[2\]\.secrets: is required \(or secret_file\)/m,
      /^external_sessions\[3\]\.secret_file: cannot read "\/nonexistent\/secrets" \(ENOENT\)$/m,
      /^external_sessions\[4\]\.cookie: is required \(a cookie name\)$/m,
      /^external_sessions\[4\]\.store: "mysql:\/\/…": unknown scheme mysql:\/\//m,
      /^external_sessions\[4\]\.key: must hold exactly one \{token\} or \{sha256\}/m,
      /^external_sessions\[4\]\.format: must be json or string$/m,
      /^external_sessions\[5\]\.cookie: must be a cookie name/m,
      /^external_sessions\[5\]\.key: must hold exactly one/m,
      /^external_sessions\[6\]\.kind: must be express-session or generic$/m,
      /^external_sessions\[7\]: must be express-session or generic$/m,
    ]) {
      expect(text).toMatch(expected);
    }
  });

  it('refuses both secrets and secret_file, and an empty secret file', () => {
    expect(problems(`external_sessions: [{ kind: express-session, store: "redis://h:1", secrets: [a], secret_file: /x }]`)).toEqual([
      'external_sessions[0].secret_file: set only one of secrets and secret_file',
    ]);
    const empty = file('\n  \n');
    expect(problems(`external_sessions: [{ kind: express-session, store: "redis://h:1", secret_file: ${JSON.stringify(empty)} }]`)).toEqual([
      `external_sessions[0].secret_file: ${JSON.stringify(empty)} holds no secret`,
    ]);
  });

  it('refuses json-only keys with format: string', () => {
    expect(
      problems(`external_sessions: [{ kind: generic, cookie: t, store: "redis://h:1", key: "s:{token}", format: string, user_id: uid, expires_at: exp }]`),
    ).toEqual([
      'external_sessions[0].user_id: is only meaningful with format: json (a string value is the user ID)',
      'external_sessions[0].expires_at: is only meaningful with format: json (a string value is the user ID)',
    ]);
  });
});

describe('createExternalSources', () => {
  it('opens one store per source, in order, and closes them', async () => {
    const opened: string[] = [];
    const closed: string[] = [];
    const open = (url: string): ExternalStore => {
      opened.push(url);
      return { get: async () => null, expire: async () => {}, close: async () => void closed.push(url) };
    };
    const r = load(`
external_sessions:
  - { kind: generic, cookie: a, store: "redis://h:1", key: "s:{token}" }
  - { kind: express-session, store: "redis://h:2", secrets: [k] }
`);
    if (!r.ok) throw new Error(r.problems.join('\n'));
    const sources = createExternalSources(r.config.external, { openStore: open });
    expect(sources.map((s) => [s.kind, s.cookie])).toEqual([
      ['generic', 'a'],
      ['express-session', 'connect.sid'],
    ]);
    expect(opened).toEqual(['redis://h:1', 'redis://h:2']);
    await Promise.all(sources.map((s) => s.close()));
    expect(closed.sort()).toEqual(['redis://h:1', 'redis://h:2']);
  });

  it('opens nothing for no sources', () => {
    expect(createExternalSources([])).toEqual([]);
  });
});
