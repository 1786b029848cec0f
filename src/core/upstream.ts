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
 * one byte for byte, in order), and no Authorization. A request without any of it costs three
 * regex tests and allocates nothing. Past the eighth token-shaped string in a request, one is
 * taken for a token without verifying it (a bound on the HMACs a request can cost): stripping
 * too much never leaks.
 */
import { TOKEN_PATTERN, type TokenCodec } from '../session/token.js';
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
// The shape of a token, anywhere in a string.
const TOKEN_SHAPE = new RegExp(TOKEN_PATTERN);
// Every window of that shape, overlapping ones included (lastIndex is stepped by hand).
const WINDOWS = new RegExp(TOKEN_SHAPE.source, 'g');
/** Token-shaped windows verified per request; past this, a window counts as a token unverified. */
const MAX_VERIFIED = 8;
// Never in a header a real proxy passed on; a crafted gRPC request does not get them echoed.
const BREAKS_HEADER = /[\0\r\n]/;
const NOTHING_LEFT = /^[\s;]*$/;

/** A cookie name without surrounding spaces and a `__Host-`/`__Secure-` prefix, lower-case. */
function baseName(name: string): string {
  const lower = name.trim().toLowerCase();
  for (const p of PREFIXES) if (lower.startsWith(p)) return lower.slice(p.length);
  return lower;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

const NONE: UpstreamCredentials = { rewrite: () => undefined };

/** `pass`: `upstream.pass_credentials: true`, the application gets everything as the client sent it. */
export function createUpstreamCredentials(cookieName: string, tokens: TokenCodec, pass = false): UpstreamCredentials {
  if (pass) return NONE;
  const ours = baseName(cookieName);
  const mentionsOurs = new RegExp(escapeRegExp(ours), 'i');
  // Lengths a name can have and still fold onto ours (before trimming): a cheap test before lower-casing.
  const lengths = new Set([ours.length, ...PREFIXES.map((p) => p.length + ours.length)]);

  // Verifications left for the request being rewritten (rewrite() is synchronous).
  let left = 0;

  /** Whether `s` holds a token that verifies (or, past the budget, any token-shaped window). */
  function holdsToken(s: string): boolean {
    if (!TOKEN_SHAPE.test(s)) return false;
    WINDOWS.lastIndex = 0;
    for (let m = WINDOWS.exec(s); m !== null; m = WINDOWS.exec(s)) {
      if (left-- <= 0 || tokens.verify(m[0]).ok) return true;
      WINDOWS.lastIndex = m.index + 1;
    }
    return false;
  }

  function isOurs(piece: string): boolean {
    const eq = piece.indexOf('=');
    const name = (eq < 0 ? piece : piece.slice(0, eq)).trim();
    return (lengths.has(name.length) && baseName(name) === ours) || holdsToken(piece);
  }

  function cookie(header: string | readonly string[] | undefined): string | undefined {
    if (header === undefined) return undefined;
    const all = allValues(header, '; ')!;
    if (!mentionsOurs.test(all) && !TOKEN_SHAPE.test(all)) return undefined;
    const pieces = all.split(';');
    const kept = pieces.filter((p) => !isOurs(p));
    if (kept.length === pieces.length) return undefined;
    const out = kept.join(';').trim();
    return NOTHING_LEFT.test(out) || BREAKS_HEADER.test(out) ? '' : out;
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
