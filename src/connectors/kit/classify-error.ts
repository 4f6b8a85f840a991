import { PermanentSyncError } from '../connector';
import { OutboundRefusedError } from '../outbound';
import { hideSecrets } from './secret-scrubber';

/**
 * The stable codes of a failed (or warning) test step and of a failed sync. Users and alerts rely
 * on them, so a code is never renamed; every connector reports through classifyError below.
 *
 * | code              | meaning                                                          | sync retried? |
 * |-------------------|------------------------------------------------------------------|---------------|
 * | dns               | the host name does not resolve                                   | yes           |
 * | refused           | nothing accepts connections there (refused, reset, unreachable)  | yes           |
 * | timeout           | no answer within the bound, or the run was cancelled             | yes           |
 * | tls               | TLS negotiation or certificate check failed                      | yes           |
 * | auth              | the credentials were rejected                                    | no            |
 * | not_found         | database, table, stream, file or URL does not exist              | no            |
 * | permission        | logged in, but not allowed to read it                            | no            |
 * | forbidden_address | the outbound policy refuses the address the host resolves to     | no            |
 * | invalid_config    | the source's settings cannot work (bad metadata, unknown column) | no            |
 * | too_large         | a record, batch or decompressed body is over a byte limit        | no            |
 * | protocol          | the peer answered, but not as the source type expects            | yes           |
 * | unknown           | anything else                                                    | yes           |
 *
 * Warnings carry codes of their own, never failures: `inactive` (a webhook source that refuses
 * receipts) and `stale_buffer` (webhook payloads wait longer than two schedule ticks).
 */
/** Every failure code, once: the type, the runtime check and the published step codes derive from it. */
export const FAILURE_CODE_LIST = [
  'dns',
  'refused',
  'timeout',
  'tls',
  'auth',
  'not_found',
  'permission',
  'forbidden_address',
  'invalid_config',
  'too_large',
  'protocol',
  'unknown',
] as const;
export type FailureCode = (typeof FAILURE_CODE_LIST)[number];

const FAILURE_CODES: ReadonlySet<string> = new Set(FAILURE_CODE_LIST);

/** Codes a retry cannot fix. */
export const PERMANENT_CODES: ReadonlySet<FailureCode> = new Set([
  'auth',
  'not_found',
  'permission',
  'forbidden_address',
  'invalid_config',
  'too_large',
]);

/** A transient connector failure with its code: the sync is retried with backoff. */
export class ConnectorError extends Error {
  constructor(
    message: string,
    readonly code: FailureCode,
  ) {
    super(message);
    this.name = 'ConnectorError';
  }
}

/**
 * A failure a connector recognised itself (a peer that is not a NATS server, a missing stream),
 * with its code. Unlike ConnectorError it is still wrapped by toConnectorError, so a permanent
 * code stops the sync and the message gets its "what" prefix.
 */
export class SourceFailure extends Error {
  constructor(
    message: string,
    readonly code: FailureCode,
  ) {
    super(message);
    this.name = 'SourceFailure';
  }
}

const BY_ERRNO: Readonly<Record<string, FailureCode>> = {
  ENOTFOUND: 'dns',
  EAI_AGAIN: 'dns',
  EAI_NONAME: 'dns',
  ECONNREFUSED: 'refused',
  ECONNRESET: 'refused',
  EHOSTUNREACH: 'refused',
  ENETUNREACH: 'refused',
  ETIMEDOUT: 'timeout',
  ETIMEOUT: 'timeout',
  ESOCKETTIMEDOUT: 'timeout',
  UND_ERR_CONNECT_TIMEOUT: 'timeout',
  UND_ERR_HEADERS_TIMEOUT: 'timeout',
  UND_ERR_BODY_TIMEOUT: 'timeout',
  ABORT_ERR: 'timeout',
  ENOENT: 'not_found',
  EACCES: 'permission',
  EPERM: 'permission',
  forbidden_address: 'forbidden_address',
  // PostgreSQL SQLSTATEs
  '28P01': 'auth',
  '28000': 'auth',
  '3D000': 'not_found',
  '42P01': 'not_found',
  '42501': 'permission',
  '25006': 'permission', // a write inside our read-only transaction
  '42703': 'invalid_config', // unknown column (cursor_column or query)
  // MySQL / MariaDB
  ER_ACCESS_DENIED_ERROR: 'auth',
  ER_DBACCESS_DENIED_ERROR: 'permission',
  ER_BAD_DB_ERROR: 'not_found',
  ER_NO_SUCH_TABLE: 'not_found',
  ER_TABLEACCESS_DENIED_ERROR: 'permission',
  ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION: 'permission',
};

