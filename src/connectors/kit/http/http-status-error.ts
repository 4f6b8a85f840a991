import { PermanentSyncError } from '../../connector';
import {
  ConnectorError,
  PERMANENT_CODES,
  toConnectorError,
  urlPeer,
  type FailureCode,
} from '../classify-error';

/** A final non-2xx answer (after redirects and retries). Carries no body: it could echo a credential. */
export class HttpStatusError extends Error {
  readonly code: FailureCode;
  constructor(
    readonly status: number,
    where: string,
  ) {
    super(`${where} answered HTTP ${status}${STATUS_HINT[status] ? ` (${STATUS_HINT[status]})` : ''}`);
    this.name = 'HttpStatusError';
    this.code = statusCode(status);
  }

  /** 4xx answers other than 408 and 429 repeat on retry: the request itself is wrong. */
  get permanent(): boolean {
    return (
      PERMANENT_CODES.has(this.code) ||
      (this.status >= 400 && this.status < 500 && !RETRYABLE_4XX.has(this.status))
    );
  }
}

const RETRYABLE_4XX = new Set([408, 425, 429]);

const STATUS_HINT: Record<number, string> = {
  401: 'the credentials were rejected',
  403: 'the credentials lack permission',
  404: 'not found',
  410: 'gone',
  429: 'rate limited',
};

/** Maps an HTTP status to the shared failure codes. */
export function statusCode(status: number): FailureCode {
  if (status === 401) return 'auth';
  if (status === 403) return 'permission';
  if (status === 404 || status === 410) return 'not_found';
  if (status >= 400 && status < 500 && !RETRYABLE_4XX.has(status)) return 'protocol';
  return 'unknown';
}

/** toConnectorError that also knows HTTP status failures (permanent ones are not retried). */
export function toHttpSyncError(err: unknown, what: string, url?: URL): PermanentSyncError | ConnectorError {
  if (err instanceof HttpStatusError) {
    const message = `${what}: ${err.message}`;
    return err.permanent ? new PermanentSyncError(message, err.code) : new ConnectorError(message, err.code);
  }
  return toConnectorError(err, what, [], url ? urlPeer(url) : undefined);
}
