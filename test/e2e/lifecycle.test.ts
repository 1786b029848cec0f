/**
 * Signals against the real process: SIGHUP reloads rules and secrets all at once (a bad
 * configuration is refused and the running one stays); SIGTERM stops cleanly.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cookiePair, send } from '../../harness/http.js';
import { listening, startService, tempDir, waitFor } from '../../harness/processes.js';

const A = 'secret-A-0123456789abcdef0123456789abcdef';
const B = 'secret-B-0123456789abcdef0123456789abcdef';
const TOKEN = 'lifecycle-login-token-0123';

function writeConfig(file: string, rules: string, secretFile: string): void {
  writeFileSync(file, `secret_file: ${secretFile}\nlogin_token: ${TOKEN}\nrules:\n${rules}\n`);
}

describe('SIGHUP reload', () => {
  it('applies new rules and secret lists atomically, and refuses a bad configuration', async () => {
    const dir = tempDir('sg-reload-');
    const config = join(dir, 'sessiongate.yaml');
    const secrets = join(dir, 'secrets');
    writeFileSync(secrets, `${A}\n`);
    writeConfig(config, '  - { path: /, access: authenticated }', secrets);
    const sg = await startService({ config });
    try {
      const auth = (cookie?: string, uri = '/app') =>
        send(`${sg.url}/auth`, { headers: [['X-Original-URI', uri], ...(cookie ? [['Cookie', cookie] as [string, string]] : [])] });
      const login = async () =>
        cookiePair(
          (
            await send(`${sg.url}/~session`, {
              method: 'POST',
              headers: [
                ['Authorization', `Bearer ${TOKEN}`],
                ['Content-Type', 'application/json'],
              ],
              body: '{"user_id":"u"}',
            })
          ).cookies[0]!,
        );
      const signedByA = await login();
      expect((await auth()).status).toBe(401);

      // New rules, and secret B in front of A: A's cookies stay valid, new ones are signed by B.
      writeConfig(config, '  - { path: /app, access: public }\n  - { path: /, access: authenticated }', secrets);
      writeFileSync(secrets, `${B}\n${A}\n`);
      sg.signal('SIGHUP');
      expect(await sg.waitForLog('configuration reloaded')).toBe(true);
      expect((await auth()).headers['x-sessiongate-reason']).toBe('public');
      expect((await auth(signedByA, '/other')).status).toBe(200);
      const signedByB = await login();
      expect((await auth(signedByB, '/other')).status).toBe(200);

      // A bad configuration: refused with its problems, the running one stays.
      writeFileSync(config, 'rules: [{ path: nope, access: maybe }]\nbogus: 1\n');
      sg.signal('SIGHUP');
      expect(await sg.waitForLog('reload rejected')).toBe(true);
      const rejected = sg.logs().find((l) => l.includes('reload rejected'))!;
      expect(rejected).toContain('bogus: unknown key');
      expect(rejected).toContain('rules[0].access');
      expect((await auth()).headers['x-sessiongate-reason']).toBe('public');
      expect((await auth(signedByA, '/other')).status).toBe(200);

      // A retired: its cookies end, B's carry on.
      writeConfig(config, '  - { path: /, access: authenticated }', secrets);
      writeFileSync(secrets, `${B}\n`);
      sg.signal('SIGHUP');
      expect(await waitFor(() => sg.logs().filter((l) => l.includes('configuration reloaded')).length === 2, 5000)).toBe(true);
      expect((await auth(signedByA, '/other')).headers['x-sessiongate-reason']).toBe('bad_signature');
      expect((await auth(signedByB, '/other')).status).toBe(200);
      expect((await auth()).status).toBe(401);
      expect(sg.logs().join('\n')).not.toContain(A);
    } finally {
      await sg.stop();
    }
  });
});

describe('SIGTERM', () => {
  it('stops accepting, closes everything and exits 0', async () => {
    const sg = await startService();
    const held = await send(`${sg.url}/auth`, { headers: [['X-Original-URI', '/']] });
    expect(held.status).toBe(401);
    const code = await sg.stop(); // sends SIGTERM, waits for exit (SIGKILL only after 10 s)
    expect(code).toBe(0);
    expect(sg.logs().some((l) => l.includes('"msg":"shutting down"') && l.includes('SIGTERM'))).toBe(true);
    expect(await listening(sg.httpPort)).toBe(false);
    expect(await listening(sg.adminPort)).toBe(false);
  });
});
