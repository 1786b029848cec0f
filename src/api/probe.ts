/**
 * The doctor's probe: an application stand-in the proxy routes `/~sessiongate/probe/…` to,
 * after the same authorization as the real application. It answers what it received that
 * matters: the request target, and every header that is a protected identity header or an
 * alias of one (case, `_`, `.`), plus any header carrying the doctor's marker. Cookies and
 * Authorization are never echoed; nothing else is.
 */
import { Router } from 'express';
import type { Policy } from '../core/policy.js';
import { PROBE_PREFIX } from '../core/rules.js';

/** What `sessiongate doctor` puts in every value it forges. */
export const DOCTOR_MARKER = 'sgdoctor-';
const NEVER_ECHOED = new Set(['cookie', 'authorization', 'proxy-authorization']);

export interface ProbeAnswer {
  sessiongate_probe: 1;
  target: string;
  /** [name as received, value] */
  identity: Array<[string, string]>;
  marked: Array<[string, string]>;
}

export function createProbe(deps: { policy: () => Policy }): Router {
  const router = Router();
  router.get(new RegExp(`^${PROBE_PREFIX.replace(/[~/]/g, '\\$&')}(?:/.*)?$`), (req, res) => {
    const protectedNames = new Set(
      deps
        .policy()
        .identity.findSpoofed(req.headers)
        .map((n) => n.toLowerCase()),
    );
    const identity: Array<[string, string]> = [];
    const marked: Array<[string, string]> = [];
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      const name = req.rawHeaders[i]!;
      const value = req.rawHeaders[i + 1]!;
      const lower = name.toLowerCase();
      if (NEVER_ECHOED.has(lower)) continue;
      if (protectedNames.has(lower)) identity.push([name, value]);
      else if (value.includes(DOCTOR_MARKER)) marked.push([name, value]);
    }
    const answer: ProbeAnswer = { sessiongate_probe: 1, target: req.originalUrl, identity, marked };
    res.status(200).set({ 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' }).json(answer);
  });
  return router;
}
