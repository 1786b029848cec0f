/**
 * The one contract every SessionStore honours. Each implementation's test file calls
 * `storeContract` with a factory; the same cases then run against memory and every Redis
 * topology. Time is injected through the clock, so expiry is tested without sleeping.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SessionRecord } from '../../src/session/record.js';
import { RETENTION_MS, storeDeadline, successorRecord } from '../../src/session/record.js';
import type { SessionStore } from '../../src/store/types.js';
import { M, S, T0, TIMES, record } from '../support/fixtures.js';

export interface Clock {
  now: number;
}

export type StoreFactory = (clock: () => number) => Promise<SessionStore>;

let n = 0;
const key = () => `contract-${process.pid}-${Date.now()}-${n++}`;

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

    it('returns null for a key it never saw', async () => {
      expect(await store.get(key())).toBeNull();
    });

    it('returns what was created, field for field', async () => {
      const k = key();
      const r = record({ attributes: { email: 'a@example.com', org: { id: 7, tags: ['x', 'y'] }, ok: true } });
      await store.create(k, r);
      expect(await store.get(k)).toEqual(r);
    });

    it('keeps sessions apart', async () => {
      const [a, b] = [key(), key()];
      await store.create(a, record({ user_id: 'a' }));
      await store.create(b, record({ user_id: 'b' }));
      expect((await store.get(a))?.user_id).toBe('a');
      expect((await store.get(b))?.user_id).toBe('b');
    });

    it('keeps an idle-expired record for RETENTION_MS, so the answer can say why, then forgets it', async () => {
      const k = key();
      const r = record();
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
      const r = record({ expires_at: T0 + 10 * M, idle_expires_at: T0 + 10 * M });
      await store.create(k, r);
      clock.now = T0 + 9 * M;
      await store.touch(k, clock.now, T0 + 10 * M);
      clock.now = T0 + 10 * M + RETENTION_MS;
      expect(await store.get(k)).toBeNull();
    });

    it('touch moves the idle expiry', async () => {
      const k = key();
      await store.create(k, record());
      clock.now = T0 + 20 * M;
      await store.touch(k, clock.now, clock.now + TIMES.idleTtl);
      clock.now = T0 + 45 * M;
      const r = await store.get(k);
      expect(r).toMatchObject({ touched_at: T0 + 20 * M, idle_expires_at: T0 + 50 * M });
    });

    it('touch of an absent key creates nothing', async () => {
      const k = key();
      await store.touch(k, T0, T0 + M);
      expect(await store.get(k)).toBeNull();
    });

    it('rotate writes the successor and marks the old ID, kept for RETENTION_MS after its grace window', async () => {
      const [oldKey, newKey] = [key(), key()];
      const r = record();
      await store.create(oldKey, r);
      clock.now = T0 + 5 * M;
      const next = successorRecord(r, TIMES, clock.now);
      expect(await store.rotate(oldKey, newKey, next, clock.now + 30 * S)).toBe(true);
      expect(await store.get(newKey)).toEqual(next);
      expect(await store.get(oldKey)).toMatchObject({ user_id: r.user_id, grace_until: clock.now + 30 * S, successor: newKey });
      clock.now += 30 * S;
      expect(await store.get(oldKey)).toMatchObject({ grace_until: T0 + 5 * M + 30 * S });
      expect(await store.get(newKey)).toEqual(next);
      clock.now = T0 + 5 * M + 30 * S + RETENTION_MS;
      expect(await store.get(oldKey)).toBeNull();
      expect(await store.get(newKey)).toEqual(next);
    });

    it('rotates an ID once: a second rotation loses and changes nothing', async () => {
      const [oldKey, first, second] = [key(), key(), key()];
      const r = record();
      await store.create(oldKey, r);
      const results = await Promise.all([
        store.rotate(oldKey, first, successorRecord(r, TIMES, T0), T0 + 30 * S),
        store.rotate(oldKey, second, successorRecord(r, TIMES, T0), T0 + 30 * S),
      ]);
      expect(results.filter(Boolean)).toHaveLength(1);
      const winner = results[0] ? first : second;
      const loser = results[0] ? second : first;
      expect(await store.get(winner)).not.toBeNull();
      expect(await store.get(loser)).toBeNull();
      expect((await store.get(oldKey))?.successor).toBe(winner);
    });

    it('does not rotate an absent or expired ID', async () => {
      const [gone, expired, target] = [key(), key(), key()];
      expect(await store.rotate(gone, target, record(), T0 + S)).toBe(false);
      await store.create(expired, record());
      clock.now = T0 + TIMES.idleTtl + RETENTION_MS;
      expect(await store.rotate(expired, target, record({}, clock.now), clock.now + S)).toBe(false);
      expect(await store.get(target)).toBeNull();
    });

    it('touch does not revive an ID in its grace window', async () => {
      const [oldKey, newKey] = [key(), key()];
      const r = record();
      await store.create(oldKey, r);
      await store.rotate(oldKey, newKey, successorRecord(r, TIMES, T0), T0 + 30 * S);
      await store.touch(oldKey, T0 + 10 * S, T0 + 10 * S + TIMES.idleTtl);
      expect(await store.get(oldKey)).toMatchObject({ touched_at: r.touched_at, idle_expires_at: r.idle_expires_at });
      clock.now = T0 + 30 * S + RETENTION_MS;
      expect(await store.get(oldKey)).toBeNull();
    });

    it('destroy removes the record and is idempotent', async () => {
      const k = key();
      await store.create(k, record());
      await store.destroy(k);
      expect(await store.get(k)).toBeNull();
      await store.destroy(k);
      await store.destroy(key());
    });

    it('destroying a rotated-away ID also ends its successor', async () => {
      const [oldKey, newKey] = [key(), key()];
      const r: SessionRecord = record();
      await store.create(oldKey, r);
      await store.rotate(oldKey, newKey, successorRecord(r, TIMES, T0), T0 + 30 * S);
      await store.destroy(oldKey);
      expect(await store.get(oldKey)).toBeNull();
      expect(await store.get(newKey)).toBeNull();
    });

    it('answers ping', async () => {
      await expect(store.ping()).resolves.toBeUndefined();
    });
  });
}
