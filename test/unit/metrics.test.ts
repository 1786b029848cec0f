/** The metrics wrapper of a store: every role's calls are counted and timed, the token catalog's too. */
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createMetrics } from '../../src/ops/metrics.js';
import { createMemoryStore } from '../../src/store/memory.js';
import { StoreUnavailableError } from '../../src/store/types.js';
import { stored, T0 } from '../support/fixtures.js';

async function sample(registry: Registry, name: string, labels: Record<string, string>): Promise<number | undefined> {
  // A histogram's samples name themselves (`_count`, `_sum`, `_bucket`); a counter's do not.
  const values = (await registry.getMetricsAsJSON()).flatMap((m) =>
    (m.values as Array<{ metricName?: string; labels: Record<string, string>; value: number }>).map((s) => ({ ...s, metricName: s.metricName ?? m.name })),
  );
  return values.find((s) => s.metricName === name && Object.entries(labels).every(([k, l]) => s.labels[k] === l))?.value;
}

describe('instrumentStore', () => {
  it('counts and times the token catalog like session operations', async () => {
    const registry = new Registry();
    const memory = createMemoryStore({ maxEntries: 10, sweepInterval: 0, clock: () => T0 });
    const store = createMetrics({ version: 'test' }, registry).instrumentStore(memory);
    await store.create('k', stored());
    await store.catalogPut('c', 'a', 'one');
    await store.catalogList('c');
    await store.catalogList('c');
    await store.catalogDelete('c', 'a');
    const ops = (op: string, result = 'ok') => sample(registry, 'sessiongate_store_operations_total', { op, result });
    expect(await ops('create')).toBe(1);
    expect(await ops('catalog_put')).toBe(1);
    expect(await ops('catalog_list')).toBe(2);
    expect(await ops('catalog_delete')).toBe(1);
    expect(await sample(registry, 'sessiongate_store_duration_seconds_count', { op: 'catalog_list' })).toBe(2);
    await store.close();
  });

  it('counts a failed catalog call as an error, and passes the error on', async () => {
    const registry = new Registry();
    const memory = createMemoryStore({ maxEntries: 10, sweepInterval: 0, clock: () => T0 });
    const down = Object.assign(Object.create(memory) as typeof memory, { catalogList: () => Promise.reject(new StoreUnavailableError('down')) });
    const store = createMetrics({ version: 'test' }, registry).instrumentStore(down);
    await expect(store.catalogList('c')).rejects.toBeInstanceOf(StoreUnavailableError);
    expect(await sample(registry, 'sessiongate_store_operations_total', { op: 'catalog_list', result: 'error' })).toBe(1);
    expect(await sample(registry, 'sessiongate_store_operations_total', { op: 'catalog_put', result: 'error' })).toBe(0);
    await store.close();
  });
});
