import { createHash } from 'node:crypto';
import { CronExpressionParser, type CronExpression } from 'cron-parser';
import type { FieldError } from '../http/errors';

/** The fields that say when a source syncs; a request touching any of them is checked here. */
export const SCHEDULE_FIELDS = [
  'refresh_interval',
  'schedule_cron',
  'schedule_timezone',
  'schedule_jitter',
] as const;

/** What a schedule is made from, as stored. */
export interface ScheduleSettings {
  refresh_interval: number;
  schedule_cron: string | null;
  schedule_timezone: string;
  schedule_jitter: number;
}

/** The spec's defaults (specs/entities.json): a source created without them has these. */
const DEFAULTS: ScheduleSettings = {
  refresh_interval: 3600,
  schedule_cron: null,
  schedule_timezone: 'UTC',
  schedule_jitter: 0,
};

/** The same bound as refresh_interval's minimum: no schedule fires more often than once a minute. */
export const MIN_INTERVAL_SECONDS = 60;

/** A valid IANA zone name (Intl knows it; cron-parser's zone support comes from the same ICU data). */
function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/**
 * Parses an expression exactly as BullMQ's default repeat strategy does when the scheduler fires
 * (cron-parser, the version BullMQ depends on, `{ tz, currentDate }`, not strict), so what is
 * accepted here is what runs. Returns the parsed expression or why it cannot run.
 */
export function parseCron(
  cron: string,
  tz: string,
  from: Date = new Date(),
): { expression: CronExpression } | { problem: string; pointer: string } {
  if (!isTimeZone(tz)) return { pointer: '/schedule_timezone', problem: `is not an IANA time zone: ${tz}` };
  // `H` is a random value per parse unless seeded: BullMQ parses on every tick, so it would wander.
  if (/(^|[\s,])H($|[\s,/(])/i.test(cron.trim()))
    return {
      pointer: '/schedule_cron',
      problem: '`H` (hashed values) is not supported; use schedule_jitter',
    };
  let expression: CronExpression;
  try {
    expression = CronExpressionParser.parse(cron, { tz, currentDate: from });
  } catch (err) {
    return { pointer: '/schedule_cron', problem: `is not a cron expression: ${(err as Error).message}` };
  }
  // More than one second of the minute means two fires less than a minute apart.
  if (expression.fields.second.values.length !== 1)
    return {
      pointer: '/schedule_cron',
      problem: `fires more than once a minute; the minimum is ${MIN_INTERVAL_SECONDS} s (as for refresh_interval)`,
    };
  if (!expression.hasNext()) return { pointer: '/schedule_cron', problem: 'never fires' };
  return { expression };
}

/** Where in [0, jitter) seconds a source's fires fall: hashed from its id, the same on every upsert. */
export function jitterFor(sourceId: string, jitter: number): number {
  if (jitter <= 1) return 0;
  return createHash('sha1').update(sourceId).digest().readUInt32BE(0) % jitter;
}

/**
 * The pattern the source's Job Scheduler runs: the expression as written, or with its seconds
 * field moved by the source's jitter (a 5-field expression fires at second 0, so that is where the
 * offset starts). The jitter stays inside the minute (checked at validation), so each fire moves by
 * the same offset and no other field changes. Runs through BullMQ's own strategy, unchanged.
 */
export function cronPattern(sourceId: string, cron: string, jitter: number): string {
  const offset = jitterFor(sourceId, jitter);
  if (!offset) return cron.trim();
  // A fleet shares few expressions: parse each (expression, offset) once, not once per source.
  const key = `${offset}\n${cron}`;
  let pattern = patterns.get(key);
  if (pattern === undefined) {
    if (patterns.size >= 10_000) patterns.clear();
    patterns.set(key, (pattern = shiftSeconds(cron, offset)));
  }
  return pattern;
}

const patterns = new Map<string, string>();

function shiftSeconds(cron: string, offset: number): string {
  const parsed = CronExpressionParser.parse(cron);
  const second = parsed.fields.second.values[0] as number;
  // stringify(true) writes all six fields from what was parsed (aliases expanded), same meaning.
  const [, ...rest] = parsed.stringify(true).split(' ');
  return [String(second + offset), ...rest].join(' ');
}

const sent = (
  input: Record<string, unknown>,
  field: keyof ScheduleSettings,
  before?: Partial<ScheduleSettings>,
) =>
  field in input && (before === undefined || before[field] === undefined || input[field] !== before[field]);

/**
 * How refresh_interval and schedule_cron coexist, checked against the source as it will be saved
 * (an omitted field keeps its stored value): a source with schedule_cron runs on it, one without on
 * refresh_interval. refresh_interval always holds a value (the spec's default), so it stays stored
 * under a cron as the fallback that drives again when schedule_cron is set to null; it may be sent
 * beside a cron (a client PUTting back what it read, the contract's full bodies). schedule_timezone
 * and schedule_jitter describe a cron only: changing them on a source without one is refused, so a
 * zone is never accepted and silently unused. Resending a stored value is fine.
 */
export function scheduleProblems(
  input: Record<string, unknown>,
  before?: Partial<ScheduleSettings>,
): FieldError[] {
  const saved = { ...DEFAULTS, ...before } as ScheduleSettings;
  for (const f of SCHEDULE_FIELDS)
    if (f in input) (saved as unknown as Record<string, unknown>)[f] = input[f];
  const problem = (field: string, message: string): FieldError => ({
    pointer: `/${field}`,
    in: 'body',
    message,
  });
  const errors: FieldError[] = [];
  const cron = typeof saved.schedule_cron === 'string' ? saved.schedule_cron : null;
  if (cron !== null) {
    const parsed = parseCron(cron, saved.schedule_timezone);
    if ('problem' in parsed) {
      errors.push({ pointer: parsed.pointer, in: 'body', message: parsed.problem });
      return errors;
    }
    const second = parsed.expression.fields.second.values[0] as number;
    if (second + saved.schedule_jitter > 60)
      errors.push(
        problem(
          'schedule_jitter',
          `must keep fires inside their minute: at most ${60 - second} for an expression firing at second ${second}`,
        ),
      );
  } else {
    for (const field of ['schedule_timezone', 'schedule_jitter'] as const)
      if (sent(input, field, before))
        errors.push(problem(field, 'applies only to a source with schedule_cron; set schedule_cron too'));
  }
  return errors;
}
