/**
 * Memory cost of the memory store per session: N sealed sessions as the service makes them,
 * measured after full collections as the V8 heap plus external memory (Buffers and
 * ArrayBuffers live outside the heap: a store holding them would look free by the heap alone).
 * Run: node --expose-gc memory.js [N]
 */
import { newRecord } from '../src/session/record.js';
import { createUserRefs, sealRecord } from '../src/session/seal.js';
import { createTokenCodec } from '../src/session/token.js';
import { createMemoryStore } from '../src/store/memory.js';

const N = Number(process.argv[2] ?? 100_000);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc');
const secrets = [Buffer.from('memory-bench-secret-0123456789abcdef01234')];
const codec = createTokenCodec(secrets);
const refs = createUserRefs(secrets);
const times = { absoluteTtl: 43_200_000, idleTtl: 1_800_000, touchInterval: 60_000, rotateAfter: 1_800_000, rotationGrace: 30_000 };
const store = createMemoryStore({ maxEntries: N * 2, sweepInterval: 0, clock: Date.now });
gc();
const used = () => {
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
};
const before = used();
for (let i = 0; i < N; i++) {
  const t = codec.issue();
  const r = newRecord({ user_id: `user${i}@example.com`, roles: ['user'], attributes: { email: `user${i}@example.com` } }, times, Date.now());
  await store.create(t.key, sealRecord(r, t.key, t.secret, refs.ref(r.user_id)));
}
gc();
const after = used();
if (store.size !== N) throw new Error(`store holds ${store.size}, expected ${N}`);
process.stdout.write(`${Math.round((after - before) / N)}\n`);
