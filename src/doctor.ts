/**
 * `sessiongate doctor --url https://app.example.com [--cookie VALUE]`: checks a live deployment
 * from outside. It sends hostile requests through the real proxy to the probe sessiongate
 * serves at `/~sessiongate/probe/…` (routed by the shipped nginx and Envoy configs, authorised
 * like the application) and reports what the upstream received, PASS or FAIL per check.
 *
 * - `/~sessiongate/probe/public` needs no session: spoofed identity headers and their aliases
 *   sent there must not reach the upstream.
 * - `/~sessiongate/probe/private` needs one: forged cookies, traversal paths and forwarded
 *   headers that describe another request must not get there without a real session; with
 *   `--cookie`, the upstream must see the session's identity and none of the forged values.
 *
 * Requests are written byte for byte on a socket (TLS for https), so header spellings no
 * HTTP library would send (`x_user_id`, `X.User.Id`, repeated headers) go out as written.
 * Exit 0: every check passed; 1: a check failed; 2: the probe could not be reached. The command
 * line's arguments are read in cli/doctor.ts.
 */
import { randomBytes } from 'node:crypto';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { DOCTOR_MARKER, type ProbeAnswer } from './api/probe.js';
import type { Io } from './cli/args.js';
import { PROBE_PREFIX } from './core/rules.js';

interface Reply {
  status: number;
  headers: Record<string, string>;
  body: string;
}

interface Target {
  url: URL;
  insecure: boolean;
  timeoutMs: number;
}

/** One request, written as given; the answer read to the end (Content-Length or chunked). */
export function rawExchange(t: Target, method: string, path: string, headers: Array<[string, string]>): Promise<Reply> {
  const host = t.url.host;
  const lines = [`${method} ${path} HTTP/1.1`, `Host: ${host}`, 'User-Agent: sessiongate-doctor', 'Accept: application/json'];
  for (const [k, v] of headers) lines.push(`${k}: ${v}`);
  lines.push('Connection: close', '', '');
  const bytes = Buffer.from(lines.join('\r\n'), 'latin1');
  const port = Number(t.url.port || (t.url.protocol === 'https:' ? 443 : 80));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let socket: Socket;
    const onConnect = () => socket.write(bytes);
    if (t.url.protocol === 'https:')
      socket = tlsConnect({ host: t.url.hostname, port, servername: t.url.hostname, rejectUnauthorized: !t.insecure }, onConnect);
    else socket = netConnect(port, t.url.hostname, onConnect);
    socket.setTimeout(t.timeoutMs, () => socket.destroy(new Error(`no answer within ${t.timeoutMs} ms`)));
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => {
      const all = Buffer.concat(chunks);
      const end = all.indexOf('\r\n\r\n');
      const head = all
        .subarray(0, end < 0 ? all.length : end)
        .toString('latin1')
        .split('\r\n');
      const status = Number(/^HTTP\/\d(?:\.\d)? (\d{3})/.exec(head[0] ?? '')?.[1] ?? 0);
      const h: Record<string, string> = {};
      for (const line of head.slice(1)) {
        const i = line.indexOf(':');
        if (i > 0) h[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
      }
      let body: Buffer = end < 0 ? Buffer.alloc(0) : all.subarray(end + 4);
      if (/chunked/i.test(h['transfer-encoding'] ?? '')) body = dechunk(body);
      resolve({ status, headers: h, body: body.toString('utf8') });
    });
  });
}

function dechunk(b: Buffer): Buffer {
  const out: Buffer[] = [];
  let i = 0;
  while (i < b.length) {
    const nl = b.indexOf('\r\n', i);
    if (nl < 0) break;
    const size = parseInt(b.subarray(i, nl).toString('latin1'), 16);
    if (!Number.isFinite(size) || size === 0) break;
    out.push(b.subarray(nl + 2, nl + 2 + size));
    i = nl + 2 + size + 2;
  }
  return Buffer.concat(out);
}

function probeAnswer(r: Reply): ProbeAnswer | undefined {
  if (r.status < 200 || r.status > 299) return undefined;
  try {
    const a = JSON.parse(r.body) as ProbeAnswer;
    return a && a.sessiongate_probe === 1 ? a : undefined;
  } catch {
    return undefined;
  }
}

export interface CheckResult {
  name: string;
  sent: string;
  received: string;
  result: 'PASS' | 'FAIL' | 'SKIP';
  why?: string | undefined;
}

const DENIED = new Set([400, 401, 403, 404, 302, 303, 307]);

function describe(r: Reply, a: ProbeAnswer | undefined): string {
  if (!a) return `(not reached: ${r.status}${r.headers['location'] ? ` → ${r.headers['location'].slice(0, 60)}` : ''})`;
  const pairs = [...a.identity, ...a.marked].map(([k, v]) => `${k}: ${v}`);
  return pairs.length ? pairs.join('; ') : '(reached, no identity headers)';
}

