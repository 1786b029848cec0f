// Moved to harness/raw-http.ts, shared by bench/ and the tests; this path keeps older imports working.
export * from '../../harness/raw-http.js';
