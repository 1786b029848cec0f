/** `sessiongate check-config`: validates a configuration (file and environment) and exits. */
import { formatProblems, loadConfig } from '../config.js';
import { type Io, PROG, parseVerb } from './args.js';

export const USAGE = `usage: ${PROG} check-config [--config FILE]

Validates the configuration (the YAML file of --config or SESSIONGATE_CONFIG, with SESSIONGATE_*
environment variables over it) without starting anything, and lists its warnings.
Exit 0: valid; 1: invalid (every problem listed by key path); 2: bad arguments.
`;

export async function checkConfig(argv: readonly string[], env: NodeJS.ProcessEnv, io: Io): Promise<number> {
  const args = parseVerb('check-config', USAGE, argv, { config: { type: 'string', short: 'c' } }, io);
  if (typeof args === 'number') return args;
  const loaded = loadConfig({ file: args.values.config, env });
  if (!loaded.ok) {
    io.err(formatProblems(loaded.source, loaded.problems, loaded.warnings));
    return 1;
  }
  io.out(`sessiongate: configuration${loaded.config.source ? ` ${loaded.config.source}` : ''} is valid\n`);
  for (const w of loaded.warnings) io.out(`  warning: ${w}\n`);
  return 0;
}
