import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * The header senders sign with: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`. The
 * timestamp is inside the signed bytes, so a captured request can be replayed only within the
 * tolerance window, and the receiver refuses a signature it has already seen in that window.
 */
export const SIGNATURE_HEADER = 'X-Sluice-Signature';

/** How the header is described to senders (errors, OpenAPI, the test step). */
export const SIGNATURE_FORMAT =
  't=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>", keyed with the shared secret>';

/** The unstamped form of the first releases, accepted only with WEBHOOK_LEGACY_SIGNATURES=true. */
const LEGACY = /^sha256=([0-9a-f]{64})$/i;
const HEX_DIGEST = /^[0-9a-f]{64}$/i;
const TIMESTAMP = /^\d{1,12}$/;
/** Longer headers are not parsed: a few v1 entries (secret rotation) fit easily. */
const MAX_HEADER = 1024;

/** The header value for `body` signed with `secret` at `timestamp` (unix seconds): what a sender computes. */
export function signWebhookBody(
  secret: string,
  body: Buffer | string,
  timestamp = Math.floor(Date.now() / 1000),
): string {
  return `t=${timestamp},v1=${stampedDigest(secret, timestamp, body).toString('hex')}`;
}

/** The legacy header value (`sha256=<hex HMAC of the body>`), for senders not migrated yet. */
export function signWebhookBodyLegacy(secret: string, body: Buffer | string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

const stampedDigest = (secret: string, timestamp: number, body: Buffer | string): Buffer =>
  createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest();

export interface SignatureOptions {
  /** Allowed distance of the timestamp from now, either way. */
  toleranceSeconds: number;
  /** Accept the unstamped legacy form. */
  legacy: boolean;
  /** Now in milliseconds (tests). */
  now?: number;
}

/**
 * What a signature header proves. `valid`: the bytes were signed with the secret at `timestamp`
 * (stamped form; `digest` identifies the signature for the replay check) or in the legacy form.
 * The timestamp is judged only once the HMAC checks out, so only a holder of the secret learns
 * that a request failed on its age rather than on its signature.
 */
export type SignatureCheck =
  | { valid: true; form: 'v1'; timestamp: number; digest: string }
  | { valid: true; form: 'legacy' }
  | { valid: false; reason: 'invalid' | 'expired' | 'future' | 'legacy-disabled' };

/** Checks `header` against exactly these bytes under `secret`; digests compared in constant time. */
export function checkWebhookSignature(
  secret: string,
  body: Buffer,
  header: string,
  options: SignatureOptions,
): SignatureCheck {
  const value = header.trim();
  if (!value || value.length > MAX_HEADER) return { valid: false, reason: 'invalid' };
  const legacy = LEGACY.exec(value);
  if (legacy) {
    const expected = createHmac('sha256', secret).update(body).digest();
    if (!sameDigest(Buffer.from(legacy[1]!, 'hex'), expected)) return { valid: false, reason: 'invalid' };
    return options.legacy ? { valid: true, form: 'legacy' } : { valid: false, reason: 'legacy-disabled' };
  }

  let timestamp: number | undefined;
  const candidates: string[] = [];
  for (const part of value.split(',')) {
    const eq = part.indexOf('=');
    const key = part.slice(0, eq).trim();
    const item = part.slice(eq + 1).trim();
    if (eq < 0) return { valid: false, reason: 'invalid' };
    if (key === 't') {
      // One timestamp only: two would leave open which one was signed.
      if (timestamp !== undefined || !TIMESTAMP.test(item)) return { valid: false, reason: 'invalid' };
      timestamp = Number(item);
    } else if (key === 'v1') {
      if (!HEX_DIGEST.test(item)) return { valid: false, reason: 'invalid' };
      candidates.push(item.toLowerCase());
    }
    // Other schemes (a future v2) are ignored, so senders can send both while receivers upgrade.
  }
  if (timestamp === undefined || candidates.length === 0) return { valid: false, reason: 'invalid' };
  const expected = stampedDigest(secret, timestamp, body);
  // Several v1 entries let a sender sign with an old and a new secret during a rotation.
  const match = candidates.find((hex) => sameDigest(Buffer.from(hex, 'hex'), expected));
  if (!match) return { valid: false, reason: 'invalid' };
  const skew = timestamp - Math.floor((options.now ?? Date.now()) / 1000);
  if (skew < -options.toleranceSeconds) return { valid: false, reason: 'expired' };
  if (skew > options.toleranceSeconds) return { valid: false, reason: 'future' };
  return { valid: true, form: 'v1', timestamp, digest: match };
}

const sameDigest = (given: Buffer, expected: Buffer): boolean =>
  given.length === expected.length && timingSafeEqual(given, expected);
