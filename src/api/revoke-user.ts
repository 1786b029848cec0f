/**
 * Revoking every session of a user from outside a running service (the command line's
 * `revoke-user`): a connection of its own to the shared store, proved before use, and the same
 * destroyUser the service's DELETE /~session/user/<id> calls, which also tells every replica's
 * cache. Returns how many sessions ended.
 */

import { createUserRefs } from '../session/seal.js';
import type { StoreConfig } from '../store/index.js';
import { createStore, proveStore } from '../store/index.js';

export async function revokeUserSessions(
  storeConfig: StoreConfig & { readonly startupTimeout: number },
  secrets: readonly Buffer[],
  userId: string,
): Promise<number> {
  const store = createStore(storeConfig, Date.now);
  try {
    await proveStore(store, storeConfig.startupTimeout);
    return (await store.destroyUser(createUserRefs(secrets).all(userId))).length;
  } finally {
    await store.close();
  }
}
