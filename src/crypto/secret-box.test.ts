import { describe, expect, it } from 'vitest';
import { checkEncryptionKeys } from '../config';
import { DecryptionError, SecretBox } from './secret-box';

const key = (byte: number) => Buffer.alloc(32, byte).toString('base64');
const A = `a:${key(0xa1)}`;
const B = `b:${key(0xb2)}`;
const AAD = 'raw_data_sources.connection_string:0b1e7a52-3c55-4c57-9d1e-8c2f4a0a7a11';
const OTHER_AAD = 'raw_data_sources.connection_string:5d0f7c11-0000-4000-8000-000000000001';
const SECRET = 'postgres://loader:S3cret-Pa55@127.0.0.1:5432/warehouse';

/** Flips one bit of a base64url-encoded part of an envelope. */
function flipBit(envelope: string, part: 2 | 3, byteIndex: number): string {
  const parts = envelope.split(':');
  const bytes = Buffer.from(parts[part]!, 'base64url');
  const i = byteIndex < 0 ? bytes.length + byteIndex : byteIndex;
  bytes[i] = bytes[i]! ^ 0x01;
  parts[part] = bytes.toString('base64url');
  return parts.join(':');
}

describe('SecretBox', () => {
  const box = new SecretBox(A);

  it('round-trips text, including the empty string and non-ASCII', () => {
    for (const text of [SECRET, '', 'pässwörd ✓ 🔑', 'x'.repeat(10_000)])
      expect(box.decrypt(box.encrypt(text, AAD), AAD)).toBe(text);
  });

  it('writes a v1 envelope naming the key, and never the plaintext', () => {
    const envelope = box.encrypt(SECRET, AAD);
    const [version, keyId, nonce, body] = envelope.split(':');
    expect(version).toBe('v1');
    expect(keyId).toBe('a');
    expect(Buffer.from(nonce!, 'base64url')).toHaveLength(12);
    // ciphertext is as long as the plaintext, plus the 16-byte tag
    expect(Buffer.from(body!, 'base64url')).toHaveLength(Buffer.byteLength(SECRET) + 16);
    expect(envelope).not.toContain('S3cret');
  });

  it('uses a fresh random nonce for every encryption', () => {
    const envelopes = Array.from({ length: 50 }, () => box.encrypt(SECRET, AAD));
    expect(new Set(envelopes).size).toBe(50);
    expect(new Set(envelopes.map((e) => e.split(':')[2])).size).toBe(50);
  });

  it('binds the ciphertext to its row: other associated data fails to decrypt', () => {
    const envelope = box.encrypt(SECRET, AAD);
    expect(() => box.decrypt(envelope, OTHER_AAD)).toThrow(DecryptionError);
    expect(() => box.decrypt(envelope, '')).toThrow(/authentication failed/);
  });

  it('fails closed on a tampered ciphertext, nonce or tag', () => {
    const envelope = box.encrypt(SECRET, AAD);
    const tampered = [
      flipBit(envelope, 3, 0), // first ciphertext byte
      flipBit(envelope, 3, -1), // last tag byte
      flipBit(envelope, 3, -16), // first tag byte
      flipBit(envelope, 2, 0), // nonce
    ];
    for (const t of tampered) {
      expect(t).not.toBe(envelope);
      expect(() => box.decrypt(t, AAD)).toThrow(DecryptionError);
    }
  });

  it('refuses truncated and foreign envelopes without leaking what they hold', () => {
    const envelope = box.encrypt(SECRET, AAD);
    const [v, id, nonce, body] = envelope.split(':') as [string, string, string, string];
    const bad = [
      '',
      'not-an-envelope',
      `v2:${id}:${nonce}:${body}`,
      `${v}:${id}:${nonce}`,
      `${v}:${id}:${nonce}:${body}:extra`,
      `${v}:${id}:${nonce.slice(0, 8)}:${body}`,
      `${v}:${id}:${nonce}:${Buffer.alloc(15).toString('base64url')}`,
    ];
    for (const b of bad) {
      const error = (() => {
        try {
          box.decrypt(b, AAD);
        } catch (err) {
          return err as Error;
        }
        return undefined;
      })();
      expect(error, b).toBeInstanceOf(DecryptionError);
      expect(error!.message).not.toContain('S3cret');
    }
  });

  it('fails on a key id that is not in the keyring', () => {
    const envelope = new SecretBox(B).encrypt(SECRET, AAD);
    expect(() => box.decrypt(envelope, AAD)).toThrow(/key "b" is not in ENCRYPTION_KEYS/);
  });

  it('rotates: after ENCRYPTION_KEYS becomes "b,a", old envelopes still open and new ones use b', () => {
    const old = new SecretBox(A).encrypt(SECRET, AAD);
    const rotated = new SecretBox(`${B},${A}`);
    expect(rotated.primaryKeyId).toBe('b');
    expect(rotated.decrypt(old, AAD)).toBe(SECRET);
    const fresh = rotated.encrypt(SECRET, AAD);
    expect(rotated.keyIdOf(old)).toBe('a');
    expect(rotated.keyIdOf(fresh)).toBe('b');
    // Once a is retired, only rewrapped (b) envelopes open.
    const retired = new SecretBox(B);
    expect(retired.decrypt(fresh, AAD)).toBe(SECRET);
    expect(() => retired.decrypt(old, AAD)).toThrow(DecryptionError);
  });

  it('keyIdOf answers undefined for anything that is not an envelope', () => {
    for (const junk of ['', 'plain text', 'a:b', 'v1::x:y', 'x:a:b:c', 'v1:a:b:c:d'])
      expect(box.keyIdOf(junk), junk).toBeUndefined();
  });

  it('refuses a malformed keyring at construction', () => {
    for (const keys of [
      '',
      'a',
      `a:${key(1)},a:${key(2)}`,
      `a:${Buffer.alloc(16).toString('base64')}`,
      `bad id:${key(1)}`,
    ])
      expect(() => new SecretBox(keys), keys).toThrow();
  });

  // The box does not import the configuration (config.ts imports no feature), so both check the
  // ENCRYPTION_KEYS format; this keeps them agreeing on what a usable keyring is.
  it('accepts exactly the keyrings the configuration accepts', () => {
    const short = Buffer.alloc(16).toString('base64');
    const typo = `${key(3).slice(0, 10)}#!${key(3).slice(10)}`;
    for (const keys of [
      A,
      `${B},${A}`,
      ` a:${key(1)} , b:${Buffer.alloc(32, 0xfb).toString('base64url')}`,
      '',
      'a',
      ',',
      `a:${key(1)},`,
      `a:${key(1)},a:${key(2)}`,
      `a:${short}`,
      `a:${typo}`,
      `a:${key(1)}:x`,
      `bad id:${key(1)}`,
      `${'i'.repeat(33)}:${key(1)}`,
    ]) {
      const configAccepts = checkEncryptionKeys(keys).length === 0;
      const boxAccepts = (() => {
        try {
          new SecretBox(keys);
          return true;
        } catch {
          return false;
        }
      })();
      expect(boxAccepts, keys).toBe(configAccepts);
    }
  });
});
