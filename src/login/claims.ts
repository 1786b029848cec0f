/**
 * From an OpenID provider's claims to a session: the user ID, roles and attributes named by
 * `login.oidc.claims`, checked as POST /~session checks a login service's body. Pure.
 */
import { attributeProblems } from '../api/session-api.js';
import { isUserId, MAX_ROLES } from '../session/identity.js';
import { ROLE_NAME } from '../session/record.js';

export interface ClaimMapping {
  readonly userId: string;
  readonly roles: string | null;
  readonly attributes: Readonly<Record<string, string>>;
}

/** A claim by name, else by dotted path into nested claims (`realm_access.roles`). */
export function claimAt(claims: Readonly<Record<string, unknown>>, path: string): unknown {
  if (Object.hasOwn(claims, path)) return claims[path];
  let o: unknown = claims;
  for (const part of path.split('.')) {
    if (o === null || typeof o !== 'object' || Array.isArray(o) || !Object.hasOwn(o, part)) return undefined;
    o = (o as Record<string, unknown>)[part];
  }
  return o;
}

/** Roles from a claim: a list of strings, or one string of space- or comma-separated names. */
export function rolesFrom(value: unknown): { roles: string[]; dropped: number } {
  const raw = Array.isArray(value) ? value : typeof value === 'string' ? value.split(/[\s,]+/) : [];
  const roles: string[] = [];
  let dropped = 0;
  for (const r of raw) {
    if (typeof r === 'string' && ROLE_NAME.test(r)) {
      if (!roles.includes(r) && roles.length < MAX_ROLES) roles.push(r);
    } else if (r !== '') dropped++;
  }
  return { roles, dropped };
}

export type Mapped =
  | { readonly ok: true; readonly userId: string; readonly roles: string[]; readonly attributes: Record<string, unknown>; readonly droppedRoles: number }
  | { readonly ok: false; readonly problem: string };

export function mapClaims(claims: Readonly<Record<string, unknown>>, m: ClaimMapping): Mapped {
  const rawId = claimAt(claims, m.userId);
  const userId = typeof rawId === 'number' && Number.isSafeInteger(rawId) ? String(rawId) : rawId;
  if (typeof userId !== 'string' || userId === '') return { ok: false, problem: `claim ${m.userId} (user_id) is missing or not text` };
  if (!isUserId(userId)) return { ok: false, problem: `claim ${m.userId} (user_id) is too long or holds control characters` };
  // An address the provider says it has not verified is nobody's identity (anyone could have
  // typed it at sign-up): refused as the user ID. Providers that never send email_verified
  // (Entra ID) are not affected.
  if (m.userId === 'email' && (claims['email_verified'] === false || claims['email_verified'] === 'false'))
    return { ok: false, problem: 'email is the user ID and email_verified is false' };
  const { roles, dropped } = m.roles === null ? { roles: [], dropped: 0 } : rolesFrom(claimAt(claims, m.roles));
  const attributes: Record<string, unknown> = {};
  for (const [name, path] of Object.entries(m.attributes)) {
    const v = claimAt(claims, path);
    if (v !== undefined) attributes[name] = v;
  }
  const problems = attributeProblems(attributes);
  if (problems.length > 0) return { ok: false, problem: problems[0]! };
  return { ok: true, userId, roles, attributes, droppedRoles: dropped };
}
