import { pino, type DestinationStream, type Logger as PinoLogger } from 'pino';

export type Logger = PinoLogger;

/**
 * Paths whose values never reach a log line. Secrets live in `connection_string` (request bodies,
 * rows) and in auth headers; the wildcards cover them nested one and two levels deep.
 */
export const REDACT_PATHS = [
  'connection_string',
  'connection_string_ciphertext',
  '*.connection_string',
  '*.connection_string_ciphertext',
  '*.*.connection_string',
  '*.*.connection_string_ciphertext',
  'password',
  '*.password',
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'headers.cookie',
];

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'sluice' },
      redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}
