/**
 * SESSIONGATE_WORKERS=2 against the real process and Redis: both workers serve, a session made
 * on one is honoured by the other, /metrics describes the whole instance whichever worker
 * answers, SIGHUP reloads every worker, SIGTERM stops them all with exit code 0.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cookiePair, send } from '../../harness/http.js';
import { type RunningService, startService, tempDir, waitFor } from '../../harness/processes.js';
import { type RedisProcess, startRedisServer } from '../../harness/redis.js';
import { loadConfig } from '../../src/config.js';

const TOKEN = 'workers-login-token-0123456789';
let redis: RedisProcess;
let sg: RunningService;
let config: string;

beforeAll(async () => {
  redis = await startRedisServer();
  const dir = tempDir('sg-workers-');
  config = join(dir, 'sessiongate.yaml');
  writeFileSync(config, 'rules: [{ path: /, access: authenticated }]\n');
  sg = await startService({
    config,
    env: { SESSIONGATE_WORKERS: '2', SESSIONGATE_STORE: `redis://127.0.0.1:${redis.port}`, SESSIONGATE_SECRET: 'w'.repeat(40), SESSIONGATE_LOGIN_TOKEN: TOKEN },
  });
  // Both workers up: two 'listening' lines.
  expect(await waitFor(() => sg.logs().filter((l) => l.includes('"msg":"listening"')).length === 2, 15_000)).toBe(true);
}, 60_000);
afterAll(async () => {
  await sg?.stop();
  await redis?.stop();
});

/** Fresh connections, so the primary's round robin spreads them over the workers. */
async function pids(n: number): Promise<Set<number>> {
  const seen = new Set<number>();
  for (let i = 0; i < n; i++) seen.add((await send(`http://127.0.0.1:${sg.adminPort}/healthz`)).json<{ pid: number }>().pid);
  return seen;
}

describe('SESSIONGATE_WORKERS=2', () => {
  it('serves from two worker processes, each honouring sessions the other created', async () => {
    expect((await pids(20)).size).toBe(2);
    const login = await send(`${sg.url}/~session`, {
      method: 'POST',
      headers: [
        ['Authorization', `Bearer ${TOKEN}`],
        ['Content-Type', 'application/json'],
      ],
      body: '{"user_id":"w"}',
    });
    const cookie = cookiePair(login.cookies[0]!);
    for (let i = 0; i < 10; i++)
      expect(
        (
          await send(`${sg.url}/auth`, {
            headers: [
              ['X-Original-URI', '/'],
              ['Cookie', cookie],
            ],
          })
        ).status,
      ).toBe(200);
  });

  it('reports the whole instance in /metrics, whichever worker answers', async () => {
    const count = async () => {
      const text = (await send(`http://127.0.0.1:${sg.adminPort}/metrics`)).body;
      return Number(/^sessiongate_decisions_total\{transport="nginx",result="deny",reason="no_session"\} (\d+)$/m.exec(text)?.[1] ?? NaN);
    };
    const before = await count();
    for (let i = 0; i < 12; i++) await send(`${sg.url}/auth`, { headers: [['X-Original-URI', '/']] });
    for (let i = 0; i < 4; i++) expect((await count()) - before).toBe(12);
    const text = (await send(`http://127.0.0.1:${sg.adminPort}/metrics`)).body;
    expect(text).toMatch(/^sessiongate_store_up 1$/m);
    expect(text).toMatch(/^sessiongate_build_info\{version="[^"]+",node_version="[^"]+"\} 1$/m);
  });

  it('serves the token API on its own port from every worker, and not on the admin port', async () => {
    const auth: Array<[string, string]> = [['Authorization', `Bearer ${TOKEN}`]];
    const made = await send(`http://127.0.0.1:${sg.apiPort}/tokens`, {
      method: 'POST',
      headers: [...auth, ['Content-Type', 'application/json']],
      body: '{"user_id":"w-svc"}',
    });
    expect(made.status, made.body).toBe(201);
    const { token } = made.json<{ token: string }>();
    // Fresh connections spread over both workers: each lists it, each honours it.
    for (let i = 0; i < 6; i++) {
      expect((await send(`http://127.0.0.1:${sg.apiPort}/tokens`, { headers: auth })).json<Array<{ user_id: string }>>().map((t) => t.user_id)).toContain(
        'w-svc',
      );
      expect(
        (
          await send(`${sg.url}/auth`, {
            headers: [
              ['X-Original-URI', '/'],
              ['Authorization', `Bearer ${token}`],
            ],
          })
        ).status,
      ).toBe(200);
      expect((await send(`http://127.0.0.1:${sg.adminPort}/tokens`, { headers: auth })).status).toBe(404);
    }
  });

  it('reloads every worker on SIGHUP', async () => {
    writeFileSync(config, 'rules: [{ path: /open/, access: public }, { path: /, access: authenticated }]\n');
    sg.signal('SIGHUP');
    expect(await waitFor(() => sg.logs().filter((l) => l.includes('configuration reloaded')).length === 2, 5000)).toBe(true);
    for (let i = 0; i < 6; i++) expect((await send(`${sg.url}/auth`, { headers: [['X-Original-URI', '/open/x']] })).status).toBe(200);
  });

  it('refuses more than one worker with the memory store or without configured secrets', () => {
    const memory = loadConfig({ env: { SESSIONGATE_WORKERS: '2', SESSIONGATE_SECRET: 'w'.repeat(40) } });
    expect(memory.ok ? [] : memory.problems.join('\n')).toContain('workers (from SESSIONGATE_WORKERS): more than one worker needs a shared store');
    const ephemeral = loadConfig({ env: { SESSIONGATE_WORKERS: '2', SESSIONGATE_STORE: 'redis://127.0.0.1:1' } });
    expect(ephemeral.ok ? [] : ephemeral.problems.join('\n')).toContain('more than one worker needs configured secrets');
  });

  it('stops every worker on SIGTERM and exits 0', async () => {
    expect(await sg.stop()).toBe(0);
    expect(sg.logs().filter((l) => l.includes('"msg":"shutting down"')).length).toBeGreaterThanOrEqual(1);
  });
});
