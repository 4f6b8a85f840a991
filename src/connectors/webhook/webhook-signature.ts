import { createHmac, timingSafeEqual } from 'node:crypto';

/** The header senders sign with: `sha256=<hex HMAC-SHA256 of the raw body>`. */
export const SIGNATURE_HEADER = 'X-Sluice-Signature';

const SIGNATURE = /^sha256=([0-9a-f]{64})$/i;

/** The header value for `body` signed with `secret` (what a sender computes). */
export function signWebhookBody(secret: string, body: Buffer | string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/**
 * True when `header` is a well-formed signature of exactly these bytes under `secret`. The digests
 * are compared in constant time, over buffers of equal length (the format fixes it).
 */
export function verifyWebhookSignature(secret: string, body: Buffer, header: string): boolean {
  const match = SIGNATURE.exec(header.trim());
  if (!match) return false;
  const given = Buffer.from(match[1]!, 'hex');
  const expected = createHmac('sha256', secret).update(body).digest();
  return given.length === expected.length && timingSafeEqual(given, expected);
}
