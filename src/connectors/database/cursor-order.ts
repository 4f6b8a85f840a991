import type { WindowOrder, WindowState } from '../kit/cursor-window';
import type { ColumnInfo } from './column-types';

/** How a cursor column's values can be shifted back for the lookback. */
export type CursorKind = 'time' | 'date' | 'integer' | 'other';

/** Seconds of lookback for a date/time cursor when the source sets none. */
export const DEFAULT_TIME_LOOKBACK_SECONDS = 300;

const TIME_TYPES = new Set([
  'timestamp with time zone',
  'timestamp without time zone',
  'timestamp',
  'datetime',
]);
const INTEGER_TYPES = new Set(['smallint', 'integer', 'bigint', 'int', 'tinyint', 'mediumint', 'year']);

/** `dbType` as ColumnInfo names it for either dialect (format_type, or the SQL name for MySQL). */
export function cursorKind(column: ColumnInfo): CursorKind {
  const type = column.dbType.toLowerCase();
  if (TIME_TYPES.has(type)) return 'time';
  if (type === 'date') return 'date';
  if (INTEGER_TYPES.has(type)) return 'integer';
  return 'other';
}

/** The lookback a source gets: its `cursor_lookback`, else 300 s for timestamps and none otherwise. */
export function effectiveLookback(kind: CursorKind, configured: number | undefined): number {
  if (kind === 'other') return 0;
  return configured ?? (kind === 'time' ? DEFAULT_TIME_LOOKBACK_SECONDS : 0);
}

const TIME_TEXT =
  /^(\d{4})-(\d\d)-(\d\d)(?:[ T](\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?)?(Z|[+-]\d\d(?::?\d\d)?)?$/;
const INTEGER_TEXT = /^-?\d+$/;
const MICROS_PER_DAY = 86_400_000_000n;

/** Microseconds since 1970 (UTC) of the database's text form of a date or timestamp. */
function parseTime(text: string): bigint | undefined {
  const m = TIME_TEXT.exec(text);
  if (!m) return undefined;
  const [, y, mo, d, h = '0', mi = '0', s = '0', frac = '', zone] = m;
  const ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s));
  if (Number.isNaN(ms)) return undefined;
  let micros = BigInt(ms) * 1000n + BigInt(frac.padEnd(6, '0') || '0');
  if (zone && zone !== 'Z') {
    const sign = zone.startsWith('-') ? -1n : 1n;
    const digits = zone.slice(1).replace(':', '');
    const offsetMinutes = BigInt(Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2) || '0'));
    micros -= sign * offsetMinutes * 60_000_000n;
  }
  return micros;
}

/** `YYYY-MM-DD HH:MM:SS.ffffff` in UTC: both dialects read it as the column's type (sessions run in UTC). */
function formatTime(micros: bigint): string {
  const frac = ((micros % 1_000_000n) + 1_000_000n) % 1_000_000n;
  const iso = new Date(Number((micros - frac) / 1000n)).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}.${String(frac).padStart(6, '0')}`;
}

function parseFor(kind: CursorKind, text: string): bigint | undefined {
  if (kind === 'time' || kind === 'date') return parseTime(text);
  if (kind === 'integer' && INTEGER_TEXT.test(text)) return BigInt(text);
  return undefined;
}

/**
 * The order of cursor values (their exact text from the database) and the lookback start. Values
 * that parse (timestamps, dates, integers) compare by value; others (text, uuid, decimals) by the
 * order the database returned them in: the read is `ORDER BY` the column, the stored values were
 * ranked the same way, and with no lookback every value read is at or above the stored maximum.
 */
export function cursorOrder(
  kind: CursorKind,
  lookback: number,
  stored: WindowState<string> | undefined,
): WindowOrder<string> {
  const ranks = new Map<string, number>();
  const rank = (v: string): number => {
    let r = ranks.get(v);
    if (r === undefined) ranks.set(v, (r = ranks.size));
    return r;
  };
  // Values are compared many times (sorting, bounds): parse each once. Cleared when large; the
  // window itself holds at most a few tens of thousands of values.
  const parsed = new Map<string, bigint | undefined>();
  const parse = (v: string): bigint | undefined => {
    if (parsed.has(v)) return parsed.get(v);
    if (parsed.size >= 50_000) parsed.clear();
    const p = parseFor(kind, v);
    parsed.set(v, p);
    return p;
  };
  for (const [value] of stored?.seen ?? []) rank(value);
  if (stored?.from !== undefined) rank(stored.from);
  if (stored) rank(stored.max);
  return {
    compare(a, b) {
      if (a === b) return 0;
      const pa = parse(a);
      const pb = parse(b);
      if (pa !== undefined && pb !== undefined) return pa < pb ? -1 : pa > pb ? 1 : 0;
      return rank(a) - rank(b);
    },
    lowerBound(max) {
      const value = parseFor(kind, max);
      if (value === undefined || lookback <= 0) return max;
      if (kind === 'integer') return String(value - BigInt(Math.floor(lookback)));
      const micros = value - BigInt(Math.round(lookback * 1_000_000));
      if (kind === 'time') return formatTime(micros);
      // A date column compares whole days: start at the day the shifted instant falls in.
      const day = micros - (((micros % MICROS_PER_DAY) + MICROS_PER_DAY) % MICROS_PER_DAY);
      return formatTime(day).slice(0, 10);
    },
  };
}
