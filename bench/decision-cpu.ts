/**
 * CPU per decision without the network: the service in-process (the shipped example config,
 * memory store), its HTTP request listener driven with a plain request object shaped like
 * nginx's auth subrequest for a logged-in browser. What it counts is everything sessiongate does
 * for a decision (parse, path, rules, credential, store, decide, metrics, answer headers) and
 * nothing of the kernel, nginx or the load generator, so it is steady on a shared machine where
 * req/s are not. Prints µs of CPU (user + system) per decision over N decisions.
 *
 *   npm run build && npx tsc -p tsconfig.bench.json && node dist-bench/bench/decision-cpu.js [N] [--s1 [--sessions S]]
 *
 * --s1: the request of the benchmark's S1 row as nginx passes it to /auth (a dozen browser
 * headers, a ~1 kB Cookie header, the headers endpoints.conf sets), a different one of S
 * sessions (default 10,000) per request.
 *
 * Point it at another checkout's dist/ by running that checkout's copy.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = join(fileURLToPath(import.meta.url), '../../..');
// The service as `npm run build` left it in dist/ (what bin/sessiongate.js runs), typed from src/.
const load = <T>(path: string) => import(pathToFileURL(join(ROOT, 'dist', path)).href) as Promise<T>;
const { loadConfig } = await load<typeof import('../src/config.js')>('config.js');
const { startService } = await load<typeof import('../src/main.js')>('main.js');
const { createLogger } = await load<typeof import('../src/ops/logger.js')>('ops/logger.js');
const args = process.argv.slice(2);
const N = Number(/^\d+$/.test(args[0] ?? '') ? args[0] : 200_000);
const S1 = args.includes('--s1');
const SESSIONS = S1 ? Number(args.includes('--sessions') ? args[args.indexOf('--sessions') + 1] : 10_000) : 1;
const env = {
  SESSIONGATE_SECRET: 'bench-secret-0123456789abcdef0123456789abcdef',
  SESSIONGATE_LOGIN_TOKEN: 'bench-login-token-0123456789',
  SESSIONGATE_HTTP_PORT: '0',
  SESSIONGATE_GRPC_PORT: '0',
  SESSIONGATE_ADMIN_PORT: '0',
  SESSIONGATE_API_PORT: '0',
};
const loaded = loadConfig({ file: join(ROOT, 'deploy/config.example.yaml'), env });
if (!loaded.ok) throw new Error(loaded.problems.join('\n'));
const svc = await startService(loaded.config, createLogger('warn', new Writable({ write: (_c, _e, cb) => cb() })));
async function createSession(user: string): Promise<string> {
  const created = await fetch(`http://127.0.0.1:${svc.ports.http}/~session`, {
    method: 'POST',
    headers: { authorization: `Bearer ${env.SESSIONGATE_LOGIN_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ user_id: user, roles: ['admin'], attributes: { email: `${user}@example.com` } }),
  });
  return (created.headers.get('set-cookie') ?? '').split(';')[0]!;
}
const cookies: string[] = [];
while (cookies.length < SESSIONS) {
  const batch = Array.from({ length: Math.min(50, SESSIONS - cookies.length) }, (_, i) =>
    createSession(SESSIONS === 1 ? 'alice' : `user${cookies.length + i}`),
  );
  cookies.push(...(await Promise.all(batch)));
}
const others = Array.from({ length: 14 }, (_, i) => `_ga${i}=GA1.2.${'1234567890'.repeat(4)}`).join('; ');
/**
 * A header object built as node:http builds one (a property at a time, by computed name): with
 * S1's twenty-odd headers V8 keeps it as a dictionary, not a fast object literal, and every read
 * of it costs accordingly.
 */
function asNodeBuilds(headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of Object.keys(headers)) out[name] = headers[name]!;
  return out;
}
const requests = cookies.map((cookie, i) =>
  S1
    ? asNodeBuilds({
        host: '127.0.0.1',
        'x-original-method': 'GET',
        'x-original-uri': `/app/page?id=${i + 1}`,
        'x-forwarded-proto': 'http',
        'x-forwarded-host': '127.0.0.1:8000',
        'x-forwarded-for': '127.0.0.1',
        'x-real-ip': '127.0.0.1',
        'x-request-id': '0123456789abcdef0123456789abcdef',
        accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8',
        'accept-encoding': 'gzip, deflate, br',
        'accept-language': 'en-GB,en;q=0.9',
        'cache-control': 'max-age=0',
        'sec-fetch-dest': 'document',
        'sec-fetch-mode': 'navigate',
        'sec-fetch-site': 'same-origin',
        'upgrade-insecure-requests': '1',
        'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0 Safari/537.36',
        referer: 'https://app.example.com/home',
        cookie: `theme=dark; ${others}; ${cookie}; lang=en`,
      })
    : {
        host: 'app.example.com',
        cookie: `_ga=GA1.2.3; ${cookie}; theme=dark`,
        'x-original-uri': '/app/page/42?x=1',
        'x-original-method': 'GET',
        'x-forwarded-proto': 'https',
        'x-real-ip': '10.1.2.3',
        accept: 'text/html',
        'user-agent': 'Mozilla/5.0',
      },
);
const listener = svc.httpServer.listeners('request')[0] as (req: IncomingMessage, res: ServerResponse) => void;

let next = 0;
function decideOnce(): Promise<number> {
  return new Promise((resolve) => {
    const headers = requests[next++ % requests.length];
    const req = { method: 'GET', url: '/auth', headers, resume() {}, on() {}, once() {} };
    const res = {
      headersSent: false,
      status: 0,
      writeHead(status: number) {
        this.status = status;
        this.headersSent = true;
      },
      end() {
        resolve(this.status);
      },
      setHeader() {},
      getHeader() {},
      on() {},
      once() {},
    };
    listener(req as unknown as IncomingMessage, res as unknown as ServerResponse);
  });
}

for (let i = 0; i < 20_000; i++) {
  const status = await decideOnce();
  if (status !== 200) throw new Error(`warm-up answered ${status}, not 200`);
}
const before = process.cpuUsage();
for (let i = 0; i < N; i++) await decideOnce();
const used = process.cpuUsage(before);
console.log(
  `${((used.user + used.system) / N).toFixed(2)} µs CPU per decision (${N} decisions, in-process, no socket${S1 ? `, S1's request, ${SESSIONS} sessions` : ''})`,
);
await svc.close();
