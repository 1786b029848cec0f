/**
 * `sessiongate serve` (the default verb): runs the service until SIGTERM or SIGINT; SIGHUP
 * re-reads the configuration file and secret files, all or nothing.
 */
import cluster from 'node:cluster';
import { formatProblems, loadConfig } from '../config.js';
import { type Service, startService } from '../main.js';
import { createLogger } from '../ops/logger.js';
import { runPrimary } from '../ops/workers.js';
import { type Io, PROG, parseVerb } from './args.js';

export const USAGE = `usage: ${PROG} [serve] [--config FILE]

Runs sessiongate: the HTTP port (nginx auth_request, the session API), the gRPC port (Envoy
ext_authz) and the admin port (health, readiness, metrics) and the token API's loopback port (API tokens). Configuration: the YAML file of
--config or SESSIONGATE_CONFIG, with SESSIONGATE_* environment variables over it; embedded
defaults without either. SIGHUP reloads it; SIGTERM or SIGINT stop. Exit 1: start-up failed.
`;

export async function serve(argv: readonly string[], env: NodeJS.ProcessEnv, io: Io): Promise<number> {
  const args = parseVerb('serve', USAGE, argv, { config: { type: 'string', short: 'c' } }, io);
  if (typeof args === 'number') return args;
  const file = args.values.config;
  const loaded = loadConfig({ file, env });
  if (!loaded.ok) {
    io.err(formatProblems(loaded.source, loaded.problems, loaded.warnings));
    return 1;
  }

  const log = createLogger(loaded.config.logLevel);
  if (loaded.config.workers > 1 && cluster.isPrimary) {
    for (const w of loaded.warnings) log.warn({ msg: w });
    return runPrimary(loaded.config.workers, log);
  }
  if (!cluster.isWorker) for (const w of loaded.warnings) log.warn({ msg: w });
  let service: Service;
  try {
    service = await startService(loaded.config, log);
  } catch (err) {
    log.fatal({ msg: 'start-up failed', err: (err as Error).message });
    return 1;
  }

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      log.info({ msg: 'shutting down', signal });
      const force = setTimeout(() => {
        log.warn({ msg: 'shutdown timed out; exiting' });
        resolve(1);
      }, 10_000);
      force.unref();
      service.close().then(
        () => {
          clearTimeout(force);
          resolve(0);
        },
        () => resolve(1),
      );
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
    process.on('SIGHUP', () => {
      const next = loadConfig({ file, env });
      if (!next.ok) {
        log.error({ msg: 'reload rejected: the running configuration stays', problems: next.problems });
        return;
      }
      const restart = service.reload(next.config);
      for (const w of next.warnings) log.warn({ msg: w });
      log.info({ msg: 'configuration reloaded', config: next.config.source, ...(restart.length > 0 ? { needs_restart: restart } : {}) });
    });
  });
}
