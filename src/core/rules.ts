/**
 * Path rules, compiled once from configuration, and the methods a request may be read as.
 *
 * Matching is by whole segments: `/admin/` matches `/admin`, `/admin/` and `/admin/x`, never
 * `/administrator`. First match wins. One principle decides what "match" means when backends
 * read a path differently: a rule that grants more (public, anonymous, or any rule weaker than
 * one it could shadow) matches only the strictest reading; a rule that protects matches every
 * reading; when the readings land on rules neither of which is as strict as the other, the
 * request is refused (`bad_path`). The readings are the path's case as sent and folded (an
 * application that ignores case), and repeated slashes, `.` segments and unreserved escapes
 * resolved or kept (path.ts). Each reading gets the first rule it matches; the request gets the
 * one at least as strict as all of them. `case_sensitive` on a rule says how the application
 * reads that path: `true`, as written only (the rule matches only as written, folded or not);
 * `false`, in any case (the rule matches in any case, as sent too).
 *
 * Methods restrict a rule rather than select it: a method a rule does not list is refused
 * (403), so forgetting a method fails closed instead of falling through to a more permissive
 * rule. The methods are every method the application may read the request as: the request's
 * own, method override headers, `_method` in the query and, for a POST, its body (admitsMethods).
 */
import { canonicalHeaderName } from './headers.js';
import type { HeaderMap } from './types.js';

export type Access = 'public' | 'anonymous' | 'authenticated' | 'roles';

export interface RuleSpec {
  readonly path: string;
  readonly access: Access;
  readonly roles?: readonly string[] | undefined;
  readonly methods?: readonly string[] | undefined;
  readonly case_sensitive?: boolean | undefined;
  /** The application may take the method from a POST body (`_method`); default true. */
  readonly body_method_override?: boolean | undefined;
}

export interface Rule {
  /** Position in the configured list; -1 for the implicit default. */
  readonly index: number;
  readonly path: string;
  readonly access: Access;
  readonly roles: ReadonlySet<string> | null;
  readonly methods: ReadonlySet<string> | null;
  /** A POST whose body may name another method is held to `methods` by refusing it (see admitsMethods). */
  readonly bodyOverride: boolean;
  /** `case_sensitive` as configured: undefined for "as written when sent, folded when folded". */
  readonly caseSensitive: boolean | undefined;
  /** The path without trailing slash ('' for the root, which matches everything), as written. */
  readonly exact: string;
  /** The same, lower-cased. */
  readonly lower: string;
}

export const DEFAULT_RULE: Rule = Object.freeze({
  index: -1,
  path: '/',
  access: 'authenticated',
  roles: null,
  methods: null,
  bodyOverride: true,
  caseSensitive: undefined,
  exact: '',
  lower: '',
});

export function compileRule(spec: RuleSpec, index: number): Rule {
  const caseSensitive = spec.case_sensitive;
  const exact = spec.path.endsWith('/') ? spec.path.slice(0, -1) : spec.path;
  const lower = exact.toLowerCase();
  return Object.freeze({
    index,
    path: spec.path,
    access: spec.access,
    roles: spec.access === 'roles' ? new Set(spec.roles ?? []) : null,
    methods: spec.methods && spec.methods.length > 0 ? new Set(spec.methods.map((m) => m.toUpperCase())) : null,
    bodyOverride: spec.body_method_override ?? true,
    caseSensitive,
    exact,
    lower,
  });
}

function matches(prefix: string, path: string): boolean {
  if (prefix === '') return true;
  if (!path.startsWith(prefix)) return false;
  return path.length === prefix.length || path.charCodeAt(prefix.length) === 47; /* / */
}

/** A named policy: a rule without a path, chosen by the proxy per route. */
export type PolicyRuleSpec = Omit<RuleSpec, 'path' | 'case_sensitive'>;

