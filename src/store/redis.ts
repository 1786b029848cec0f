/**
 * Redis session store: standalone, Sentinel and Cluster through ioredis, built to fail fast.
 *
 * - A session is a hash at `<prefix>s:{tag}<sha256(id)>`: its clock in plain fields, the
 *   identity sealed in `data`. Redis TTLs follow the record's own deadline (validity plus
 *   RETENTION_MS); reads also check the deadline against the injected clock.
 * - Touch, rotate and destroy are Lua scripts, so each is atomic; a rotation writes the new
 *   key and marks the old one in one script, which works in Cluster because both keys carry
 *   the session's family tag (`{tag}`) and so share a slot. The old record points at its
 *   successor and the new one at its predecessor: a logout walks both ways in one script and
 *   ends the whole family (the tag alone is not the family: two logins may share a tag).
 * - One-time values (login flows, logout-token IDs) are plain strings at `<prefix>o:<key>`
 *   with their own TTL, taken with GETDEL and claimed with SET NX.
 * - A user's sessions are filed in a set at `<prefix>u:<user ref>` that expires with them
 *   (and, for an OpenID login, in the sets of its provider's sid and sub references). A
 *   key is filed before its record is written and unfiled only after it is gone, so no live
 *   session is ever missing from the index, even after an interrupted revocation.
 * - Fail fast: a command timeout (100 ms by default), one retry at most, no offline queue. Any
 *   failure is a StoreUnavailableError: callers answer `store_unavailable`, never log anyone
 *   out. ioredis reconnects on its own, so the store recovers without a restart.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { ConnectionOptions } from 'node:tls';
import type { Cluster, ClusterOptions, Redis, RedisOptions } from 'ioredis';
import { RETENTION_MS, type SessionClock, storeDeadline } from '../session/record.js';
import type { StoredSession } from '../session/seal.js';
import type { SessionStore } from './types.js';
import { StoreUnavailableError } from './types.js';
import type { StoreUrl } from './url.js';

export interface RedisTlsFiles {
  readonly caFile?: string | undefined;
  readonly certFile?: string | undefined;
  readonly keyFile?: string | undefined;
  readonly serverName?: string | undefined;
}

// ioredis is loaded when the first client is made: a service on the memory store (the default)
// never needs it, and loading it costs about 10 MB of resident memory. It is CommonJS, so a
// require stays synchronous.
let ioredis: typeof import('ioredis') | undefined;
const lib = (): typeof import('ioredis') => (ioredis ??= createRequire(import.meta.url)('ioredis') as typeof import('ioredis'));

/** How to reach Redis: built once from configuration (config.ts). */
export interface RedisConnection {
  readonly url: Extract<StoreUrl, { kind: 'redis' | 'redis-sentinel' | 'redis-cluster' }>;
  /** Shown in errors and logs, password masked. */
  readonly displayUrl: string;
  readonly keyPrefix: string;
  readonly commandTimeout: number;
  readonly connectTimeout: number;
  readonly maxRetriesPerRequest: number;
  /** Overrides the URL's password (from a file). */
  readonly password?: string | undefined;
  readonly tls?: RedisTlsFiles | undefined;
  readonly sentinel?: { readonly username?: string | undefined; readonly password?: string | undefined; readonly tls?: boolean | undefined } | undefined;
}

export interface RedisStoreOptions extends RedisConnection {
  readonly clock: () => number;
}

export type RedisClient = Redis | Cluster;

export interface RedisStore extends SessionStore {
  /** A second connection for pub/sub (a subscribed connection can do nothing else). */
  duplicateClient(): RedisClient;
  readonly channel: string;
  /** The command connection, for publishing. */
  readonly client: RedisClient;
}

function tlsOptions(t: RedisTlsFiles | undefined, on: boolean): ConnectionOptions | undefined {
  if (!on) return undefined;
  return {
    ...(t?.caFile ? { ca: readFileSync(t.caFile) } : {}),
    ...(t?.certFile ? { cert: readFileSync(t.certFile) } : {}),
    ...(t?.keyFile ? { key: readFileSync(t.keyFile) } : {}),
    ...(t?.serverName ? { servername: t.serverName } : {}),
  };
}

