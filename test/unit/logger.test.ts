/**
 * What log lines carry: decision lines name the path (normalised, or the raw target without its
 * query), never a query string; `session destroyed` names the user and the request.
 */
import { createServer, type Server } from 'node:http';
import { Writable } from 'node:stream';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSessionApi } from '../../src/api/session-api.js';
import { createCheck } from '../../src/core/check.js';
import { createDecisionLogger, createLogger, loggedTarget, MAX_LOGGED_TARGET } from '../../src/ops/logger.js';
import { createMemoryStore } from '../../src/store/memory.js';
import { request, T0, testPolicy } from '../support/fixtures.js';
import { createSession, send } from '../support/http.js';

function capture(level = 'debug') {
  const lines: Array<Record<string, unknown>> = [];
  const text: string[] = [];
  const out = new Writable({
    write(chunk: Buffer, _e, cb) {
      text.push(chunk.toString());
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { log: createLogger(level, out), lines, text };
}

describe('decision log lines', () => {
  const policy = testPolicy();
  const store = createMemoryStore({ maxEntries: 10, sweepInterval: 0, clock: () => T0 });

  async function logged(uri: string): Promise<Record<string, unknown>> {
    const c = capture();
    const check = createCheck({ policy: () => policy, store, clock: () => T0, observe: createDecisionLogger(c.log) });
    await check(request({ uri, requestId: 'req-1' }));
    await new Promise((r) => setImmediate(r));
    expect(c.lines).toHaveLength(1);
    expect(c.text.join('')).not.toContain('s3cret');
    return c.lines[0]!;
  }

  it('carry the normalised path, never the query', async () => {
    expect(await logged('/app/%7euser/x?code=s3cret')).toMatchObject({ msg: 'decision', reason: 'no_session', path: '/app/~user/x', request_id: 'req-1' });
    expect(await logged('/~assets/app.css?token=s3cret')).toMatchObject({ reason: 'public', path: '/~assets/app.css' });
  });

  it('carry the raw target, without its query, when the path was refused', async () => {
    const line = await logged('/~assets/%2e%2e/admin?code=s3cret');
    expect(line).toMatchObject({ reason: 'bad_path', target: '/~assets/%2e%2e/admin' });
    expect(line['path']).toBeUndefined();
  });

  it('bound the raw target', () => {
    expect(loggedTarget(`/${'a'.repeat(1000)}`)).toHaveLength(MAX_LOGGED_TARGET);
    expect(loggedTarget('/x#frag?y')).toBe('/x');
    expect(loggedTarget(undefined)).toBeUndefined();
  });
});

describe('session destroyed', () => {
  const policy = testPolicy();
  const c = capture('info');
  let server: Server;
  let base: string;
  beforeAll(async () => {
    const app = express();
    const store = createMemoryStore({ maxEntries: 10, sweepInterval: 0, clock: Date.now });
    app.use(createSessionApi({ policy: () => policy, store, clock: Date.now, loginToken: () => Buffer.from('log-test-token-0123456789'), log: c.log }));
    server = createServer(app);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('names the user and the request, as decision lines do', async () => {
    const cookie = await createSession(base, 'log-test-token-0123456789', 'alice', ['user']);
    const r = await send(`${base}/~session`, {
      method: 'DELETE',
      headers: [
        ['Cookie', cookie],
        ['X-Request-Id', 'req-42'],
      ],
    });
    expect(r.status).toBe(204);
    expect(c.lines.find((l) => l['msg'] === 'session destroyed')).toMatchObject({ user_id: 'alice', request_id: 'req-42', sessions: 1 });
    expect(c.text.join('')).not.toContain(cookie.split('=')[1]!);
  });
});
