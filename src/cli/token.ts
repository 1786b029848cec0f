/**
 * `sessiongate token create|list|revoke`: the API token commands. They talk to a running
 * service's token API (tokens live in its store, which may be the in-process memory store), at
 * the configuration's `listen.api_host`/`api_port` or `--api-url`, with the configured login token.
 */
import { formatProblems, loadConfig } from '../config.js';
import { type Io, localUrl, PROG, parseVerb } from './args.js';

export const USAGE = `usage: ${PROG} token create --user USER [--roles A,B] [--ttl 90d] [--name NAME]
       ${PROG} token list
       ${PROG} token revoke TOKEN_ID
options: --config FILE, --api-url URL (default: the configured token API address,
listen.api_host and listen.api_port, 127.0.0.1:9183 unless set)
--ttl: a duration as in the configuration (90d, 12h, 1h30m), at most 1095d; default 90d.

The token is printed once, at creation; sessiongate keeps only its hash.
`;

export async function token(argv: readonly string[], env: NodeJS.ProcessEnv, io: Io): Promise<number> {
  const { out, err } = io;
  if (argv.some((a) => a === '--admin-url' || a.startsWith('--admin-url='))) {
    err(`sessiongate token: --admin-url is gone: the token API has its own listener (listen.api_port, default 9183); use --api-url\n${USAGE}`);
    return 2;
  }
  const args = parseVerb(
    'token',
    USAGE,
    argv,
    {
      config: { type: 'string', short: 'c' },
      'api-url': { type: 'string' },
      user: { type: 'string' },
      roles: { type: 'string' },
      ttl: { type: 'string' },
      name: { type: 'string' },
    },
    io,
    2,
  );
  if (typeof args === 'number') return args;
  const { values, positionals } = args;
  const [action, ...rest] = positionals;
  if (action === undefined) {
    err(USAGE);
    return 2;
  }
  const loaded = loadConfig({ file: values.config, env });
  if (!loaded.ok) {
    err(formatProblems(loaded.source, loaded.problems));
    return 1;
  }
  const loginToken = loaded.config.loginToken;
  if (!loginToken) {
    err('sessiongate token: no login token configured (SESSIONGATE_LOGIN_TOKEN or SESSIONGATE_LOGIN_TOKEN_FILE): the token API needs it\n');
    return 1;
  }
  const { apiHost, apiPort } = loaded.config.listen;
  const base = (values['api-url'] ?? localUrl(apiHost, apiPort)).replace(/\/$/, '');
  const call = async (method: string, path: string, body?: unknown) => {
    const r = await fetch(`${base}${path}`, {
      method,
      headers: { Authorization: `Bearer ${loginToken.toString()}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    const text = await r.text();
    return { status: r.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
  };
  const fail = (r: { status: number; json: Record<string, unknown> }) => {
    const problems = Array.isArray(r.json['problems']) ? `\n  ${(r.json['problems'] as string[]).join('\n  ')}` : '';
    err(`sessiongate token: ${r.status} ${String(r.json['error'] ?? '')}${problems}\n`);
    return 1;
  };
  try {
    if (action === 'create') {
      if (!values.user) {
        err(`sessiongate token create: --user is required\n${USAGE}`);
        return 2;
      }
      const r = await call('POST', '/tokens', {
        user_id: values.user,
        roles: values.roles
          ? values.roles
              .split(',')
              .map((s) => s.trim())
              .filter(Boolean)
          : [],
        ...(values.ttl ? { ttl: values.ttl } : {}),
        ...(values.name ? { name: values.name } : {}),
      });
      if (r.status !== 201) return fail(r);
      out(`${String(r.json['token'])}\n`);
      err(
        `token ${String(r.json['id'])} for ${String(r.json['user_id'])}, roles [${(r.json['roles'] as string[]).join(', ')}], expires ${String(r.json['expires_at'])}\nThis is the only time the token is shown.\n`,
      );
      return 0;
    }
    if (action === 'list') {
      const r = await call('GET', '/tokens');
      if (r.status !== 200) return fail(r);
      const rows = r.json as unknown as Array<Record<string, unknown>>;
      const line = (c: string[]) => c.map((x, i) => (i < 4 ? x.padEnd([22, 24, 24, 26][i]!) : x)).join('  ');
      out(`${line(['ID', 'USER', 'ROLES', 'EXPIRES', 'NAME'])}\n`);
      for (const t of rows)
        out(`${line([String(t['id']), String(t['user_id']), (t['roles'] as string[]).join(','), String(t['expires_at']), String(t['name'] ?? '')])}\n`);
      return 0;
    }
    if (action === 'revoke') {
      const id = rest[0];
      if (!id) {
        err(`sessiongate token revoke: which token? (its ID, from token list)\n${USAGE}`);
        return 2;
      }
      const r = await call('DELETE', `/tokens/${encodeURIComponent(id)}`);
      if (r.status !== 204) return fail(r);
      out(`revoked ${id}\n`);
      return 0;
    }
  } catch (e) {
    err(`sessiongate token: cannot reach the token API at ${base}: ${(e as Error).message}\n`);
    return 1;
  }
  err(`sessiongate token: unknown action ${JSON.stringify(action)}\n${USAGE}`);
  return 2;
}
