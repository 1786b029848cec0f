/** The JSON end of the express apps: a bug is a 500 with a reason code, nothing of it echoed. */
import { Writable } from 'node:stream';
import express from 'express';
import { describe, expect, it } from 'vitest';
import { send } from '../../harness/http.js';
import { jsonErrors, notFound } from '../../src/api/errors.js';
import { createLogger } from '../../src/ops/logger.js';

describe('jsonErrors', () => {
  it('answers an internal error as JSON and logs its name and place, never its message', async () => {
    const lines: string[] = [];
    const log = createLogger('info', new Writable({ write: (c, _e, cb) => (lines.push(String(c)), cb()) }));
    const app = express();
    app.get('/boom', () => {
      throw new TypeError('secret-in-message hunter2');
    });
    app.get('/async', async () => {
      throw new Error('async secret hunter2');
    });
    app.use(notFound);
    app.use(jsonErrors(log));
    const server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    try {
      const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
      for (const path of ['/boom', '/async']) {
        const r = await send(`${base}${path}`);
        expect(r.status).toBe(500);
        expect(r.json()).toEqual({ error: 'internal_error' });
      }
      expect((await send(`${base}/nope`)).json()).toEqual({ error: 'not_found' });
      expect(lines).toHaveLength(2);
      expect(lines.join('')).not.toContain('hunter2');
      expect(JSON.parse(lines[0]!)).toMatchObject({ msg: 'request failed', reason: 'internal_error', err: 'TypeError' });
      expect(JSON.parse(lines[0]!).at).toContain('api-errors.test.ts');
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});
