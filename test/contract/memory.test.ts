import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createMetrics } from '../../src/ops/metrics.js';
import { RETENTION_MS } from '../../src/session/record.js';
import { createMemoryStore } from '../../src/store/memory.js';
import { S, stored, storedSuccessor, T0, TIMES } from '../support/fixtures.js';
import { storeContract } from './store-contract.js';

storeContract('memory', async (clock) => createMemoryStore({ maxEntries: 10_000, sweepInterval: 0, clock }));

// The metrics wrapper wraps every role: whatever it counts, the store still honours the contract.
const metrics = createMetrics({ version: 'test' }, new Registry());
storeContract('memory, counted and timed', async (clock) => metrics.instrumentStore(createMemoryStore({ maxEntries: 10_000, sweepInterval: 0, clock })));

describe('memory store specifics', () => {
  it('is bounded: the least recently used session goes first, and leaves the user index', async () => {
    const store = createMemoryStore({ maxEntries: 3, sweepInterval: 0, clock: () => T0 });
    for (const k of ['a', 'b', 'c']) await store.create(k, stored({ user: k }));
    await store.get('a'); // a is now the most recently used
    await store.create('d', stored({ user: 'd' }));
    expect(store.size).toBe(3);
    expect(await store.get('b')).toBeNull();
    expect((await store.get('a'))?.user).toBe('a');
    expect(await store.destroyUser(['b'])).toEqual([]);
    await store.close();
  });

  it('sweeps dead records without being asked for them', async () => {
    const now = { t: T0 };
    const store = createMemoryStore({ maxEntries: 100, sweepInterval: 0, clock: () => now.t });
    await store.create('short', stored({ idle_expires_at: T0 + 1000 }));
    await store.create('long', stored());
    now.t = T0 + 1000 + RETENTION_MS;
    expect(store.sweep()).toBe(1);
    expect(store.size).toBe(1);
    now.t = T0 + TIMES.idleTtl + RETENTION_MS;
    expect(store.sweep()).toBe(1);
    expect(store.size).toBe(0);
    await store.close();
  });
  // The indexes keep one member as a plain string and a Set only from the second: each change
  // of form must keep every member findable.
  it("keeps a user's sessions revocable as the index goes from one session to two and back", async () => {
    const store = createMemoryStore({ maxEntries: 100, sweepInterval: 0, clock: () => T0 });
    await store.create('a', stored({ user: 'u' }));
    await store.create('b', stored({ user: 'u' }));
    expect(await store.destroy('a')).toEqual(['a']);
    await store.create('c', stored({ user: 'u' }));
    expect((await store.destroyUser(['u'])).sort()).toEqual(['b', 'c']);
    await store.create('d', stored({ user: 'u' }));
    expect(await store.destroyUser(['u'])).toEqual(['d']);
    expect(await store.destroyUser(['u'])).toEqual([]);
    await store.close();
  });

  it('a family down to one member is that session alone, and its next rotation starts a family again', async () => {
    const now = { t: T0 };
    const store = createMemoryStore({ maxEntries: 100, sweepInterval: 0, clock: () => now.t });
    const r = stored({ user: 'u' });
    await store.create('a', r);
    await store.create('other', stored({ user: 'v' }));
    expect(await store.rotate('a', 'b', storedSuccessor(r, T0), T0 + 30 * S)).toBe(true);
    now.t = T0 + 30 * S + RETENTION_MS; // a's grace and retention are over
    expect(store.sweep()).toBe(1);
    expect(await store.destroy('a')).toEqual([]);
    const b = (await store.get('b'))!;
    expect(await store.rotate('b', 'c', storedSuccessor(b, now.t), now.t + 30 * S)).toBe(true);
    expect((await store.destroy('c')).sort()).toEqual(['b', 'c']);
    expect(await store.get('b')).toBeNull();
    expect((await store.get('other'))?.user).toBe('v');
    await store.close();
  });
});
