// Moved to harness/envoy-wire.ts, shared by bench/ and the tests; this path keeps older imports working.
export * from '../../harness/envoy-wire.js';
