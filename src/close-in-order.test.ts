import { describe, expect, it } from 'vitest';
import { closeInOrder } from './close-in-order';
import { createLogger } from './logger';

describe('closeInOrder', () => {
  const logger = createLogger('silent');

  it('runs every step in order even when one throws or rejects, then reports all failures', async () => {
    const ran: string[] = [];
    const closing = closeInOrder(logger, [
      ['queues', () => Promise.reject(new Error('queue close failed'))],
      ['limits', () => ran.push('limits')],
      [
        'redis',
        () => {
          ran.push('redis');
          throw new Error('already closed');
        },
      ],
      ['postgres', async () => void ran.push('postgres')],
    ]);
    const err = (await closing.catch((e: unknown) => e)) as AggregateError;
    expect(ran).toEqual(['limits', 'redis', 'postgres']);
    expect(err).toBeInstanceOf(AggregateError);
    expect(err.errors.map((e: Error) => e.message)).toEqual([
      'queues: queue close failed',
      'redis: already closed',
    ]);
  });

  it('resolves when every step succeeds', async () => {
    await expect(closeInOrder(logger, [['one', () => undefined]])).resolves.toBeUndefined();
  });
});
