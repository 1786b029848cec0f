/**
 * Where sessiongate may send a browser: the `rd` of a login redirect and the return URL of a
 * logout. Open redirects through `rd` are the classic bypass of this kind of service, so the
 * rule is narrow and written once:
 *
 * - a relative target must be a plain absolute path: `/x`, never `//host`, `/\host` or
 *   anything a browser could read as a scheme-relative URL;
 * - an absolute target must be `http://` or `https://` spelled out (not `https:evil`), carry no
 *   user-info, and name a host in `allowed_redirect_hosts` (`app.example.com`, or
 *   `.example.com` for the domain and every subdomain; a port, when given, must match too).
 *   With an empty list, only the host the request itself came to is allowed;
 * - no whitespace, control character or backslash anywhere, raw or percent-encoded.
 *
 * Pure: no I/O, no clock.
 */

export interface RedirectPolicy {
  /** Whether a browser may be sent to `host` (a Host header value: name and optional port). */
  hostAllowed(host: string, requestHost?: string): boolean;
  /**
   * `raw` as a safe redirect target, or undefined when it is not one. `requestHost` is the
   * host the request came to (allowed when the list is empty).
   */
  safeTarget(raw: string, requestHost?: string): string | undefined;
}

interface HostPattern {
  readonly name: string; // lower case, no trailing dot
  readonly suffix: boolean; // `.example.com`: the domain and its subdomains
  readonly port: string | undefined;
}

/** One `allowed_redirect_hosts` entry: `host`, `.domain`, either with `:port`. */
export const REDIRECT_HOST = /^\.?(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*(?::[0-9]{1,5})?$/;

function parsePattern(entry: string): HostPattern {
  const suffix = entry.startsWith('.');
  const body = suffix ? entry.slice(1) : entry;
  const colon = body.lastIndexOf(':');
  const name = (colon >= 0 ? body.slice(0, colon) : body).toLowerCase();
  return { name, suffix, port: colon >= 0 ? body.slice(colon + 1) : undefined };
}

function splitHost(host: string): { name: string; port: string | undefined } | undefined {
  const m = /^([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::([0-9]{1,5}))?$/.exec(host);
  if (!m) return undefined;
  return { name: m[1]!.toLowerCase().replace(/\.$/, ''), port: m[2] };
}

/** Whitespace, controls (C0, DEL, C1), backslash: raw, or once or twice percent-encoded. */
const UNSAFE = /[\u0000-\u0020\u007f-\u009f\\\u2028\u2029\u00a0\ufeff]/;

function decodedUnsafe(raw: string): boolean {
  let s = raw;
  for (let i = 0; i < 3; i++) {
    if (UNSAFE.test(s)) return true;
    if (!s.includes('%')) return false;
    try {
      const next = decodeURIComponent(s);
      if (next === s) return false;
      s = next;
    } catch {
      return true; // a broken escape is not a URL a browser should be sent to
    }
  }
  return UNSAFE.test(s);
}

export function createRedirectPolicy(allowedHosts: readonly string[]): RedirectPolicy {
  const patterns = allowedHosts.map(parsePattern);

  const hostAllowed = (host: string, requestHost?: string): boolean => {
    const h = splitHost(host);
    if (!h) return false;
    if (patterns.length === 0) {
      const r = requestHost === undefined ? undefined : splitHost(requestHost);
      return r !== undefined && r.name === h.name && r.port === h.port;
    }
    return patterns.some((p) => {
      if (p.port !== undefined && p.port !== h.port) return false;
      if (h.name === p.name) return true;
      return p.suffix && h.name.endsWith(`.${p.name}`);
    });
  };

  const safeTarget = (raw: string, requestHost?: string): string | undefined => {
    if (raw.length === 0 || raw.length > 2048 || decodedUnsafe(raw)) return undefined;
    if (raw[0] === '/') {
      // `//evil` and `/\evil` are scheme-relative to a browser; `/%2f` decodes to the same.
      const second = raw[1];
      if (second === '/' || second === '\\') return undefined;
      if (/^\/%(?:2f|5c)/i.test(raw)) return undefined;
      // A header carries Latin-1 at most: anything beyond ASCII goes percent-encoded (UTF-8), as
      // a browser would send it. Nothing else changes, so no `/./` can become `//`.
      try {
        return raw.replace(/[^\x21-\x7e]/gu, (c) => encodeURIComponent(c));
      } catch {
        return undefined; // a lone surrogate
      }
    }
    const scheme = /^(https?):\/\//i.exec(raw);
    if (!scheme) return undefined; // javascript:, data:, https:evil, evil.com, ...
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      return undefined;
    }
    if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.username !== '' || url.password !== '') return undefined;
    if (!hostAllowed(url.host, requestHost)) return undefined;
    return url.href;
  };

  return Object.freeze({ hostAllowed, safeTarget });
}
