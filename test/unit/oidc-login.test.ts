import { describe, expect, it } from 'vitest';
import { mapClaims, rolesFrom } from '../../src/login/claims.js';
import { flowCookieName, startFlow, takeFlow } from '../../src/login/flow.js';
import { createMemoryStore } from '../../src/store/memory.js';

const mapping = { userId: 'sub', roles: 'groups', attributes: { email: 'email', name: 'name' } };

describe('claims to a session', () => {
  it('maps user ID, roles and attributes, by name or dotted path', () => {
    expect(mapClaims({ sub: 'u1', groups: ['admin', 'ops'], email: 'a@example.com' }, mapping)).toEqual({
      ok: true,
      userId: 'u1',
      roles: ['admin', 'ops'],
      attributes: { email: 'a@example.com' },
      droppedRoles: 0,
    });
    const keycloak = { sub: 'k', realm_access: { roles: ['admin'] }, 'https://example.com/roles': ['x'] };
    expect(mapClaims(keycloak, { ...mapping, roles: 'realm_access.roles' })).toMatchObject({ roles: ['admin'] });
    expect(mapClaims(keycloak, { ...mapping, roles: 'https://example.com/roles' })).toMatchObject({ roles: ['x'] });
  });

  it('reads roles from a space- or comma-separated string, dropping what is not a role name', () => {
    expect(rolesFrom('admin ops,dev')).toEqual({ roles: ['admin', 'ops', 'dev'], dropped: 0 });
    expect(rolesFrom(['admin', 'two words', 7, 'admin'])).toEqual({ roles: ['admin'], dropped: 2 });
    expect(rolesFrom(undefined)).toEqual({ roles: [], dropped: 0 });
  });

  it('refuses a login without a usable user ID', () => {
    expect(mapClaims({ email: 'x' }, mapping)).toMatchObject({ ok: false });
    expect(mapClaims({ sub: '' }, mapping)).toMatchObject({ ok: false });
    expect(mapClaims({ sub: 'a\r\nX-User-Id: admin' }, mapping)).toMatchObject({ ok: false });
    expect(mapClaims({ sub: 'x'.repeat(300) }, mapping)).toMatchObject({ ok: false });
  });

  it('refuses an e-mail address as the user ID when the provider says it is not verified', () => {
    const byEmail = { ...mapping, userId: 'email' };
    expect(mapClaims({ sub: 's', email: 'a@example.com', email_verified: false }, byEmail)).toMatchObject({ ok: false });
    expect(mapClaims({ sub: 's', email: 'a@example.com', email_verified: 'false' }, byEmail)).toMatchObject({ ok: false });
    expect(mapClaims({ sub: 's', email: 'a@example.com', email_verified: true }, byEmail)).toMatchObject({ ok: true, userId: 'a@example.com' });
    expect(mapClaims({ sub: 's', email: 'a@example.com' }, byEmail)).toMatchObject({ ok: true, userId: 'a@example.com' });
    // By sub, an unverified address is only an attribute.
    expect(mapClaims({ sub: 's', email: 'a@example.com', email_verified: false }, mapping)).toMatchObject({ ok: true, userId: 's' });
  });

  it('refuses an attribute with control characters (it could become a header)', () => {
    expect(mapClaims({ sub: 'u', email: 'a@b\r\nX: y' }, mapping)).toMatchObject({ ok: false });
  });
});

describe('login flows', () => {
  const cookies = { baseName: 'sessiongate', secure: true };
  const flow = (state: string) => ({ provider: 'oidc', state, nonce: 'n', verifier: 'v', rd: '/', redirectUri: 'https://a/~login/callback', createdAt: 0 });
  const cookieOf = (setCookie: string) => setCookie.split(';')[0]!;

  it('takes a flow once, by the cookie named after its state; two flows at once stay apart', async () => {
    const store = createMemoryStore({ maxEntries: 100, sweepInterval: 0, clock: () => 0 });
    const [s1, s2] = ['A'.repeat(43), 'B'.repeat(43)];
    const a = await startFlow(store, cookies, flow(s1));
    const b = await startFlow(store, cookies, flow(s2));
    expect(a.setCookie).toMatch(new RegExp(`^${flowCookieName('sessiongate', s1)}=`));
    expect(a.setCookie).toMatch(/HttpOnly/);
    expect(a.setCookie).toMatch(/Secure/);
    expect(a.setCookie).toMatch(/SameSite=Lax/);
    expect(a.setCookie).toMatch(/Path=\/~login/);
    const jar = `${cookieOf(a.setCookie)}; ${cookieOf(b.setCookie)}`;
    expect(await takeFlow(store, cookies, jar, s2)).toMatchObject({ ok: true, flow: { state: s2 } });
    expect(await takeFlow(store, cookies, jar, s1)).toMatchObject({ ok: true, flow: { state: s1 } });
    expect(await takeFlow(store, cookies, jar, s1)).toEqual({ ok: false, reason: 'flow_not_found' });
  });

  it('refuses a state no flow of this browser has, and a state that only shares the cookie tag', async () => {
    const store = createMemoryStore({ maxEntries: 100, sweepInterval: 0, clock: () => 0 });
    const s1 = 'C'.repeat(43);
    const a = await startFlow(store, cookies, flow(s1));
    expect(await takeFlow(store, cookies, cookieOf(a.setCookie), 'D'.repeat(43))).toEqual({ ok: false, reason: 'state_mismatch' });
    expect(await takeFlow(store, cookies, undefined, s1)).toEqual({ ok: false, reason: 'flow_not_found' });
    expect(await takeFlow(store, cookies, cookieOf(a.setCookie), `${'C'.repeat(12)}${'E'.repeat(31)}`)).toEqual({ ok: false, reason: 'state_mismatch' });
  });

  it('names a flow cookie without a __Host- prefix (that prefix demands Path=/)', async () => {
    expect(flowCookieName('__Host-sg', 'G'.repeat(43))).toBe(`sg_login_${'G'.repeat(12)}`);
    const store = createMemoryStore({ maxEntries: 100, sweepInterval: 0, clock: () => 0 });
    const hostCookies = { baseName: '__Host-sg', secure: true };
    const a = await startFlow(store, hostCookies, flow('G'.repeat(43)));
    expect(await takeFlow(store, hostCookies, cookieOf(a.setCookie), 'G'.repeat(43))).toMatchObject({ ok: true });
  });

  it('keeps the flow sealed: the store holds neither the flow ID nor the verifier', async () => {
    const store = createMemoryStore({ maxEntries: 100, sweepInterval: 0, clock: () => 0 });
    const puts: Array<[string, string]> = [];
    const spy = {
      ...store,
      oncePut: async (k: string, v: string, t: number) => {
        puts.push([k, v]);
        await store.oncePut(k, v, t);
      },
    };
    const s1 = 'F'.repeat(43);
    const a = await startFlow(spy, cookies, { ...flow(s1), verifier: 'the-verifier-value' });
    const flowId = cookieOf(a.setCookie).split('=')[1]!;
    expect(puts).toHaveLength(1);
    expect(puts[0]!.join(' ')).not.toContain(flowId);
    expect(puts[0]!.join(' ')).not.toContain('the-verifier-value');
  });
});
