/**
 * Loading: the YAML file, then SESSIONGATE_* environment variables, then the files that hold
 * secrets, handed to the schema (config/schema.ts) as one raw object. Every problem is collected
 * and reported with its key path (and the variable it came from) before anything listens.
 * Secrets are read here and never appear in a message.
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import type { z } from 'zod';
import { ENV_KEYS, type Env, envValue, misspelledVariables, splitList } from './env.js';
import { type BuiltConfig, configError, configSchema } from './schema.js';

export type Config = BuiltConfig & {
  /** The file read, if any. */
  readonly source: string | null;
};

export type ConfigResult =
  | { readonly ok: true; readonly config: Config; readonly warnings: string[] }
  | { readonly ok: false; readonly source: string | null; readonly problems: string[]; readonly warnings: string[] };

export interface LoadOptions {
  /** Config file path from `--config`; falls back to SESSIONGATE_CONFIG. */
  readonly file?: string | undefined;
  readonly env: Env;
}

function setPath(obj: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.');
  let o = obj;
  for (const p of parts.slice(0, -1)) {
    const next = o[p];
    if (next === null || typeof next !== 'object' || Array.isArray(next)) o[p] = {};
    o = o[p] as Record<string, unknown>;
  }
  o[parts[parts.length - 1]!] = value;
}

function getObject(obj: Record<string, unknown>, path: readonly string[]): Record<string, unknown> | undefined {
  let o: unknown = obj;
  for (const p of path) {
    if (o === null || typeof o !== 'object' || Array.isArray(o)) return undefined;
    o = (o as Record<string, unknown>)[p];
  }
  return o !== null && typeof o === 'object' && !Array.isArray(o) ? (o as Record<string, unknown>) : undefined;
}

function pathString(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out === '' ? String(p) : `.${String(p)}`;
  return out;
}

/** A file's text, or undefined with the problem recorded under `key`. */
function readText(path: string, key: string, problems: string[], origin: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    problems.push(`${key}${origin}: cannot read ${JSON.stringify(path)} (${code})`);
    return undefined;
  }
}

/** A file holding one value (a token, a password): the whole first line, commas included. */
function readOneValue(path: string, key: string, problems: string[], origin: string, what: string): string | undefined {
  const text = readText(path, key, problems, origin);
  if (text === undefined) return undefined;
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
  if (lines.length !== 1) {
    problems.push(`${key}${origin}: must hold exactly one ${what}`);
    return undefined;
  }
  return lines[0];
}

/** The YAML problem in one line: where, then what (the library's own text ends in a code frame). */
function yamlProblem(err: unknown): string {
  if (!(err instanceof YAMLParseError)) return `config file: invalid YAML: ${String(err)}`;
  const what = err.message
    .split('\n')[0]!
    .replace(/ at line \d+, column \d+:?\s*$/, '')
    .replace(/:\s*$/, '');
  const at = err.linePos?.[0];
  return `config file: invalid YAML${at ? ` at line ${at.line}, column ${at.col}` : ''}: ${what.charAt(0).toLowerCase()}${what.slice(1)}`;
}

