import { hash, randomBytes, timingSafeEqual } from 'node:crypto';

/** Every token Sluice issues starts with this, so a leaked one is recognisable (secret scanners, logs). */
export const TOKEN_PREFIX = 'slc_';
/** How much of a token humans see (`slc_AbC1`): enough to tell keys apart, far too little to guess. */
export const SHOWN_PREFIX_LENGTH = 8;

/** A new token: the prefix and 32 random bytes in base64url (43 characters). */
export function generateToken(): string {
  return `${TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
}

/** SHA-256 of the token: what is stored and compared. A fast hash suffices for 256-bit random tokens. */
export function tokenDigest(token: string): Buffer {
  // One-shot crypto.hash: on every request, and about three times cheaper than createHash().
  return hash('sha256', token, 'buffer');
}

export const tokenHash = (token: string): string => tokenDigest(token).toString('hex');

export const shownPrefix = (token: string): string => token.slice(0, SHOWN_PREFIX_LENGTH);

/** Constant-time comparison of two SHA-256 digests (both always 32 bytes). */
export function sameDigest(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
