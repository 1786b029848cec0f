/**
 * Rule matching under more than one reading of a path, and the methods a request may be read as.
 * Tables over compileRules and over evaluate/decide with the fixtures' policy (`/admin/` is
 * roles [admin], GET and POST only).
 */
import { describe, expect, it } from 'vitest';
import { decide, evaluate, type Lookup, needsLookup } from '../../src/core/decide.js';
import { readPath } from '../../src/core/path.js';
import { atLeastAsStrict, compileRules, type RuleSpec } from '../../src/core/rules.js';
import { record, request, S, T0, testPolicy } from '../support/fixtures.js';

/** The configured path of the rule a target gets, `default`, or null for bad_path. */
function ruleFor(specs: RuleSpec[], target: string): string | null {
  const set = compileRules(specs);
  const r = readPath(target);
  if (r === null) return null;
  const rule = set.match(r.path, r.readings);
  return rule === null ? null : rule.index === -1 ? 'default' : rule.path;
}

describe('rule matching: a permissive rule gets only the strictest reading', () => {
  const api: RuleSpec[] = [
    { path: '/api/public/', access: 'public' },
    { path: '/api/', access: 'roles', roles: ['admin'] },
  ];
  it.each([
    ['/api/public/x', '/api/public/'],
    ['/api/public//x', '/api/public/'], // both readings stay under /api/public/
    ['/api//public/x', '/api/'], // kept literally (express), this is /api/ with an empty segment
    ['/api/./public/x', '/api/'],
    ['/api/%2e/public/x', '/api/'],
    ['/api/x//y', '/api/'],
  ])('repeated slashes and dot segments: %s -> %s', (target, rule) => {
    expect(ruleFor(api, target)).toBe(rule);
  });

  it('every reading counts, the intermediate ones too (WHATWG URL resolves dots, keeps empty segments)', () => {
    const specs: RuleSpec[] = [
      { path: '/a/b/c/', access: 'public' },
      { path: '/a/b/', access: 'roles', roles: ['admin'] },
      { path: '/a/', access: 'authenticated' },
    ];
    expect(ruleFor(specs, '/a/b/c/x')).toBe('/a/b/c/');
    // Merged: /a/b/c/x (public); express: /a/./b//c/x (under /a/); WHATWG: /a/b//c/x (under /a/b/).
    expect(ruleFor(specs, '/a/./b//c/x')).toBe('/a/b/');
  });

  it('unreserved escapes: a permissive rule only for the path as sent, a protective one for the decoded path too', () => {
    const specs: RuleSpec[] = [
      { path: '/~assets/', access: 'public' },
      { path: '/admin/', access: 'roles', roles: ['admin'] },
      { path: '/', access: 'authenticated' },
    ];
    expect(ruleFor(specs, '/~assets/app.css')).toBe('/~assets/');
    expect(ruleFor(specs, '/%7Eassets/app.css')).toBe('/'); // `%7Eassets` to an application routing on the raw path
    expect(ruleFor(specs, '/~assets/%61pp.css')).toBe('/~assets/');
    expect(ruleFor(specs, '/%61dmin/x')).toBe('/admin/');
  });

  it('a weaker rule reached only with the case folded yields to the rule the case-preserving reading reaches', () => {
    const specs: RuleSpec[] = [
      { path: '/reports/', access: 'authenticated' },
      { path: '/', access: 'roles', roles: ['admin'] },
    ];
    expect(ruleFor(specs, '/reports/x')).toBe('/reports/');
    // A case-sensitive application serves /REPORTS/x as its own resource, under `/`.
    expect(ruleFor(specs, '/REPORTS/x')).toBe('/');
    expect(ruleFor(specs, '/Reports')).toBe('/');
  });

  it('a protective rule keeps every case reading', () => {
    const specs: RuleSpec[] = [
      { path: '/~assets/', access: 'public' },
      { path: '/admin/', access: 'roles', roles: ['admin'], methods: ['GET', 'POST'] },
      { path: '/', access: 'authenticated' },
    ];
    expect(ruleFor(specs, '/ADMIN/x')).toBe('/admin/');
    expect(ruleFor(specs, '/aDmIn')).toBe('/admin/');
    expect(ruleFor(specs, '/~ASSETS/x.css')).toBe('/'); // public only as written
  });

  it('a method-less rule reached by folding yields to a later method-restricted one', () => {
    const specs: RuleSpec[] = [
      { path: '/files/', access: 'authenticated' },
      { path: '/', access: 'authenticated', methods: ['GET'] },
    ];
    expect(ruleFor(specs, '/FILES/x')).toBe('/');
  });

  it('refuses a path whose readings reach rules neither of which is as strict as the other', () => {
    const specs: RuleSpec[] = [
      { path: '/ops/', access: 'roles', roles: ['ops'] },
      { path: '/', access: 'roles', roles: ['admin'] },
    ];
    expect(ruleFor(specs, '/ops/x')).toBe('/ops/');
    expect(ruleFor(specs, '/OPS/x')).toBeNull();
    const split: RuleSpec[] = [
      { path: '/a/b/', access: 'roles', roles: ['b'] },
      { path: '/a/', access: 'roles', roles: ['a'] },
    ];
    expect(ruleFor(split, '/a//b/x')).toBeNull();
  });

  it('refuses them as bad_path in decide', () => {
    const p = testPolicy({
      rules: [
        { path: '/ops/', access: 'roles', roles: ['ops'] },
        { path: '/', access: 'roles', roles: ['admin'] },
      ],
    });
    const { decision } = decide(evaluate(request({ uri: '/OPS/x' }), p), { kind: 'skipped' }, p, T0 + S);
    expect(decision).toMatchObject({ result: 'deny', reason: 'bad_path', status: 403 });
  });
});

