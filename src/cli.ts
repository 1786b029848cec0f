/**
 * Command line: `sessiongate [serve] [--config FILE]` runs the service;
 * `sessiongate check-config [--config FILE]` validates a configuration and exits.
 */
import { formatProblems, loadConfig, type Config } from './config.js';
import { createUserRefs } from './session/seal.js';
import { createStore, proveStore } from './store/index.js';
import { createLogger } from './ops/logger.js';
import { startService } from './main.js';
import { VERSION } from './version.js';
import { runDoctor } from './doctor.js';
import { runTokenCommand } from './token-cli.js';
import cluster from 'node:cluster';
import { runPrimary } from './ops/workers.js';

const USAGE = `usage: sessiongate [serve] [--config FILE]
       sessiongate check-config [--config FILE]
       sessiongate revoke-user USER_ID [--config FILE]
       sessiongate doctor --url URL [--cookie VALUE]   (checks a live deployment; --help)
       sessiongate token create --user USER [--roles A,B] [--ttl 90d] | token list | token revoke ID
       sessiongate --version

Configuration: a YAML file (--config or SESSIONGATE_CONFIG) with SESSIONGATE_* environment
variables overriding it. See README.md for every key and its default.
`;

interface Args {
  command: string;
  operands: string[];
  config?: string | undefined;
}

function parseArgs(argv: readonly string[]): Args | string {
  const args: Args = { command: 'serve', operands: [] };
  let commandSeen = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--config' || a === '-c') {
      const v = argv[++i];
      if (v === undefined) return `${a} needs a file`;
      args.config = v;
    } else if (a.startsWith('--config=')) args.config = a.slice('--config='.length);
    else if (a === '--help' || a === '-h') args.command = 'help';
    else if (a === '--version' || a === '-v') args.command = 'version';
    else if (!a.startsWith('-') && !commandSeen) {
      args.command = a;
      commandSeen = true;
    } else if (!a.startsWith('-') && args.command === 'revoke-user' && args.operands.length === 0) args.operands.push(a);
    else return `unexpected argument ${JSON.stringify(a)}`;
  }
  return args;
}

/** Ends every session of a user in the shared store, and tells every replica's cache. */
async function revokeUser(userId: string | undefined, config: Config): Promise<number> {
  if (userId === undefined || userId === '') {
    process.stderr.write(`sessiongate: revoke-user needs a user ID\n${USAGE}`);
    return 2;
  }
  if (config.store.kind === 'memory') {
    process.stderr.write('sessiongate: revoke-user needs a shared store (redis…): memory sessions live inside the running service; call DELETE /~session/user/<id> on it instead\n');
    return 2;
  }
  if (config.ephemeralSecret) {
    process.stderr.write("sessiongate: revoke-user needs the service's secrets (SESSIONGATE_SECRET or SESSIONGATE_SECRET_FILE): sessions are filed under keyed hashes of user IDs\n");
    return 2;
  }
  const store = createStore(config.store, Date.now);
  try {
    await proveStore(store, config.store.startupTimeout);
    const removed = await store.destroyUser(createUserRefs(config.policy.secrets).all(userId));
    process.stdout.write(`sessiongate: revoked ${removed.length} session${removed.length === 1 ? '' : 's'} of ${JSON.stringify(userId)}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`sessiongate: revoke-user failed: ${(err as Error).message}\n`);
    return 1;
  } finally {
    await store.close();
  }
}

export async function run(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  if (argv[0] === 'doctor') return runDoctor(argv.slice(1));
  if (argv[0] === 'token') return runTokenCommand(argv.slice(1), env);
  const args = parseArgs(argv);
  if (typeof args === 'string') {
    process.stderr.write(`sessiongate: ${args}\n${USAGE}`);
    return 2;
  }
  if (args.command === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  if (args.command === 'version') {
    process.stdout.write(`sessiongate ${VERSION}\n`);
    return 0;
  }
  if (args.command !== 'serve' && args.command !== 'check-config' && args.command !== 'revoke-user') {
    process.stderr.write(`sessiongate: unknown command ${JSON.stringify(args.command)}\n${USAGE}`);
    return 2;
  }

  const loaded = loadConfig({ file: args.config, env });
  if (!loaded.ok) {
    process.stderr.write(formatProblems(loaded.source, loaded.problems));
    return 1;
  }
  if (args.command === 'revoke-user') return revokeUser(args.operands[0], loaded.config);
  if (args.command === 'check-config') {
    process.stdout.write(`sessiongate: configuration${loaded.config.source ? ` ${loaded.config.source}` : ''} is valid\n`);
    for (const w of loaded.warnings) process.stdout.write(`  warning: ${w}\n`);
    return 0;
  }

  const log = createLogger(loaded.config.logLevel);
  if (loaded.config.workers > 1 && cluster.isPrimary) {
    for (const w of loaded.warnings) log.warn({ msg: w });
    return runPrimary(loaded.config.workers, log);
  }
  if (!cluster.isWorker) for (const w of loaded.warnings) log.warn({ msg: w });
  let service;
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
    // SIGHUP: re-read the configuration file and secret files; all or nothing.
    process.on('SIGHUP', () => {
      const next = loadConfig({ file: args.config, env });
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
