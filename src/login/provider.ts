/**
 * One OpenID provider, as `login.oidc` names it: discovered with openid-client (its metadata,
 * endpoints and keys), kept fresh, and its failures put in words. Nothing of the protocol is
 * written here: authorization URLs, the code exchange and ID token validation are
 * openid-client's; the logout token is checked with jose against the provider's JWKS.
 *
 * Discovery runs at start-up (a provider that cannot be discovered stops it, naming the key)
 * and again before a login when the last successful look is older than FRESH_MS, so a provider
 * outage shows as a 503 on /~login instead of a browser sent to a dead page. Existing sessions
 * never depend on the provider.
 */
import * as jose from 'jose';
import * as client from 'openid-client';
import type { OidcConfig } from '../config/schema.js';

/** How long a successful discovery is trusted before a login looks again. */
export const FRESH_MS = 60_000;

export interface Discovered {
  readonly config: client.Configuration;
  /** The provider's keys, for logout tokens (jose's remote JWKS: cached, refetched on an unknown kid). */
  readonly jwks: ReturnType<typeof jose.createRemoteJWKSet>;
  readonly issuer: string;
  readonly endSessionEndpoint: string | undefined;
  readonly hasUserinfo: boolean;
}

export interface Provider {
  readonly name: string;
  readonly settings: OidcConfig;
  /** The discovered provider, looked at again when stale; throws ProviderUnavailable. */
  current(): Promise<Discovered>;
  /** The last discovery, however old (back-channel logout and logout redirects need no fresh look). */
  last(): Discovered;
}

export class ProviderUnavailable extends Error {
  override readonly name = 'ProviderUnavailable';
}

/** The discovery document's URL for an issuer (OpenID Connect Discovery 1.0, section 4). */
export function discoveryUrl(issuer: string): string {
  return `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
}

/** What went wrong talking to the provider, in words; never a token or secret. */
export function describeProviderError(err: unknown): string {
  const e = err as { name?: string; code?: string; message?: string; cause?: { code?: string; message?: string; status?: number } };
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') return 'timed out';
  if (err instanceof TypeError) {
    // fetch's own words are "fetch failed": the cause (or, for a name with several addresses,
    // each address's cause) says what happened.
    const c = e.cause as { code?: string; message?: string; errors?: Array<{ code?: string; message?: string }> } | undefined;
    const inner = c?.code ? c : (c?.errors?.find((x) => x.code) ?? c);
    if (inner?.code) return `${inner.code}${inner.message ? ` (${inner.message})` : ''}`;
    return inner?.message ? `${e.message} (${inner.message})` : (e.message ?? 'network error');
  }
  if (err instanceof client.ResponseBodyError) return `the provider answered ${err.status} ${err.error}`;
  if (e?.code === 'OAUTH_RESPONSE_IS_NOT_CONFORM' && e.cause && typeof (e.cause as { status?: number }).status === 'number')
    return `the provider answered HTTP ${(e.cause as { status: number }).status}`;
  return `${e?.code ? `${e.code}: ` : ''}${e?.message ?? String(err)}`;
}

/** True when the failure is the provider's network or server, not what it said. */
export function isOutage(err: unknown): boolean {
  const e = err as { name?: string; code?: string; cause?: unknown };
  if (err instanceof ProviderUnavailable) return true;
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError' || err instanceof TypeError) return true;
  if (err instanceof client.ResponseBodyError) return err.status >= 500;
  if (e?.code === 'OAUTH_RESPONSE_IS_NOT_CONFORM') {
    const status = (e.cause as { status?: number } | undefined)?.status;
    return status === undefined || status >= 500;
  }
  return false;
}

async function discover(s: OidcConfig): Promise<Discovered> {
  // enableNonRepudiationChecks: the ID token's signature is checked against the provider's
  // JWKS even though it came straight from the token endpoint (OpenID Connect Core 3.1.3.7
  // lets a client rely on TLS alone there; openid-client does by default). A token signed by
  // another key, or naming a kid the provider does not publish, is refused.
  const execute = [client.enableNonRepudiationChecks, ...(s.allowInsecureIssuer ? [client.allowInsecureRequests] : [])];
  const config = await client.discovery(
    new URL(s.issuer),
    s.clientId,
    {
      // An allow-list: openid-client refuses an ID token signed with anything else (never `none`).
      id_token_signed_response_alg: s.idTokenAlgorithms as unknown as string,
    },
    s.tokenEndpointAuthMethod === 'client_secret_post' ? client.ClientSecretPost(s.clientSecret) : client.ClientSecretBasic(s.clientSecret),
    { execute, timeout: Math.ceil(s.timeout / 1000) },
  );
  const meta = config.serverMetadata();
  if (!meta.jwks_uri) throw new Error('the discovery document has no jwks_uri');
  if (!meta.authorization_endpoint || !meta.token_endpoint) throw new Error('the discovery document lacks authorization_endpoint or token_endpoint');
  const methods = meta.code_challenge_methods_supported;
  if (Array.isArray(methods) && !methods.includes('S256')) throw new Error('the provider does not support PKCE with S256');
  return {
    config,
    jwks: jose.createRemoteJWKSet(new URL(meta.jwks_uri), { timeoutDuration: s.timeout }),
    issuer: meta.issuer,
    endSessionEndpoint: meta.end_session_endpoint,
    hasUserinfo: typeof meta.userinfo_endpoint === 'string',
  };
}

/** Discovers the provider now; throws an Error naming the key, the URL and what failed. */
export async function createProvider(s: OidcConfig, clock: () => number = Date.now): Promise<Provider> {
  let found: Discovered;
  try {
    found = await discover(s);
  } catch (err) {
    throw new Error(`login.oidc.issuer: cannot discover the OpenID provider at ${discoveryUrl(s.issuer)}: ${describeProviderError(err)}`);
  }
  let checkedAt = clock();
  let pending: Promise<Discovered> | undefined;
  return {
    name: s.name,
    settings: s,
    last: () => found,
    current() {
      if (clock() - checkedAt < FRESH_MS) return Promise.resolve(found);
      // One look at a time, shared by every login that waits for it.
      pending ??= discover(s)
        .then((d) => {
          found = d;
          checkedAt = clock();
          return d;
        })
        .catch((err) => {
          throw new ProviderUnavailable(`${discoveryUrl(s.issuer)}: ${describeProviderError(err)}`);
        })
        .finally(() => {
          pending = undefined;
        });
      return pending;
    },
  };
}
