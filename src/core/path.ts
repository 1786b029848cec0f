/**
 * Path normalisation for rule matching. One principle: a form that mainstream backends read
 * differently is refused (`bad_path`), never guessed; what is left has one reading, canonicalised.
 *
 * Refused, and why (the backend that reads it differently):
 * - `..` in any spelling (`..`, `%2e%2e`, `.%2e`): resolved, `/private/..` is `/`, but `/private`
 *   to a router matching the raw path nginx forwards.
 * - `;` raw or encoded (`%3b`): Tomcat and Spring cut `;params` (`/..;/` is `/../`), some stacks
 *   decode `%3b` first and cut then, the rest keep it.
 * - `?` and `#` encoded (`%3f`, `%23`), `/` and `\` encoded, a raw `\` or `#`: separators to an
 *   application that decodes and parses again (WHATWG URL reads `\` as `/`).
 * - a first segment that is empty (`//host/x`, `/.//x`): Node's `new URL(url, base)` and Python's
 *   `urlsplit` read it as an authority, so `//~assets/admin` is `/admin` to them.
 * - a segment ending in `.` or a space, or starting or ending with a space or `+` (raw or
 *   encoded): IIS and .NET drop trailing dots and spaces, trimming matchers (Spring's
 *   `trimTokens`) drop spaces; `+` is a space to form-decoding ones.
 * - `~` then a digit (`ADMINI~1`, Windows 8.3 short names) and `:$` (`admin::$INDEX_ALLOCATION`,
 *   NTFS streams): other names for the same file on Windows.
 * - non-ASCII that some backend folds to something else: any character NFKC changes (fullwidth
 *   `．` `／`, the leaders `․` `‥`, ligatures), whose upper or lower case contains ASCII
 *   (dotless `ı` is `I` to .NET `OrdinalIgnoreCase` and Java `equalsIgnoreCase`, `ſ` is `S`,
 *   Kelvin `K` is `k`), and invisible or space characters (format, unassigned, default-ignorable,
 *   Unicode spaces, C1 controls). Ordinary UTF-8 (`/café`, `/日本`) passes.
 * - NUL and controls, raw spaces and non-ASCII bytes, bad escapes (`%zz`, IIS's `%u002e`),
 *   invalid or overlong UTF-8, and escapes encoded twice (`%252e`).
 *
 * Canonicalised: unreserved escapes decoded (`%61` is `a`), other escapes upper-cased, the query
 * dropped, `.` segments and repeated slashes after the first segment collapsed. Those three are
 * read differently by backends too, so `readings` lists the other paths they make of the target
 * (express keeps all three; WHATWG URL resolves `.` segments but keeps empty ones and escapes),
 * and the rules check that every reading lands on a rule the decision's rule is as strict as
 * (rules.ts).
 */

const HEX = '0123456789ABCDEF';

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48; // 0-9
  if (c >= 65 && c <= 70) return c - 55; // A-F
  if (c >= 97 && c <= 102) return c - 87; // a-f
  return -1;
}

function isUnreserved(b: number): boolean {
  return (
    (b >= 65 && b <= 90) || // A-Z
    (b >= 97 && b <= 122) || // a-z
    (b >= 48 && b <= 57) || // 0-9
    b === 45 || // -
    b === 46 || // .
    b === 95 || // _
    b === 126 // ~
  );
}

/** Bytes that may not appear decoded: separators and delimiters (`/ \ ; ? #`), controls, DEL. */
function isRefusedByte(b: number): boolean {
  return b < 0x20 || b === 0x7f || b === 0x2f || b === 0x5c || b === 0x3b || b === 0x3f || b === 0x23;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Characters nobody should fold away silently: controls, format, unassigned, spaces, default-ignorables. */
const INVISIBLE = /[\p{Cc}\p{Cf}\p{Cn}\p{Z}\p{White_Space}\p{Default_Ignorable_Code_Point}]/u;

function hasAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) < 0x80) return true;
  return false;
}