// Error classes of the drivers and clients that carry no usable code.
const BY_NAME: Readonly<Record<string, FailureCode>> = {
  AbortError: 'timeout',
  TimeoutError: 'timeout',
  KnexTimeoutError: 'timeout',
  StreamNotFoundError: 'not_found',
  JetStreamNotEnabled: 'not_found',
  PermissionViolationError: 'permission',
  AuthorizationError: 'auth',
  UserAuthenticationExpiredError: 'auth',
};

// Redis replies and NATS client errors known only by their words.
const BY_MESSAGE: ReadonlyArray<readonly [RegExp, FailureCode]> = [
  [/no such key/i, 'not_found'],
  [/^WRONGTYPE/, 'invalid_config'],
  [/^NOPERM|Permissions? Violation/i, 'permission'],
  [/called without any password configured|invalid password|invalid username-password/i, 'auth'],
  [/DB index is out of range|invalid DB index/i, 'invalid_config'],
  // A reply parser meeting bytes of another protocol (an HTTP or SSH server on a Redis or
  // PostgreSQL port): ioredis, then pg-protocol.
  [
    /^Unknown RESP type|^Protocol error|^received invalid response|^Unknown authenticationOk message/i,
    'protocol',
  ],
];

/**
 * What a step or sync says when a driver could not parse the peer's answer. The driver's own
 * message quotes the peer's bytes ("Unknown RESP type 72 "H"" is the H of "HTTP/1.1"), which
 * would make test steps a banner grabber for whatever listens at an address: never repeated.
 */
export const PROTOCOL_MISMATCH = 'the peer did not answer in the protocol of this source type';

/**
 * The message of a failure fit to show: the driver's own words, except for a protocol mismatch
 * the driver described in the peer's bytes (see PROTOCOL_MISMATCH). Our own errors say what they mean.
 */
export function failureMessage(err: unknown): string {
  const message = (err as Error)?.message ?? String(err);
  return !isOwnError(err) && classifyError(err) === 'protocol' ? PROTOCOL_MISMATCH : message;
}

/** Errno-like codes of a connection that got no answer in time (a cancellation is not one). */
const NO_ANSWER = /^(ETIMEDOUT|ETIMEOUT|ESOCKETTIMEDOUT|UND_ERR_\w*TIMEOUT)$/;

/** `host:port` as an address is written, an IPv6 one bracketed. */
export function hostPort(host: string, port: number | string): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** The host:port a URL dials (the scheme's default port when it names none). */
export function urlPeer(url: URL): string {
  const port = url.port || ({ 'https:': 443, 'http:': 80 } as Record<string, number>)[url.protocol] || '';
  const host = url.hostname.replace(/^\[|\]$/g, '');
  return port === '' ? host : hostPort(host, port);
}

/** The address a Node network error names (`address` and `port`), anywhere in its cause chain. */
function netAddress(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const { address, port } = e as { address?: unknown; port?: unknown };
    if (typeof address === 'string' && (typeof port === 'number' || typeof port === 'string'))
      return hostPort(address, port);
  }
  return undefined;
}

/** The first errno-like code in the cause chain. */
function errnoOf(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^(E[A-Z]+|UND_ERR_[A-Z_]+)$/.test(code)) return code;
  }
  return undefined;
}

/**
 * A refused, reset, unreachable or unanswered connection in words a user can act on: the address
 * (from the error, else `peer`, the host:port the connector dialled) and what to check. Undefined
 * for anything else (and for a cancellation, which also classifies as timeout), or when no address
 * is known: then the driver's own message stands.
 */
