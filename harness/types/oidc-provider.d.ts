/**
 * The part of panva's oidc-provider (v9, which ships no types) that harness/oidc-provider.ts uses.
 * Configuration stays loose on purpose: the harness builds it in one place and the provider
 * validates it at construction.
 */
declare module 'oidc-provider' {
  import type { IncomingMessage, ServerResponse } from 'node:http';

  export interface AdapterPayload {
    [key: string]: unknown;
    accountId?: string;
    grantId?: string;
    uid?: string;
    userCode?: string;
    consumed?: number;
    authorizations?: Record<string, { sid?: string; grantId?: string; persistsLogout?: boolean }>;
  }

  export interface Adapter {
    upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void>;
    find(id: string): Promise<AdapterPayload | undefined>;
    findByUserCode(userCode: string): Promise<AdapterPayload | undefined>;
    findByUid(uid: string): Promise<AdapterPayload | undefined>;
    consume(id: string): Promise<void>;
    destroy(id: string): Promise<void>;
    revokeByGrantId(grantId: string): Promise<void>;
  }

  export interface ClientModel {
    readonly clientId: string;
    readonly backchannelLogoutUri?: string;
    backchannelLogout(sub: string, sid: string): Promise<void>;
  }

  export interface GrantModel {
    addOIDCScope(scope: string): void;
    addOIDCClaims(claims: string[]): void;
    save(): Promise<string>;
  }

  export interface GrantConstructor {
    new (props: { clientId: string; accountId: string }): GrantModel;
    find(id: string): Promise<GrantModel | undefined>;
  }

  export interface Account {
    accountId: string;
    claims(use: string, scope: string): Promise<Record<string, unknown>> | Record<string, unknown>;
  }

  /** The koa context the provider hands to configuration functions; only what the harness reads. */
  export interface ProviderContext {
    oidc: {
      client: ClientModel;
      session: { accountId?: string; grantIdFor(clientId: string): string | undefined };
      result?: { consent?: { grantId?: string } };
      requestParamOIDCScopes: Set<string>;
      requestParamClaims: Set<string>;
      provider: Provider;
    };
  }

  export type Configuration = Record<string, unknown>;

  export class Provider {
    constructor(issuer: string, configuration?: Configuration);
    readonly issuer: string;
    proxy: boolean;
    readonly Client: { find(id: string): Promise<ClientModel | undefined> };
    readonly Grant: GrantConstructor;
    callback(): (req: IncomingMessage, res: ServerResponse) => void;
    interactionFinished(
      req: IncomingMessage,
      res: ServerResponse,
      result: Record<string, unknown>,
      options?: { mergeWithLastSubmission?: boolean },
    ): Promise<void>;
    interactionDetails(req: IncomingMessage, res: ServerResponse): Promise<{ uid: string; prompt: { name: string }; params: Record<string, unknown> }>;
    on(event: 'backchannel.success', listener: (ctx: unknown, client: ClientModel, accountId: string, sid: string) => void): this;
    on(
      event: 'backchannel.error',
      listener: (ctx: unknown, err: Error & { response?: { status: number } }, client: ClientModel, accountId: string, sid: string) => void,
    ): this;
    on(event: string, listener: (...args: unknown[]) => void): this;
  }

  export default Provider;
}
