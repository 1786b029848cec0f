/**
 * Configuration, built once: embedded defaults, then the YAML file, then SESSIONGATE_*
 * environment variables, validated as a whole by one zod schema. The parts live in config/:
 * schema.ts (keys, defaults, rules between keys, the built shape), load.ts (files, variables,
 * secret files, problems), env.ts (the variables), duration.ts (the duration grammar).
 */
export { DURATION_HINT, parseDuration } from './config/duration.js';
export { ENV_KEYS, ENV_NAMES, splitList } from './config/env.js';
export { type Config, type ConfigResult, formatProblems, type LoadOptions, loadConfig } from './config/load.js';
export { configSchema, isLoopback } from './config/schema.js';
export { maskUrl } from './store/url.js';
