/**
 * The end of every express app (session API on the HTTP port, admin port, token API port): an unknown path is a
 * JSON 404 and every error a JSON answer with a reason code. Express's own final handler would
 * answer an HTML page with the stack trace (node_modules paths included) and print the error,
 * whose message for broken JSON quotes the request body, to stderr. Here nothing of the request
 * is echoed or logged: a client error is its status and code, and an internal error is logged
 * by name and source location only.
 */
import type { ErrorRequestHandler, RequestHandler, Response } from 'express';
import type { Logger } from '../ops/logger.js';

function answer(res: Response, status: number, error: string): void {
  res.status(status).set('Cache-Control', 'no-store').json({ error });
}

export const notFound: RequestHandler = (_req, res) => answer(res, 404, 'not_found');

/** body-parser's error types (`err.type`) and what they mean to a client. */
const BODY_ERRORS: Readonly<Record<string, readonly [number, string]>> = {
  'entity.parse.failed': [400, 'invalid_json'],
  'entity.too.large': [413, 'body_too_large'],
  'entity.verify.failed': [400, 'bad_request'],
  'request.aborted': [400, 'bad_request'],
  'request.size.invalid': [400, 'bad_request'],
  'stream.encoding.set': [500, 'internal_error'],
  'stream.not.readable': [500, 'internal_error'],
  'encoding.unsupported': [415, 'unsupported_encoding'],
  'charset.unsupported': [415, 'unsupported_charset'],
  'parameters.too.many': [413, 'body_too_large'],
};

/** The first stack frame of our own code, for the log: where, not what. */
function where(err: unknown): string | undefined {
  const stack = err instanceof Error && typeof err.stack === 'string' ? err.stack : '';
  for (const line of stack.split('\n')) {
    const t = line.trim();
    if (t.startsWith('at ') && !t.includes('node_modules') && !t.includes('node:')) return t.slice(3);
  }
  return undefined;
}

export function jsonErrors(log?: Logger): ErrorRequestHandler {
  return (err: unknown, _req, res, _next) => {
    const e = (typeof err === 'object' && err !== null ? err : {}) as { type?: unknown; status?: unknown };
    let [status, error] = (typeof e.type === 'string' && Object.hasOwn(BODY_ERRORS, e.type) ? BODY_ERRORS[e.type] : undefined) ?? [500, 'internal_error'];
    // Other client errors express raises itself (a path that is not valid percent-encoding: 400).
    if (status === 500 && typeof e.status === 'number' && e.status >= 400 && e.status < 500) [status, error] = [e.status, 'bad_request'];
    if (status >= 500) log?.error({ msg: 'request failed', reason: 'internal_error', err: err instanceof Error ? err.name : typeof err, at: where(err) });
    if (res.headersSent) return void res.destroy();
    answer(res, status, error);
  };
}
