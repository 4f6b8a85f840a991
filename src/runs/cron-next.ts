import { defaultRepeatStrategy, type RepeatOptions, type RepeatStrategy } from 'bullmq';

const MINUTE = 60_000;
const SECOND = 1000;

/**
 * BullMQ's own cron strategy (cron-parser, the zone's rules), remembered for the length of one
 * reconcile. One next-fire computation costs milliseconds (cron-parser walks the calendar in the
 * zone), and a reconcile upserts up to every scheduler: 100k computations were minutes of CPU.
 * A fleet has few distinct (expression, zone) pairs, and reconcile gives every cron scheduler the
 * same first-fire bound, so nearly every call is a hit. Every value is one BullMQ would compute:
 *
 * - the next fire depends only on the expression, the zone and the instant searched from, and on
 *   that instant only through its whole second and whether it has milliseconds (cron-parser rounds
 *   those up to the next second) — so that is the key;
 * - a pattern whose seconds field is one number S > 0 (the jittered patterns, source-schedule.ts)
 *   fires exactly S seconds after the same pattern with second 0, and that one fires on whole
 *   minutes (zone offsets and DST changes are whole minutes), so its next fire from any instant
 *   inside a minute is its next fire from that minute's last second. Jittered patterns of one
 *   expression and zone then share one computation instead of one per offset.
 *
 * src/runs/cron-next.test.ts checks both against the default strategy on many cases.
 */
export function cachedCronStrategy(): RepeatStrategy {
  const cache = new Map<string, number | undefined>();
  const compute = (pattern: string, tz: string | undefined, from: number) => {
    const key = `${tz ?? ''}\n${Math.floor(from / SECOND)}\n${from % SECOND ? 1 : 0}\n${pattern}`;
    if (cache.has(key)) return cache.get(key);
    const next = defaultRepeatStrategy(from, { pattern, ...(tz ? { tz } : {}) } as RepeatOptions) as
      number | undefined;
    // Bounded: a reconcile's distinct keys are a handful per expression and zone.
    if (cache.size >= 100_000) cache.clear();
    cache.set(key, next);
    return next;
  };
  return (millis, opts) => {
    const { pattern } = opts;
    // Anything but a plain pattern search (every, immediately, an end date) goes to BullMQ as is.
    if (!pattern || opts.immediately || opts.endDate) return defaultRepeatStrategy(millis, opts);
    const start = opts.startDate ? new Date(opts.startDate).getTime() : -Infinity;
    const from = Math.max(start, millis);
    const fields = pattern.trim().split(/\s+/);
    const shift = fields.length === 6 && /^\d+$/.test(fields[0]!) ? Number(fields[0]) : 0;
    if (shift <= 0 || shift >= 60) return compute(pattern, opts.tz, from);
    // Fires of `S rest` are fires of `0 rest` plus S: search from S earlier, then add S back.
    const base = ['0', ...fields.slice(1)].join(' ');
    const shifted = from - shift * SECOND;
    // Inside a minute (not on its first second): the same answer as from that minute's last second.
    const canonical =
      shifted % MINUTE === 0 ? shifted : Math.floor(shifted / MINUTE) * MINUTE + MINUTE - SECOND;
    const next = compute(base, opts.tz, canonical);
    return next === undefined ? undefined : next + shift * SECOND;
  };
}
