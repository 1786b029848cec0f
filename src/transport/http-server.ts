/**
 * The HTTP port: `/auth` (nginx) and `<prefix>/…` (Envoy HTTP ext_authz) go straight to their
 * adapters with nothing in front of them (they are the hot path); everything else (the session
 * API) goes to express.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { underPrefix } from './envoy-http.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

export function isAuthPath(url: string | undefined): boolean {
  if (url === undefined || !url.startsWith('/auth')) return false;
  return url.length === 5 || url.charCodeAt(5) === 63; /* ? */
}

export interface HttpRoutes {
  readonly nginx: Handler;
  readonly envoy: Handler;
  readonly envoyPrefix: string;
  readonly api: Handler;
}

export function createHttpServer(routes: HttpRoutes): Server {
  const { nginx, envoy, envoyPrefix, api } = routes;
  const server = createServer((req, res) => {
    if (isAuthPath(req.url)) nginx(req, res);
    else if (underPrefix(req.url, envoyPrefix)) envoy(req, res);
    else api(req, res);
  });
  // Outlive nginx's upstream keepalive_timeout (60s by default), so nginx closes idle
  // connections first and never sends a request into one we are closing.
  server.keepAliveTimeout = 75_000;
  server.headersTimeout = 80_000;
  return server;
}
