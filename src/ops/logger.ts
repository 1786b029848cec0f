/**
 * Structured JSON logs (pino). Decision logs carry the request id, transport, result, reason
 * and user id; never a cookie, token, secret or session ID. Allowed decisions are logged only
 * at debug, and that check happens before any object is built.
 */
import { pino, type Logger } from 'pino';
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

/** One log line per denied or failed decision; allowed ones at debug only. */
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
      spoofed: d.spoofed.length > 0 ? d.spoofed : undefined,
      duration_us: Number((process.hrtime.bigint() - startedAt) / 1000n),
    });
  };
}