/** Builds the ioredis client for a URL: fail fast, reconnect forever in the background. */
export function createRedisClient(o: RedisStoreOptions, forSubscriber = false): RedisClient {
  const { url } = o;
  const common: RedisOptions = {
    username: url.username,
    password: o.password ?? url.password,
    commandTimeout: forSubscriber ? undefined : o.commandTimeout,
    connectTimeout: o.connectTimeout,
    maxRetriesPerRequest: o.maxRetriesPerRequest,
    // While disconnected, fail at once instead of queueing: a dead store must be a quick error.
    // The subscriber queues, so its SUBSCRIBE waits for the connection.
    enableOfflineQueue: forSubscriber,
    retryStrategy: (attempt) => Math.min(50 * 2 ** attempt, 1000),
    tls: tlsOptions(o.tls, url.tls),
    lazyConnect: false,
  };
  if (url.kind === 'redis') {
    return new (lib().Redis)({ ...common, host: url.hosts[0]!.host, port: url.hosts[0]!.port, db: url.db });
  }
  if (url.kind === 'redis-sentinel') {
    return new (lib().Redis)({
      ...common,
      db: url.db,
      sentinels: url.hosts.map((h) => ({ host: h.host, port: h.port })),
      name: url.masterName!,
      role: 'master',
      sentinelUsername: o.sentinel?.username,
      sentinelPassword: o.sentinel?.password,
      enableTLSForSentinelMode: o.sentinel?.tls ?? false,
      sentinelRetryStrategy: (attempt) => Math.min(100 * attempt, 1000),
      // No failoverDetector: under load, its reconnect on +switch-master raced the reconnect the
      // dead master's closed socket had already begun, and the client stayed disconnected after
      // the failover was over (every command refused until a restart; 1 failover in 6-9 with the
      // CPU busy, measured with test/e2e/redis.test.ts). The closed socket alone is followed to
      // the new master: Sentinel is asked again on every reconnect. A demoted master that stays
      // up is left too: Sentinel kills its clients' connections, and a READONLY reply forces a
      // reconnect below.
      failoverDetector: false,
      reconnectOnError: (err) => err.message.startsWith('READONLY'),
    });
  }
  const { enableOfflineQueue: _q, retryStrategy: _r, ...redisOptions } = common;
  const cluster: ClusterOptions = {
    redisOptions,
    enableOfflineQueue: forSubscriber,
    // Invalidations use sharded pub/sub in a Cluster (see redis-bus.ts).
    shardedSubscribers: forSubscriber,
    clusterRetryStrategy: (attempt) => Math.min(100 * attempt, 1000),
    slotsRefreshTimeout: Math.max(o.connectTimeout, 1000),
    maxRedirections: 4,
  };
  return new (lib().Cluster)(
    url.hosts.map((h) => ({ host: h.host, port: h.port })),
    cluster,
  );
}

// --- Lua. Hash fields: created_at issued_at expires_at touched_at idle_expires_at grace_until
// successor user data v. Times are integers (ms); ARGV carries them as strings. Every script
// starts with ARGV[1] = now (the injected clock) and ARGV[2] = retention.

/** Shared by the scripts: a hash's validity from its own fields, and a TTL that follows it. */
const PRELUDE = `
local now, retention = tonumber(ARGV[1]), tonumber(ARGV[2])
local function valid_until(key)
  local h = redis.call('HMGET', key, 'expires_at', 'idle_expires_at', 'grace_until')
  if not h[1] then return nil, nil end
  local expires = tonumber(h[1])
  if h[3] then return math.min(expires, tonumber(h[3])), h[3] end
  return math.min(expires, tonumber(h[2])), nil
end
local function alive(key)
  local v, grace = valid_until(key)
  return v ~= nil and now < v + retention, grace
end
local function keep(key)
  local ttl = valid_until(key) + retention - now
  if ttl < 1 then ttl = 1 end
  redis.call('PEXPIRE', key, ttl)
end
local function write(key, from)
  local fields = {}
  for i = from, #ARGV do fields[#fields + 1] = ARGV[i] end
  redis.call('DEL', key)
  redis.call('HSET', key, unpack(fields))
  keep(key)
end`;