/** Reads, merges and validates the configuration; never throws for bad input. */
export function loadConfig(opts: LoadOptions): ConfigResult {
  const source = opts.file ?? opts.env['SESSIONGATE_CONFIG'] ?? null;
  const problems: string[] = [];
  const warnings = misspelledVariables(opts.env);
  const fail = (): ConfigResult => ({ ok: false, source, problems, warnings });
  let raw: Record<string, unknown> = {};

  if (source !== null) {
    const text = readText(source, 'config file', problems, '');
    if (text !== undefined) {
      try {
        const doc: unknown = parseYaml(text);
        if (doc === null || doc === undefined) raw = {};
        else if (typeof doc === 'object' && !Array.isArray(doc)) raw = doc as Record<string, unknown>;
        else problems.push('config file: must be a YAML mapping of keys');
      } catch (err) {
        problems.push(yamlProblem(err));
      }
    }
  }

  // Passwords come from files only (the schema's `password` keys are the loader's), and so
  // does the OpenID client secret (or its variable).
  for (const at of [['redis'], ['redis', 'sentinel']]) {
    if (getObject(raw, at)?.['password'] !== undefined)
      problems.push(`${[...at, 'password'].join('.')}: unknown key (use ${[...at, 'password_file'].join('.')})`);
  }
  if (getObject(raw, ['login', 'oidc'])?.['client_secret'] !== undefined)
    problems.push('login.oidc.client_secret: unknown key (use login.oidc.client_secret_file or SESSIONGATE_OIDC_CLIENT_SECRET)');

  // Environment overrides. Each variable replaces its key; a secret given by value replaces a
  // secret file from YAML and vice versa, so the operator's last word wins.
  const origin = new Map<string, string>();
  for (const [name, key] of Object.entries(ENV_KEYS)) {
    const value = opts.env[name];
    if (value === undefined || value === '') continue;
    setPath(raw, key, envValue(key, value));
    origin.set(key, name);
  }
  const both = (a: keyof typeof ENV_KEYS, b: keyof typeof ENV_KEYS) => {
    if (origin.has(ENV_KEYS[a]) && origin.has(ENV_KEYS[b])) problems.push(`${a} and ${b}: set only one of them`);
  };
  both('SESSIONGATE_SECRET', 'SESSIONGATE_SECRET_FILE');
  both('SESSIONGATE_LOGIN_TOKEN', 'SESSIONGATE_LOGIN_TOKEN_FILE');
  both('SESSIONGATE_OIDC_CLIENT_SECRET', 'SESSIONGATE_OIDC_CLIENT_SECRET_FILE');
  if (origin.has('secrets')) delete raw['secret_file'];
  if (origin.has('secret_file')) delete raw['secrets'];
  if (origin.has('login_token')) delete raw['login_token_file'];
  if (origin.has('login_token_file')) delete raw['login_token'];
  const from = (key: string) => (origin.has(key) ? ` (from ${origin.get(key)})` : '');

  if (raw['secrets'] !== undefined && raw['secret_file'] !== undefined) problems.push('secrets, secret_file: set only one of them');
  if (raw['login_token'] !== undefined && raw['login_token_file'] !== undefined) problems.push('login_token, login_token_file: set only one of them');

  // Files holding secrets are read now, so their contents are validated like inline values.
  if (typeof raw['secret_file'] === 'string') {
    const text = readText(raw['secret_file'], 'secret_file', problems, from('secret_file'));
    if (text !== undefined) {
      raw['secrets'] = splitList(text);
      if (origin.has('secret_file')) origin.set('secrets', origin.get('secret_file')!);
    }
    delete raw['secret_file'];
  }
  if (typeof raw['login_token_file'] === 'string') {
    const token = readOneValue(raw['login_token_file'], 'login_token_file', problems, from('login_token_file'), 'token');
    if (token !== undefined) {
      raw['login_token'] = token;
      if (origin.has('login_token_file')) origin.set('login_token', origin.get('login_token_file')!);
    }
    delete raw['login_token_file'];
  }
  const oidc = getObject(raw, ['login', 'oidc']);
  if (oidc !== undefined) {
    if (origin.has('login.oidc.client_secret')) delete oidc['client_secret_file'];
    const file = oidc['client_secret_file'];
    if (typeof file === 'string') {
      const key = 'login.oidc.client_secret_file';
      const secret = readOneValue(file, key, problems, from(key), 'client secret');
      if (secret !== undefined) oidc['client_secret'] = secret;
    } else if (oidc['client_secret'] === undefined) {
      // Here, not in the schema: a rule across keys there waits until every other key parsed.
      problems.push(
        'login.oidc.client_secret_file: is required: the client secret comes from login.oidc.client_secret_file, SESSIONGATE_OIDC_CLIENT_SECRET or SESSIONGATE_OIDC_CLIENT_SECRET_FILE',
      );
    }
  }
  // As before the split: password files are read only for a Redis store.
  for (const at of typeof raw['store'] === 'string' && raw['store'] !== 'memory' ? [['redis'], ['redis', 'sentinel']] : []) {
    const o = getObject(raw, at);
    const file = o?.['password_file'];
    if (o === undefined || typeof file !== 'string') continue;
    const password = readOneValue(file, [...at, 'password_file'].join('.'), problems, '', 'password');
    if (password !== undefined) o['password'] = password;
  }

  const parsed = configSchema.safeParse(raw, { error: configError });
  if (!parsed.success) problems.push(...parsed.error.issues.flatMap((issue) => describe(issue, from)));
  if (!parsed.success || problems.length > 0) return fail();
  return { ok: true, config: { ...parsed.data.config, source }, warnings: [...warnings, ...parsed.data.warnings] };
}

function describe(issue: z.core.$ZodIssue, from: (key: string) => string): string[] {
  if (issue.code === 'unrecognized_keys') return issue.keys.map((key) => `${pathString([...issue.path, key])}: unknown key`);
  const key = pathString(issue.path);
  // A record key's own problem is nested one level down; say that, not "Invalid key".
  const message = issue.code === 'invalid_key' ? (issue.issues[0]?.message ?? issue.message) : issue.message;
  // A secret's value is never echoed: messages come from our own texts and configError, which
  // hold no input values.
  const top = key.replace(/\[\d+\].*$/, '').replace(/\..*$/, '');
  return [`${key || '(top level)'}${from(key) || from(top)}: ${message}`];
}

export function formatProblems(source: string | null, problems: readonly string[], warnings: readonly string[] = []): string {
  const where = source ? ` (${source})` : '';
  const n = problems.length;
  // Warnings too: a misspelled variable is often why a key came out wrong.
  const notes = warnings.map((w) => `  warning: ${w}\n`).join('');
  return `sessiongate: invalid configuration${where}: ${n} problem${n === 1 ? '' : 's'}\n${problems.map((p) => `  - ${p}`).join('\n')}\n${notes}`;
}
