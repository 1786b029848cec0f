/**
 * A login in progress. Its state (PKCE verifier, state, nonce, where to go back to, the
 * redirect URL used) lives in the session store under a hash of a random flow ID, sealed with
 * a key derived from that ID, for FLOW_TTL_MS, and is taken once. The browser holds the flow ID
 * in a cookie named after the flow's `state`, so every tab has its own and several logins at
 * once all succeed (no shared CSRF cookie to overwrite). A store dump yields neither the flow ID
 * nor the verifier.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { stringifySetCookie } from 'cookie';
import { open, seal } from '../session/aead.js';
import { cookieValues } from '../session/cookie.js';
import { deriveKey } from '../session/token.js';
import type { OneTimeValues } from '../store/types.js';

export const FLOW_TTL_MS = 10 * 60_000;
/** The path the flow cookie is sent on: the callback only (and /~login, which sets it). */
export const FLOW_COOKIE_PATH = '/~login';
const TAG_LENGTH = 12;
const B64URL = /^[A-Za-z0-9_-]{16,128}$/;

export interface FlowState {
  /** The provider's name (`login.oidc.name`), so a list of providers can follow. */
  readonly provider: string;
  readonly state: string;
  readonly nonce: string;
  readonly verifier: string;
  /** Where the browser goes after the login (already checked by safeTarget). */
  readonly rd: string;
  /** The redirect_uri the authorization request named (the code exchange must name it again). */
  readonly redirectUri: string;
  readonly createdAt: number;
}

export interface FlowCookies {
  readonly baseName: string;
  readonly secure: boolean;
  /** The session cookie's Domain, when it has one: a callback on a sibling host then sees the flow cookie too. */
  readonly domain?: string | null | undefined;
}

/**
 * The flow cookie's name for a `state`: the session cookie's name, `_login_`, and the state's
 * first characters. A `__Host-` prefix is left off: it would demand Path=/, and the flow cookie
 * is for the callback only.
 */
export function flowCookieName(baseName: string, state: string): string {
  return `${baseName.replace(/^__Host-/, '')}_login_${state.slice(0, TAG_LENGTH)}`;
}

/** True when `s` looks like a value sessiongate made (state, flow ID). */
export function wellFormed(s: unknown): s is string {
  return typeof s === 'string' && B64URL.test(s);
}

const storeKey = (flowId: string) => `flow:${createHash('sha256').update(flowId).digest('base64url')}`;
const sealKey = (flowId: string) => deriveKey(Buffer.from(flowId), 'sessiongate/v1 login flow');

/** Stores a new flow; its ID (the cookie's value) and Set-Cookie. */
export async function startFlow(store: OneTimeValues, cookies: FlowCookies, flow: FlowState): Promise<{ setCookie: string }> {
  const flowId = randomBytes(32).toString('base64url');
  const key = storeKey(flowId);
  await store.oncePut(key, seal(sealKey(flowId), Buffer.from(JSON.stringify(flow)), key), FLOW_TTL_MS);
  const setCookie = stringifySetCookie(flowCookieName(cookies.baseName, flow.state), flowId, {
    path: FLOW_COOKIE_PATH,
    httpOnly: true,
    secure: cookies.secure,
    // Lax: the provider sends the browser back with a top-level GET from its own site.
    sameSite: 'lax',
    maxAge: FLOW_TTL_MS / 1000,
    ...(cookies.domain ? { domain: cookies.domain } : {}),
  });
  return { setCookie };
}

export type Taken =
  | { readonly ok: true; readonly flow: FlowState; readonly clearCookie: string }
  | { readonly ok: false; readonly reason: 'flow_not_found' | 'state_mismatch' };

/** Set-Cookie that drops a flow cookie. */
export function clearFlowCookie(cookies: FlowCookies, state: string): string {
  return stringifySetCookie(flowCookieName(cookies.baseName, state), '', {
    path: FLOW_COOKIE_PATH,
    httpOnly: true,
    secure: cookies.secure,
    sameSite: 'lax',
    maxAge: 0,
    expires: new Date(0),
    ...(cookies.domain ? { domain: cookies.domain } : {}),
  });
}

/** Names of flow cookies the request carries (any flow). */
function flowCookiesPresent(header: string | readonly string[] | undefined, baseName: string): boolean {
  const text = typeof header === 'string' ? header : (header ?? []).join(';');
  return text.includes(flowCookieName(baseName, ''));
}

/**
 * Takes the flow the callback's `state` names, once: the browser must hold that flow's cookie,
 * the stored flow must still be there (not used, not expired) and its state must equal the
 * callback's. `flow_not_found` covers no cookie, a used or expired flow and a value that does
 * not open; `state_mismatch` a state that matches no flow this browser started.
 */
export async function takeFlow(
  store: OneTimeValues,
  cookies: FlowCookies,
  cookieHeader: string | readonly string[] | undefined,
  state: string,
): Promise<Taken> {
  const ids = wellFormed(state) ? cookieValues(cookieHeader, flowCookieName(cookies.baseName, state)).filter(wellFormed) : [];
  if (ids.length === 0) return { ok: false, reason: flowCookiesPresent(cookieHeader, cookies.baseName) ? 'state_mismatch' : 'flow_not_found' };
  for (const flowId of ids) {
    const key = storeKey(flowId);
    const sealed = await store.onceTake(key);
    if (sealed === null) continue;
    const plain = open(sealKey(flowId), sealed, key);
    if (plain === null) continue;
    const flow = JSON.parse(plain.toString('utf8')) as FlowState;
    const a = Buffer.from(flow.state);
    const b = Buffer.from(state);
    if (a.length !== b.length || !timingSafeEqual(a, b)) return { ok: false, reason: 'state_mismatch' };
    return { ok: true, flow, clearCookie: clearFlowCookie(cookies, state) };
  }
  return { ok: false, reason: 'flow_not_found' };
}
