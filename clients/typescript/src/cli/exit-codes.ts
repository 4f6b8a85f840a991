import { SluiceApiError, SluiceConnectionError, SluiceStreamError } from '../client';

/** What `sluice` exits with; the same for every command (README, "Command line"). */
export const EXIT = {
  /** Done. */
  ok: 0,
  /** The operation ran and failed: a sync that failed, a test that is not ok, a conflict, a 429. */
  failed: 1,
  /** The command line is wrong, or the API refused the input as invalid (400, 413, 415). */
  usage: 2,
  /** The source, run, job or key does not exist (404). */
  notFound: 3,
  /** No token, a bad or revoked one, or one without the scope needed (401, 403). */
  auth: 4,
  /** The API is unreachable, or answered a server error (5xx). */
  server: 5,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** A mistake on the command line (unknown option, missing argument, bad value). */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** The operation ran but did not succeed (a failed sync, a test with failed steps). */
export class OperationFailed extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OperationFailed';
  }
}

export function exitCodeOf(err: unknown): ExitCode {
  if (err instanceof UsageError) return EXIT.usage;
  if (err instanceof OperationFailed) return EXIT.failed;
  if (err instanceof SluiceConnectionError || err instanceof SluiceStreamError) return EXIT.server;
  if (err instanceof SluiceApiError) {
    if (err.status === 404) return EXIT.notFound;
    if (err.status === 401 || err.status === 403) return EXIT.auth;
    if (err.status === 400 || err.status === 413 || err.status === 415) return EXIT.usage;
    if (err.status >= 500) return EXIT.server;
    return EXIT.failed;
  }
  return EXIT.failed;
}
