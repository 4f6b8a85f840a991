/**
 * Polls `read` until `done` holds, and returns that value; throws with the last value after `ms`.
 * The one way a test waits for an effect that lands after the call that caused it (an event
 * published after the run row is written, a job completed after its processor returned, a delivery
 * row written after the receiver answered): never a fixed sleep, never a single read. The bound is
 * generous because the suite must pass on a loaded 2-core machine (load 20+); a met condition
 * returns at once, so only a failing test waits it out.
 */
export async function until<T>(
  read: () => Promise<T> | T,
  done: (v: T) => boolean,
  ms = 30_000,
  everyMs = 50,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}