export interface RuleSet {
  readonly rules: readonly Rule[];
  /**
   * The rule for a path (readPath's `path` and `readings`): one at least as strict as the rule
   * of every reading, or null when no rule is (`bad_path`).
   */
  match(path: string, readings?: readonly string[]): Rule | null;
  /** The named policy, or undefined when there is none by that name. */
  named(name: string): Rule | undefined;
}

/**
 * sessiongate's own paths, ahead of every configured rule: the probe `sessiongate doctor`
 * sends requests to through the proxy. `/~sessiongate/probe/public` needs no session (the
 * spoofing checks), everything else under `/~sessiongate/probe/` needs one (the forged-cookie,
 * traversal and forwarded-header checks). GET only.
 */
export const PROBE_PREFIX = '/~sessiongate/probe';
export const BUILT_IN_RULES: readonly Rule[] = [
  compileRule({ path: `${PROBE_PREFIX}/public`, access: 'public', methods: ['GET'] }, -2),
  compileRule({ path: `${PROBE_PREFIX}/`, access: 'authenticated', methods: ['GET'] }, -3),
];

export function compileRules(specs: readonly RuleSpec[], policies: Readonly<Record<string, PolicyRuleSpec>> = {}): RuleSet {
  const rules = [...BUILT_IN_RULES, ...specs.map(compileRule)];
  const named = new Map(Object.entries(policies).map(([name, spec]) => [name, compileRule({ ...spec, path: '/' }, -1)]));
  // A lower-case path reads the same folded, unless some rule is written with upper case.
  const upperRules = rules.some((r) => r.exact !== r.lower);

  /** The first rule a reading reaches: as sent (`folded` false) or with the case folded. */
  function first(path: string, lower: string, folded: boolean): Rule {
    for (const rule of rules) {
      const insensitive = folded ? rule.caseSensitive !== true : rule.caseSensitive === false;
      if (insensitive ? matches(rule.lower, lower) : matches(rule.exact, path)) return rule;
    }
    return DEFAULT_RULE;
  }

  /** The rule for one path as sent and folded, or null when they reach rules neither of which is as strict as the other. */
  function pick(path: string): Rule | null {
    const lower = path.toLowerCase();
    const sent = first(path, lower, false);
    if (lower === path && !upperRules) return sent; // folding changes nothing
    return stricterOf(sent, first(path, lower, true));
  }

  return {
    rules,
    named: (name) => named.get(name),
    match(path: string, readings: readonly string[] = []): Rule | null {
      const rule = pick(path);
      if (readings.length === 0 || rule === null) return rule;
      const reached = [rule];
      for (const r of readings) {
        const other = pick(r);
        if (other === null) return null;
        if (!reached.includes(other)) reached.push(other);
      }
      return strictest(reached);
    },
  };
}

const RANK: Record<Access, number> = { public: 0, anonymous: 1, authenticated: 2, roles: 3 };

/** Does `a` admit only requests `b` admits too (access, roles and methods)? */
export function atLeastAsStrict(a: Rule, b: Rule): boolean {
  if (b.access === 'roles') {
    if (a.access !== 'roles') return false;
    for (const r of a.roles!) if (!b.roles!.has(r)) return false;
  } else if (RANK[a.access] < RANK[b.access]) return false;
  if (b.methods === null) return true;
  if (a.methods === null) return false;
  for (const m of a.methods) if (!b.methods.has(m)) return false;
  return a.bodyOverride || !b.bodyOverride;
}

/** The stricter of two rules, or null when neither is as strict as the other. */
function stricterOf(a: Rule, b: Rule): Rule | null {
  if (a === b || atLeastAsStrict(a, b)) return a;
  if (atLeastAsStrict(b, a)) return b;
  return null;
}

/** The rule at least as strict as every other one, or null when there is none. */
function strictest(rules: readonly Rule[]): Rule | null {
  return rules.find((a) => rules.every((b) => atLeastAsStrict(a, b))) ?? null;
}

// ---------------------------------------------------------------------------------------------
// Methods
// ---------------------------------------------------------------------------------------------

