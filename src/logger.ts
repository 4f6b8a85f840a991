import { createRequire } from 'node:module';
import { pino, type DestinationStream, type Logger as PinoLogger } from 'pino';
import { scrub, scrubLine } from './connectors/kit/secret-scrubber';

export type Logger = PinoLogger;

/** Lines gather up to this many bytes before standard output is written... */
const STDOUT_BATCH_BYTES = 4096;
/** ...or for at most this long. */
const STDOUT_FLUSH_MS = 200;
type Destination = ReturnType<typeof pino.destination>;
let stdout: Destination | undefined;

/**
 * Standard output, written in batches of about 4 KB and at least every 200 ms, and in full when
 * the process exits (process.exit included). One write per line was a tenth of a GET's CPU in
 * bench/api-read.bench.ts; the cost is that a process killed with SIGKILL loses its last 200 ms
 * of lines. Writes stay synchronous, as pino's default: nothing is in flight at exit. One per
 * process, however many loggers share it.
 */
export function batchedStdout(): Destination {
  if (stdout) return stdout;
  const stream = pino.destination({
    dest: 1,
    sync: true,
    minLength: STDOUT_BATCH_BYTES,
    periodicFlush: STDOUT_FLUSH_MS,
  });
  const flush = () => stream.flushSync();
  process.once('exit', flush);
  // A crash (uncaught exception, unhandled rejection) ends the process without 'exit' listeners.
  process.once('uncaughtExceptionMonitor', flush);
  stdout = stream;
  return stream;
}

/**
 * Standard output for a person: pino-pretty's one coloured line per entry (a dev dependency, so a
 * production install without it falls back to JSON). Loaded with require, only when asked for, so
 * that production never reads it; it writes synchronously, so lines keep their order with stderr.
 */
function prettyStdout(): DestinationStream | undefined {
  try {
    const require = createRequire(import.meta.url);
    const pretty = require('pino-pretty') as (options: object) => DestinationStream;
    return pretty({
      destination: 1,
      sync: true,
      translateTime: 'HH:MM:ss.l',
      singleLine: true,
      ignore: 'pid,hostname,service',
    });
  } catch {
    return undefined;
  }
}

/**
 * Structured JSON logs with secrets removed before they are written: every logged object is
 * walked, so a connection string is censored at any depth, inside errors too,
 * and the finished line is scrubbed once more for credentials inside free text such as `msg`.
 */
export function createLogger(
  level: string,
  destination?: DestinationStream,
  format: 'pretty' | 'json' = 'json',
): Logger {
  return pino(
    {
      level,
      base: { service: 'sluice' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: {
        log: (object) => scrub(object) as Record<string, unknown>,
      },
      // Errors were already turned into plain, scrubbed objects by `scrub`; pino's own serializer would
      // re-read them as errors and rename their type to "Object".
      serializers: { err: (err: unknown) => err },
      hooks: { streamWrite: scrubLine },
    },
    destination ?? (format === 'pretty' ? prettyStdout() : undefined) ?? batchedStdout(),
  );
}
