/**
 * A small HTTP/1.1 client for tests that must send exactly what a hostile client would:
 * repeated headers, odd header-name spellings, raw unnormalised paths. Never follows redirects.
 */
import { request as httpRequest } from 'node:http';

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** Every Set-Cookie header. */
  cookies: string[];
  body: string;
  json<T = unknown>(): T;
}

export function send(url: string, opts: { method?: string; path?: string; headers?: Array<[string, string]>; body?: string } = {}): Promise<Reply> {
  const u = new URL(url);
  const flat: string[] = [];
  // With raw headers Node adds no Host; HTTP/1.1 requires one.
  if (!(opts.headers ?? []).some(([k]) => k.toLowerCase() === 'host')) flat.push('Host', u.host);
  for (const [k, v] of opts.headers ?? []) flat.push(k, v);
  if (opts.body !== undefined) flat.push('Content-Length', String(Buffer.byteLength(opts.body)));
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: u.hostname, port: u.port, method: opts.method ?? 'GET', path: opts.path ?? u.pathname + u.search, headers: flat, agent: false },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () =>
          resolve({
            status: res.statusCode!,
            headers: res.headers,
            cookies: res.headers['set-cookie'] ?? [],
            body,
            json: <T>() => JSON.parse(body) as T,
          }),
        );
      },
    );
    req.on('error', reject);
    if (opts.body !== undefined) req.write(opts.body);
    req.end();
  });
}

/** The `name=value` part of a Set-Cookie header. */
export function cookiePair(setCookie: string): string {
  return setCookie.split(';')[0]!;
}

/** Creates a session the way a login service does (POST /~session with the login token); its cookie pair. */
export async function createSession(baseUrl: string, loginToken: string, user: string, roles: readonly string[]): Promise<string> {
  const r = await send(`${baseUrl}/~session`, {
    method: 'POST',
    headers: [
      ['Authorization', `Bearer ${loginToken}`],
      ['Content-Type', 'application/json'],
    ],
    body: JSON.stringify({ user_id: user, roles, attributes: { email: `${user}@example.com` } }),
  });
  if (r.status !== 201) throw new Error(`session creation failed: ${r.status} ${r.body}`);
  return cookiePair(r.cookies[0]!);
}
