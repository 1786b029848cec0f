/**
 * Identity headers: which headers carry identity to the upstream (built once from the
 * `headers` mapping and `strip_headers`), how session fields become header values (one
 * injective encoding, whatever the session's source), and how client-supplied copies are
 * recognised, including the aliases that applications fold onto the real header (any case,
 * `_` or `.` for `-`, stray spaces).
 */

import { compileParts } from '../session/field-path.js';
import { type SessionRecord, textProblem } from '../session/record.js';
import type { HeaderMap } from './types.js';

type Getter = (s: SessionRecord) => unknown;

/** Carries the reason code on HTTP answers (nginx can log it as $upstream_http_x_sessiongate_reason). */
export const REASON_HEADER = 'X-Sessiongate-Reason';

/** Marks a request let through without identity because the store failed (failure_mode: open). */
export const DEGRADED_HEADER = 'X-Sessiongate-Degraded';

export interface IdentityHeaders {
  /**
   * Every protected header, configured case: mapped ones first, then strip_headers, then
   * X-Sessiongate-Degraded (only sessiongate says a request was let through degraded).
   */
  readonly protectedNames: readonly string[];
  /**
   * Header names (lower-case) the proxy must remove before an allowed request goes upstream:
   * every protected header `identity` does not set, every alias the client sent (`spoofed`),
   * then `cookie` when no cookie is left for the upstream and `authorization` when the client's
   * carried a sessiongate token. A header the decision sets is never listed (it is overwritten
   * instead), so the answer is right whatever order a proxy applies removals and sets in.
   * Without aliases the list is a shared frozen array: an allow allocates none.
   */
  headersToRemove(
    identity: ReadonlyArray<readonly [string, string]>,
    spoofed: readonly string[],
    dropCookie: boolean,
    dropAuthorization: boolean,
  ): readonly string[];
  /** Identity header values for a session; absent or unrepresentable values are left out. */
  identityFor(session: SessionRecord): Array<readonly [string, string]>;
  /** Header names in the request that are a protected header or an alias of one. */
  findSpoofed(headers: HeaderMap): string[];
}

/** The one spelling every alias of a header name folds to. */
export function canonicalHeaderName(name: string): string {
  return name.trim().toLowerCase().replace(/[_.]/g, '-');
}

const TOP_LEVEL: Record<string, Getter> = {
  user_id: (s) => s.user_id,
  roles: (s) => s.roles,
  created_at: (s) => Math.floor(s.created_at / 1000),
  expires_at: (s) => Math.floor(s.expires_at / 1000),
};

/** Compiles a dotted session field path (`user_id`, `roles`, `attributes.org.id`, `email`). */
export function compileFieldPath(path: string): Getter {
  const top = TOP_LEVEL[path];
  if (top) return top;
  const parts = path.split('.');
  if (parts[0] === 'attributes') parts.shift();
  const walk = compileParts(parts);
  return (s) => walk(s.attributes);
}

// Header values are lists of items separated by `,`; a scalar is a list of one. An item keeps
// visible ASCII but `%` and `,`, and spaces between other characters, as they are.
const PLAIN = /^[\x21-\x24\x26-\x2b\x2d-\x7e](?:[\x20-\x24\x26-\x2b\x2d-\x7e]*[\x21-\x24\x26-\x2b\x2d-\x7e])?$/;
// `%`, `,` and non-ASCII, percent-encoded as UTF-8 (controls are refused before this runs).
const ESCAPED = /[^\x20-\x24\x26-\x2b\x2d-\x7e]+/g;
// Leading and trailing spaces: HTTP drops them from a header value, so they are encoded too.
const EDGE_SPACES = /^ +| +$/g;

function scalarToString(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  return undefined;
}

const encode = (m: string) => encodeURIComponent(m);
const spaces = (m: string) => '%20'.repeat(m.length);

/**
 * One item of a header value, or undefined when it cannot be one. The encoding is injective:
 * `%` is always encoded, so percent-decoding gives the text back, and no two texts share an
 * encoding (`josé` is `jos%C3%A9`, the literal `jos%C3%A9` is `jos%25C3%25A9`, ` alice` is
 * `%20alice`). Controls and lone surrogates are refused (they are refused at session creation
 * too; this is the second wall): no CR/LF ever reaches a header, and encoding never throws.
 */