// ---------------------------------------------------------------------------------------------

const policy = testPolicy();
const admin: Lookup = { kind: 'found', record: record({ roles: ['admin'] }) };
const codec = policy.tokens;
const token = codec.issue().token;

function decideFor(method: string, uri: string, headers: Readonly<Record<string, string | readonly string[]>>) {
  const req = { ...request({ method, uri }), headers: { cookie: `sessiongate=${token}`, ...(headers as Record<string, string | string[]>) } };
  const e = evaluate(req, policy);
  return decide(e, needsLookup(e, policy) ? admin : { kind: 'skipped' }, policy, T0 + S).decision;
}

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
const TEXT = { 'content-type': 'text/plain' };

describe('methods: every method the application may read the request as', () => {
  it.each([
    ['GET', '/admin/x', {}],
    ['POST', '/admin/x', TEXT],
    ['POST', '/admin/x', { 'content-type': 'application/octet-stream' }],
    ['POST', '/admin/x', { ...TEXT, 'x-http-method-override': 'GET' }],
    ['POST', '/admin/x', { ...TEXT, 'x-http-method-override': ' post ' }],
    ['POST', '/admin/x', { ...TEXT, 'x-http-method-override': '' }],
    ['GET', '/admin/x?_method=GET', {}],
    ['GET', '/admin/x?payment_method=card&method=x', {}],
    ['GET', '/admin/x?q=%41', {}],
    ['GET', '/admin/x', FORM], // only a POST's body is read for an override
  ] as const)('admits %s %s %j', (method, uri, headers) => {
    expect(decideFor(method, uri, headers)).toMatchObject({ result: 'allow', reason: 'authenticated' });
  });

  it.each([
    ['DELETE', '/admin/x', {}],
    // Override headers, any alias spelling, any case of value, every comma-separated part.
    ['POST', '/admin/x', { ...TEXT, 'x-http-method-override': 'DELETE' }],
    ['POST', '/admin/x', { ...TEXT, 'x-http-method-override': 'delete' }],
    ['POST', '/admin/x', { ...TEXT, 'x-http-method-override': ' Delete ' }],
    ['POST', '/admin/x', { ...TEXT, 'x-http-method-override': 'DELETE, GET' }],
    ['POST', '/admin/x', { ...TEXT, 'x-http-method-override': 'GET,DELETE' }],
    ['POST', '/admin/x', { ...TEXT, 'x-http-method-override': ['GET', 'PUT'] }],
    ['POST', '/admin/x', { ...TEXT, 'x-http-method': 'PUT' }],
    ['POST', '/admin/x', { ...TEXT, 'x-method-override': 'PATCH' }],
    ['POST', '/admin/x', { ...TEXT, x_http_method_override: 'DELETE' }],
    ['POST', '/admin/x', { ...TEXT, 'x.http.method.override': 'DELETE' }],
    ['POST', '/admin/x', { ...TEXT, 'X-HTTP-Method': 'DELETE' }],
    ['GET', '/admin/x', { 'x-http-method-override': 'DELETE' }],
    ['POST', '/admin/x', { ...TEXT, 'x-http-method-override': 'NOT A METHOD' }],
    ['POST', '/admin/x', { ...TEXT, 'x-http-method-override': 'DEL\u0130TE' }],
    // `_method` in the query, as every parser may read it.
    ['GET', '/admin/x?_method=DELETE', {}],
    ['POST', '/admin/x?_method=delete', TEXT],
    ['GET', '/admin/x?%5Fmethod=DELETE', {}],
    ['GET', '/admin/x?%5fmethod=DELETE', {}],
    ['GET', '/admin/x?%255Fmethod=DELETE', {}],
    ['GET', '/admin/x?_METHOD=PUT', {}],
    ['GET', '/admin/x?.method=PUT', {}],
    ['GET', '/admin/x?+_method=PUT', {}],
    ['GET', '/admin/x?_method[]=PUT', {}],
    ['GET', '/admin/x?_method%5B0%5D=PUT', {}],
    ['GET', '/admin/x?a=1;_method=DELETE', {}],
    ['GET', '/admin/x?_method=GET&_method=DELETE', {}],
    ['GET', '/admin/x?_method=%44ELETE', {}],
    ['GET', '/admin/x?_method=+DELETE+', {}],
    // A POST body may name any method, and sessiongate cannot see it.
    ['POST', '/admin/x', FORM],
    ['POST', '/admin/x', { 'content-type': 'Application/X-WWW-Form-Urlencoded; charset=utf-8' }],
    ['POST', '/admin/x', { 'content-type': 'multipart/form-data; boundary=x' }],
    ['POST', '/admin/x', { 'content-type': 'application/json' }],
    ['POST', '/admin/x', { 'content-type': 'application/vnd.api+json' }],
    ['POST', '/admin/x', { 'content-type': ['text/plain', 'application/x-www-form-urlencoded'] }],
    ['POST', '/admin/x', { 'content-type': '' }],
    ['POST', '/admin/x', {}], // Rack parses a POST body without a Content-Type as a form
  ] as const)('refuses %s %s %j', (method, uri, headers) => {
    expect(decideFor(method, uri, headers)).toMatchObject({ result: 'deny', reason: 'method_not_allowed', status: 403 });
  });

  it('admits a POST body when the rule says the application takes no method from one', () => {
    const p = testPolicy({ rules: [{ path: '/admin/', access: 'roles', roles: ['admin'], methods: ['GET', 'POST'], body_method_override: false }] });
    const run = (uri: string, headers: Record<string, string>) => {
      const req = { ...request({ method: 'POST', uri }), headers: { cookie: `sessiongate=${p.tokens.issue().token}`, ...headers } };
      const e = evaluate(req, p);
      return decide(e, needsLookup(e, p) ? admin : { kind: 'skipped' }, p, T0 + S).decision;
    };
    expect(run('/admin/x', FORM)).toMatchObject({ result: 'allow' });
    expect(run('/admin/x', { 'content-type': 'application/json' })).toMatchObject({ result: 'allow' });
    // Headers and the query are still read: the opt-out covers the body only.
    expect(run('/admin/x', { ...FORM, 'x-http-method-override': 'DELETE' })).toMatchObject({ result: 'deny', reason: 'method_not_allowed' });
    expect(run('/admin/x?_method=DELETE', FORM)).toMatchObject({ result: 'deny', reason: 'method_not_allowed' });
  });

  it('a rule that refuses body overrides is stricter than one that admits them', () => {
    const rules = compileRules([
      { path: '/a/', access: 'authenticated', methods: ['GET', 'POST'], body_method_override: false },
      { path: '/b/', access: 'authenticated', methods: ['GET', 'POST'] },
    ]);
    const [a, b] = [rules.match('/a/x')!, rules.match('/b/x')!];
    expect(atLeastAsStrict(b, a)).toBe(true);
    expect(atLeastAsStrict(a, b)).toBe(false);
  });

  it('leaves rules without methods alone', () => {
    expect(decideFor('POST', '/app/x?_method=DELETE', { ...FORM, 'x-http-method-override': 'DELETE' })).toMatchObject({ result: 'allow' });
  });
});
