/**
 * Building the configured `external_sessions` sources (see core/external.ts): the schema of
 * one entry, validated with the rest of the configuration (config.ts), and the factory that
 * opens each source's connection to the application's store, once, at start-up.
 */
import { z } from 'zod';
import type { ExternalSource } from '../core/external.js';
import { type ExternalStore, openExternalStore } from './common.js';
import { createExpressSessionSource, expressSessionSchema } from './express-session.js';
import { createGenericSource, genericSchema } from './generic.js';

/** One `external_sessions` entry, validated with the rest of the configuration. */
export const externalSessionSchema = z.discriminatedUnion('kind', [expressSessionSchema, genericSchema], {
  error: 'must be express-session or generic',
});
export type ExternalSessionSpec = z.infer<typeof externalSessionSchema>;

export interface ExternalOptions {
  /** Opens the application's store for a source (tests may pass their own). */
  readonly openStore?: (url: string) => ExternalStore;
  /** Told when an optional touch write fails (the request it came from is not affected). */
  readonly onTouchError?: (kind: string, err: unknown) => void;
}

/** Opens the sources (their store connections). Called once at start-up. */
export function createExternalSources(specs: readonly ExternalSessionSpec[], opts: ExternalOptions = {}): ExternalSource[] {
  const open = opts.openStore ?? openExternalStore;
  const sources: ExternalSource[] = [];
  try {
    for (const spec of specs) {
      const store = open(spec.store);
      switch (spec.kind) {
        case 'express-session':
          sources.push(createExpressSessionSource(spec, store, (err) => opts.onTouchError?.(spec.kind, err)));
          break;
        case 'generic':
          sources.push(createGenericSource(spec, store));
          break;
        default: {
          const kind: never = spec;
          throw new Error(`external_sessions: unknown kind ${JSON.stringify(kind)}`);
        }
      }
    }
  } catch (err) {
    for (const s of sources) void s.close();
    throw err;
  }
  return sources;
}