export function unreachableMessage(err: unknown, peer?: string): string | undefined {
  const code = classifyError(err);
  if (code !== 'refused' && code !== 'timeout') return undefined;
  const at = netAddress(err) ?? peer;
  if (!at) return undefined;
  const errno = errnoOf(err);
  if (code === 'refused') {
    if (errno === 'ECONNRESET')
      return `connection to ${at} was reset — is that the server's port, and does it speak this source's protocol? (ECONNRESET)`;
    if (errno === 'EHOSTUNREACH' || errno === 'ENETUNREACH')
      return `${at} is unreachable — is the host address right, and is there a network route to it? (${errno})`;
    return `connection refused by ${at} — is the server running and listening on that port? (${errno ?? 'refused'})`;
  }
  const name = (err as { name?: unknown })?.name;
  if (
    name !== 'DeadlineError' &&
    name !== 'TimeoutError' &&
    name !== 'KnexTimeoutError' &&
    !NO_ANSWER.test(errno ?? '')
  )
    return undefined;
  const detail = (err as Error)?.message || errno || 'timed out';
  return `no answer from ${at} (${detail}) — is the host and port right, is a firewall dropping the traffic, and is the server up and not overloaded?`;
}

/**
 * Whether `err` is one of Sluice's own connector errors: its code was decided where the failure
 * was understood best, and its message already says enough. (HttpStatusError is known by name:
 * it lives in the HTTP client, which imports this module.)
 */
export function isOwnError(err: unknown): boolean {
  return (
    err instanceof PermanentSyncError ||
    err instanceof ConnectorError ||
    err instanceof SourceFailure ||
    err instanceof OutboundRefusedError ||
    (err as { name?: unknown })?.name === 'HttpStatusError'
  );
}

/**
 * Maps any error (or one in its `cause` chain) to a stable code: a code our own errors carry
 * first, then what the drivers say: errno and SQLSTATE, error class, Redis/NATS words, TLS and
 * authentication words.
 */
export function classifyError(err: unknown): FailureCode {
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (isOwnError(e) && typeof code === 'string' && FAILURE_CODES.has(code) && code !== 'unknown')
      return code as FailureCode;
    const byName = BY_NAME[String((e as { name?: unknown }).name ?? '')];
    if (byName) return byName;
    // JetStream API error 10059: stream not found (older clients expose only the code).
    if (code === 10059) return 'not_found';
    const text = String(code ?? '');
    if (BY_ERRNO[text]) return BY_ERRNO[text];
    const message = String((e as { message?: unknown }).message ?? '');
    for (const [pattern, found] of BY_MESSAGE) if (pattern.test(message)) return found;
    if (/^ERR_TLS|CERT|SSL/i.test(text) || /certificate|ssl|tls/i.test(message)) return 'tls';
    if (/NOAUTH|WRONGPASS|Authentication|Authorization Violation/i.test(message)) return 'auth';
  }
  return 'unknown';
}

/**
 * Wraps any error from reaching a source: permanent codes become PermanentSyncError (no retry),
 * the rest ConnectorError (retried). `what` prefixes the message ("connect", "read page 3"); a
 * refused or unanswered connection says where and what to check (unreachableMessage);
 * `secrets` are masked in it, since drivers sometimes echo what they were given.
 */
export function toConnectorError(
  err: unknown,
  what: string,
  secrets: readonly string[] = [],
  /** host:port the connector dialled: a refused or unanswered connection names it and what to check. */
  peer?: string,
): PermanentSyncError | ConnectorError {
  if (err instanceof PermanentSyncError || err instanceof ConnectorError) return err;
  const code = classifyError(err);
  const message = hideSecrets(`${what}: ${unreachableMessage(err, peer) ?? failureMessage(err)}`, secrets);
  return PERMANENT_CODES.has(code)
    ? new PermanentSyncError(message, code)
    : new ConnectorError(message, code);
}
