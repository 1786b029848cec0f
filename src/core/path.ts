/**
 * Path normalisation for rule matching. Rules must see the path the application will act on,
 * so anything ambiguous between sessiongate, the proxy and the application is refused rather
 * than guessed: encoded slashes and backslashes, NUL and other control characters, invalid or
 * overlong UTF-8, raw non-ASCII bytes. What is unambiguous is canonicalised: unreserved
 * percent-escapes are decoded, `;params` are cut from segments (Tomcat and Spring treat
 * `/..;/` as `/../`), `.` segments and repeated slashes collapsed, the query dropped. A `..`
 * segment (raw, `%2e%2e`, `.%2e`, `..;x`) is refused: see below.
 *
 * Also refused: a `#` anywhere (clients never send a fragment; an application that does not
 * cut at `#` would resolve `/public/#/../../admin` to `/admin` where a cut gives `/public/`),
 * and double-encoded escapes (`%252e`: `%2e` to an application that decodes twice).
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

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Strips scheme and authority from an absolute-form request target. */
function stripAbsoluteForm(target: string): string | null {
  const m = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/.exec(target);
  if (!m) return target;
  const rest = target.slice(m[0].length);
  return rest === '' ? '/' : rest;
}

/**
 * Returns the canonical path of a request target, or null when the target cannot be
 * normalised safely (the caller denies with `bad_path`).
 */
export function normalisePath(target: string): string | null {
  if (target.length === 0 || target.length > 8192) return null;
  let raw = target[0] === '/' ? target : stripAbsoluteForm(target);
  if (raw === null || raw[0] !== '/') return null;

  if (raw.includes('#')) return null;
  // The query does not take part in matching.
  const q = raw.indexOf('?');
  if (q >= 0) raw = raw.slice(0, q);

  // One pass: validate characters, decode unreserved escapes, keep the rest upper-cased,
  // and collect the fully decoded bytes to prove they are valid UTF-8.
  let out = '';
  let decodedBytes: number[] | null = null;
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f || c === 92 /* \ */) return null;
    if (c !== 37 /* % */) {
      out += raw[i];
      if (decodedBytes) decodedBytes.push(c);
      continue;
    }
    const hi = hexValue(raw.charCodeAt(i + 1));
    const lo = hexValue(raw.charCodeAt(i + 2));
    if (hi < 0 || lo < 0) return null;
    const b = hi * 16 + lo;
    i += 2;
    // Encoded separators and control bytes mean different paths to different parsers.
    if (b === 0x2f || b === 0x5c || b < 0x20 || b === 0x7f) return null;
    if (!decodedBytes) {
      decodedBytes = [];
      for (let j = 0; j < out.length; j++) decodedBytes.push(out.charCodeAt(j));
    }
    decodedBytes.push(b);
    if (isUnreserved(b)) out += String.fromCharCode(b);
    else out += '%' + HEX[hi] + HEX[lo];
  }
  // `%25` followed by two hex digits, once unreserved escapes are decoded (`%252e`, and
  // `%25%32%65` too): an escape encoded twice.
  if (decodedBytes && /%25[0-9A-Fa-f]{2}/.test(out)) return null;
  if (decodedBytes) {
    try {
      utf8.decode(Uint8Array.from(decodedBytes));
    } catch {
      return null; // invalid or overlong UTF-8
    }
  }

  const input = out.split('/');
  const segments: string[] = [];
  let trailing = false;
  for (let i = 1; i < input.length; i++) {
    let seg = input[i]!;
    const semi = seg.indexOf(';');
    if (semi >= 0) seg = seg.slice(0, semi);
    const last = i === input.length - 1;
    if (seg === '' || seg === '.') {
      trailing = last;
      continue;
    }
    // `..` is refused, not resolved: browsers resolve it before sending, so only a crafted
    // request carries one, and the two readings differ. Resolved, `/private/..` is `/`; an
    // application routing by prefix on the raw path (nginx forwards it raw) serves /private.
    if (seg === '..') return null;
    segments.push(seg);
    trailing = false;
  }
  if (segments.length === 0) return '/';
  return '/' + segments.join('/') + (trailing ? '/' : '');
}
