/**
 * `sessiongate healthcheck`: GET /healthz on the admin port of the service this configuration
 * describes, exit 0 when it answers 200 and 1 otherwise. The configuration is loaded exactly as
 * `serve` loads it (--config or SESSIONGATE_CONFIG, SESSIONGATE_* over it), so the port comes
 * from the file too, not only from SESSIONGATE_ADMIN_PORT: for the container image's
 * HEALTHCHECK and for exec probes, which run beside the service with its environment.
 */
import { formatProblems, loadConfig } from '../config.js';
import { type Io, localUrl, PROG, parseVerb } from './args.js';

export const USAGE = `usage: ${PROG} healthcheck [--config FILE] [--timeout 2000]

Asks the running service's admin port for /healthz, at the address the configuration gives
(listen.admin_host or listen.host, a wildcard address reached on loopback; listen.admin_port).
Reads the configuration as serve does: the YAML file of --config or SESSIONGATE_CONFIG, with
SESSIONGATE_* environment variables over it. --timeout: milliseconds to wait for the answer.
Exit 0: healthy; 1: no answer, another status, or an invalid configuration; 2: bad arguments.
`;

export async function healthcheck(argv: readonly string[], env: NodeJS.ProcessEnv, io: Io): Promise<number> {
  const args = parseVerb('healthcheck', USAGE, argv, { config: { type: 'string', short: 'c' }, timeout: { type: 'string' } }, io);
  if (typeof args === 'number') return args;
  const timeout = args.values.timeout === undefined ? 2000 : Number(args.values.timeout);
  if (!Number.isInteger(timeout) || timeout < 1) {
    io.err(`sessiongate healthcheck: --timeout must be a whole number of milliseconds\n${USAGE}`);
    return 2;
  }
  const loaded = loadConfig({ file: args.values.config, env });
  if (!loaded.ok) {
    io.err(formatProblems(loaded.source, loaded.problems));
    return 1;
  }
  const { adminHost, adminPort } = loaded.config.listen;
  const url = `${localUrl(adminHost, adminPort)}/healthz`;
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(timeout) });
    await r.body?.cancel();
    if (r.status === 200) {
      io.out(`sessiongate healthcheck: ${url} 200\n`);
      return 0;
    }
    io.err(`sessiongate healthcheck: ${url} answered ${r.status}\n`);
  } catch (e) {
    const err = e as Error & { cause?: { code?: string } };
    io.err(`sessiongate healthcheck: ${url}: ${err.cause?.code ?? err.message}\n`);
  }
  return 1;
}
