/**
 * The session cookie on the wire: reading every value the client sent under our name, and
 * writing Set-Cookie with the configured attributes.
 *
 * Reading is a targeted scan rather than the `cookie` package's parse: that parse builds an
 * object of every cookie with first-wins semantics, and so cannot tell us that a name came
 * twice. Two validly signed session cookies are a cookie-tossing signal we must see (a
 * sibling subdomain can plant a cookie that sorts first). Writing uses the `cookie` package.
 */
import { stringifySetCookie } from 'cookie';

/** Values of cookie `name` across one or several Cookie headers, in order, unquoted. */
export function cookieValues(header: string | readonly string[] | undefined, name: string): string[] {
  if (header === undefined) return [];
  if (typeof header !== 'string') return header.flatMap((h) => cookieValues(h, name));
  const out: string[] = [];
  let from = 0;
  // Fast exit: most requests either lack our cookie or carry it once.
  if (header.indexOf(name) < 0) return out;
  while (from <= header.length) {
    let end = header.indexOf(';', from);
    if (end < 0) end = header.length;
    const eq = header.indexOf('=', from);
    if (eq >= 0 && eq < end && header.slice(from, eq).trim() === name) {
      let value = header.slice(eq + 1, end).trim();
      if (value.length >= 2 && value[0] === '"' && value[value.length - 1] === '"') value = value.slice(1, -1);
      out.push(value);
    }
    from = end + 1;
  }
  return out;
}

export interface CookieSettings {
  readonly name: string;
  readonly domain: string | null;
  readonly path: string;
  readonly httpOnly: boolean;
  readonly secure: boolean;
  readonly sameSite: 'lax' | 'strict' | 'none';
  /** Session cookie (no Expires): the browser drops it when it closes. */
  readonly sessionOnly: boolean;
}

export interface CookieWriter {
  readonly name: string;
  /** Whether the cookie is marked Secure, and its Domain (the login flow's cookie follows both). */
  readonly secure: boolean;
  readonly domain: string | null;
  /** Set-Cookie for a session token that lives until `expiresAt` (ms). */
  issue(token: string, expiresAt: number, now: number): string;
  /** Set-Cookie that makes the browser drop the cookie. */
  clear(): string;
}

export function createCookieWriter(s: CookieSettings): CookieWriter {
  const base = {
    path: s.path,
    httpOnly: s.httpOnly,
    secure: s.secure,
    sameSite: s.sameSite,
    ...(s.domain ? { domain: s.domain } : {}),
  } as const;
  const cleared = stringifySetCookie(s.name, '', { ...base, maxAge: 0, expires: new Date(0) });
  return {
    name: s.name,
    secure: s.secure,
    domain: s.domain,
    issue(token, expiresAt, now) {
      if (s.sessionOnly) return stringifySetCookie(s.name, token, base);
      const maxAge = Math.max(0, Math.floor((expiresAt - now) / 1000));
      return stringifySetCookie(s.name, token, { ...base, maxAge, expires: new Date(expiresAt) });
    },
    clear: () => cleared,
  };
}
