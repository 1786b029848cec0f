/**
 * Back-channel logout from a real OpenID Provider ends the session on every replica: two
 * sessiongate replicas share a real Redis (local caches on), each behind the shipped nginx. The
 * provider's registration names replica A's back-channel URL; a user logged in through A uses
 * the session on both (so both caches hold it), then logs out at the provider, or an
 * administrator signs them out everywhere: the provider posts a logout token to A, and the
 * next request on either replica is refused. A rotated session ends too (its successor is filed
 * under the provider's sid and sub like the first ID).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserAgent } from '../../harness/oidc-agent.js';
import { type RedisProcess, redisCli, startRedisServer } from '../../harness/redis.js';
import { buildPolicy } from '../../src/core/policy.js';
import { ACCOUNTS, CLIENT_ID, type OidcStack, startOidcStack } from '../support/oidc.js';

let redis: RedisProcess;
let stack: OidcStack;
const M = 60_000;
const clock = { offset: 0 };

beforeAll(async () => {
  redis = await startRedisServer();
  stack = await startOidcStack({ replicas: 2, store: `redis://127.0.0.1:${redis.port}`, clock: () => Date.now() + clock.offset });
}, 60_000);
afterAll(async () => {
  await stack?.close();
  await redis?.stop();
});

const [A, B] = [0, 1];
/** A page of the application on a replica, as a script asks (401 when not logged in). */
async function status(replica: number, cookie: string): Promise<number> {
  const r = await fetch(`${stack.replicas[replica]!.url}/app`, { headers: { Cookie: cookie }, redirect: 'manual' });
  return r.status;
}
/** The provider's first back-channel delivery after the `seen` it had made before. */
async function deliveryAfter(seen: number) {
  for (let i = 0; i < 100 && stack.op.backchannelDeliveries.length <= seen; i++) await new Promise((r) => setTimeout(r, 50));
  const d = stack.op.backchannelDeliveries[seen];
  if (!d) throw new Error('the provider made no back-channel delivery');
  return d;
}
const cookieOf = (agent: UserAgent) => agent.jar.header(new URL(stack.url), { method: 'GET', crossSite: false });

async function loggedIn(login: string): Promise<{ agent: UserAgent; cookie: string }> {
  const agent = new UserAgent();
  const r = await agent.completeLogin(`${stack.replicas[A]!.url}/app`, login, 'pw');
  expect(r.last?.status).toBe(200);
  const cookie = cookieOf(agent);
  // Used on both replicas: each cache now holds the session.
  for (const replica of [A, B]) for (let i = 0; i < 2; i++) expect(await status(replica, cookie)).toBe(200);
  return { agent, cookie };
}

describe('back-channel logout reaches every replica', () => {
  it('the user logs out at the provider: its logout token (with sid) ends the session on both replicas', async () => {
    const { agent, cookie } = await loggedIn('alice');
    const other = await loggedIn('bob'); // another user's session stays
    const seen = stack.op.backchannelDeliveries.length;
    const out = await agent.logoutAtProvider(`${stack.op.endpoints.endSession}?client_id=${CLIENT_ID}`, { everywhere: true });
    expect(out.confirmPage).toBeDefined();
    const delivery = await deliveryAfter(seen);
    expect(delivery).toMatchObject({ ok: true, accountId: ACCOUNTS['alice']!.sub });
    expect(delivery.sid).toMatch(/./);
    for (const replica of [A, B]) expect(await status(replica, cookie)).toBe(401);
    for (const replica of [A, B]) expect(await status(replica, other.cookie)).toBe(200);
  });

  it('an administrator signs the user out everywhere: every session of that user ends, on both replicas', async () => {
    const first = await loggedIn('bob');
    const second = await loggedIn('bob');
    const deliveries = await stack.op.endSessionsOf(ACCOUNTS['bob']!.sub);
    expect(deliveries.length).toBeGreaterThanOrEqual(1);
    expect(deliveries.every((d) => d.ok)).toBe(true);
    for (const replica of [A, B]) {
      expect(await status(replica, first.cookie)).toBe(401);
      expect(await status(replica, second.cookie)).toBe(401);
    }
  });

  it('a rotated session: the successor ID ends as well, on both replicas', async () => {
    const { agent, cookie } = await loggedIn('alice');
    // Past rotate_after (30 min): the next request rotates the ID, the answer sets the new cookie.
    clock.offset += 20 * M;
    expect(await status(A, cookie)).toBe(200); // touched (idle 30 min)
    clock.offset += 11 * M;
    const r = await fetch(`${stack.replicas[A]!.url}/app`, { headers: { Cookie: cookie }, redirect: 'manual' });
    expect(r.status).toBe(200);
    const rotated = r.headers.getSetCookie().find((c) => /^sessiongate=[^;]/.test(c));
    expect(rotated).toBeDefined();
    const successor = rotated!.split(';')[0]!;
    expect(successor).not.toBe(cookie);
    for (const replica of [A, B]) expect(await status(replica, successor)).toBe(200);
    // Beyond the old ID's grace and the store's retention of it: only the successor is left.
    // (Redis expires on its own clock, which the test cannot move: the old record goes now.)
    clock.offset += 11 * M;
    const verified = buildPolicy(stack.config.policy).tokens.verify(cookie.slice('sessiongate='.length));
    if (!verified.ok) throw new Error('the first cookie does not verify');
    expect(redisCli(redis.port, 'DEL', `sg:s:${verified.key}`).trim()).toBe('1');
    expect(await status(B, successor)).toBe(200);
    const seen = stack.op.backchannelDeliveries.length;
    const out = await agent.logoutAtProvider(`${stack.op.endpoints.endSession}?client_id=${CLIENT_ID}`, { everywhere: true });
    expect(out.confirmPage).toBeDefined();
    expect(await deliveryAfter(seen)).toMatchObject({ ok: true, accountId: ACCOUNTS['alice']!.sub });
    for (const replica of [A, B]) {
      expect(await status(replica, successor)).toBe(401);
      expect(await status(replica, cookie)).toBe(401);
    }
  });
});
