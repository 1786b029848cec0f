/** The metrics wrapper of a store: every role's calls are counted and timed, the token catalog's too. */
import { Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { BUCKETS, createMetrics, flushTimes, observeInto, timeSeries } from '../../src/ops/metrics.js';
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

describe('durations counted in plain numbers until a scrape', () => {
  // On a bound, just past one, past the last bound, zero, and values no binary fraction holds.
  const values = [0, 0.000025, 0.0000251, 0.00003, 0.0001, 0.00099, 0.001, 0.3, 1, 1.0001, 7, ...BUCKETS];

  function histograms() {
    const own = new Registry();
    const batched = new Registry();
    const config = { name: 'd_seconds', help: 'h', labelNames: ['op'], buckets: BUCKETS };
    const reference = new Histogram({ ...config, registers: [own] });
    const series = [timeSeries({ op: 'get' }), timeSeries({ op: 'touch' })];
    const h: Histogram<string> = new Histogram({ ...config, registers: [batched], collect: () => flushTimes(h, series) });
    for (const op of ['get', 'touch']) {
      reference.zero({ op });
      h.zero({ op });
    }
    return { own, batched, reference, series };
  }

  it('expose exactly what prom-client observe() does', async () => {
    const { own, batched, reference, series } = histograms();
    for (const v of values) {
      reference.observe({ op: 'get' }, v);
      observeInto(series[0]!, v);
    }
    reference.observe({ op: 'touch' }, 0.002);
    observeInto(series[1]!, 0.002);
    expect(await batched.metrics()).toBe(await own.metrics());
    expect(await batched.metrics()).toContain('d_seconds_count{op="get"} 26');
  });

  it('add up across scrapes, and come back after a reset', async () => {
    const { own, batched, reference, series } = histograms();
    // Binary fractions: the sums are exact whatever the order of the additions.
    for (const round of [[0.5, 2], [0.25, 0.0000152587890625], [1]]) {
      for (const v of round) {
        reference.observe({ op: 'get' }, v);
        observeInto(series[0]!, v);
      }
      expect(await batched.metrics()).toBe(await own.metrics());
    }
    batched.resetMetrics();
    own.resetMetrics();
    reference.observe({ op: 'get' }, 0.5);
    observeInto(series[0]!, 0.5);
    expect(await batched.metrics()).toBe(await own.metrics());
  });
});
