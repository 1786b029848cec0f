/**
 * Structured JSON logs (pino). Decision logs carry the request id, transport, result, reason,
 * user id and path; never a cookie, token, secret, session ID or query string. Allowed
 * decisions are logged only at debug, and that check happens before any object is built.
 */
import { type Logger, pino } from 'pino';
import type { AuthRequest, Decision } from '../core/types.js';

export type { Logger } from 'pino';

export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level,
      base: { service: 'sessiongate' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      // Belt and braces: these never reach a log call, but if one ever does it is masked.
      redact: { paths: ['cookie', 'authorization', 'token', 'secret', '*.cookie', '*.authorization', '*.token', '*.secret'], censor: '[redacted]' },
    },
    destination as pino.DestinationStream | undefined,
  );
}

/** Longest raw target a log line carries. */
export const MAX_LOGGED_TARGET = 256;

/**
 * The raw request target as a log field, for a request whose path was refused: cut at the
 * query (a query may hold secrets: codes, tokens) or fragment, and at MAX_LOGGED_TARGET.
 */
export function loggedTarget(uri: string | undefined): string | undefined {
  if (uri === undefined) return undefined;
  let end = uri.length;
  const q = uri.indexOf('?');
  if (q >= 0) end = q;
  const h = uri.indexOf('#');
  if (h >= 0 && h < end) end = h;
  return uri.slice(0, Math.min(end, MAX_LOGGED_TARGET));
}

/**
 * One log line per denied or failed decision; allowed ones at debug only. `path` is the
 * normalised path the rules judged (no query); when there is none (a refused or missing
 * target) `target` is the raw one, without its query and truncated (loggedTarget).
 */
export function createDecisionLogger(log: Logger): (req: AuthRequest, d: Decision, startedAt: bigint) => void {
  return (req, d, startedAt) => {
    const level = d.result === 'deny' ? 'info' : d.result === 'error' || d.reason === 'store_unavailable_open' ? 'warn' : 'debug';
    if (!log.isLevelEnabled(level)) return;
    log[level]({
      msg: 'decision',
      transport: req.transport,
      result: d.result,
      reason: d.reason,
      request_id: req.requestId,
      user_id: d.userId,
      method: req.method,
      path: d.path,
      target: d.path === undefined ? loggedTarget(req.uri) : undefined,
      spoofed: d.spoofed.length > 0 ? d.spoofed : undefined,
      duration_us: Number((process.hrtime.bigint() - startedAt) / 1000n),
    });
  };
}