/** KEYS[1]=session. ARGV: now, retention, field/value pairs. */
const CREATE = `${PRELUDE}
write(KEYS[1], 3)
return 1`;

/** KEYS[1]=session. ARGV: now, retention, touched_at, idle_expires_at. Live, not rotated-away records only. */
const TOUCH = `${PRELUDE}
local ok, grace = alive(KEYS[1])
if not ok or grace then return 0 end
redis.call('HSET', KEYS[1], 'touched_at', ARGV[3], 'idle_expires_at', ARGV[4])
keep(KEYS[1])
return 1`;

/**
 * KEYS[1]=old, KEYS[2]=new (same slot: same family tag). ARGV: now, retention, grace_until,
 * successor key, new fields… (ending with `predecessor`, the old key).
 */
const ROTATE = `${PRELUDE}
local ok, grace = alive(KEYS[1])
if not ok or grace then return 0 end
write(KEYS[2], 5)
redis.call('HSET', KEYS[1], 'grace_until', ARGV[3], 'successor', ARGV[4])
keep(KEYS[1])
return 1`;

/**
 * KEYS[1]=session. ARGV: the session key prefix, the session's store key. Deletes the whole
 * family: the record, then every successor and every predecessor, following the links each
 * record carries. Every member shares KEYS[1]'s family tag, so its slot: one atomic script in
 * a Cluster too. Returns { key, user, links, key, user, links, … } of what it deleted.
 */
const DESTROY = `
local prefix = ARGV[1]
local out = {}
local function take(key)
  local full = prefix .. key
  local h = redis.call('HMGET', full, 'successor', 'predecessor', 'user', 'links')
  if redis.call('DEL', full) == 0 then return nil end
  out[#out + 1] = key
  out[#out + 1] = h[3] or ''
  out[#out + 1] = h[4] or ''
  return h
end
local first = take(ARGV[2])
if first then
  for dir = 1, 2 do
    local next, n = first[dir], 0
    while next and n < 10000 do
      local h = take(next)
      if not h then break end
      next, n = h[dir], n + 1
    end
  end
end
return out`;

/** KEYS[1]=user index. ARGV: member, ttl. Files a key; the index lives as long as its longest session. */
const FILE = `
redis.call('SADD', KEYS[1], ARGV[1])
local ttl = tonumber(ARGV[2])
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1`;

type Scripted = RedisClient & {
  sgCreate(key: string, ...args: Array<string | number>): Promise<number>;
  sgTouch(key: string, ...args: Array<string | number>): Promise<number>;
  sgRotate(oldKey: string, newKey: string, ...args: Array<string | number>): Promise<number>;
  sgDestroy(key: string, prefix: string, storeKey: string): Promise<string[]>;
  sgFile(key: string, member: string, ttl: number): Promise<number>;
};

const NUMERIC: ReadonlyArray<keyof SessionClock> = ['created_at', 'issued_at', 'expires_at', 'touched_at', 'idle_expires_at', 'grace_until'];

function toFields(r: StoredSession): string[] {
  const out: string[] = ['v', String(r.v), 'user', r.user, 'data', r.data];
  for (const f of NUMERIC) if (r[f] !== undefined) out.push(f, String(r[f]));
  if (r.successor !== undefined) out.push('successor', r.successor);
  if (r.links !== undefined && r.links.length > 0) out.push('links', r.links.join(' '));
  return out;
}

