/** Reading the proxy's headers on the HTTP transports (nginx /auth, Envoy HTTP ext_authz). */

/** The first value of a header Node may have gathered into a list. */
export function one(v: string | string[] | undefined): string | undefined {
  if (v === undefined) return undefined;
  return typeof v === 'string' ? v : v[0];
}

/** First element of a comma-separated forwarding header (the hop closest to the client). */
export function firstHop(v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  const comma = v.indexOf(',');
  return (comma < 0 ? v : v.slice(0, comma)).trim();
}
