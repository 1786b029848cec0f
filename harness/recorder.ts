/**
 * A stand-in for sessiongate's HTTP port, for tests of what a proxy sends it: records every
 * request (method, target, headers as given and raw, body), counts the connections opened to it,
 * and answers `/auth` and every other path with answers the test sets (and may change between
 * requests). Always `Content-Length: 0`, as sessiongate answers /auth.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';

export interface Recorded {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingMessage['headers'];
  readonly rawHeaders: string[];
  /** The body, read as latin1 (bytes as they came). */
  readonly body: string;
}

export interface RecorderAnswer {
  status: number;
  headers: Record<string, string | string[]>;
}

export interface Recorder {
  readonly port: number;
  readonly seen: Recorded[];
  /** What `/auth` (exactly, or with a query) is answered. */
  auth: RecorderAnswer;
  /** What every other path is answered. */
  other: RecorderAnswer;
  /** TCP connections opened to the stand-in so far. */
  readonly connections: number;
  close(): Promise<void>;
}

export async function startRecorder(answers: { auth?: RecorderAnswer; other?: RecorderAnswer } = {}): Promise<Recorder> {
  const seen: Recorded[] = [];
  let connections = 0;
  const server: Server = createServer((req, res) => {
    let body = '';
    req.setEncoding('latin1');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, rawHeaders: req.rawHeaders, body });
      const a = /^\/auth(?:\?|$)/.test(req.url ?? '') ? recorder.auth : recorder.other;
      res.writeHead(a.status, { ...a.headers, 'Content-Length': 0 });
      res.end();
    });
  });
  server.on('connection', () => connections++);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const recorder: Recorder = {
    port: (server.address() as { port: number }).port,
    seen,
    auth: answers.auth ?? { status: 200, headers: {} },
    other: answers.other ?? { status: 302, headers: { Location: '/' } },
    get connections() {
      return connections;
    },
    close: () =>
      new Promise((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
  return recorder;
}
