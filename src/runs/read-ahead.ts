/**
 * Yields `map(item)` for each item of `source`, already reading and mapping the next item while the
 * consumer works on this one. A sync reads and prepares its next batch while the current one is
 * being written, so the source, the worker and Postgres work side by side instead of in turn. At
 * most one item is held ahead. When the consumer stops early, the source is closed once its read
 * in flight has ended.
 */
export async function* readAhead<T, U>(source: AsyncIterable<T>, map: (item: T) => U): AsyncGenerator<U> {
  const iterator = source[Symbol.asyncIterator]();
  let finished = false;
  const pull = async (): Promise<IteratorResult<U, undefined>> => {
    const item = await iterator.next();
    return item.done ? { done: true, value: undefined } : { done: false, value: map(item.value) };
  };
  try {
    let next = pull();
    for (;;) {
      const item = await next;
      if (item.done) {
        finished = true;
        return;
      }
      next = pull();
      // Observed here so that a read failing while the consumer is busy is not an unhandled
      // rejection; the loop still awaits it and throws it in order, after this item.
      next.catch(() => undefined);
      yield item.value;
    }
  } finally {
    if (!finished) await iterator.return?.();
  }
}
