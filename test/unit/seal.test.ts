import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createUserRefs, openRecord, sealRecord } from '../../src/session/seal.js';
import { OTHER_SECRET, SECRET, record } from '../support/fixtures.js';

describe('sessions at rest', () => {
  const r = record({ user_id: 'alice@example.com', roles: ['admin'], attributes: { email: 'alice@example.com', org: { name: 'Acme' } } });
  const key = '{abcdefgh}storekey';
  const secret = randomBytes(32);
  const refs = createUserRefs([SECRET]);

  it('opens what it sealed, field for field', () => {
    const s = sealRecord(r, key, secret, refs.ref(r.user_id));
    expect(openRecord(s, key, secret)).toEqual(r);
  });

  it('keeps no identity in the clear', () => {
    const s = sealRecord(r, key, secret, refs.ref(r.user_id));
    const dump = JSON.stringify(s);
    for (const secretText of ['alice', 'Acme', 'admin', 'example.com']) expect(dump).not.toContain(secretText);
    expect(Object.keys(s).sort()).toEqual(['created_at', 'data', 'expires_at', 'idle_expires_at', 'issued_at', 'touched_at', 'user', 'v']);
  });

  it('does not open under another secret, another key, or after tampering', () => {
    const s = sealRecord(r, key, secret, 'u');
    expect(openRecord(s, key, randomBytes(32))).toBeNull();
    expect(openRecord(s, '{abcdefgh}otherkey', secret)).toBeNull();
    const bytes = Buffer.from(s.data, 'base64url');
    bytes[20]! ^= 1;
    expect(openRecord({ ...s, data: bytes.toString('base64url') }, key, secret)).toBeNull();
    expect(openRecord({ ...s, data: '' }, key, secret)).toBeNull();
  });

  it('seals with a fresh nonce every time', () => {
    expect(sealRecord(r, key, secret, 'u').data).not.toBe(sealRecord(r, key, secret, 'u').data);
  });

  it('files users under keyed hashes: stable, not the ID, different per server secret', () => {
    expect(refs.ref('alice')).toBe(refs.ref('alice'));
    expect(refs.ref('alice')).not.toBe(refs.ref('bob'));
    expect(refs.ref('alice')).not.toContain('alice');
    const rotated = createUserRefs([OTHER_SECRET, SECRET]);
    expect(rotated.all('alice')).toEqual([rotated.ref('alice'), refs.ref('alice')]);
  });
});
