import { defaultRepeatStrategy, type RepeatOptions } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { cachedCronStrategy } from './cron-next';

const BASES = [
  '0 2 * * *',
  '*/15 * * * *',
  '30 6 * * 1-5',
  '0 * * * *',
  '0 0 1 * *',
  '0 9 L * *',
  '5 4 * * 0',
];
// Whole-hour and half-hour DST (Lord Howe), +05:30 and +05:45 offsets, the southern hemisphere.
const ZONES = [
  'UTC',
  'Europe/Berlin',
  'America/New_York',
  'Asia/Kolkata',
  'Asia/Kathmandu',
  'Australia/Lord_Howe',
];
// Around the 2027 changes in Berlin and New York and Lord Howe's April change, plus ordinary days.
const DAYS = [
  '2027-03-28T00:30:00Z',
  '2027-03-14T06:30:00Z',
  '2027-04-03T15:00:00Z',
  '2027-10-31T00:30:00Z',
  '2027-07-01T12:00:00Z',
];

/** A small deterministic generator (mulberry32): the same cases on every run. */
function random(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('cachedCronStrategy', () => {
  it('gives exactly what BullMQ’s default strategy gives: plain and jittered patterns, zones, DST, milliseconds', () => {
    const rand = random(42);
    const pick = <T>(xs: T[]) => xs[Math.floor(rand() * xs.length)]!;
    const strategy = cachedCronStrategy();
    let checked = 0;
    // 200 cases: each default-strategy call costs milliseconds (tens under load), the cached side far less.
    for (let i = 0; i < 200; i++) {
      const base = pick(BASES);
      const shift = rand() < 0.3 ? 0 : Math.floor(rand() * 60);
      const pattern = shift ? `${shift} ${base}` : base;
      const tz = pick(ZONES);
      // Instants within two hours of a change, often on whole seconds or minutes (the edge cases).
      let at = Date.parse(pick(DAYS)) + Math.floor(rand() * 4 * 3600) * 1000;
      if (rand() < 0.5) at += Math.floor(rand() * 1000);
      if (rand() < 0.2) at = Math.floor(at / 60_000) * 60_000;
      const startDate = rand() < 0.5 ? at + Math.floor(rand() * 120) * 1000 : undefined;
      const opts = { pattern, tz, ...(startDate ? { startDate } : {}) } as RepeatOptions;
      const expected = defaultRepeatStrategy(at, opts);
      expect(
        strategy(at, opts),
        `${pattern} ${tz} from ${new Date(at).toISOString()} start ${startDate}`,
      ).toBe(expected);
      checked++;
    }
    expect(checked).toBe(200);
  }, 120_000);
});
