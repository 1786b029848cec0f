/**
 * The one argument parser of the command line: every verb parses its own options with
 * `node:util` parseArgs through `parseVerb`, which adds `--help` and `--version` to each and
 * answers them, and turns a parse error into the verb's usage on stderr (exit 2).
 */
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { VERSION } from '../version.js';

/** Where a verb writes: stdout and stderr, replaceable in tests. */
export interface Io {
  readonly out: (s: string) => void;
  readonly err: (s: string) => void;
}

export const processIo: Io = { out: (s) => void process.stdout.write(s), err: (s) => void process.stderr.write(s) };

/** How the command is spelled in usage texts: `sessiongate` is on PATH only for an installed package. */
export const PROG = 'npx sessiongate';

type ParseArgsOptionsConfig = NonNullable<ParseArgsConfig['options']>;

const COMMON = { help: { type: 'boolean', short: 'h' }, version: { type: 'boolean' } } as const;

export interface Parsed<O extends ParseArgsOptionsConfig> {
  readonly values: ReturnType<typeof parseArgs<{ args: string[]; options: O & typeof COMMON; allowPositionals: true; strict: true }>>['values'];
  readonly positionals: string[];
}

/**
 * The verb's options and operands, or the exit code when there is nothing left to do (help or
 * version shown: 0; a bad argument or too many operands: 2).
 */
export function parseVerb<const O extends ParseArgsOptionsConfig>(
  verb: string,
  usage: string,
  argv: readonly string[],
  options: O,
  io: Io,
  maxOperands = 0,
): Parsed<O> | number {
  let parsed: { values: unknown; positionals: string[] };
  try {
    parsed = parseArgs({ args: [...argv], options: { ...options, ...COMMON } as O & typeof COMMON, allowPositionals: true, strict: true });
  } catch (e) {
    io.err(`sessiongate ${verb}: ${(e as Error).message}\n${usage}`);
    return 2;
  }
  const values = parsed.values as Parsed<O>['values'] & { help?: boolean; version?: boolean };
  if (values.help) {
    io.out(usage);
    return 0;
  }
  if (values.version) {
    io.out(`sessiongate ${VERSION}\n`);
    return 0;
  }
  if (parsed.positionals.length > maxOperands) {
    io.err(`sessiongate ${verb}: unexpected argument ${JSON.stringify(parsed.positionals[maxOperands])}\n${usage}`);
    return 2;
  }
  return { values, positionals: parsed.positionals };
}

/**
 * `http://host:port` for reaching a listener of this machine's service: a wildcard bind
 * (`0.0.0.0`, `::`) is reached on loopback, an IPv6 address in brackets.
 */
export function localUrl(host: string, port: number): string {
  const h = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '[::1]' : host.includes(':') ? `[${host}]` : host;
  return `http://${h}:${port}`;
}