export async function runChecks(
  t: Target,
  cookie: string | undefined,
  cookieName: string,
  identityHeaders: readonly string[],
): Promise<{ setupError?: string; results: CheckResult[] }> {
  const mark = `${DOCTOR_MARKER}${randomBytes(4).toString('hex')}`;
  const pub = `${PROBE_PREFIX}/public`;
  const priv = `${PROBE_PREFIX}/private`;
  const results: CheckResult[] = [];
  const send = (path: string, headers: Array<[string, string]> = []) => rawExchange(t, 'GET', path, headers);

  // Set-up: the public probe must answer as the probe.
  let r = await send(pub);
  const add = (name: string, sent: string, reply: Reply, ok: boolean, why?: string) => {
    results.push({ name, sent, received: describe(reply, probeAnswer(reply)), result: ok ? 'PASS' : 'FAIL', why: ok ? undefined : why });
  };
  if (r.status === 401 || r.status === 403) {
    // Routed, but refused: the proxy does not describe the request to sessiongate as it is.
    add('public probe answers without a session', `GET ${pub}`, r, false, 'denied: check how the proxy passes the method and URI to sessiongate');
  } else if (!probeAnswer(r)) {
    return {
      setupError: `GET ${pub} answered ${r.status}, not sessiongate's probe: route ${PROBE_PREFIX}/ to sessiongate's HTTP port through the same authorization as the application (see nginx/nginx.conf or envoy/envoy.yaml)`,
      results,
    };
  } else add('public probe answers without a session', `GET ${pub}`, r, true);
  /** Reached with nothing forged (no marker anywhere), and no identity at all when `anonymous`. */
  const clean = (a: ProbeAnswer | undefined, anonymous: boolean) =>
    !a || (a.marked.length === 0 && a.identity.every(([, v]) => !v.includes(mark)) && (!anonymous || a.identity.length === 0));

  // 1. Spoofed identity headers on the public probe, without a session.
  const spoofs: Array<[string, Array<[string, string]>]> = [];
  for (const name of identityHeaders) {
    const lower = name.toLowerCase();
    for (const variant of new Set([name, lower, name.toUpperCase(), lower.replace(/-/g, '_'), name.replace(/-/g, '.'), name.replace(/-(?=[^-]*$)/, '_')])) {
      spoofs.push([variant, [[variant, `${mark}`]]]);
    }
  }
  if (identityHeaders[0])
    spoofs.push([
      `${identityHeaders[0]} twice`,
      [
        [identityHeaders[0], mark],
        [identityHeaders[0], `${mark}-2`],
      ],
    ]);
  for (const [what, headers] of spoofs) {
    r = await send(pub, headers);
    const a = probeAnswer(r);
    add(
      `spoofed ${what}, no session`,
      `GET ${pub} + ${headers.map(([k]) => k).join(', ')}`,
      r,
      clean(a, true),
      'a client-supplied identity header reached the upstream',
    );
  }

  // 2. The private probe is protected, and forged cookies do not open it.
  r = await send(priv);
  add('private probe needs a session', `GET ${priv}`, r, !probeAnswer(r) && DENIED.has(r.status), 'the upstream was reached without a session');
  const fake = (s: string) => `${s}`.padEnd(43, 'A');
  const forged: Array<[string, string]> = [
    ['empty', ''],
    ['garbage', `${mark}garbage`],
    ['token-shaped, unsigned', `${fake('A')}.${fake('B')}.${fake('C')}`],
    ['8 kB', 'A'.repeat(8192)],
  ];
  if (cookie) {
    const [id, secret, mac] = cookie.split('.');
    if (id && secret && mac) {
      forged.push(['valid ID, flipped signature', `${id}.${secret}.${mac.slice(0, -1)}${mac.endsWith('A') ? 'B' : 'A'}`]);
      forged.push(['truncated', cookie.slice(0, -5)]);
    }
  }
  for (const [what, value] of forged) {
    r = await send(priv, [['Cookie', `${cookieName}=${value}`]]);
    add(`forged cookie: ${what}`, `GET ${priv} + Cookie ${cookieName}=${what}`, r, !probeAnswer(r), 'a forged cookie reached the upstream');
  }

  // 3. Paths that a lenient reader resolves to the private probe from the public one.
  for (const path of [
    `${pub}/../private`,
    `${pub}/%2e%2e/private`,
    `${pub}/..;/private`,
    `${pub}/..%2fprivate`,
    `${pub}/..%5cprivate`,
    `${pub}/%252e%252e/private`,
    `${pub}/%2e%2e%2fprivate`,
    `${pub}/.%2e/private`,
    `${PROBE_PREFIX}/PRIVATE`,
    `${PROBE_PREFIX}//private`,
    `${priv}?x=${pub}`,
  ]) {
    r = await send(path);
    add(
      `traversal ${path.slice(PROBE_PREFIX.length)}`,
      `GET ${path}`,
      r,
      !probeAnswer(r),
      'a path that resolves to the private probe reached the upstream without a session',
    );
  }

  // 4. Forwarded headers from the client that describe the public probe instead.
  for (const [name, value] of [
    ['X-Original-URI', pub],
    ['X-Original-URL', pub],
    ['X-Forwarded-Uri', pub],
    ['X-Rewrite-URL', pub],
    ['X-Forwarded-Prefix', pub],
    ['X-Original-Method', 'OPTIONS'],
    ['X-Forwarded-Method', 'OPTIONS'],
    ['X-HTTP-Method-Override', 'OPTIONS'],
  ] as const) {
    r = await send(priv, [[name, value]]);
    add(`forwarded header ${name}`, `GET ${priv} + ${name}: ${value}`, r, !probeAnswer(r), `the proxy passed the client's ${name} to sessiongate`);
  }

  // 5. With a session: its identity arrives, forged copies never do.
  if (!cookie) {
    results.push({ name: 'with a session (identity, spoofing)', sent: '-', received: '-', result: 'SKIP', why: 'pass --cookie to run these' });
  } else {
    const c: [string, string] = ['Cookie', `${cookieName}=${cookie}`];
    r = await send(priv, [c]);
    const a = probeAnswer(r);
    const ok = a !== undefined && a.identity.length > 0 && clean(a, false);
    add(
      'session: upstream receives its identity',
      `GET ${priv} + Cookie`,
      r,
      ok,
      a ? 'no identity header reached the upstream' : `the session was not accepted (${r.status})`,
    );
    for (const [what, headers] of spoofs) {
      r = await send(priv, [c, ...headers]);
      add(
        `session + spoofed ${what}`,
        `GET ${priv} + Cookie + ${headers.map(([k]) => k).join(', ')}`,
        r,
        clean(probeAnswer(r), false),
        'a client-supplied identity header reached the upstream next to the real one',
      );
    }
  }
  return { results };
}

