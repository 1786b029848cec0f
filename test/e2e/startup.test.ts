/**
 * Start-up as users meet it: embedded defaults serve; a bad configuration stops start-up with
 * every problem listed by key path, and nothing listens.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { send } from '../support/http.js';
import { ROOT, freePort, listening, startService, tempDir } from '../support/processes.js';

const BIN = join(ROOT, 'bin/sessiongate.js');

describe('start-up', () => {
  it('serves on embedded defaults, warning that the secret is ephemeral', async () => {
    // Only the ports are moved off the defaults, so parallel runs cannot collide.
    const sg = await startService();
    try {
      const logs = sg.logs().join('\n');
      expect(logs).toContain('using a random one; sessions will not survive a restart');
      expect(logs).toContain('POST /~session is disabled; a login service needs one of them set; to try sessiongate without one, run npm run demo');
      const health = await send(`http://127.0.0.1:${sg.adminPort}/healthz`);
      expect(health.status).toBe(200);
      const ready = await send(`http://127.0.0.1:${sg.adminPort}/readyz`);
      expect(ready.json()).toEqual({ status: 'ready', store: 'memory' });
      const auth = await send(`${sg.url}/auth`, { headers: [['X-Original-URI', '/']] });
      expect(auth.status).toBe(401);
      expect(auth.headers['content-length']).toBe('0');
      expect(auth.body).toBe('');
    } finally {
      expect(await sg.stop()).toBe(0); // SIGTERM: a clean exit
    }
  });

  it('refuses a bad config, listing every problem by key path, and listens on nothing', async () => {
    const dir = tempDir('sg-bad-');
    const config = join(dir, 'bad.yaml');
    const [http, admin] = [await freePort(), await freePort()];
    writeFileSync(
      config,
      `
listen: { http_port: ${http}, admin_port: ${admin} }
colour: blue
session: { idle_ttl: 5 minutes }
rules:
  - { path: /admin/, access: roles }
  - { path: /x/, access: sometimes }
`,
    );
    const r = spawnSync(process.execPath, [BIN, '--config', config], {
      env: { PATH: process.env['PATH'] ?? '', SESSIONGATE_SECRET: 'too-short' },
      encoding: 'utf8',
      timeout: 15_000,
    });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain(`invalid configuration (${config}): 5 problems`);
    for (const line of [
      '- colour: unknown key',
      '- secrets[0] (from SESSIONGATE_SECRET): must be at least 32 bytes long',
      '- session.idle_ttl: "5 minutes" is not a duration',
      '- rules[0].roles: is required when access is roles',
      '- rules[1].access: must be one of public, anonymous, authenticated, roles',
    ]) {
      expect(r.stderr).toContain(line);
    }
    expect(r.stderr).not.toContain('too-short');
    expect(await listening(http)).toBe(false);
    expect(await listening(admin)).toBe(false);
  });

  it('refuses to start when the store fails its write/read/delete self-test, saying what failed', async () => {
    const dir = tempDir('sg-store-');
    const config = join(dir, 'c.yaml');
    const dead = await freePort(); // nothing listens there
    writeFileSync(config, `store: "redis://app:hunter2@127.0.0.1:${dead}"\nredis: { startup_timeout: 500ms }\n`);
    const [http, admin] = [await freePort(), await freePort()];
    const r = spawnSync(process.execPath, [BIN, '--config', config], {
      env: { PATH: process.env['PATH'] ?? '', SESSIONGATE_HTTP_PORT: String(http), SESSIONGATE_ADMIN_PORT: String(admin), SESSIONGATE_GRPC_PORT: '0' },
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(r.status).toBe(1);
    expect(r.stdout).toContain(`store redis://***@127.0.0.1:${dead} is not usable`);
    expect(r.stdout).toContain('self-test write failed');
    expect(r.stdout + r.stderr).not.toContain('hunter2');
    expect(r.stdout + r.stderr).not.toContain('app:');
    expect(await listening(http)).toBe(false);
  });

  it('check-config validates without starting', () => {
    const ok = spawnSync(process.execPath, [BIN, 'check-config', '--config', join(ROOT, 'deploy/config.example.yaml')], { encoding: 'utf8', env: { PATH: process.env['PATH'] ?? '' } });
    expect(ok.status).toBe(0);
    expect(ok.stdout).toContain('is valid');
    const bad = spawnSync(process.execPath, [BIN, 'check-config'], { encoding: 'utf8', env: { PATH: process.env['PATH'] ?? '', SESSIONGATE_COOKIE_SECURE: 'maybe' } });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain('cookie.secure (from SESSIONGATE_COOKIE_SECURE)');
  });

  it('refuses unknown commands and arguments with usage', () => {
    const r = spawnSync(process.execPath, [BIN, 'frobnicate'], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('unknown command "frobnicate"');
    expect(r.stderr).toContain('usage: npx sessiongate');
  });

  it('reports a port already in use as a start-up failure', async () => {
    const sg = await startService();
    try {
      const r = spawnSync(process.execPath, [BIN], {
        env: { PATH: process.env['PATH'] ?? '', SESSIONGATE_HTTP_PORT: String(sg.httpPort), SESSIONGATE_ADMIN_PORT: '0' },
        encoding: 'utf8',
        timeout: 15_000,
      });
      expect(r.status).toBe(1);
      expect(r.stdout).toContain('EADDRINUSE');
    } finally {
      await sg.stop();
    }
  });
});
