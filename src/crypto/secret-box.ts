import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

const VERSION = 'v1';
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32; // AES-256
/** A key id is written into every envelope, so it must not contain the envelope's separator. */
const KEY_ID = /^[A-Za-z0-9_-]{1,32}$/;
/**
 * Strict base64 (standard or url-safe) of exactly 32 bytes: Node's decoder skips characters it
 * does not know, so without this a typo would quietly become another key.
 */
const KEY_TEXT = /^[A-Za-z0-9+/_-]{43}=?$/;

export class DecryptionError extends Error {
  constructor(reason: string) {
    super(`secret could not be decrypted: ${reason}`);
    this.name = 'DecryptionError';
  }
}

/**
 * AES-256-GCM envelope encryption with a keyring: the first key encrypts, every key decrypts.
 * Envelope: `v1:<keyId>:<nonce b64url>:<ciphertext+tag b64url>`. The associated data binds a
 * ciphertext to its row and column, so a value copied to another row fails to decrypt.
 */
export class SecretBox {
  private readonly keys = new Map<string, Buffer>();
  readonly primaryKeyId: string;

  /**
   * `encryptionKeys` is the ENCRYPTION_KEYS value (`id:base64key,...`, first key encrypts). The
   * configuration already lists every problem of it to the operator at start; the box still
   * refuses a keyring it cannot use safely, for callers that did not come through the config.
   */
  constructor(encryptionKeys: string) {
    for (const [i, entry] of encryptionKeys.split(',').entries()) {
      const [id, key, extra] = entry.trim().split(':');
      if (!id || !key || extra !== undefined || !KEY_ID.test(id) || !KEY_TEXT.test(key))
        throw new Error(`ENCRYPTION_KEYS entry ${i + 1} is not id:base64key of ${KEY_BYTES} bytes`);
      if (this.keys.has(id)) throw new Error(`ENCRYPTION_KEYS entry ${i + 1} repeats key id "${id}"`);
      this.keys.set(id, Buffer.from(key, 'base64'));
    }
    this.primaryKeyId = [...this.keys.keys()][0]!;
  }

  encrypt(plaintext: string, associatedData: string): string {
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.keys.get(this.primaryKeyId)!, nonce);
    cipher.setAAD(Buffer.from(associatedData, 'utf8'));
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]);
    return [VERSION, this.primaryKeyId, nonce.toString('base64url'), body.toString('base64url')].join(':');
  }

  decrypt(envelope: string, associatedData: string): string {
    const parts = envelope.split(':');
    if (parts.length !== 4 || parts[0] !== VERSION) throw new DecryptionError('unknown envelope format');
    const [, keyId, nonceText, bodyText] = parts as [string, string, string, string];
    const key = this.keys.get(keyId);
    if (!key) throw new DecryptionError(`key "${keyId}" is not in ENCRYPTION_KEYS`);
    const nonce = Buffer.from(nonceText, 'base64url');
    const body = Buffer.from(bodyText, 'base64url');
    if (nonce.length !== NONCE_BYTES || body.length < TAG_BYTES)
      throw new DecryptionError('truncated envelope');
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, nonce);
      decipher.setAAD(Buffer.from(associatedData, 'utf8'));
      decipher.setAuthTag(body.subarray(body.length - TAG_BYTES));
      return Buffer.concat([
        decipher.update(body.subarray(0, body.length - TAG_BYTES)),
        decipher.final(),
      ]).toString('utf8');
    } catch {
      throw new DecryptionError('authentication failed (tampered, or bound to another row)');
    }
  }

  /** Id of the key that sealed `envelope`, for rotation: rewrap what the primary key did not seal. */
  keyIdOf(envelope: string): string | undefined {
    const parts = envelope.split(':');
    // Anything else is not an envelope of ours: say so rather than return a piece of it.
    return parts.length === 4 && parts[0] === VERSION && parts[1] ? parts[1] : undefined;
  }
}