export function formatTable(rows: CheckResult[]): string {
  const cols = [
    ['CHECK', (r: CheckResult) => r.name],
    ['SENT', (r: CheckResult) => r.sent],
    ['UPSTREAM RECEIVED', (r: CheckResult) => r.received],
    ['RESULT', (r: CheckResult) => (r.why && r.result !== 'PASS' ? `${r.result}: ${r.why}` : r.result)],
  ] as const;
  const cut = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);
  const widths = [44, 58, 44];
  const line = (cells: string[]) => cells.map((c, i) => (i < widths.length ? cut(c, widths[i]!).padEnd(widths[i]!) : c)).join('  ');
  return [line(cols.map(([h]) => h)), ...rows.map((r) => line(cols.map(([, f]) => f(r))))].join('\n');
}

export interface DoctorOptions {
  readonly url: URL;
  /** A real session cookie's value, to check the identity the upstream receives. */
  readonly cookie: string | undefined;
  readonly cookieName: string;
  /** The identity headers to spoof. */
  readonly headers: readonly string[];
  readonly insecure: boolean;
  readonly timeoutMs: number;
}

/** Runs every check and prints the table. Exit 0: all PASS; 1: a FAIL; 2: the probe is not reachable. */
export async function runDoctor(opts: DoctorOptions, io: Io): Promise<number> {
  const { url } = opts;
  let cookie = opts.cookie;
  const name = opts.cookieName;
  if (cookie?.startsWith(`${name}=`)) cookie = cookie.slice(name.length + 1);
  const t: Target = { url, insecure: opts.insecure, timeoutMs: opts.timeoutMs };
  let run: Awaited<ReturnType<typeof runChecks>>;
  try {
    run = await runChecks(t, cookie, name, [...opts.headers]);
  } catch (err) {
    io.err(`sessiongate doctor: ${url.origin}: ${(err as Error).message}\n`);
    return 2;
  }
  if (run.setupError) {
    io.err(`sessiongate doctor: ${run.setupError}\n`);
    return 2;
  }
  const failed = run.results.filter((r) => r.result === 'FAIL').length;
  const passed = run.results.filter((r) => r.result === 'PASS').length;
  const skipped = run.results.filter((r) => r.result === 'SKIP').length;
  io.out(
    `sessiongate doctor: ${url.origin} (probe ${PROBE_PREFIX}/)\n\n${formatTable(run.results)}\n\n${passed} passed, ${failed} failed, ${skipped} skipped\n`,
  );
  return failed > 0 ? 1 : 0;
}