function headerItem(s: string): string | undefined {
  if (PLAIN.test(s)) return s;
  if (textProblem(s) !== undefined) return undefined;
  return s.replace(ESCAPED, encode).replace(EDGE_SPACES, spaces);
}

/**
 * Turns a session value into a header value, or undefined when it has none. Arrays of scalars
 * are joined with `,` after each item is encoded (headerItem), so `["a", "b"]` is `a,b` and
 * `"a,b"` is `a%2Cb`. Numbers and booleans are their JSON text.
 */
export function toHeaderValue(v: unknown): string | undefined {
  if (Array.isArray(v)) {
    let out = '';
    for (let i = 0; i < v.length; i++) {
      const s = scalarToString(v[i]);
      const item = s === undefined ? undefined : headerItem(s);
      if (item === undefined) return undefined;
      out = i === 0 ? item : `${out},${item}`;
    }
    return out === '' ? undefined : out;
  }
  const s = scalarToString(v);
  if (s === undefined || s === '') return undefined;
  return headerItem(s);
}

export function createIdentityHeaders(mapping: Readonly<Record<string, string>>, strip: readonly string[]): IdentityHeaders {
  const mapped = Object.entries(mapping).map(([name, path]) => ({ name, get: compileFieldPath(path) }));
  const protectedNames: string[] = mapped.map((m) => m.name);
  const seen = new Set(protectedNames.map(canonicalHeaderName));
  for (const name of [...strip, DEGRADED_HEADER]) {
    const c = canonicalHeaderName(name);
    if (!seen.has(c)) {
      seen.add(c);
      protectedNames.push(name);
    }
  }
  const canonical: ReadonlySet<string> = seen;
  // Cheap pre-filter: a header can only alias a protected one if its length matches one of theirs.
  const lengths = new Set([...canonical].map((n) => n.length));

  /** Whether a request header's name is a protected header or an alias of one. */
  const aliases = (name: string): boolean => {
    const trimmed = name.trim();
    return lengths.has(trimmed.length) && canonical.has(canonicalHeaderName(trimmed));
  };
  const seenNames = new Map<string, boolean>();

  const protectedLower = protectedNames.map((n) => n.toLowerCase());
  const bit = new Map(protectedNames.map((n, i) => [n, 2 ** i] as const));
  const memo = new Map<number, readonly string[]>();

  function removal(identity: ReadonlyArray<readonly [string, string]>, spoofed: readonly string[], dropCookie: boolean, dropAuthorization: boolean): string[] {
    const set = new Set(identity.map(([name]) => name.toLowerCase()));
    const out: string[] = [];
    for (const name of protectedLower) if (!set.has(name)) out.push(name);
    for (const name of spoofed) {
      const lower = name.toLowerCase();
      if (!set.has(lower) && !out.includes(lower)) out.push(lower);
    }
    if (dropCookie) out.push('cookie');
    if (dropAuthorization) out.push('authorization');
    return out;
  }

  return {
    protectedNames,
    headersToRemove(identity, spoofed, dropCookie, dropAuthorization) {
      // The set headers as a bit mask over protectedNames (identity holds their very strings).
      if (spoofed.length > 0 || protectedLower.length > 28) return removal(identity, spoofed, dropCookie, dropAuthorization);
      let mask = 0;
      for (const [name] of identity) {
        const b = bit.get(name);
        if (b === undefined) return removal(identity, spoofed, dropCookie, dropAuthorization);
        mask |= b;
      }
      const key = mask * 4 + (dropCookie ? 1 : 0) + (dropAuthorization ? 2 : 0);
      let out = memo.get(key);
      if (out === undefined) {
        out = Object.freeze(removal(identity, spoofed, dropCookie, dropAuthorization));
        if (memo.size < 1024) memo.set(key, out);
      }
      return out;
    },
    identityFor(session) {
      const out: Array<readonly [string, string]> = [];
      for (const m of mapped) {
        const value = toHeaderValue(m.get(session));
        if (value !== undefined) out.push([m.name, value]);
      }
      return out;
    },
    findSpoofed(headers) {
      let found: string[] | undefined;
      for (const name in headers) {
        if (headers[name] === undefined) continue;
        let hit = seenNames.get(name);
        if (hit === undefined) {
          hit = aliases(name);
          // Requests name the same few dozen headers; a flood of new names only stops the remembering.
          if (seenNames.size < 1024) seenNames.set(name, hit);
        }
        if (hit) (found ??= []).push(name);
      }
      return found ?? [];
    },
  };
}
