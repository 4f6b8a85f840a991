import { PermanentSyncError } from '../connector';
import { ConnectorError, PERMANENT_CODES, classifyError, type FailureCode } from '../connector-errors';

/** A failure this connector recognised itself, with its stable code. */
export class StreamFailure extends Error {
  constructor(
    message: string,
    readonly failure: FailureCode,
  ) {
    super(message);
    this.name = 'StreamFailure';
  }
}

// Redis replies and NATS client errors that the shared classifier does not know.
const BY_MESSAGE: ReadonlyArray<readonly [RegExp, FailureCode]> = [
  [/no such key/i, 'not_found'],
  [/^WRONGTYPE/, 'invalid_config'],
  [/^NOPERM|Permissions? Violation/i, 'permission'],
  [/called without any password configured|invalid password|invalid username-password/i, 'auth'],
  [/DB index is out of range|invalid DB index/i, 'invalid_config'],
];

const KNOWN_CODES: ReadonlySet<string> = new Set([
  'dns',
  'refused',
  'timeout',
  'tls',
  'auth',
  'not_found',
  'permission',
  'forbidden_address',
  'invalid_config',
  'protocol',
]);

const BY_NAME: Readonly<Record<string, FailureCode>> = {
  StreamNotFoundError: 'not_found',
  JetStreamNotEnabled: 'not_found',
  PermissionViolationError: 'permission',
  AuthorizationError: 'auth',
  UserAuthenticationExpiredError: 'auth',
};

/** Redis and NATS aware classification, falling back to the shared one (errno, TLS, auth words). */
export function classifyStreamError(err: unknown): FailureCode {
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof StreamFailure) return e.failure;
    if (e instanceof PermanentSyncError || e instanceof ConnectorError) {
      const code = String(e.code);
      if (KNOWN_CODES.has(code)) return code as FailureCode;
    }
    const byName = BY_NAME[String((e as { name?: unknown }).name ?? '')];
    if (byName) return byName;
    // JetStream API error 10059: stream not found (older clients expose only the code).
    if ((e as { code?: unknown }).code === 10059) return 'not_found';
    const message = String((e as { message?: unknown }).message ?? '');
    for (const [pattern, code] of BY_MESSAGE) if (pattern.test(message)) return code;
  }
  return classifyError(err);
}

/** Replaces every secret in `text`: drivers sometimes echo what they were given. */
export function hideSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) if (secret) out = out.split(secret).join('****');
  return out;
}

/** A sync failure: permanent codes (auth, not_found, ...) are not retried, the rest are. */
export function toSyncError(
  err: unknown,
  what: string,
  secrets: readonly string[],
): PermanentSyncError | ConnectorError {
  if (err instanceof PermanentSyncError || err instanceof ConnectorError) return err;
  const code = classifyStreamError(err);
  const message = hideSecrets(`${what}: ${(err as Error)?.message ?? String(err)}`, secrets);
  return PERMANENT_CODES.has(code)
    ? new PermanentSyncError(message, code)
    : new ConnectorError(message, code);
}
