/** `sessiongate revoke-user USER_ID`: ends every session of a user in the shared store. */
import { revokeUserSessions } from '../api/revoke-user.js';
import { formatProblems, loadConfig } from '../config.js';
import { type Io, PROG, parseVerb } from './args.js';

export const USAGE = `usage: ${PROG} revoke-user USER_ID [--config FILE]

Ends every session of USER_ID in the shared store (redis…) and tells every replica's cache, as
DELETE /~session/user/<id> does on a running service. Needs the service's configuration: its
store and its secrets (sessions are filed under keyed hashes of user IDs).
Exit 0: done; 1: the store failed or the configuration is invalid; 2: bad arguments.
`;

export async function revokeUser(argv: readonly string[], env: NodeJS.ProcessEnv, io: Io): Promise<number> {
  const args = parseVerb('revoke-user', USAGE, argv, { config: { type: 'string', short: 'c' } }, io, 1);
  if (typeof args === 'number') return args;
  const loaded = loadConfig({ file: args.values.config, env });
  if (!loaded.ok) {
    io.err(formatProblems(loaded.source, loaded.problems, loaded.warnings));
    return 1;
  }
  const userId = args.positionals[0];
  if (userId === undefined || userId === '') {
    io.err(`sessiongate: revoke-user needs a user ID\n${USAGE}`);
    return 2;
  }
  const config = loaded.config;
  if (config.store.kind === 'memory') {
    io.err(
      'sessiongate: revoke-user needs a shared store (redis…): memory sessions live inside the running service; call DELETE /~session/user/<id> on it instead\n',
    );
    return 2;
  }
  if (config.ephemeralSecret) {
    io.err(
      "sessiongate: revoke-user needs the service's secrets (SESSIONGATE_SECRET or SESSIONGATE_SECRET_FILE): sessions are filed under keyed hashes of user IDs\n",
    );
    return 2;
  }
  try {
    const removed = await revokeUserSessions(config.store, config.policy.secrets, userId);
    io.out(`sessiongate: revoked ${removed} session${removed === 1 ? '' : 's'} of ${JSON.stringify(userId)}\n`);
    return 0;
  } catch (err) {
    io.err(`sessiongate: revoke-user failed: ${(err as Error).message}\n`);
    return 1;
  }
}
