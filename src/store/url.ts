/**
 * Store URLs:
 *   memory
 *   redis://[user:password@]host:port[/db]          rediss://… for TLS
 *   redis+sentinel://[user:password@]host:26379,host:26379/<master-name>[/db]   rediss+sentinel://…
 *   redis+cluster://[user:password@]host:7000,host:7001,…                       rediss+cluster://…
 * The password in a URL is the data nodes' password; a URL is only ever shown masked.
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

const SCHEMES: Record<string, { kind: 'redis' | 'redis-sentinel' | 'redis-cluster'; tls: boolean; port: number }> = {
  redis: { kind: 'redis', tls: false, port: 6379 },
  rediss: { kind: 'redis', tls: true, port: 6379 },
  'redis+sentinel': { kind: 'redis-sentinel', tls: false, port: 26379 },
  'rediss+sentinel': { kind: 'redis-sentinel', tls: true, port: 26379 },
  'redis+cluster': { kind: 'redis-cluster', tls: false, port: 6379 },
  'rediss+cluster': { kind: 'redis-cluster', tls: true, port: 6379 },
};

function hostPort(s: string, defaultPort: number): HostPort | string {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+))(?::(\d{1,5}))?$/.exec(s);
  if (!m) return `"${s}" is not host:port`;
  const port = m[3] === undefined ? defaultPort : Number(m[3]);
  if (port < 1 || port > 65535) return `port ${port} is out of range`;
  return { host: (m[1] ?? m[2])!, port };
}

/** The store URL, or a problem description (never containing the password). */
export function parseStoreUrl(url: string): StoreUrl | string {
  if (url === 'memory') return { kind: 'memory' };
  const m = /^([a-z+]+):\/\/(?:([^:@/]*)(?::([^@/]*))?@)?([^/?#]+)(?:\/([^?#]*))?$/.exec(url);
  if (!m) return 'must be memory, redis://host:port[/db], rediss://…, redis+sentinel://host:port,…/master or redis+cluster://host:port,…';
  const scheme = SCHEMES[m[1]!];
  if (!scheme) return `unknown scheme ${m[1]}:// (use redis, rediss, redis+sentinel, redis+cluster)`;
  const hosts: HostPort[] = [];
  for (const part of m[4]!.split(',')) {
    const hp = hostPort(part, scheme.port);
    if (typeof hp === 'string') return hp;
    hosts.push(hp);
  }
  if (scheme.kind === 'redis' && hosts.length !== 1) return 'redis:// takes one host (use redis+sentinel:// or redis+cluster:// for several)';
  const path = (m[5] ?? '').split('/').filter((p) => p !== '');
  let masterName: string | undefined;
  if (scheme.kind === 'redis-sentinel') {
    masterName = path.shift();
    if (!masterName) return 'redis+sentinel:// needs the master name as its path: redis+sentinel://host:26379/mymaster';
  }
  let db = 0;
  if (path.length > 0) {
    if (scheme.kind === 'redis-cluster') return 'redis+cluster:// takes no database number';
    if (path.length > 1 || !/^\d{1,2}$/.test(path[0]!)) return `"/${path.join('/')}" is not a database number`;
    db = Number(path[0]);
  }
  const decode = (s: string | undefined) => (s === undefined || s === '' ? undefined : decodeURIComponent(s));
  return { kind: scheme.kind, tls: scheme.tls, hosts, username: decode(m[2]), password: decode(m[3]), db, masterName };
}

/** A URL fit for a log line: any password replaced by ***. */
export function maskUrl(url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
}
