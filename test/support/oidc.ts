/**
 * The whole login stack as a user runs it: a real OpenID Provider (oidc-provider behind its
 * tampering relay, harness/oidc-provider.ts), sessiongate with `login.oidc` (in-process, one or
 * more replicas), each behind the shipped nginx config, and an application that echoes what it
 * received. The provider's client registration names each nginx's callback, post-logout and
 * back-channel URLs, so nginx starts first.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type OidcAccountClaims, type OidcProviderHarness, startOidcProvider } from '../../harness/oidc-provider.js';
import { type EchoUpstream, freePort, type RunningNginx, startEchoUpstream, startNginx, tempDir } from '../../harness/processes.js';
import { type Config, loadConfig } from '../../src/config.js';
import { type Service, startService } from '../../src/main.js';
import type { Logger } from '../../src/ops/logger.js';
import { quietLogger } from './service.js';

export const CLIENT_ID = 'sessiongate-test';
export const CLIENT_SECRET = 'client-secret-for-the-test-provider-0123456789';
export const SECRET = 'oidc-tests-server-secret-0123456789abcdef0123';

export const ACCOUNTS: Record<string, OidcAccountClaims> = {
  alice: { sub: 'alice-sub-0001', email: 'alice@example.com', name: 'Alice Example', groups: ['staff', 'admin'] },
  bob: { sub: 'bob-sub-0002', email: 'bob@example.com', name: 'Bob Example', groups: ['staff'] },
  mallory: { sub: 'mallory-sub-0003', email: 'mallory@example.com', name: 'Mallory', groups: ['contractors'] },
};

export interface Replica {
  readonly svc: Service;
  readonly nginx: RunningNginx;
  /** The application's address as the browser uses it (through nginx). */
  readonly url: string;
}

export interface OidcStack {
  readonly op: OidcProviderHarness;
  readonly app: EchoUpstream;
  readonly replicas: readonly Replica[];
  /** Replica 0's address. */
  readonly url: string;
  readonly config: Config;
  close(): Promise<void>;
}

export interface StackOptions {
  readonly replicas?: number;
  /** A store URL (redis://…); memory by default (one replica). */
  readonly store?: string;
  /** More YAML under `login.oidc` (indented by four spaces). */
  readonly oidcYaml?: string;
  /** More top-level YAML. */
  readonly yaml?: string;
  readonly clock?: () => number;
  readonly log?: Logger;
  /** How the provider expects the client secret (sessiongate's login.oidc.token_endpoint_auth_method follows). */
  readonly clientAuth?: 'client_secret_basic' | 'client_secret_post';
}

/** The config file a user would write for this provider (the test only fills in ports). */
export function oidcConfigFile(issuer: string, opts: Pick<StackOptions, 'oidcYaml' | 'yaml'> = {}): string {
  const dir = tempDir('sg-oidc-config-');
  const secretFile = join(dir, 'client-secret');
  writeFileSync(secretFile, `${CLIENT_SECRET}\n`);
  const file = join(dir, 'sessiongate.yaml');
  writeFileSync(
    file,
    `${opts.yaml ?? ''}
login:
  oidc:
    issuer: ${issuer}
    client_id: ${CLIENT_ID}
    client_secret_file: ${secretFile}
    # The test provider listens on loopback over plain http.
    allow_insecure_issuer: true
${opts.oidcYaml ?? ''}`,
  );
  return file;
}

export function loadOidcConfig(issuer: string, opts: StackOptions = {}): Config {
  const env: Record<string, string> = {
    SESSIONGATE_HTTP_PORT: '0',
    SESSIONGATE_GRPC_PORT: '0',
    SESSIONGATE_ADMIN_PORT: '0',
    SESSIONGATE_API_PORT: '0',
    SESSIONGATE_SECRET: SECRET,
    ...(opts.store ? { SESSIONGATE_STORE: opts.store } : {}),
  };
  const r = loadConfig({ file: oidcConfigFile(issuer, opts), env });
  if (!r.ok) throw new Error(r.problems.join('\n'));
  return r.config;
}

export async function startOidcStack(opts: StackOptions = {}): Promise<OidcStack> {
  const n = opts.replicas ?? 1;
  // nginx first, on ports it binds itself, so nothing started later (the provider listens on
  // free ports) can take them; each nginx points at a sessiongate port that is bound next.
  const app = await startEchoUpstream();
  const planned: Array<{ nginx: RunningNginx; httpPort: number }> = [];
  const stopNginx = async () => {
    for (const p of planned) await p.nginx.stop();
  };
  try {
    for (let i = 0; i < n; i++) {
      const httpPort = await freePort();
      planned.push({ nginx: await startNginx({ sessiongatePort: httpPort, appPort: app.port }), httpPort });
    }
  } catch (err) {
    await stopNginx();
    await app.close();
    throw err;
  }
  const urls = planned.map((p) => p.nginx.url);
  // The provider on `localhost`, the application on 127.0.0.1: two sites, as in production, so
  // the browser's SameSite rules and cookie jars apply as they would.
  const op = await startOidcProvider({
    host: 'localhost',
    accounts: ACCOUNTS,
    clients: [
      {
        client_id: CLIENT_ID,
        client_secret: CLIENT_SECRET,
        redirect_uris: urls.map((u) => `${u}/~login/callback`),
        post_logout_redirect_uris: urls.flatMap((u) => [`${u}/`, `${u}/bye`]),
        backchannel_logout_uri: `${urls[0]!}/~login/backchannel-logout`,
        ...(opts.clientAuth ? { token_endpoint_auth_method: opts.clientAuth } : {}),
      },
    ],
  });
  const config = loadOidcConfig(op.issuer, {
    ...opts,
    oidcYaml: `${opts.oidcYaml ?? ''}${opts.clientAuth ? `    token_endpoint_auth_method: ${opts.clientAuth}\n` : ''}`,
  });
  const replicas: Replica[] = [];
  const stack: OidcStack = {
    op,
    app,
    replicas,
    url: urls[0]!,
    config,
    async close() {
      await stopNginx();
      for (const r of replicas) await r.svc.close();
      await app.close();
      await op.close();
    },
  };
  try {
    for (const { nginx, httpPort } of planned) {
      const own = { ...config, listen: { ...config.listen, httpPort } };
      const svc = await startService(own, opts.log ?? quietLogger(), opts.clock ? { clock: opts.clock } : {});
      replicas.push({ svc, nginx, url: nginx.url });
    }
  } catch (err) {
    await stack.close();
    throw err;
  }
  return stack;
}
