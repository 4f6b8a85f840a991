import { maskSecret, type SecretMask } from '../crypto/mask-secret';

/**
 * How a source's connection_string is shown: by URL shape (maskSecret), except a webhook source's,
 * which is the shared signing secret and never shown in any part, even when it parses as a URL.
 */
export const sourceSecretMask: SecretMask = {
  inputs: ['source_type'],
  mask: (_field, secret, row) => maskSecret(secret, { whole: row.source_type === 'webhook' }),
};
