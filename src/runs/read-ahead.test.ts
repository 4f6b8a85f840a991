import { describe, expect, it } from 'vitest';
import { readAhead } from './read-ahead';

/** A source of `count` numbers that logs every request, yield and close. */
function source(count: number, failAt?: number) {
  const log: string[] = [];
  async function* gen(): AsyncGenerator<number> {
    try {
      for (let i = 1; i <= count; i++) {
        log.push(`read ${i}`);
        await new Promise((resolve) => setTimeout(resolve, 1));
        if (i === failAt) throw new Error(`read ${i} failed`);
        yield i;
      }
    } finally {
      log.push('closed');
    }
  }
  return { log, items: gen() };
}

describe('readAhead', () => {
  it('maps every item in order, reading the next one while the consumer works, never two ahead', async () => {
    const { log, items } = source(3);
    const seen: number[] = [];
    for await (const n of readAhead(items, (i) => i * 10)) {
      // The consumer is slow: by now the next read has started, and no further one.
      await new Promise((resolve) => setTimeout(resolve, 20));
      log.push(`used ${n}`);
      seen.push(n);
    }
    expect(seen).toEqual([10, 20, 30]);
    // Asking for item 3 is what made the source read it; the source is done before 30 is used.
    expect(log).toEqual(['read 1', 'read 2', 'used 10', 'read 3', 'used 20', 'closed', 'used 30']);
  });

  it('a read failing while the consumer works surfaces after the item before it, without an unhandled rejection', async () => {
    const { log, items } = source(3, 2);
    const seen: number[] = [];
    const run = async () => {
      for await (const n of readAhead(items, (i) => i)) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        seen.push(n);
      }
    };
    await expect(run()).rejects.toThrow('read 2 failed');
    expect(seen).toEqual([1]);
    expect(log).toEqual(['read 1', 'read 2', 'closed']);
  });

  it('a consumer that stops early closes the source once the read in flight has ended', async () => {
    const { log, items } = source(5);
    for await (const n of readAhead(items, (i) => i)) if (n === 2) break;
    expect(log).toEqual(['read 1', 'read 2', 'read 3', 'closed']);
  });

  it('a map that throws fails the loop at that item and closes the source', async () => {
    const { log, items } = source(5);
    const seen: number[] = [];
    const run = async () => {
      for await (const n of readAhead(items, (i) => {
        if (i === 2) throw new Error('cannot map 2');
        return i;
      }))
        seen.push(n);
    };
    await expect(run()).rejects.toThrow('cannot map 2');
    expect(seen).toEqual([1]);
    expect(log.at(-1)).toBe('closed');
  });
});
