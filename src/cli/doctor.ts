/** `sessiongate doctor --url URL`: checks a live deployment from outside (the checks: ../doctor.ts). */
import { PROBE_PREFIX } from '../core/rules.js';
import { runDoctor } from '../doctor.js';
import { type Io, PROG, parseVerb } from './args.js';

export const USAGE = `usage: ${PROG} doctor --url URL [--cookie VALUE] [--cookie-name NAME] [--headers A,B,…] [--insecure] [--timeout MS]

Checks a live deployment from outside: spoofed identity headers, forged cookies, traversal
paths and forwarded-header tricks, sent through the proxy to sessiongate's probe at
${PROBE_PREFIX}/. --cookie: a real session cookie value (log in, copy it) to check the
identity the upstream receives. --headers: the identity headers to spoof, with their case,
\`_\` and \`.\` variants (default X-User-Id,X-User-Roles,X-User-Email,X-Auth-User). Exit 0: all PASS; 1: a FAIL; 2: the probe is not reachable.
`;

export async function doctor(argv: readonly string[], _env: NodeJS.ProcessEnv, io: Io): Promise<number> {
  const args = parseVerb(
    'doctor',
    USAGE,
    argv,
    {
      url: { type: 'string' },
      cookie: { type: 'string' },
      headers: { type: 'string', default: 'X-User-Id,X-User-Roles,X-User-Email,X-Auth-User' },
      'cookie-name': { type: 'string', default: 'sessiongate' },
      insecure: { type: 'boolean', default: false },
      timeout: { type: 'string', default: '5000' },
    },
    io,
  );
  if (typeof args === 'number') return args;
  const { values } = args;
  let url: URL;
  try {
    url = new URL(values.url ?? '');
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('not http(s)');
  } catch {
    io.err(`sessiongate doctor: --url must be an http(s) URL\n${USAGE}`);
    return 2;
  }
  return runDoctor(
    {
      url,
      cookie: values.cookie,
      cookieName: values['cookie-name'],
      headers: values.headers
        .split(',')
        .map((x) => x.trim())
        .filter(Boolean),
      insecure: values.insecure,
      timeoutMs: Number(values.timeout) || 5000,
    },
    io,
  );
}
