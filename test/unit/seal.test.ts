import { hkdfSync, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createRecordOpener, createUserRefs, openRecord, sealRecord } from '../../src/session/seal.js';
import { deriveKey } from '../../src/session/token.js';
import { OTHER_SECRET, record, SECRET } from '../support/fixtures.js';

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

describe('record opener', () => {
  const refs = createUserRefs([SECRET]);
  const key = '{abcdefgh}memo';
  const secret = randomBytes(32);
  const r = record({ user_id: 'memo-user' });

  it('reuses the identity it opened while ciphertext and secret stay the same, with the clock as stored', () => {
    const opener = createRecordOpener(10);
    const s = sealRecord(r, key, secret, refs.ref(r.user_id));
    expect(opener.open(s, key, secret)).toEqual(r);
    const touched = { ...s, touched_at: s.touched_at + 5, idle_expires_at: s.idle_expires_at + 5 };
    expect(opener.open(touched, key, secret)).toEqual({ ...r, touched_at: r.touched_at + 5, idle_expires_at: r.idle_expires_at + 5 });
  });

  it('never serves a remembered identity to another secret or another ciphertext', () => {
    const opener = createRecordOpener(10);
    const s = sealRecord(r, key, secret, 'u');
    expect(opener.open(s, key, secret)).not.toBeNull();
    expect(opener.open(s, key, randomBytes(32))).toBeNull();
    const other = sealRecord({ ...r, user_id: 'someone-else' }, key, secret, 'u');
    expect(opener.open(other, key, secret)?.user_id).toBe('someone-else');
    const bytes = Buffer.from(s.data, 'base64url');
    bytes[14]! ^= 1;
    expect(opener.open({ ...s, data: bytes.toString('base64url') }, key, secret)).toBeNull();
  });
});

describe('deriveKey', () => {
  it('is HKDF-SHA256, byte for byte', () => {
    const ikm = randomBytes(32);
    expect(deriveKey(ikm, 'some info')).toEqual(Buffer.from(hkdfSync('sha256', ikm, 'sessiongate', 'some info', 32)));
  });
});
