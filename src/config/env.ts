/**
 * SESSIONGATE_* environment variables: the key each overrides, how its text becomes a value,
 * and a warning for a variable that names no key (a misspelling is otherwise silently ignored).
 */

export type Env = Readonly<Record<string, string | undefined>>;

/** Environment variables and the key each overrides. */
export const ENV_KEYS = {
  SESSIONGATE_HOST: 'listen.host',
  SESSIONGATE_ADMIN_HOST: 'listen.admin_host',
  SESSIONGATE_HTTP_PORT: 'listen.http_port',
  SESSIONGATE_GRPC_PORT: 'listen.grpc_port',
  SESSIONGATE_ADMIN_PORT: 'listen.admin_port',
  SESSIONGATE_API_HOST: 'listen.api_host',
  SESSIONGATE_API_PORT: 'listen.api_port',
  SESSIONGATE_API_ALLOW_REMOTE: 'listen.api_allow_remote',
  SESSIONGATE_STORE: 'store',
  SESSIONGATE_SECRET: 'secrets',
  SESSIONGATE_SECRET_FILE: 'secret_file',
  SESSIONGATE_LOGIN_TOKEN: 'login_token',
  SESSIONGATE_LOGIN_TOKEN_FILE: 'login_token_file',
  SESSIONGATE_COOKIE_NAME: 'cookie.name',
  SESSIONGATE_COOKIE_SECURE: 'cookie.secure',
  SESSIONGATE_LOG_LEVEL: 'log_level',
  SESSIONGATE_WORKERS: 'workers',
  SESSIONGATE_LOGIN_URL: 'login_url',
  SESSIONGATE_ALLOWED_REDIRECT_HOSTS: 'allowed_redirect_hosts',
  SESSIONGATE_DEV_LOGIN: 'dev_login',
  SESSIONGATE_UPSTREAM_PASS_CREDENTIALS: 'upstream.pass_credentials',
  SESSIONGATE_OIDC_ISSUER: 'login.oidc.issuer',
  SESSIONGATE_OIDC_CLIENT_ID: 'login.oidc.client_id',
  SESSIONGATE_OIDC_CLIENT_SECRET: 'login.oidc.client_secret',
  SESSIONGATE_OIDC_CLIENT_SECRET_FILE: 'login.oidc.client_secret_file',
} as const;

/** Every variable sessiongate reads: the keys' and the config file's. */
export const ENV_NAMES: readonly string[] = [...Object.keys(ENV_KEYS), 'SESSIONGATE_CONFIG'];

/** Where the variables are listed, for a name with no near match. */
export const ENV_DOCS = 'docs/configuration.md';

/** A list as written in a variable or file: comma or newline separated. */
export function splitList(s: string): string[] {
  return s
    .split(/[,\n]/)
    .map((x) => x.trim())
    .filter((x) => x !== '');
}

/** A variable's text as the value its key takes; anything else is left for the schema to refuse. */
export function envValue(key: string, value: string): unknown {
  if (key.endsWith('_port') || key === 'workers') return /^\d+$/.test(value) ? Number(value) : value;
  if (key === 'cookie.secure' || key === 'dev_login' || key === 'upstream.pass_credentials' || key === 'listen.api_allow_remote')
    return value === 'true' ? true : value === 'false' ? false : value;
  if (key === 'secrets' || key === 'allowed_redirect_hosts') return splitList(value);
  return value;
}

function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length]!;
}

const PREFIX = 'SESSIONGATE_';
const words = (name: string) =>
  new Set(
    name
      .slice(PREFIX.length)
      .split('_')
      .filter((w) => w !== '')
      .map((w) => w.replace(/S$/, '')),
  );

/** The real variables nearest a name: a small edit away, else sharing the most words with it. */
export function nearestVariables(name: string): string[] {
  const upper = name.toUpperCase();
  const scored = ENV_NAMES.map((real) => ({ real, d: distance(upper.slice(PREFIX.length), real.slice(PREFIX.length)) })).sort((a, b) => a.d - b.d);
  const close = Math.max(1, Math.floor((upper.length - PREFIX.length) / 4));
  if (scored[0]!.d <= close) return scored.filter((s) => s.d === scored[0]!.d).map((s) => s.real);
  const mine = words(upper);
  const shared = scored.map((s) => ({ ...s, n: [...words(s.real)].filter((w) => mine.has(w)).length })).filter((s) => s.n > 0);
  const most = Math.max(0, ...shared.map((s) => s.n));
  return shared.filter((s) => s.n === most).map((s) => s.real);
}

function orList(names: readonly string[]): string {
  return names.length === 1 ? names[0]! : `${names.slice(0, -1).join(', ')} or ${names.at(-1)!}`;
}

/** One warning per SESSIONGATE_* variable that sessiongate does not read: its name, never its value. */
export function misspelledVariables(env: Env): string[] {
  const known = new Set(ENV_NAMES);
  const out: string[] = [];
  for (const name of Object.keys(env).sort()) {
    if (!name.toUpperCase().startsWith(PREFIX) || known.has(name)) continue;
    const near = nearestVariables(name);
    const hint = near.length > 0 ? `did you mean ${orList(near)}?` : `the variables are listed in ${ENV_DOCS}`;
    out.push(`${name} is not a sessiongate variable and is ignored: ${hint}`);
  }
  return out;
}