function fromHash(h: Record<string, string>): StoredSession | null {
  if (h['data'] === undefined || h['expires_at'] === undefined) return null;
  const r: Record<string, unknown> = { v: 2, user: h['user'] ?? '', data: h['data'] };
  for (const f of NUMERIC) if (h[f] !== undefined) r[f] = Number(h[f]);
  if (h['successor'] !== undefined) r['successor'] = h['successor'];
  if (h['links'] !== undefined && h['links'] !== '') r['links'] = h['links'].split(' ');
  return r as unknown as StoredSession;
}

/** Authentication refused: retrying cannot fix it, so start-up gives up at once (store/index.ts proveStore). */
export class StoreAuthError extends StoreUnavailableError {}

const SUMMARY = /^(All sentinels are unreachable|Failed to refresh slots cache|None of startup nodes is available)/;
const TLS_CODES = /^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|HOSTNAME_MISMATCH)/;

/**
 * A connection error in words: refused, unreachable, authentication, TLS, Sentinel, Cluster.
 * Only the error's code, host and port and Redis's own reply are used: no password byte.
 */
export function describeRedisError(err: Error, url: RedisConnection['url']): { readonly text: string; readonly auth: boolean } {
  const e = err as NodeJS.ErrnoException & { address?: string; port?: number; hostname?: string };
  const at = e.address !== undefined ? ` at ${e.address}${e.port !== undefined ? `:${e.port}` : ''}` : '';
  const msg = e.message ?? '';
  const sentinel = /^failed to connect to sentinel (\S+) because /.exec(msg);
  if (sentinel) {
    const inner = describeRedisError(new Error(msg.slice(sentinel[0].length)), url);
    return { text: `Sentinel ${sentinel[1]}: ${inner.text}`, auth: inner.auth };
  }
  if (/^connected to sentinel \S+ successfully, but got an invalid reply: null|^ERR No such master with that name/.test(msg)) {
    return { text: `no Sentinel knows a master named ${url.masterName ?? ''} (the name in the store URL)`, auth: false };
  }
  if (/^NOAUTH\b/.test(msg))
    return { text: 'authentication required: the server has a password and none was given (the store URL or redis.password_file)', auth: true };
  if (/^WRONGPASS\b|^ERR invalid password|^ERR invalid username-password/.test(msg)) return { text: 'wrong password or user name (WRONGPASS)', auth: true };
  if (/^NOPERM\b/.test(msg)) return { text: `the user may not run sessiongate's commands (NOPERM)`, auth: true };
  if (/^CLUSTERDOWN\b/.test(msg)) return { text: 'the Cluster is down (CLUSTERDOWN)', auth: false };
  switch (e.code) {
    case 'ECONNREFUSED':
      return { text: `connection refused${at}`, auth: false };
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return { text: `host not found${e.hostname ? `: ${e.hostname}` : ''}`, auth: false };
    case 'ETIMEDOUT':
      return { text: `connection timed out${at}`, auth: false };
    case 'ECONNRESET':
      return { text: `connection reset by the server${at}${url.tls ? '' : ' (does it expect TLS, rediss://?)'}`, auth: false };
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return { text: `host unreachable${at}`, auth: false };
  }
  if (e.code !== undefined && TLS_CODES.test(e.code)) return { text: `TLS failure: ${e.code}`, auth: false };
  if (/^connect ETIMEDOUT/.test(msg)) return { text: 'connection timed out', auth: false };
  if (/^All sentinels are unreachable/.test(msg)) return { text: 'no Sentinel reachable', auth: false };
  if (/^Failed to refresh slots cache|^None of startup nodes is available/.test(msg)) return { text: 'no Cluster node reachable', auth: false };
  return { text: msg.split('\n')[0]!, auth: false };
}

