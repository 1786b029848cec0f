/**
 * Path rules, compiled once from configuration. First match wins on the normalised path.
 *
 * Matching is by whole segments: `/admin/` matches `/admin`, `/admin/` and `/admin/x`, never
 * `/administrator`. Methods restrict a rule rather than select it: a method a rule does not
 * list is refused (403), so forgetting a method fails closed instead of falling through to a
 * more permissive rule. Case: rules that grant access without a session (public, anonymous)
 * match case-sensitively, rules that demand one match case-insensitively by default, so an
 * application that folds case cannot be reached around a protective rule (`/ADMIN/`).
 */

export type Access = 'public' | 'anonymous' | 'authenticated' | 'roles';

export interface RuleSpec {
  readonly path: string;
  readonly access: Access;
  readonly roles?: readonly string[] | undefined;
  readonly methods?: readonly string[] | undefined;
  readonly case_sensitive?: boolean | undefined;
}

export interface Rule {
  /** Position in the configured list; -1 for the implicit default. */
  readonly index: number;
  readonly path: string;
  readonly access: Access;
  readonly roles: ReadonlySet<string> | null;
  readonly methods: ReadonlySet<string> | null;
  readonly caseSensitive: boolean;
  /** Path without trailing slash; '' for the root, which matches everything. */
  readonly prefix: string;
}

export const DEFAULT_RULE: Rule = Object.freeze({
  index: -1,
  path: '/',
  access: 'authenticated',
  roles: null,
  methods: null,
  caseSensitive: false,
  prefix: '',
});

export function compileRule(spec: RuleSpec, index: number): Rule {
  const caseSensitive = spec.case_sensitive ?? (spec.access === 'public' || spec.access === 'anonymous');
  let prefix = spec.path.endsWith('/') ? spec.path.slice(0, -1) : spec.path;
  if (!caseSensitive) prefix = prefix.toLowerCase();
  return Object.freeze({
    index,
    path: spec.path,
    access: spec.access,
    roles: spec.access === 'roles' ? new Set(spec.roles ?? []) : null,
    methods: spec.methods && spec.methods.length > 0 ? new Set(spec.methods.map((m) => m.toUpperCase())) : null,
    caseSensitive,
    prefix,
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
  match(normalisedPath: string): Rule;
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
  const anyInsensitive = rules.some((r) => !r.caseSensitive);
  const named = new Map(Object.entries(policies).map(([name, spec]) => [name, compileRule({ ...spec, path: '/' }, -1)]));
  return {
    rules,
    named: (name) => named.get(name),
    match(path: string): Rule {
      const lower = anyInsensitive ? path.toLowerCase() : path;
      for (const rule of rules) {
        if (matches(rule.prefix, rule.caseSensitive ? path : lower)) return rule;
      }
      return DEFAULT_RULE;
    },
  };
}
