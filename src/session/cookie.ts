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

/**
 * Whether a UTF-16 code unit is one String.prototype.trim removes (WhiteSpace or LineTerminator,
 * the same set as `\s`).
 */
function isTrimmed(c: number): boolean {
  if (c === 32 || (c >= 9 && c <= 13)) return true;
  if (c < 160) return false;
  return (
    c === 160 || c === 0x1680 || (c >= 0x2000 && c <= 0x200a) || c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f || c === 0x3000 || c === 0xfeff
  );
}

/**
 * Values of cookie `name` across one or several Cookie headers, in order, unquoted: every
 * `;`-separated piece whose text before its first `=`, trimmed, is `name`. The scan jumps from
 * one occurrence of the name to the next (a native search) and looks only around each: a
 * ~1 kB Cookie header with our cookie once costs one search, not a slice per cookie.
 */
export function cookieValues(header: string | readonly string[] | undefined, name: string): string[] {
  if (header === undefined) return [];
  if (typeof header !== 'string') return header.flatMap((h) => cookieValues(h, name));
  const out: string[] = [];
  if (name === '') return piecesWithoutName(header);
  // A trimmed name before a piece's first `=` can hold no `;` or `=` and no edge spaces.
  if (name.includes(';') || name.includes('=') || name.trim() !== name) return out;
  for (let at = header.indexOf(name); at >= 0; at = header.indexOf(name, at + 1)) {
    // Only spaces between the piece's start (the string's, or just after a `;`) and the name.
    let i = at - 1;
    while (i >= 0 && isTrimmed(header.charCodeAt(i))) i--;
    if (i >= 0 && header.charCodeAt(i) !== 59 /* ; */) continue;
    // Only spaces between the name and the piece's first `=`.
    let eq = at + name.length;
    while (eq < header.length && isTrimmed(header.charCodeAt(eq))) eq++;
    if (eq >= header.length || header.charCodeAt(eq) !== 61 /* = */) continue;
    let end = header.indexOf(';', eq);
    if (end < 0) end = header.length;
    out.push(unquoted(header.slice(eq + 1, end)));
  }
  return out;
}

function unquoted(raw: string): string {
  const value = raw.trim();
  return value.length >= 2 && value[0] === '"' && value[value.length - 1] === '"' ? value.slice(1, -1) : value;
}

/** The values of pieces with nothing but spaces before their first `=` (what an empty name reads). */
function piecesWithoutName(header: string): string[] {
  const out: string[] = [];
  for (const piece of header.split(';')) {
    const eq = piece.indexOf('=');
    if (eq >= 0 && piece.slice(0, eq).trim() === '') out.push(unquoted(piece.slice(eq + 1)));
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
