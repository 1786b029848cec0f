/**
 * sessiongate's own credential never reaches the application: an upstream log, debug page or
 * SSRF would otherwise leak a working login of every user. Built once per policy; per request it
 * finds, in the client's headers,
 *
 * - sessiongate's cookie: its name in any case, with stray spaces around it, with or without a
 *   `__Host-`/`__Secure-` prefix (spellings an application's parser may take for the same
 *   cookie), and any cookie holding a token that verifies under sessiongate's secrets (one kept
 *   under an old name, or inside another cookie's value, is as good a credential);
 * - an Authorization header holding such a token (an API token, or a session token as bearer),
 *
 * and says what the upstream gets instead: the Cookie header without those cookies (every other
 * one byte for byte, in order), and no Authorization. It is one linear pass over each header,
 * building nothing for a request that carries none of it. Past the eighth token-shaped string in a request, one is
 * taken for a token without verifying it (a bound on the HMACs a request can cost): stripping
 * too much never leaks.
 */
import { TOKEN_LENGTH, type TokenCodec } from '../session/token.js';
import { allValues } from './header-values.js';
import type { HeaderMap } from './types.js';

export interface UpstreamRewrite {
  /** The Cookie header the upstream gets: the client's cookies but sessiongate's; '' for none at all. Undefined: unchanged. */
  readonly cookie: string | undefined;
  /** The client's Authorization carries a sessiongate token: the upstream gets no Authorization. */
  readonly dropAuthorization: boolean;
}

export interface UpstreamCredentials {
  /** What the upstream gets instead of the client's Cookie and Authorization; undefined when nothing of sessiongate's is there. */
  rewrite(headers: HeaderMap): UpstreamRewrite | undefined;
}

const PREFIXES = ['__host-', '__secure-'];
/** Verifications per request; past this, a token-shaped string counts as a token unverified. */
const MAX_VERIFIED = 8;
/**
 * NUL, CR or LF: never in a header a real proxy passed on; a crafted gRPC request does not get
 * them echoed. Three native character searches: a regular expression over a ~1 kB Cookie header
 * costs several times more.
 */
function breaksHeader(s: string): boolean {
  return s.indexOf('\n') >= 0 || s.indexOf('\r') >= 0 || s.indexOf('\0') >= 0;
}
const NOTHING_LEFT = /^[\s;]*$/;
/** Length of each part of a token (session/token.ts: `<43>.<43>.<43>`). */
const PART = (TOKEN_LENGTH - 2) / 3;

// base64url characters, the alphabet of a token's parts.
const B64URL = new Uint8Array(128);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_') B64URL[c.charCodeAt(0)] = 1;

function allB64(s: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c >= 128 || B64URL[c] === 0) return false;
  }
  return true;
}

/** A cookie name without surrounding spaces and a `__Host-`/`__Secure-` prefix, lower-case. */
function baseName(name: string): string {
  const lower = name.trim().toLowerCase();
  for (const p of PREFIXES) if (lower.startsWith(p)) return lower.slice(p.length);
  return lower;
}

const NONE: UpstreamCredentials = { rewrite: () => undefined };

/** `pass`: `upstream.pass_credentials: true`, the application gets everything as the client sent it. */
export function createUpstreamCredentials(cookieName: string, tokens: TokenCodec, pass = false): UpstreamCredentials {
  if (pass) return NONE;
  const ours = baseName(cookieName);
  // Lengths a trimmed name can have and still fold onto ours: a cheap test before lower-casing.
  const lengths = new Set([ours.length, ...PREFIXES.map((p) => p.length + ours.length)]);
  const shortest = ours.length;

  // Verifications left for the request being rewritten (rewrite() is synchronous).
  let left = 0;

  /**
   * Whether `s[from, to)` holds a token that verifies (or, past the budget, any token-shaped
   * string). One pass over the dots: a token is `<43>.<43>.<43>` in base64url, so its two dots
   * are consecutive dots exactly 43 characters apart, with 43 more on either side. That finds
   * every token-shaped substring, embedded or overlapping, in linear time.
   */
  function holdsToken(s: string, from = 0, to = s.length): boolean {
    if (to - from < TOKEN_LENGTH) return false;
    let p = s.indexOf('.', from + PART);
    while (p >= 0 && p + PART + 1 + PART < to) {
      const q = s.indexOf('.', p + 1);
      if (q < 0 || q + PART >= to) return false; // no room after this dot, nor after any later one
      if (q - p - 1 === PART && p - PART >= from && allB64(s, p - PART, p) && allB64(s, p + 1, q) && allB64(s, q + 1, q + 1 + PART)) {
        if (left-- <= 0 || tokens.verify(s.slice(p - PART, q + 1 + PART)).ok) return true;
      }
      p = q;
    }
    return false;
  }

  /** Whether the cookie `s[from, to)` (a `name=value` piece, spaces included) is sessiongate's. */
  function isOurs(s: string, from: number, to: number): boolean {
    let eq = s.indexOf('=', from);
    if (eq < 0 || eq > to) eq = to;
    if (eq - from >= shortest) {
      const name = s.slice(from, eq).trim();
      if (lengths.has(name.length) && baseName(name) === ours) return true;
    }
    return holdsToken(s, from, to);
  }

  function cookie(header: string | readonly string[] | undefined): string | undefined {
    if (header === undefined) return undefined;
    const all = allValues(header, '; ')!;
    // One pass over the `;`-separated pieces. Until the first of ours, every piece is kept as it
    // stands, so nothing is built for a request that carries none; after it, the kept pieces are
    // joined back with `;` as they were.
    let kept: string | undefined;
    let keptAny = false;
    for (let from = 0; from <= all.length; ) {
      let to = all.indexOf(';', from);
      if (to < 0) to = all.length;
      if (isOurs(all, from, to)) {
        if (kept === undefined) {
          kept = from === 0 ? '' : all.slice(0, from - 1);
          keptAny = from > 0;
        }
      } else if (kept !== undefined) {
        kept = keptAny ? `${kept};${all.slice(from, to)}` : all.slice(from, to);
        keptAny = true;
      }
      from = to + 1;
    }
    if (kept === undefined) return undefined;
    const out = kept.trim();
    return NOTHING_LEFT.test(out) || breaksHeader(out) ? '' : out;
  }

  function authorization(header: string | readonly string[] | undefined): boolean {
    if (header === undefined) return false;
    return holdsToken(allValues(header, ',')!);
  }

  return {
    rewrite(headers) {
      left = MAX_VERIFIED;
      const c = cookie(headers['cookie']);
      const dropAuthorization = authorization(headers['authorization']);
      return c === undefined && !dropAuthorization ? undefined : { cookie: c, dropAuthorization };
    },
  };
}
