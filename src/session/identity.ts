/**
 * Who a session is for, checked the same way wherever one comes in: the session API, the
 * token API, the development login (zod fields) and applications' own sessions (external/,
 * predicates). A user ID is 1 to 256 characters that a header can carry; roles are role names,
 * at most 64.
 */
import { z } from 'zod';
import { ROLE_NAME, ROLE_NAME_HINT, textProblem } from './record.js';

export const MAX_USER_ID = 256;
export const MAX_ROLES = 64;

/** zod refinement: a text that cannot be session data (record.ts textProblem). */
export function refuseBadText(s: string, ctx: z.RefinementCtx): void {
  const p = textProblem(s);
  if (p !== undefined) ctx.addIssue({ code: 'custom', message: p });
}

/** `user_id` of a request body. */
export const userIdField = z
  .string({ error: 'is required and must be a string' })
  .min(1, { error: 'must not be empty' })
  .max(MAX_USER_ID, { error: `must be at most ${MAX_USER_ID} characters` })
  .superRefine(refuseBadText);

/** `roles` of a request body; none when absent. */
export const rolesField = z
  .array(z.string().regex(ROLE_NAME, { error: ROLE_NAME_HINT }))
  .max(MAX_ROLES)
  .default([]);

/** The same rules as userIdField, for a value read from elsewhere. */
export function isUserId(s: string): boolean {
  return s !== '' && s.length <= MAX_USER_ID && textProblem(s) === undefined;
}
