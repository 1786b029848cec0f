/**
 * Durations: Go-style, as oauth2-proxy and Envoy users write them (`30s`, `15m`, `1h30m`,
 * `500ms`, `7d`). The one parser for configuration and the command line; the `ms` package
 * reads single units only, hence this small one.
 */

const DURATION_PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/g;
const DURATION = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** What to write instead, for messages. */
export const DURATION_HINT = 'use e.g. 30s, 15m, 12h, 1h30m';

/** Milliseconds in a duration string, or null when it is not one. */
export function parseDuration(s: string): number | null {
  if (!DURATION.test(s)) return null;
  let total = 0;
  for (const m of s.matchAll(DURATION_PART)) total += Number(m[1]) * UNIT_MS[m[2]!]!;
  return Math.round(total);
}