export function createRedisStore(o: RedisStoreOptions): RedisStore {
  const client = createRedisClient(o) as Scripted;
  client.defineCommand('sgCreate', { numberOfKeys: 1, lua: CREATE });
  client.defineCommand('sgTouch', { numberOfKeys: 1, lua: TOUCH });
  client.defineCommand('sgRotate', { numberOfKeys: 2, lua: ROTATE });
  client.defineCommand('sgDestroy', { numberOfKeys: 1, lua: DESTROY });
  client.defineCommand('sgFile', { numberOfKeys: 1, lua: FILE });
  // Connection errors are reported through command failures (an unhandled 'error' event would
  // crash), but a command refused while disconnected only says "Stream isn't writeable": the
  // connection's last error is the cause to name.
  let lastError: Error | undefined;
  const remember = (err: Error) => {
    // "All sentinels are unreachable", "Failed to refresh slots cache": a summary of the causes
    // already remembered, not a better one.
    if (lastError !== undefined && SUMMARY.test(err.message)) return;
    lastError = err;
  };
  client.on('error', remember);
  client.on('node error', remember); // Cluster: one node's failure
  client.on('sentinelError', remember); // Sentinel: what each sentinel answered
  client.on('ready', () => {
    lastError = undefined;
  });

  const p = o.keyPrefix;
  const sKey = (key: string) => `${p}s:${key}`;
  const uKey = (ref: string) => `${p}u:${ref}`;
  // One hash per catalog; braces keep it in one Cluster slot.
  const cKey = (catalog: string) => `${p}c:{${catalog}}`;
  const oKey = (key: string) => `${p}o:${key}`;
  const kind = o.url.kind;

  /** Runs a command, turning every failure into StoreUnavailableError (the message never holds a secret). */
  async function run<T>(op: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      const cause = lastError === undefined ? undefined : describeRedisError(lastError, o.url);
      if (cause?.auth) throw new StoreAuthError(`${o.displayUrl}: ${op} failed: ${cause.text}`, { cause: lastError });
      const text = cause?.text ?? (err as Error).message;
      throw new StoreUnavailableError(`${o.displayUrl}: ${op} failed: ${text}`, { cause: err });
    }
  }

  const indexTtl = (r: SessionClock) => Math.max(1, r.expires_at + RETENTION_MS - o.clock());

  /** Files a key under its user and every other reference it carries (an OpenID sid and sub). */
  async function fileUnder(op: string, record: StoredSession, key: string): Promise<void> {
    const ttl = indexTtl(record);
    await run(op, () => client.sgFile(uKey(record.user), key, ttl));
    for (const ref of record.links ?? []) await run(op, () => client.sgFile(uKey(ref), key, ttl));
  }

  /** Unfiles keys from a user's index; a leftover entry only costs a later revocation a no-op. */
  async function unfile(user: string, keys: readonly string[]): Promise<void> {
    if (keys.length > 0) await client.srem(uKey(user), ...keys).catch(() => {});
  }

  /** Deletes the key's whole family in one script; the keys deleted. */
  async function destroyFamily(key: string): Promise<string[]> {
    const flat = await run('destroy', () => client.sgDestroy(sKey(key), `${p}s:`, key));
    const removed: string[] = [];
    const byUser = new Map<string, string[]>();
    for (let i = 0; i + 2 < flat.length; i += 3) {
      const k = flat[i]!;
      removed.push(k);
      // Its user's index and its other references (an OpenID sid and sub) let go of it.
      for (const ref of [flat[i + 1]!, ...flat[i + 2]!.split(' ')]) if (ref !== '') byUser.set(ref, [...(byUser.get(ref) ?? []), k]);
    }
    await Promise.all([...byUser].map(([user, keys]) => unfile(user, keys)));
    return removed;
  }

  return {
    kind,
    client,
    channel: `${p}invalidate`,
    duplicateClient: () => {
      const sub = createRedisClient(o, true);
      sub.on('error', () => {});
      return sub;
    },
    async get(key) {
      const h = await run('read', () => client.hgetall(sKey(key)));
      const r = fromHash(h);
      if (!r || o.clock() >= storeDeadline(r)) return null;
      return r;
    },
    async create(key, record) {
      // Filed first: a session is never in the store without its index entries.
      await fileUnder('write', record, key);
      await run('write', () => client.sgCreate(sKey(key), o.clock(), RETENTION_MS, ...toFields(record)));
    },
    async touch(key, touchedAt, idleExpiresAt) {
      return (await run('touch', () => client.sgTouch(sKey(key), o.clock(), RETENTION_MS, touchedAt, idleExpiresAt))) === 1;
    },
    async rotate(oldKey, newKey, record, graceUntil) {
      await fileUnder('rotate', record, newKey);
      const done = await run('rotate', () =>
        client.sgRotate(sKey(oldKey), sKey(newKey), o.clock(), RETENTION_MS, graceUntil, newKey, ...toFields(record), 'predecessor', oldKey),
      );
      if (done === 1) return true;
      await unfile(record.user, [newKey]);
      return false;
    },
    async destroy(key) {
      return destroyFamily(key);
    },
    async destroyUser(refs) {
      const removed: string[] = [];
      for (const ref of refs) {
        const members = await run('revoke', () => client.smembers(uKey(ref)));
        const results = await Promise.allSettled(members.map((key) => destroyFamily(key)));
        const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
        // Only after every member is gone do they leave the index (never a DEL of the whole
        // index: a login that landed meanwhile stays filed). An interrupted call leaves them
        // filed, so the retry finds them.
        if (failed) throw failed.reason;
        for (const r of results) if (r.status === 'fulfilled') removed.push(...r.value);
        if (members.length > 0) await run('revoke', () => client.srem(uKey(ref), ...members));
      }
      return removed;
    },
    async catalogPut(catalog, id, value) {
      await run('write', () => client.hset(cKey(catalog), id, value));
    },
    async catalogList(catalog) {
      return run('read', () => client.hgetall(cKey(catalog)));
    },
    async catalogDelete(catalog, id) {
      return (await run('write', () => client.hdel(cKey(catalog), id))) > 0;
    },
    async oncePut(key, value, ttlMs) {
      await run('write', () => client.set(oKey(key), value, 'PX', Math.max(1, Math.ceil(ttlMs))));
    },
    async onceTake(key) {
      // GETDEL (Redis 6.2): read and remove in one step, so a value is taken once.
      return run('read', () => client.getdel(oKey(key)));
    },
    async onceClaim(key, ttlMs) {
      return (await run('write', () => client.set(oKey(key), '1', 'PX', Math.max(1, Math.ceil(ttlMs)), 'NX'))) === 'OK';
    },
    async ping() {
      // A keyed read routes as session reads do, and fails as they fail (CLUSTERDOWN, a hung
      // node): a bare PING answers from any node even while the Cluster refuses every key.
      await run('ping', () => client.exists(`${p}s:{ready}`));
      if (client instanceof lib().Cluster) {
        // Sessions live on every master: each must answer and see the Cluster as ok.
        const masters = client.nodes('master');
        if (masters.length === 0) throw new StoreUnavailableError(`${o.displayUrl}: ping failed: no Cluster master known`);
        await Promise.all(
          masters.map(async (node) => {
            const info = await run('ping', () => node.cluster('INFO'));
            if (!/^cluster_state:ok\s*$/m.test(info))
              throw new StoreUnavailableError(`${o.displayUrl}: ping failed: ${node.options.host}:${node.options.port} reports the Cluster down`);
          }),
        );
      }
    },
    async selfTest() {
      const key = `${p}selftest:${randomBytes(8).toString('hex')}`;
      const value = randomBytes(8).toString('hex');
      await run('self-test write', () => client.set(key, value, 'PX', 10_000));
      const read = await run('self-test read', () => client.get(key));
      if (read !== value) throw new StoreUnavailableError(`${o.displayUrl}: self-test read back ${JSON.stringify(read)} instead of what it wrote`);
      // GETDEL (Redis 6.2 and later), as one-time values are taken: an older server fails here, at start-up.
      const taken = await run('self-test GETDEL (Redis 6.2 or later)', () => client.getdel(key));
      if (taken !== value) throw new StoreUnavailableError(`${o.displayUrl}: self-test GETDEL read back ${JSON.stringify(taken)} instead of what it wrote`);
    },
    async close() {
      client.disconnect();
    },
  };
}
