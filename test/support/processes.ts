// Moved to harness/processes.ts, shared by bench/ and the tests; this path keeps older imports working.
export * from '../../harness/processes.js';
