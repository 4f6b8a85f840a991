import { HttpError } from '../http/errors';
import { SIGNATURE_FORMAT, SIGNATURE_HEADER } from '../connectors/webhook/webhook-signature';

/**
 * A webhook receipt without a valid signature: the same answer for missing, malformed and wrong.
 * Only a request whose HMAC checks out (a holder of the secret) is told more: that its timestamp
 * is outside the window, or that the legacy form is switched off.
 */
export class InvalidSignatureError extends HttpError {
  constructor(detail = `Sign the raw body: ${SIGNATURE_HEADER}: ${SIGNATURE_FORMAT}.`) {
    super(401, 'invalid-signature', 'Unauthorized', detail, undefined, {
      'WWW-Authenticate': `HMAC-SHA256 header="${SIGNATURE_HEADER}"`,
    });
  }
}

/** A correctly signed request already received within the tolerance window (a replay). */
export class ReplayedSignatureError extends HttpError {
  constructor() {
    super(
      409,
      'replayed-signature',
      'Conflict',
      'This signature was already accepted: sign each delivery (a retry too) with a fresh timestamp.',
    );
  }
}
