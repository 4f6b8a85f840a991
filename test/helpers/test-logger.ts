import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../src/logger';

/**
 * A logger whose lines are kept, not printed: what a test's app, pools and helpers log stays out of
 * the runner's output (a passing test expecting an outage would otherwise print "Acquire connection
 * error" with a stack, which reads like a failure), and is there for the test to check.
 */
export function collectingLogger(level = 'info'): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk));
      done();
    },
  });
  return { logger: createLogger(level, sink), lines };
}
