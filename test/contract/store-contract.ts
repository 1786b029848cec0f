/**
 * The one contract every SessionStore honours, one part per role (session operations, token
 * catalog, health: store/types.ts). Each implementation's test file calls `storeContract` with
 * a factory; the same cases then run against memory and every Redis topology, and through the
 * metrics wrapper. Time is injected through the clock, so expiry is tested without sleeping.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RETENTION_MS, storeDeadline } from '../../src/session/record.js';
import type { SessionStore } from '../../src/store/types.js';
import { M, S, stored, storedSuccessor, T0, TIMES } from '../support/fixtures.js';

export interface Clock {
  now: number;
}

export type StoreFactory = (clock: () => number) => Promise<SessionStore>;

let n = 0;
/** Keys as the service makes them: `{tag}` + hash, the tag varying so Cluster spreads them over slots. */
const key = (tag = `t${(n % 1000).toString().padStart(7, '0')}`) => `{${tag}}${process.pid}-${Date.now()}-${n++}`;
const sibling = (k: string) => `${k.slice(0, 10)}${process.pid}-${Date.now()}-${n++}`;

export function storeContract(name: string, factory: StoreFactory): void {
  describe(`SessionStore contract: ${name}`, () => {
    const clock: Clock = { now: T0 };
    let store: SessionStore;

    beforeEach(async () => {
      clock.now = T0;
      store = await factory(() => clock.now);
    });
    afterEach(async () => {
      await store.close();
    });

    describe('session operations', () => {
      it('returns null for a key it never saw', async () => {
        expect(await store.get(key())).toBeNull();
      });

      it('returns what was created, field for field', async () => {
        const k = key();
        const r = stored({ grace_until: undefined, data: 'b3BhcXVl'.repeat(40) });
        await store.create(k, r);
        expect(await store.get(k)).toEqual(r);
      });

      it('keeps sessions apart', async () => {
        const [a, b] = [key(), key()];
        await store.create(a, stored({ user: 'a' }));
        await store.create(b, stored({ user: 'b' }));
        expect((await store.get(a))?.user).toBe('a');
        expect((await store.get(b))?.user).toBe('b');
      });

      it('keeps an idle-expired record for RETENTION_MS, so the answer can say why, then forgets it', async () => {
        const k = key();
        const r = stored();
        await store.create(k, r);
        clock.now = T0 + TIMES.idleTtl;
        expect(await store.get(k)).toEqual(r);
        expect(storeDeadline(r)).toBe(T0 + TIMES.idleTtl + RETENTION_MS);
        clock.now = storeDeadline(r) - 1;
        expect(await store.get(k)).toEqual(r);
        clock.now = storeDeadline(r);
        expect(await store.get(k)).toBeNull();
      });

      it('forgets a record after its absolute expiry, however recently touched', async () => {
        const k = key();
        await store.create(k, stored({ expires_at: T0 + 10 * M, idle_expires_at: T0 + 10 * M }));
        clock.now = T0 + 9 * M;
        await store.touch(k, clock.now, T0 + 10 * M);
        clock.now = T0 + 10 * M + RETENTION_MS;
        expect(await store.get(k)).toBeNull();
      });

      it('touch moves the idle expiry and nothing else', async () => {
        const k = key();
        const r = stored();
        await store.create(k, r);
        clock.now = T0 + 20 * M;
        await store.touch(k, clock.now, clock.now + TIMES.idleTtl);
        clock.now = T0 + 45 * M;
        expect(await store.get(k)).toEqual({ ...r, touched_at: T0 + 20 * M, idle_expires_at: T0 + 50 * M });
      });

      it('touch of an absent key creates nothing', async () => {
        const k = key();
        await store.touch(k, T0, T0 + M);
        expect(await store.get(k)).toBeNull();
      });

      it('rotate writes the successor and marks the old ID, kept for RETENTION_MS after its grace window', async () => {
        const oldKey = key();
        const newKey = sibling(oldKey);
        const r = stored();
        await store.create(oldKey, r);
        clock.now = T0 + 5 * M;
        const next = storedSuccessor(r, clock.now);
        expect(await store.rotate(oldKey, newKey, next, clock.now + 30 * S)).toBe(true);
        expect(await store.get(newKey)).toEqual(next);
        expect(await store.get(oldKey)).toEqual({ ...r, grace_until: clock.now + 30 * S, successor: newKey });
        clock.now += 30 * S;
        expect(await store.get(oldKey)).toMatchObject({ grace_until: T0 + 5 * M + 30 * S });
        clock.now = T0 + 5 * M + 30 * S + RETENTION_MS;
        expect(await store.get(oldKey)).toBeNull();
        expect(await store.get(newKey)).toEqual(next);
      });

      it('rotates an ID once: a second rotation loses and changes nothing', async () => {
        const oldKey = key();
        const [first, second] = [sibling(oldKey), sibling(oldKey)];
        const r = stored();
        await store.create(oldKey, r);
        const results = await Promise.all([
          store.rotate(oldKey, first, storedSuccessor(r, T0), T0 + 30 * S),
          store.rotate(oldKey, second, storedSuccessor(r, T0), T0 + 30 * S),
        ]);
        expect(results.filter(Boolean)).toHaveLength(1);
        const winner = results[0] ? first : second;
        const loser = results[0] ? second : first;
        expect(await store.get(winner)).not.toBeNull();
        expect(await store.get(loser)).toBeNull();
        expect((await store.get(oldKey))?.successor).toBe(winner);
      });

      it('does not rotate an absent or dead ID', async () => {
        const gone = key();
        const expired = key();
        expect(await store.rotate(gone, sibling(gone), stored(), T0 + S)).toBe(false);
        await store.create(expired, stored());
        clock.now = T0 + TIMES.idleTtl + RETENTION_MS;
        const target = sibling(expired);
        expect(await store.rotate(expired, target, stored({}, clock.now), clock.now + S)).toBe(false);
        expect(await store.get(target)).toBeNull();
      });

      it('touch does not revive an ID in its grace window', async () => {
        const oldKey = key();
        const r = stored();
        await store.create(oldKey, r);
        await store.rotate(oldKey, sibling(oldKey), storedSuccessor(r, T0), T0 + 30 * S);
        await store.touch(oldKey, T0 + 10 * S, T0 + 10 * S + TIMES.idleTtl);
        expect(await store.get(oldKey)).toMatchObject({ touched_at: r.touched_at, idle_expires_at: r.idle_expires_at });
        clock.now = T0 + 30 * S + RETENTION_MS;
        expect(await store.get(oldKey)).toBeNull();
      });

      it('destroy removes the record and is idempotent', async () => {
        const k = key();
        await store.create(k, stored());
        await store.destroy(k);
        expect(await store.get(k)).toBeNull();
        await store.destroy(k);
        await store.destroy(key());
      });

      it('destroying a rotated-away ID also ends its successor', async () => {
        const oldKey = key();
        const newKey = sibling(oldKey);
        const r = stored();
        await store.create(oldKey, r);
        await store.rotate(oldKey, newKey, storedSuccessor(r, T0), T0 + 30 * S);
        await store.destroy(oldKey);
        expect(await store.get(oldKey)).toBeNull();
        expect(await store.get(newKey)).toBeNull();
      });

      it('touch says whether it touched: false for an absent, rotated-away or dead record', async () => {
        const k = key();
        expect(await store.touch(k, T0, T0 + M)).toBe(false);
        await store.create(k, stored());
        expect(await store.touch(k, T0 + S, T0 + S + TIMES.idleTtl)).toBe(true);
        await store.rotate(k, sibling(k), storedSuccessor(stored(), T0), T0 + 30 * S);
        expect(await store.touch(k, T0 + 2 * S, T0 + 2 * S + TIMES.idleTtl)).toBe(false);
        await store.destroy(k);
        expect(await store.touch(k, T0 + 3 * S, T0 + 3 * S + TIMES.idleTtl)).toBe(false);
      });

      it('destroy returns the keys it removed, and nothing the second time', async () => {
        const k = key();
        await store.create(k, stored());
        expect(await store.destroy(k)).toEqual([k]);
        expect(await store.destroy(k)).toEqual([]);
        expect(await store.destroy(key())).toEqual([]);
      });

      it('destroying the successor also ends the rotated-away ID still in its grace window', async () => {
        const oldKey = key();
        const newKey = sibling(oldKey);
        const r = stored();
        await store.create(oldKey, r);
        clock.now = T0 + 5 * M;
        await store.rotate(oldKey, newKey, storedSuccessor(r, clock.now), clock.now + 30 * S);
        clock.now += 10 * S; // inside the grace window: the old ID still authenticates
        expect([...(await store.destroy(newKey))].sort()).toEqual([oldKey, newKey].sort());
        expect(await store.get(oldKey)).toBeNull();
        expect(await store.get(newKey)).toBeNull();
      });

      it('a family of four IDs ends whole from any member, and destroy names every key it removed', async () => {
        for (const pick of [0, 1, 2, 3]) {
          const chain = [key()];
          for (let i = 1; i < 4; i++) chain.push(sibling(chain[0]!));
          let r = stored();
          await store.create(chain[0]!, r);
          for (let i = 1; i < 4; i++) {
            const next = storedSuccessor(r, T0 + i * S);
            expect(await store.rotate(chain[i - 1]!, chain[i]!, next, T0 + i * S + 30 * S)).toBe(true);
            r = next;
          }
          expect([...(await store.destroy(chain[pick]!))].sort()).toEqual([...chain].sort());
          for (const k of chain) expect(await store.get(k)).toBeNull();
        }
      });

      it('a family is not its tag: another session that happens to share the family tag lives on', async () => {
        const a = key();
        const b = sibling(a); // same {tag}, a different login
        await store.create(a, stored({ user: 'tag-a' }));
        await store.create(b, stored({ user: 'tag-b' }));
        const a2 = sibling(a);
        await store.rotate(a, a2, storedSuccessor(stored({ user: 'tag-a' }), T0), T0 + 30 * S);
        expect([...(await store.destroy(a2))].sort()).toEqual([a, a2].sort());
        expect((await store.get(b))?.user).toBe('tag-b');
      });

      it('a rotation racing a logout never leaves a live ID behind', async () => {
        for (let i = 0; i < 10; i++) {
          const a = key();
          const [b, c] = [sibling(a), sibling(a)];
          const r = stored();
          await store.create(a, r);
          await store.rotate(a, b, storedSuccessor(r, T0), T0 + 30 * S);
          // The logout names the oldest ID while a request rotates the newest.
          await Promise.all([store.rotate(b, c, storedSuccessor(r, T0 + S), T0 + 31 * S), store.destroy(i % 2 === 0 ? a : b)]);
          for (const k of [a, b, c]) expect(await store.get(k)).toBeNull();
        }
      });

      it("destroyUser ends every session of a user, rotated ones included, and no one else's", async () => {
        const user = `user-${n++}`;
        const [a, b, other] = [key(), key(), key()];
        await store.create(a, stored({ user }));
        await store.create(b, stored({ user }));
        await store.create(other, stored({ user: `${user}-other` }));
        const rotated = sibling(a);
        await store.rotate(a, rotated, storedSuccessor(stored({ user }), T0), T0 + 30 * S);
        const removed = await store.destroyUser([user, 'no-such-user']);
        expect([...removed].sort()).toEqual([a, b, rotated].sort());
        for (const k of [a, b, rotated]) expect(await store.get(k)).toBeNull();
        expect(await store.get(other)).not.toBeNull();
        expect(await store.destroyUser([user])).toEqual([]);
      });

      it('destroyUser drops from the index only what it removed: a login racing it stays revocable', async () => {
        for (let i = 0; i < 20; i++) {
          const user = `user-${n++}`;
          const [a, b, later] = [key(), key(), key()];
          await store.create(a, stored({ user }));
          await store.create(b, stored({ user }));
          // A login lands while the revocation runs: before it read the index (revoked now) or
          // after (still filed, so the next revocation finds it). Never lost from the index.
          await Promise.all([store.destroyUser([user]), store.create(later, stored({ user }))]);
          await store.destroyUser([user]);
          for (const k of [a, b, later]) expect(await store.get(k)).toBeNull();
        }
      });
    });

    describe("other index references (an OpenID provider's sid and sub)", () => {
      it('files a session under each of its links, and a revocation by a link ends the whole family', async () => {
        const [a, other] = [key(), key()];
        const links = [`sid-${n++}`, `sub-${n++}`];
        await store.create(a, stored({ links }));
        await store.create(other, stored({ links: [`sid-${n++}`] }));
        const b = sibling(a);
        clock.now = T0 + M;
        expect(await store.rotate(a, b, { ...storedSuccessor(stored(), clock.now), links }, clock.now + 30_000)).toBe(true);
        expect((await store.get(b))?.links).toEqual(links);
        expect((await store.destroyUser([links[0]!])).sort()).toEqual([a, b].sort());
        for (const k of [a, b]) expect(await store.get(k)).toBeNull();
        expect(await store.get(other)).not.toBeNull();
      });

      it('finds a rotated session by its link after the first ID is long gone', async () => {
        const a = key();
        const links = [`sid-${n++}`];
        await store.create(a, stored({ links }));
        const b = sibling(a);
        expect(await store.rotate(a, b, { ...storedSuccessor(stored(), T0 + M), links }, T0 + M + 1000)).toBe(true);
        // The first ID's grace and retention are over: only the successor is left.
        clock.now = T0 + M + 1000 + RETENTION_MS + 1;
        expect(await store.get(a)).toBeNull();
        expect(await store.destroyUser(links)).toContain(b);
        expect(await store.get(b)).toBeNull();
      });
    });

    describe('one-time values', () => {
      it('gives a value to one take only', async () => {
        const k = `once-${process.pid}-${n++}`;
        await store.oncePut(k, 'flow state', 60_000);
        const [first, second] = await Promise.all([store.onceTake(k), store.onceTake(k)]);
        expect([first, second].sort()).toEqual(['flow state', null].sort());
        expect(await store.onceTake(k)).toBeNull();
        expect(await store.onceTake(`${k}-never`)).toBeNull();
      });

      it('claims a key once until it expires', async () => {
        const k = `claim-${process.pid}-${n++}`;
        const results = await Promise.all([store.onceClaim(k, 60_000), store.onceClaim(k, 60_000), store.onceClaim(k, 60_000)]);
        expect(results.filter(Boolean)).toHaveLength(1);
        expect(await store.onceClaim(k, 60_000)).toBe(false);
      });

      it('forgets a value after its TTL', async () => {
        const k = `ttl-${process.pid}-${n++}`;
        const c = `ttl-claim-${process.pid}-${n++}`;
        await store.oncePut(k, 'v', 40);
        expect(await store.onceClaim(c, 40)).toBe(true);
        // Memory follows the injected clock, Redis its own: move both past the TTL.
        clock.now = T0 + 1000;
        await new Promise((r) => setTimeout(r, 80));
        expect(await store.onceTake(k)).toBeNull();
        expect(await store.onceClaim(c, 40)).toBe(true);
      });
    });

    describe('token catalog', () => {
      it('keeps catalogs apart, lists, overwrites and deletes entries', async () => {
        const c = `cat-${process.pid}-${n++}`;
        const other = `${c}-other`;
        expect(await store.catalogList(c)).toEqual({});
        await store.catalogPut(c, 'a', 'one');
        await store.catalogPut(c, 'b', 'two');
        await store.catalogPut(other, 'a', 'elsewhere');
        await store.catalogPut(c, 'a', 'one again');
        expect(await store.catalogList(c)).toEqual({ a: 'one again', b: 'two' });
        expect(await store.catalogDelete(c, 'a')).toBe(true);
        expect(await store.catalogDelete(c, 'a')).toBe(false);
        expect(await store.catalogList(c)).toEqual({ b: 'two' });
        expect(await store.catalogList(other)).toEqual({ a: 'elsewhere' });
      });
    });

    describe('health', () => {
      it('answers ping and passes its self-test', async () => {
        await expect(store.ping()).resolves.toBeUndefined();
        await expect(store.selfTest()).resolves.toBeUndefined();
      });
    });
  });
}
