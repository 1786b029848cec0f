/**
 * Floors F2/F3: the barest auth_request responder Node can be. Reads the session cookie, looks
 * it up in a Map (F2) or with one Redis GET (F3), answers 200 with one identity header or 401,
 * always Content-Length: 0. Run as its own process: node floor-http.js <port> <cookie file> [redis port]
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { Redis } from 'ioredis';

const [port, cookieFile, redisPort] = process.argv.slice(2);
const users = new Map<string, string>();
readFileSync(cookieFile!, 'utf8')
  .split('\n')
  .filter(Boolean)
  .forEach((c, i) => {
    users.set(c, `user${i}`);
  });
const redis = redisPort ? new Redis({ port: Number(redisPort), host: '127.0.0.1', enableOfflineQueue: true }) : undefined;

function cookieValue(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const at = header.indexOf('sessiongate=');
  if (at < 0) return undefined;
  const end = header.indexOf(';', at);
  return header.slice(at + 12, end < 0 ? undefined : end);
}

const answer = (res: import('node:http').ServerResponse, user: string | null | undefined) => {
  if (user) res.writeHead(200, ['X-User-Id', user, 'Content-Length', '0']);
  else res.writeHead(401, ['Content-Length', '0']);
  res.end();
};

createServer((req, res) => {
  const c = cookieValue(req.headers.cookie);
  if (!redis) return answer(res, c && users.get(c));
  if (!c) return answer(res, null);
  redis.get(`floor:${c}`).then(
    (u) => answer(res, u),
    () => answer(res, null),
  );
}).listen(Number(port), '127.0.0.1', () => process.send?.('ready'));
