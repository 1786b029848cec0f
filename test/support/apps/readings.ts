/**
 * Applications behind the proxy that read request paths the way real backends do, each serving
 * a secret under `/admin/secret` (protected by deploy/config.example.yaml: roles [admin]). The
 * reading is the idiom itself (WHATWG URL, String.prototype.normalize, Python's urlsplit), not
 * a description of it: what the application would serve is what the test asks for directly.
 */
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { join, posix } from 'node:path';
import { freePort, listening, ROOT, waitFor } from '../../../harness/processes.js';

/** The protected resource every application serves. */
export const SECRET_PATH = '/admin/secret';

export interface RunningApp {
  readonly name: string;
  readonly port: number;
  stop(): Promise<void>;
}

/** Percent-decoding as `decodeURIComponent`, but never throwing: invalid escapes stay as they are. */
function decodeLenient(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s.replace(/%([0-9A-Fa-f]{2})/g, (m, h: string) => (parseInt(h, 16) < 0x80 ? String.fromCharCode(parseInt(h, 16)) : m));
  }
}

/** How an application turns `req.url` into the resource it serves; compared with SECRET_PATH. */
export type Reading = (url: string) => string;

/**
 * The readings, each a common idiom of a mainstream stack. Every one resolves dot segments the
 * way its stack does; none of them is wrong, they only disagree.
 */
export const READINGS: Record<string, { idiom: string; read: Reading }> = {
  whatwg: {
    idiom: 'node:http routing on new URL(req.url, base).pathname, decoded (the WHATWG idiom across Node)',
    read: (url) => decodeLenient(new URL(url, 'http://app.internal').pathname),
  },
  nfkc: {
    idiom: 'decodes, normalises to NFKC (as identifier-safe routers and many CMSs do), resolves dot segments',
    read: (url) => posix.normalize(decodeLenient(url.split('?')[0]!).normalize('NFKC')),
  },
  dotnet: {
    idiom: 'IIS/.NET: decodes, drops trailing dots and spaces per segment, compares with OrdinalIgnoreCase',
    read: (url) =>
      posix
        .normalize(decodeLenient(url.split('?')[0]!))
        .split('/')
        .map((seg) => seg.replace(/[. ]+$/, ''))
        .join('/')
        .toUpperCase()
        .toLowerCase(),
  },
  trimming: {
    idiom: "a servlet with URLDecoder (form decoding: '+' is a space) and a matcher that trims every segment (Spring's trimTokens)",
    read: (url) =>
      posix.normalize(
        decodeLenient(url.split('?')[0]!.replace(/\+/g, ' '))
          .split('/')
          .map((seg) => seg.trim())
          .join('/'),
      ),
  },
  'decode-then-params': {
    idiom: 'a servlet that decodes getRequestURI() first, then cuts ;params (jsessionid) from each segment and normalises',
    read: (url) =>
      posix.normalize(
        decodeLenient(url.split('?')[0]!)
          .split('/')
          .map((seg) => seg.split(';')[0])
          .join('/'),
      ),
  },
};

/** A node:http application serving `secret` at SECRET_PATH under its reading, 404 elsewhere. */
export async function startReadingApp(name: string, read: Reading, secret: string): Promise<RunningApp> {
  const server = createServer((req, res) => {
    req.resume();
    let path: string;
    try {
      path = read(req.url ?? '/');
    } catch {
      path = '';
    }
    const hit = path === SECRET_PATH || path === `${SECRET_PATH}/`;
    const body = hit ? `${req.method} ${secret}` : 'not found';
    res.writeHead(hit ? 200 : 404, { 'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return runningServer(name, server);
}

/** A node:http server listening on loopback, as a RunningApp that closes its connections on stop. */
export function runningServer(name: string, server: Server): RunningApp {
  return {
    name,
    port: (server.address() as { port: number }).port,
    stop: () =>
      new Promise((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

/** Python routing on urlparse(raw request target).path, unquoted (urlsplit_app.py): `//x/...` has netloc x. */
export async function startUrlsplitApp(secret: string): Promise<RunningApp> {
  const port = await freePort();
  const child = spawn('python3', [join(ROOT, 'test/support/apps/urlsplit_app.py'), String(port), secret], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const up = await waitFor(
    () => listening(port),
    15_000,
    () => child.exitCode !== null,
  );
  if (!up) {
    child.kill('SIGKILL');
    throw new Error(`python3 urlsplit app did not start: ${stderr}`);
  }
  return {
    name: 'python-urlsplit',
    port,
    stop: () =>
      new Promise((r) => {
        if (child.exitCode !== null || child.signalCode !== null) return r();
        child.once('exit', () => r());
        child.kill('SIGTERM');
      }),
  };
}
