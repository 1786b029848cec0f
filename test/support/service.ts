/**
 * The service started in-process for tests: a configuration on free ports (optionally the
 * shipped example), a silent logger, and a memory store that can be switched off the way a
 * Redis outage would switch it off.
 */
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { ROOT } from '../../harness/processes.js';
import { type Config, loadConfig } from '../../src/config.js';
import { createLogger, type Logger } from '../../src/ops/logger.js';
import { createMemoryStore } from '../../src/store/memory.js';
import { type SessionStore, StoreUnavailableError } from '../../src/store/types.js';

const FREE_PORTS = { SESSIONGATE_HTTP_PORT: '0', SESSIONGATE_GRPC_PORT: '0', SESSIONGATE_ADMIN_PORT: '0', SESSIONGATE_API_PORT: '0' };

/** A validated configuration on free ports: the embedded defaults, or deploy/config.example.yaml. */
export function testConfig(env: Record<string, string>, opts: { example?: boolean } = {}): Config {
  const r = loadConfig({ file: opts.example ? join(ROOT, 'deploy/config.example.yaml') : undefined, env: { ...FREE_PORTS, ...env } });
  if (!r.ok) throw new Error(r.problems.join('\n'));
  return r.config;
}

export function quietLogger(level = 'silent'): Logger {
  return createLogger(level, new Writable({ write: (_c, _e, cb) => cb() }));
}

/** A memory store whose every operation fails with StoreUnavailableError while `down` is set. */
export function switchableStore(clock: () => number = Date.now): SessionStore & { down: boolean } {
  const inner = createMemoryStore({ maxEntries: 10_000, sweepInterval: 0, clock });
  const state = { down: false };
  const guard =
    <A extends unknown[], R>(fn: (...a: A) => Promise<R>) =>
    (...a: A): Promise<R> =>
      state.down ? Promise.reject(new StoreUnavailableError('connection refused')) : fn(...a);
  return Object.assign(state, {
    kind: 'memory',
    get: guard(inner.get),
    create: guard(inner.create),
    touch: guard(inner.touch),
    rotate: guard(inner.rotate),
    destroy: guard(inner.destroy),
    destroyUser: guard(inner.destroyUser),
    catalogPut: guard(inner.catalogPut),
    catalogList: guard(inner.catalogList),
    catalogDelete: guard(inner.catalogDelete),
    oncePut: guard(inner.oncePut),
    onceTake: guard(inner.onceTake),
    onceClaim: guard(inner.onceClaim),
    ping: guard(inner.ping),
    selfTest: guard(inner.selfTest),
    close: inner.close,
  });
}
