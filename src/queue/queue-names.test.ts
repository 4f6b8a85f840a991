import { describe, expect, it } from 'vitest';
import { bullPrefix, isSyncQueue, syncQueueName, syncShardOf } from './queue-names';

describe('sync shards and cluster prefixes', () => {
  it('shard 0 is today’s `sync` queue; the others are sync-<n>', () => {
    expect([0, 1, 2].map(syncQueueName)).toEqual(['sync', 'sync-1', 'sync-2']);
    expect(['sync', 'sync-1', 'sync-63'].every(isSyncQueue)).toBe(true);
    expect(['test', 'sync-all', 'sync-x'].some(isSyncQueue)).toBe(false);
  });

  it('a source always maps to the same shard, every shard gets sources, one shard takes all', () => {
    const ids = Array.from(
      { length: 3000 },
      (_, i) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    );
    expect(ids.map((id) => syncShardOf(id, 4))).toEqual(ids.map((id) => syncShardOf(id, 4)));
    const counts = [0, 0, 0, 0];
    for (const id of ids) counts[syncShardOf(id, 4)]! += 1;
    // Roughly even: each shard within a third of its share.
    for (const n of counts) expect(Math.abs(n - 750)).toBeLessThan(250);
    expect(new Set(ids.map((id) => syncShardOf(id, 1)))).toEqual(new Set([0]));
  });

  it('one Redis keeps QUEUE_PREFIX; a cluster gives each queue a hash tag of its own', () => {
    expect(bullPrefix('sluice', 'sync', false)).toBe('sluice');
    expect(bullPrefix('sluice', 'sync-2', true)).toBe('{sluice.sync-2}');
  });
});
