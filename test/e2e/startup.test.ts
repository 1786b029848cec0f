/**
 * Start-up as users meet it: embedded defaults serve; a bad configuration stops start-up with
 * every problem listed by key path, and nothing listens.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send } from '../../harness/http.js';
import { freePort, listening, ROOT, startService, tempDir } from '../../harness/processes.js';
import { redisCli, startRedisServer } from '../../harness/redis.js';

const BIN = join(ROOT, 'bin/sessiongate.js');
const SECRET = 'startup-secret-0123456789abcdef0123456789';

/** Runs the binary against `store`; a start-up that kept retrying for startup_timeout (60s) would be killed first. */
async function start(store: string, startupTimeout = '60s') {
  const dir = tempDir('sg-cause-');
  const config = join(dir, 'c.yaml');
  writeFileSync(config, `store: "${store}"\nredis: { startup_timeout: ${startupTimeout} }\n`);
  const [http, admin] = [await freePort(), await freePort()];
  const r = spawnSync(process.execPath, [BIN, '--config', config], {
    env: {
      PATH: process.env['PATH'] ?? '',
      SESSIONGATE_HTTP_PORT: String(http),
      SESSIONGATE_ADMIN_PORT: String(admin),
      SESSIONGATE_GRPC_PORT: '0',
      SESSIONGATE_API_PORT: '0',
      SESSIONGATE_SECRET: SECRET,
    },
    encoding: 'utf8',
    timeout: 30_000,
  });
  expect(await listening(http)).toBe(false);
  return { status: r.status, out: r.stdout + r.stderr };
}

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
listen: { http_port: ${http}, admin_port: ${admin}, api_port: 0 }
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
    const dead = await freePort(); // nothing listens there
    const r = await start(`redis://app:hunter2@127.0.0.1:${dead}`, '500ms');
    expect(r.status).toBe(1);
    expect(r.out).toContain(`store redis://***@127.0.0.1:${dead} is not usable`);
    expect(r.out).toContain('self-test write failed');
    // The cause, not ioredis's "Stream isn't writeable and enableOfflineQueue options is false".
    expect(r.out).toContain(`self-test write failed: connection refused at 127.0.0.1:${dead}`);
    expect(r.out).not.toContain("Stream isn't writeable");
    expect(r.out).not.toContain('hunter2');
    expect(r.out).not.toContain('app:');
  });

  it('refuses a Redis store with no configured secret before connecting, and listens on nothing', async () => {
    const [http, admin] = [await freePort(), await freePort()];
    const r = spawnSync(process.execPath, [BIN], {
      env: {
        PATH: process.env['PATH'] ?? '',
        SESSIONGATE_STORE: 'redis://app:hunter2@127.0.0.1:1',
        SESSIONGATE_HTTP_PORT: String(http),
        SESSIONGATE_ADMIN_PORT: String(admin),
        SESSIONGATE_GRPC_PORT: '0',
        SESSIONGATE_API_PORT: '0',
      },
      encoding: 'utf8',
      timeout: 15_000,
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(
      '- store (from SESSIONGATE_STORE): a Redis store needs configured secrets (SESSIONGATE_SECRET, SESSIONGATE_SECRET_FILE or secret_file)',
    );
    expect(r.stdout + r.stderr).not.toContain('hunter2');
    expect(await listening(http)).toBe(false);
    expect(await listening(admin)).toBe(false);
  });

  it('check-config validates without starting', () => {
    const ok = spawnSync(process.execPath, [BIN, 'check-config', '--config', join(ROOT, 'deploy/config.example.yaml')], {
      encoding: 'utf8',
      env: { PATH: process.env['PATH'] ?? '' },
    });
    expect(ok.status).toBe(0);
    expect(ok.stdout).toContain('is valid');
    const bad = spawnSync(process.execPath, [BIN, 'check-config'], {
      encoding: 'utf8',
      env: { PATH: process.env['PATH'] ?? '', SESSIONGATE_COOKIE_SECURE: 'maybe' },
    });
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
        env: { PATH: process.env['PATH'] ?? '', SESSIONGATE_HTTP_PORT: String(sg.httpPort), SESSIONGATE_ADMIN_PORT: '0', SESSIONGATE_API_PORT: '0' },
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

describe('a Redis store that will not serve: start-up names the cause', () => {
  const PASSWORD = 'the-right-password-0123';
  let redis: Awaited<ReturnType<typeof startRedisServer>>;
  beforeAll(async () => {
    redis = await startRedisServer();
    redisCli(redis.port, 'CONFIG', 'SET', 'requirepass', PASSWORD);
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('a server that requires a password, given none: authentication required, at once', async () => {
    const r = await start(`redis://127.0.0.1:${redis.port}`);
    expect(r.status).toBe(1);
    expect(r.out).toContain('authentication required: the server has a password and none was given');
    expect(r.out).not.toContain("Stream isn't writeable");
  });

  it('a wrong password, or a wrong user: said so, at once, with no byte of what was given', async () => {
    for (const url of [`redis://:wrong-pw-4711@127.0.0.1:${redis.port}`, `redis://mallory:wrong-pw-4711@127.0.0.1:${redis.port}`]) {
      const r = await start(url);
      expect(r.status).toBe(1);
      expect(r.out).toContain('wrong password or user name (WRONGPASS)');
      expect(r.out).not.toContain('wrong-pw');
      expect(r.out).not.toContain('4711');
      expect(r.out).not.toContain('mallory:');
    }
  });

  it('the right password: it starts (the check above is about the password, not the server)', async () => {
    const sg = await startService({ env: { SESSIONGATE_SECRET: SECRET, SESSIONGATE_STORE: `redis://:${PASSWORD}@127.0.0.1:${redis.port}` } });
    try {
      expect((await send(`http://127.0.0.1:${sg.adminPort}/readyz`)).status).toBe(200);
      expect(sg.logs().join('\n')).not.toContain(PASSWORD);
    } finally {
      await sg.stop();
    }
  });

  it('a Sentinel that knows no master of that name: said so', async () => {
    const sentinel = await startRedisServer({ sentinel: true, config: '' });
    try {
      const r = await start(`redis+sentinel://127.0.0.1:${sentinel.port}/nosuchmaster`, '1s');
      expect(r.status).toBe(1);
      expect(r.out).toContain('no Sentinel knows a master named nosuchmaster (the name in the store URL)');
    } finally {
      await sentinel.stop();
    }
  });
});
