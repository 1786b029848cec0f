/**
 * Dotted field paths, the one home for their grammar and their walk: the `headers` mapping
 * (`attributes.org.id`, core/headers.ts) and applications' session objects (`passport.user`,
 * external/). A walk reads own properties only, so `__proto__` or `constructor` never reach
 * Object.prototype.
 */

/** A dotted path: segments of letters, digits, `_` and `-`, joined by `.`. */
export const FIELD_PATH = /^[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*$/;

/** Own-property walk of `parts`; undefined when any step is missing or not a plain object. */
export function compileParts(parts: readonly string[]): (obj: unknown) => unknown {
  return (obj) => {
    let v = obj;
    for (const p of parts) {
      if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined;
      if (!Object.hasOwn(v, p)) return undefined;
      v = (v as Record<string, unknown>)[p];
    }
    return v;
  };
}

/** compileParts of a dotted path. */
export function compilePath(path: string): (obj: unknown) => unknown {
  return compileParts(path.split('.'));
}
