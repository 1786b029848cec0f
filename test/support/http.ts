// Moved to harness/http.ts, shared by bench/ and the tests; this path keeps older imports working.
export * from '../../harness/http.js';