/**
 * A non-ASCII character some backend reads as something else: NFKC changes it, a case mapping
 * (simple or full, either direction, or both in turn) contains ASCII, or it is invisible.
 */
function foldsAway(ch: string): boolean {
  if (INVISIBLE.test(ch) || ch.normalize('NFKC') !== ch) return true;
  const upper = ch.toUpperCase();
  const lower = ch.toLowerCase();
  for (const f of [upper, lower, upper.toLowerCase(), lower.toUpperCase()]) {
    if (hasAscii(f) || hasAscii(f.normalize('NFKC'))) return true;
  }
  return false;
}

/** Strips scheme and authority from an absolute-form request target. */
function stripAbsoluteForm(target: string): string | null {
  const m = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/.exec(target);
  if (!m) return target;
  const rest = target.slice(m[0].length);
  return rest === '' ? '/' : rest;
}

/** Is the three-character escape at `i` a space (`%20`) or a plus (`%2B`)? */
function spaceEscapeAt(s: string, i: number): boolean {
  return s.charCodeAt(i) === 37 && s.charCodeAt(i + 1) === 50 && (s.charCodeAt(i + 2) === 48 || s.charCodeAt(i + 2) === 66);
}

export interface PathReading {
  /** The canonical path: unreserved escapes decoded, repeated slashes and `.` segments collapsed. */
  readonly path: string;
  /** The other paths backends make of the target (empty for most): see the header. */
  readonly readings: readonly string[];
}

const NO_READINGS: readonly string[] = Object.freeze([]);

/**
 * The canonical and literal readings of a request target, or null when the target cannot be
 * read safely (the caller denies with `bad_path`).
 */
