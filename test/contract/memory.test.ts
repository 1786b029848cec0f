import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createMetrics } from '../../src/ops/metrics.js';
import { RETENTION_MS } from '../../src/session/record.js';
import { createMemoryStore } from '../../src/store/memory.js';
import { stored, T0, TIMES } from '../support/fixtures.js';
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
});
