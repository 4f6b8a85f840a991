import { describe, expect, it } from 'vitest';
import { TaskWindow } from './task-window';

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('TaskWindow', () => {
  it('runs every task, never more than the limit at once', async () => {
    const window = new TaskWindow(3);
    let running = 0;
    let peak = 0;
    const done: number[] = [];
    for (let i = 0; i < 20; i++)
      await window.run(async () => {
        peak = Math.max(peak, ++running);
        for (let t = 0; t < (i % 4) + 1; t++) await tick();
        running -= 1;
        done.push(i);
      });
    await window.drain();
    expect(peak).toBe(3);
    expect(done.sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i));
  });

  it('stops taking tasks after a failure and rethrows it', async () => {
    const window = new TaskWindow(2);
    const boom = new Error('boom');
    let started = 0;
    const runAll = async () => {
      for (let i = 0; i < 10; i++)
        await window.run(async () => {
          started += 1;
          await tick();
          if (i === 1) throw boom;
        });
      await window.drain();
    };
    await expect(runAll()).rejects.toBe(boom);
    expect(started).toBeLessThan(10);
    await expect(window.drain()).rejects.toBe(boom);
  });
});
