/**
 * AES-256-GCM sealing, the one place for it: sealed records (seal.ts) and the API token
 * catalog (api/tokens.ts). A sealed value is base64url(nonce ‖ ciphertext ‖ tag), with
 * associated data binding it to where it is stored, so a value moved to another key does not
 * open.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

const NONCE = 12;
const TAG = 16;

/** Seals `plain` under a 32-byte `key`, bound to `aad`. */
export function seal(key: Buffer, plain: Buffer, aad: string): string {
  const nonce = randomBytes(NONCE);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(Buffer.from(aad));
  return Buffer.concat([nonce, cipher.update(plain), cipher.final(), cipher.getAuthTag()]).toString('base64url');
}

/** The plaintext, or null when `sealed` was not sealed under this key and `aad` (or was altered). */
export function open(key: Buffer, sealed: string, aad: string): Buffer | null {
  const raw = Buffer.from(sealed, 'base64url');
  if (raw.length < NONCE + TAG) return null;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, NONCE));
    decipher.setAAD(Buffer.from(aad));
    decipher.setAuthTag(raw.subarray(raw.length - TAG));
    return Buffer.concat([decipher.update(raw.subarray(NONCE, raw.length - TAG)), decipher.final()]);
  } catch {
    return null;
  }
}
