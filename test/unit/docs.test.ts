/**
 * The documentation holds together: README.md and docs/*.md say each topic once (no heading
 * twice), every relative link and #anchor resolves (GitHub's heading slugs), every key of the
 * configuration schema is in the configuration reference, and every SESSIONGATE_* variable the
 * code reads is documented.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import type { z } from 'zod';
// The one place the schema comes from: repoint here when it moves.
import { configSchema } from '../../src/config.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const REFERENCE = 'docs/configuration.md';

function markdownFiles(): string[] {
  if (!existsSync(join(ROOT, 'docs'))) return ['README.md'];
  const docs = readdirSync(join(ROOT, 'docs'), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.md'))
    .map((f) => join('docs', f))
    .sort();
  return ['README.md', ...docs];
}

const read = (file: string): string => readFileSync(join(ROOT, file), 'utf8');

/** Lines outside fenced code blocks (a `#` inside a YAML or shell block is no heading). */
function prose(text: string): string[] {
  const out: string[] = [];
  let fence: string | null = null;
  for (const line of text.split('\n')) {
    const m = /^\s*(`{3,}|~{3,})/.exec(line);
    if (m) {
      if (fence === null) fence = m[1]!;
      else if (m[1]!.startsWith(fence[0]!) && m[1]!.length >= fence.length) fence = null;
      out.push('');
    } else out.push(fence === null ? line : '');
  }
  return out;
}

/** Fenced blocks of one info string (```yaml ... ```). */
function fencedBlocks(text: string, lang: string): string[] {
  const blocks: string[] = [];
  const re = new RegExp(`^\`\`\`${lang}\\s*\\n([\\s\\S]*?)^\`\`\``, 'gm');
  for (const m of text.matchAll(re)) blocks.push(m[1]!);
  return blocks;
}

function headings(text: string): string[] {
  return prose(text).flatMap((l) => {
    const m = /^#{1,6}\s+(.+?)\s*#*\s*$/.exec(l);
    return m ? [m[1]!] : [];
  });
}

/** GitHub's anchor for a heading: link and emphasis syntax dropped, punctuation removed, lower case, spaces to -. */
function slug(heading: string): string {
  return heading
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
    .replace(/ /g, '-');
}

function anchors(text: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const h of headings(text)) {
    const base = slug(h);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

/** Targets of inline links and images, outside code blocks and code spans. */
function links(text: string): string[] {
  const out: string[] = [];
  for (const line of prose(text)) {
    const bare = line.replace(/`[^`]*`/g, '');
    for (const m of bare.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) out.push(m[1]!);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The configuration schema's leaf keys: `listen.host`, `rules[].path`, `policies.*.access`.

function leafKeys(schema: z.ZodType, path: string, out: Set<string>): Set<string> {
  const def = (schema as unknown as { _zod: { def: Record<string, unknown> & { type: string } } })._zod.def;
  switch (def.type) {
    case 'optional':
    case 'nullable':
    case 'default':
    case 'prefault':
    case 'readonly':
    case 'catch':
      return leafKeys(def.innerType as z.ZodType, path, out);
    case 'pipe':
      return leafKeys(def.in as z.ZodType, path, out);
    case 'object':
      for (const [k, v] of Object.entries(def.shape as Record<string, z.ZodType>)) leafKeys(v, path ? `${path}.${k}` : k, out);
      return out;
    case 'union':
      for (const o of def.options as z.ZodType[]) leafKeys(o, path, out);
      return out;
    case 'array':
      return isStructured(def.element as z.ZodType) ? leafKeys(def.element as z.ZodType, `${path}[]`, out) : out.add(path);
    case 'record':
      return isStructured(def.valueType as z.ZodType) ? leafKeys(def.valueType as z.ZodType, `${path}.*`, out) : out.add(path);
    default:
      return out.add(path);
  }
}

function isStructured(schema: z.ZodType): boolean {
  const def = (schema as unknown as { _zod: { def: Record<string, unknown> & { type: string } } })._zod.def;
  if (['optional', 'nullable', 'default', 'prefault', 'readonly', 'catch'].includes(def.type)) return isStructured(def.innerType as z.ZodType);
  if (def.type === 'pipe') return isStructured(def.in as z.ZodType);
  return def.type === 'object' || def.type === 'union';
}

/** Key paths written in the reference's YAML blocks: `rules: [{ path: … }]` gives `rules[].path`. */
function documentedKeys(value: unknown, path: string, out: Set<string>): Set<string> {
  if (Array.isArray(value) && value.length > 0) {
    for (const v of value) documentedKeys(v, `${path}[]`, out);
  } else if (value !== null && typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length > 0) {
    for (const [k, v] of Object.entries(value)) documentedKeys(v, path ? `${path}.${k}` : k, out);
  } else out.add(path);
  return out;
}

function isDocumented(key: string, documented: ReadonlySet<string>): boolean {
  // `*` stands for any one name (a policy's); a map of names (`headers`) may be shown with entries,
  // a list of scalars (`strip_headers`) with items.
  const re = new RegExp(
    '^' +
      key
        .split('.')
        .map((p) => (p === '*' ? '[^.]+' : p.replace(/[[\]]/g, '\\$&')))
        .join('\\.') +
      '(?:$|\\.|\\[\\])',
  );
  for (const d of documented) if (re.test(d)) return true;
  return false;
}

// ---------------------------------------------------------------------------------------------

describe('documentation', () => {
  const files = markdownFiles();

  it('says each topic once: no heading appears twice across README.md and docs/', () => {
    const where = new Map<string, string[]>();
    for (const f of files) {
      for (const h of headings(read(f))) {
        const key = slug(h);
        where.set(key, [...(where.get(key) ?? []), `${f}: ${h}`]);
      }
    }
    const twice = [...where.values()].filter((w) => w.length > 1);
    expect(twice, 'headings that appear more than once').toEqual([]);
  });

  it('resolves every relative link and #anchor', () => {
    const broken: string[] = [];
    for (const f of files) {
      for (const target of links(read(f))) {
        if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:
        const [pathPart, anchor] = target.split('#', 2) as [string, string | undefined];
        const file = pathPart === '' ? f : relative(ROOT, resolve(ROOT, dirname(f), decodeURIComponent(pathPart)));
        let exists = false;
        try {
          statSync(join(ROOT, file));
          exists = true;
        } catch {
          // reported below
        }
        if (!exists || file.startsWith('..')) {
          broken.push(`${f}: ${target} (no such file)`);
          continue;
        }
        if (anchor !== undefined && !(file.endsWith('.md') && anchors(read(file)).has(anchor))) broken.push(`${f}: ${target} (no such heading)`);
      }
    }
    expect(broken).toEqual([]);
  });

  it('links every docs/ page from README.md', () => {
    const linked = new Set(links(read('README.md')).map((t) => t.split('#')[0]));
    expect(files.filter((f) => f !== 'README.md' && !linked.has(f))).toEqual([]);
  });

  it('keeps README.md a front door (at most 200 lines)', () => {
    expect(read('README.md').trimEnd().split('\n').length).toBeLessThanOrEqual(200);
  });

  it('lists every key of the configuration schema in the configuration reference', () => {
    const keys = [...leafKeys(configSchema as z.ZodType, '', new Set())];
    // The walk itself works: it reaches keys of every shape.
    expect(keys).toEqual(
      expect.arrayContaining(['listen.host', 'redis.tls.ca_file', 'rules[].path', 'policies.*.access', 'external_sessions[].expires_at', 'headers']),
    );
    const documented = new Set<string>();
    for (const block of fencedBlocks(read(REFERENCE), 'yaml')) {
      for (const doc of parseAllDocuments(block)) documentedKeys(doc.toJS(), '', documented);
    }
    // Filled by the loader from the *_file keys beside them; a config file that sets them is refused.
    const internal = new Set(['redis.password', 'redis.sentinel.password', 'login.oidc.client_secret']);
    expect(keys.filter((k) => !internal.has(k) && !isDocumented(k, documented))).toEqual([]);
  });

  it('documents every SESSIONGATE_* variable the code reads', () => {
    const names = new Set<string>();
    const walk = (dir: string): void => {
      for (const e of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
        const p = join(dir, e.name);
        if (e.isDirectory()) walk(p);
        else if (/\.(ts|js)$/.test(e.name)) for (const m of read(p).matchAll(/\bSESSIONGATE_[A-Z0-9_]*[A-Z0-9]\b/g)) names.add(m[0]);
      }
    };
    walk('src');
    walk('bin');
    const all = files.map(read).join('\n');
    expect([...names].filter((n) => !all.includes(n)).sort()).toEqual([]);
  });
});