export function readPath(target: string): PathReading | null {
  if (target.length === 0 || target.length > 8192) return null;
  let raw = target[0] === '/' ? target : stripAbsoluteForm(target);
  if (raw === null || raw[0] !== '/') return null;

  // A fragment, even after the query: clients never send one, and an application that does not
  // cut at `#` reads `/public/?#/../../admin` differently from one that does.
  if (raw.includes('#')) return null;
  // The query does not take part in matching.
  const q = raw.indexOf('?');
  if (q >= 0) raw = raw.slice(0, q);

  // One pass: validate characters, decode unreserved escapes, keep the rest upper-cased, and
  // collect the fully decoded bytes when there are escapes (to prove them valid UTF-8). Until
  // the first escape the output is the input itself: nothing is copied for a plain path.
  let out = '';
  let decodedBytes: number[] | null = null;
  let nonAscii = false;
  let decodedUnreserved = false;
  let prev = 0; // previous decoded byte
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    let b: number;
    if (c !== 37 /* % */) {
      if (c <= 0x20 || c >= 0x7f || c === 92 /* \ */ || c === 59 /* ; */) return null;
      b = c;
      if (decodedBytes) {
        out += raw[i];
        decodedBytes.push(c);
      }
    } else {
      const hi = hexValue(raw.charCodeAt(i + 1));
      const lo = hexValue(raw.charCodeAt(i + 2));
      if (hi < 0 || lo < 0) return null;
      b = hi * 16 + lo;
      if (isRefusedByte(b)) return null;
      if (!decodedBytes) {
        out = raw.slice(0, i);
        decodedBytes = [];
        for (let j = 0; j < i; j++) decodedBytes.push(raw.charCodeAt(j));
      }
      i += 2;
      decodedBytes.push(b);
      if (b >= 0x80) nonAscii = true;
      if (isUnreserved(b)) {
        out += String.fromCharCode(b);
        decodedUnreserved = true;
      } else out += `%${HEX[hi]}${HEX[lo]}`;
    }
    // Windows: `~` and a digit is an 8.3 short name (ADMINI~1), `:$` an NTFS stream.
    if ((prev === 126 && b >= 48 && b <= 57) || (prev === 58 && b === 36)) return null;
    prev = b;
  }
  if (!decodedBytes) out = raw;
  if (decodedBytes) {
    // `%25` followed by two hex digits, once unreserved escapes are decoded (`%252e`, and
    // `%25%32%65` too): an escape encoded twice.
    if (/%25[0-9A-Fa-f]{2}/.test(out)) return null;
    let text: string;
    try {
      text = utf8.decode(Uint8Array.from(decodedBytes));
    } catch {
      return null; // invalid or overlong UTF-8
    }
    if (nonAscii) {
      for (const ch of text) if (ch.charCodeAt(0) >= 0x80 && foldsAway(ch)) return null;
    }
  }

  // Segments: refuse `..`, a leading empty segment and trimmable edges; note what is merged.
  let merged = false;
  let seen = false; // a real segment before this one
  let trailing = false;
  for (let s = 1; ; ) {
    let e = out.indexOf('/', s);
    const last = e < 0;
    if (last) e = out.length;
    const len = e - s;
    if (len === 0) {
      // `//x` is host x to WHATWG URL and urlsplit; after a first segment, only a separator.
      if (!last && !seen) return null;
      if (!last) merged = true;
      trailing = seen;
    } else if (len === 1 && out.charCodeAt(s) === 46 /* . */) {
      merged = true;
      trailing = seen && last;
    } else {
      const first = out.charCodeAt(s);
      const end = out.charCodeAt(e - 1);
      // A trailing dot covers `..` (and `...`) too.
      if (end === 46 || end === 43 /* + */ || first === 43) return null;
      if (spaceEscapeAt(out, s) || (len >= 3 && spaceEscapeAt(out, e - 3))) return null;
      seen = true;
      trailing = false;
    }
    if (last) break;
    s = e + 1;
  }
  if (!merged && !decodedUnreserved) return { path: out, readings: NO_READINGS };
  const path = merged ? collapse(out, trailing) : out;
  // Every combination backends make: escapes decoded or kept as sent (express routes on the raw
  // path), `.` segments resolved or kept (WHATWG URL also resolves `%2e`), empty segments merged
  // or kept (WHATWG URL and express keep them; a slash-merging middleware does not).
  const readings: string[] = [];
  const bases = decodedUnreserved ? [out, raw.replace(/%[0-9a-f]{2}/gi, (m) => m.toUpperCase())] : [out];
  for (const base of bases) {
    for (const dropDots of [0, 1, 2]) {
      if (dropDots === 2 && base === out) continue; // no `%2E` left in the decoded path
      for (const merge of [false, true]) {
        const p = variant(base, dropDots, merge);
        if (p !== path && !readings.includes(p)) readings.push(p);
      }
    }
  }
  return { path, readings };
}

/** `p` with `.` segments dropped (1; 2: `%2E` ones too) and empty ones merged (a trailing slash kept), as asked. */
function variant(p: string, dropDots: number, merge: boolean): string {
  if (dropDots === 0 && !merge) return p;
  const segs = p.split('/');
  const last = segs.length - 1;
  const kept = segs.filter((seg, i) => i === 0 || !((dropDots > 0 && seg === '.') || (dropDots > 1 && seg === '%2E') || (merge && seg === '' && i < last)));
  return kept.length === 1 ? '/' : kept.join('/');
}

/** `out` without empty and `.` segments, one trailing slash kept when it had one. */
function collapse(out: string, trailing: boolean): string {
  const segments: string[] = [];
  for (const seg of out.split('/')) if (seg !== '' && seg !== '.') segments.push(seg);
  if (segments.length === 0) return '/';
  return `/${segments.join('/')}${trailing ? '/' : ''}`;
}

/** The canonical path of a request target, or null when it is refused (`bad_path`). */
export function normalisePath(target: string): string | null {
  return readPath(target)?.path ?? null;
}
