/**
 * Store URLs:
 *   memory
 *   redis://[user:password@]host:port[/db]          rediss://… for TLS
 *   redis+sentinel://[user:password@]host:26379,host:26379/<master-name>[/db]   rediss+sentinel://…
 *   redis+cluster://[user:password@]host:7000,host:7001,…                       rediss+cluster://…
 * The password in a URL is the data nodes' password. User name and password are percent-encoded
 * (RFC 3986): `@ : / ? # %` in them must be written %40 %3A %2F %3F %23 %25.
 *
 * No message from here holds any byte of the URL but its scheme name, and a URL is only ever
 * shown rebuilt from its parsed parts without the user information (displayStoreUrl): a
 * password that is not encoded as it should be can end up anywhere in the string, so no part
 * of a string that failed to parse is safe to repeat.
 */

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

export type StoreUrl =
  | { readonly kind: 'memory' }
  | {
      readonly kind: 'redis' | 'redis-sentinel' | 'redis-cluster';
      readonly tls: boolean;
      readonly hosts: readonly HostPort[];
      readonly username?: string | undefined;
      readonly password?: string | undefined;
      readonly db: number;
      /** Sentinel only: the monitored master's name. */
      readonly masterName?: string | undefined;
    };

type Scheme = { readonly kind: 'redis' | 'redis-sentinel' | 'redis-cluster'; readonly tls: boolean; readonly port: number };
const SCHEMES = new Map<string, Scheme>([
  ['redis', { kind: 'redis', tls: false, port: 6379 }],
  ['rediss', { kind: 'redis', tls: true, port: 6379 }],
  ['redis+sentinel', { kind: 'redis-sentinel', tls: false, port: 26379 }],
  ['rediss+sentinel', { kind: 'redis-sentinel', tls: true, port: 26379 }],
  ['redis+cluster', { kind: 'redis-cluster', tls: false, port: 6379 }],
  ['rediss+cluster', { kind: 'redis-cluster', tls: true, port: 6379 }],
]);

export const NOT_ENCODED = 'not a valid URL; percent-encode reserved characters (@ : / ? # %) in the user name and password';
const SHAPE = 'must be memory, redis://host:port[/db], rediss://…, redis+sentinel://host:port,…/master or redis+cluster://host:port,…';

function hostPort(s: string, defaultPort: number): HostPort | string {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+))(?::(\d{1,5}))?$/.exec(s);
  if (!m) return 'each host must be a name, an IPv4 address or an [IPv6] address, with an optional :port';
  const port = m[3] === undefined ? defaultPort : Number(m[3]);
  if (port < 1 || port > 65535) return 'a port is out of range (1-65535)';
  return { host: (m[1] ?? m[2])!, port };
}

/** Percent-decoded user information; null when it is not valid percent-encoding (of UTF-8). */
function decode(s: string | undefined): string | undefined | null {
  if (s === undefined || s === '') return undefined;
  if (/%(?![0-9A-Fa-f]{2})/.test(s)) return null;
  try {
    return decodeURIComponent(s);
  } catch {
    return null;
  }
}

/** The store URL, or a problem description (holding nothing of the URL but its scheme name). */
export function parseStoreUrl(url: string): StoreUrl | string {
  if (url === 'memory') return { kind: 'memory' };
  const sm = /^([a-z+]+):\/\//.exec(url);
  if (!sm) return SHAPE;
  const scheme = SCHEMES.get(sm[1]!);
  if (!scheme) return `unknown scheme ${sm[1]}:// (use redis, rediss, redis+sentinel, redis+cluster)`;
  const rest = url.slice(sm[0].length);
  // The authority ends at the first / ? or #; an @ after it means user information with one of
  // those in it, not encoded.
  const cut = rest.search(/[/?#]/);
  const authority = cut < 0 ? rest : rest.slice(0, cut);
  const tail = cut < 0 ? '' : rest.slice(cut);
  const at = authority.lastIndexOf('@');
  if (tail.includes('@') || authority.indexOf('@') !== at) return NOT_ENCODED;
  if (/[?#]/.test(tail)) return `${SHAPE} (no query or fragment)`;
  let username: string | undefined;
  let password: string | undefined;
  if (at >= 0) {
    const userinfo = authority.slice(0, at);
    const colon = userinfo.indexOf(':');
    const u = decode(colon < 0 ? userinfo : userinfo.slice(0, colon));
    const p = decode(colon < 0 ? undefined : userinfo.slice(colon + 1));
    if (u === null || p === null) return NOT_ENCODED;
    username = u;
    password = p;
  }
  const hosts: HostPort[] = [];
  for (const part of authority.slice(at + 1).split(',')) {
    const hp = hostPort(part, scheme.port);
    if (typeof hp === 'string') return hp;
    hosts.push(hp);
  }
  if (scheme.kind === 'redis' && hosts.length !== 1) return 'redis:// takes one host (use redis+sentinel:// or redis+cluster:// for several)';
  const path = tail.split('/').filter((p) => p !== '');
  let masterName: string | undefined;
  if (scheme.kind === 'redis-sentinel') {
    masterName = path.shift();
    if (!masterName) return 'redis+sentinel:// needs the master name as its path: redis+sentinel://host:26379/mymaster';
  }
  let db = 0;
  if (path.length > 0) {
    if (scheme.kind === 'redis-cluster') return 'redis+cluster:// takes no database number';
    if (path.length > 1 || !/^\d{1,2}$/.test(path[0]!)) return 'the path is not a database number (/0 to /99)';
    db = Number(path[0]);
  }
  return { kind: scheme.kind, tls: scheme.tls, hosts, username, password, db, masterName };
}

const SCHEME_NAMES: Record<Exclude<StoreUrl['kind'], 'memory'>, readonly [string, string]> = {
  redis: ['redis', 'rediss'],
  'redis-sentinel': ['redis+sentinel', 'rediss+sentinel'],
  'redis-cluster': ['redis+cluster', 'rediss+cluster'],
};

/** A parsed URL fit for a log line: every host with its port, no user information (`***@` when there was some). */
export function displayStoreUrl(u: StoreUrl): string {
  if (u.kind === 'memory') return 'memory';
  const auth = u.username !== undefined || u.password !== undefined ? '***@' : '';
  const hosts = u.hosts.map((h) => (h.host.includes(':') ? `[${h.host}]:${h.port}` : `${h.host}:${h.port}`)).join(',');
  const master = u.masterName === undefined ? '' : `/${u.masterName}`;
  return `${SCHEME_NAMES[u.kind][u.tls ? 1 : 0]}://${auth}${hosts}${master}${u.db === 0 ? '' : `/${u.db}`}`;
}

/** A URL string fit for a log line: displayStoreUrl of it, or only its scheme when it does not parse. */
export function maskUrl(url: string): string {
  const u = parseStoreUrl(url);
  if (typeof u !== 'string') return displayStoreUrl(u);
  const scheme = /^([a-z+]+):\/\//.exec(url);
  return scheme ? `${scheme[1]}://…` : '(not a store URL)';
}
