import { HttpError } from '../http/errors';
import { SIGNATURE_HEADER } from '../connectors/webhook/webhook-signature';

/** A webhook receipt without a valid signature: the same answer for missing, malformed and wrong. */
export class InvalidSignatureError extends HttpError {
  constructor() {
    super(
      401,
      'invalid-signature',
      'Unauthorized',
      `Sign the raw body: ${SIGNATURE_HEADER}: sha256=<hex HMAC-SHA256 of the body, keyed with the source's secret>.`,
      undefined,
      { 'WWW-Authenticate': `HMAC-SHA256 header="${SIGNATURE_HEADER}"` },
    );
  }
}
