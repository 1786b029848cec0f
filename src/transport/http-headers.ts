/** Reading the proxy's forwarding headers on the HTTP transports (nginx /auth, Envoy HTTP ext_authz). */

/** First element of a comma-separated forwarding header (the hop closest to the client). */
export function firstHop(v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  const comma = v.indexOf(',');
  return (comma < 0 ? v : v.slice(0, comma)).trim();
}