/** Method override headers, in the one spelling their aliases fold to (headers.ts). */
const OVERRIDE_HEADERS = new Set(['x-http-method-override', 'x-http-method', 'x-method-override']);
const METHOD_NAME = /^[A-Za-z]{1,20}$/;
const BODY_PARAMETERS = /form|multipart|json/i;

export interface MethodView {
  readonly method: string;
  readonly headers: HeaderMap;
  readonly uri: string | undefined;
}

/**
 * Does a rule's method list admit every method the application may read this request as?
 * - the request's own method;
 * - each value of `X-HTTP-Method-Override`, `X-HTTP-Method`, `X-Method-Override` (any case,
 *   `_` or `.` for `-`; each comma-separated part);
 * - each `_method` in the query (`&` or `;` separated, names and values percent- and
 *   `+`-decoded, any case, `.`, space or `[` for `_` and `[...]` suffixes as PHP and qs read them);
 * - for a POST, whatever its body names (Rails, Laravel and express's method-override read
 *   `_method` there), which sessiongate cannot see: a POST whose body an application parses
 *   for parameters (a form, multipart or JSON Content-Type, or none: Rack parses that as a
 *   form) is refused on a rule with `methods`, unless the rule says the application takes no
 *   method from a body (`body_method_override: false`: `bodyOverride` false).
 * An override value that is not a listed method (garbage included) refuses the request.
 */
export function admitsMethods(methods: ReadonlySet<string>, req: MethodView, bodyOverride = true): boolean {
  if (!methods.has(req.method)) return false;
  const headers = req.headers;
  for (const name in headers) {
    if (name.length < 13 || !/method/i.test(name) || !OVERRIDE_HEADERS.has(canonicalHeaderName(name))) continue;
    const v = headers[name];
    for (const value of typeof v === 'string' ? [v] : (v ?? [])) {
      for (const part of value.split(',')) if (!admitsOverride(methods, part)) return false;
    }
  }
  if (req.uri !== undefined && !queryAdmits(methods, req.uri)) return false;
  if (bodyOverride && req.method === 'POST' && mayCarryParameters(headers['content-type'])) return false;
  return true;
}

/** An override value: empty is no override; anything else must be a listed method. */
function admitsOverride(methods: ReadonlySet<string>, value: string): boolean {
  const v = value.trim();
  return v === '' || (METHOD_NAME.test(v) && methods.has(v.toUpperCase()));
}

/** Form decoding: `+` is a space, every valid `%XX` one byte (Latin-1: anything non-ASCII is no method anyway). */
function formDecode(s: string): string {
  return s.replace(/\+/g, ' ').replace(/%([0-9A-Fa-f]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16)));
}

/** Is a query parameter name `_method` to some parser (decoded up to twice, PHP's name mangling, qs brackets)? */
function isMethodParameter(name: string): boolean {
  let n = name;
  for (let pass = 0; pass < 3; pass++) {
    const folded = n
      .trim()
      .toLowerCase()
      .replace(/(\[[^\]]*\])+$/, '')
      .replace(/[.\s[]/g, '_');
    if (folded === '_method') return true;
    const next = formDecode(n);
    if (next === n) return false;
    n = next;
  }
  return false;
}

function queryAdmits(methods: ReadonlySet<string>, uri: string): boolean {
  const q = uri.indexOf('?');
  if (q < 0) return true;
  const query = uri.slice(q + 1);
  if (!/method|%/i.test(query)) return true;
  for (const pair of query.split(/[&;]/)) {
    const eq = pair.indexOf('=');
    if (!isMethodParameter(eq < 0 ? pair : pair.slice(0, eq))) continue;
    if (!admitsOverride(methods, eq < 0 ? '' : formDecode(pair.slice(eq + 1)))) return false;
  }
  return true;
}

/** A Content-Type (or its absence) an application may parse body parameters from. */
function mayCarryParameters(contentType: string | string[] | undefined): boolean {
  if (contentType === undefined) return true;
  const values = typeof contentType === 'string' ? [contentType] : contentType;
  return values.length === 0 || values.some((v) => v.trim() === '' || BODY_PARAMETERS.test(v));
}
