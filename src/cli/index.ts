/**
 * The command line: `sessiongate [VERB] [OPTIONS]`, one file a verb in this folder, each parsed
 * by the one parser of args.ts and each answering --help. Without a verb, `serve`.
 */
import { VERSION } from '../version.js';
import { type Io, PROG, processIo } from './args.js';
import { checkConfig } from './check-config.js';
import { demo } from './demo.js';
import { doctor } from './doctor.js';
import { healthcheck } from './healthcheck.js';
import { revokeUser } from './revoke-user.js';
import { serve } from './serve.js';
import { token } from './token.js';

type Verb = (argv: readonly string[], env: NodeJS.ProcessEnv, io: Io) => Promise<number>;

const VERBS: Record<string, Verb> = { serve, 'check-config': checkConfig, 'revoke-user': revokeUser, token, doctor, demo, healthcheck };

export const USAGE = `usage: ${PROG} [VERB] [OPTIONS]
  (from a checkout after npm ci; or node bin/sessiongate.js …; an installed package puts
  sessiongate itself on PATH)

  serve                        run the service (the default verb)       [--config FILE]
  check-config                 validate a configuration and exit        [--config FILE]
  revoke-user USER_ID          end every session of a user (shared store) [--config FILE]
  token create|list|revoke     API tokens, through a running service's token API
  doctor --url URL             check a live deployment from outside
  healthcheck                  GET the admin port's /healthz, exit 0/1 (container and exec probes)
                                                                       [--config FILE]
  demo                         a five-minute tour: nginx, sessiongate and an echo application
                               on this machine (npm run demo builds first)
  --version, --help            and VERB --help for each verb's options

Configuration: a YAML file (--config or SESSIONGATE_CONFIG) with SESSIONGATE_* environment
variables overriding it; embedded defaults without either. The documentation lists every key.
`;

export async function run(argv: readonly string[], env: NodeJS.ProcessEnv, io: Io = processIo): Promise<number> {
  const first = argv[0];
  if (first === '--help' || first === '-h' || first === 'help') {
    io.out(USAGE);
    return 0;
  }
  if (first === '--version' || first === '-v') {
    io.out(`sessiongate ${VERSION}\n`);
    return 0;
  }
  // Options with no verb before them belong to serve: `sessiongate --config FILE`.
  if (first === undefined || first.startsWith('-')) return serve(argv, env, io);
  const verb = VERBS[first];
  if (verb === undefined || !Object.hasOwn(VERBS, first)) {
    io.err(`sessiongate: unknown command ${JSON.stringify(first)}\n${USAGE}`);
    return 2;
  }
  return verb(argv.slice(1), env, io);
}
