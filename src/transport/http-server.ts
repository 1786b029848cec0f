/**
 * The HTTP port: `/auth` goes straight to the nginx adapter with nothing in front of it (it is
 * the hot path); everything else (the session API) goes to express.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

export function isAuthPath(url: string | undefined): boolean {
  if (url === undefined || !url.startsWith('/auth')) return false;
  return url.length === 5 || url.charCodeAt(5) === 63; /* ? */
}

export function createHttpServer(auth: Handler, api: Handler): Server {
  const server = createServer((req, res) => (isAuthPath(req.url) ? auth(req, res) : api(req, res)));
  // Outlive nginx's upstream keepalive_timeout (60s by default), so nginx closes idle
  // connections first and never sends a request into one we are closing.
  server.keepAliveTimeout = 75_000;
  server.headersTimeout = 80_000;
  return server;
}
