import type { Logger } from './logger';

/** One step of a shutdown: a name for the log and the close itself. */
export type CloseStep = [name: string, close: () => unknown];

/**
 * Runs every step in order, each isolated: a step that throws (or rejects) is logged and the next
 * one still runs, so a failed queue close never leaves Postgres connections open. Resolves once
 * all ran; rejects afterwards with an AggregateError of the failures, if any.
 */
export async function closeInOrder(logger: Logger, steps: CloseStep[]): Promise<void> {
  const failures: Error[] = [];
  for (const [name, close] of steps) {
    try {
      await close();
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      logger.warn({ step: name, err: error.message }, 'close step failed; going on with the rest');
      failures.push(new Error(`${name}: ${error.message}`));
    }
  }
  if (failures.length) throw new AggregateError(failures, `${failures.length} close step(s) failed`);
}
