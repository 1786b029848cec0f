// Moved to harness/redis.ts, shared by bench/ and the tests; this path keeps older imports working.
export * from '../../harness/redis.js';
