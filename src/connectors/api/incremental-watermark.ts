import type { WindowOrder, WindowState } from '../kit/cursor-window';
import { readDotPath } from './dot-path';

export type Watermark = string | number;

/**
 * What an incremental api source stores between runs: `watermark`, the largest `field` value
 * landed; `from`, what the next sync sends as the parameter (the watermark minus the lookback); and
 * `seen`, fingerprints of every landed record at or above `from`, so a record returned again is not
 * landed again. Without `from` (states written before the window) the next sync keeps only records
 * above `watermark`.
 */
export interface ApiState {
  field: string;
  watermark: Watermark;
  from?: Watermark;
  seen?: Array<[Watermark, string[]]>;
}

/** Seconds of lookback for date watermarks when the source sets none. */
export const DEFAULT_API_LOOKBACK_SECONDS = 300;

/** The stored window, if it was kept for the same field (a changed field starts over). */
export function readWatermark(state: unknown, field: string): WindowState<Watermark> | undefined {
  const s = state as Partial<ApiState> | null | undefined;
  if (!s || typeof s !== 'object' || s.field !== field) return undefined;
  if (!isWatermark(s.watermark)) return undefined;
  if (!isWatermark(s.from) || !Array.isArray(s.seen)) return { max: s.watermark };
  return { max: s.watermark, from: s.from, seen: s.seen };
}

export function toApiState(field: string, window: WindowState<Watermark>): ApiState {
  return {
    field,
    watermark: window.max,
    ...(window.from !== undefined && { from: window.from, seen: window.seen ?? [] }),
  };
}

function isWatermark(value: unknown): value is Watermark {
  return typeof value === 'string' || (typeof value === 'number' && Number.isFinite(value));
}

/** The record's watermark value: a finite number or a non-empty string; anything else has none. */
export function watermarkOf(record: unknown, field: string): Watermark | undefined {
  const value = readDotPath(record, field);
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (typeof value === 'string' && value) return value;
  return undefined;
}

const NUMERIC = /^-?\d+(\.\d+)?$/;

/**
 * Orders two watermarks: numbers (or numeric strings) by value, two date strings by instant (so
 * "…Z" and "…+02:00" compare right), anything else as text.
 */
export function compareWatermarks(a: Watermark, b: Watermark): number {
  const an = typeof a === 'number' ? a : NUMERIC.test(a) ? Number(a) : undefined;
  const bn = typeof b === 'number' ? b : NUMERIC.test(b) ? Number(b) : undefined;
  if (an !== undefined && bn !== undefined) return an - bn;
  const at = typeof a === 'string' ? Date.parse(a) : NaN;
  const bt = typeof b === 'string' ? Date.parse(b) : NaN;
  if (!Number.isNaN(at) && !Number.isNaN(bt)) return at - bt;
  const as = String(a);
  const bs = String(b);
  return as < bs ? -1 : as > bs ? 1 : 0;
}

/**
 * Watermark order (compareWatermarks) and the lookback start: a number (or numeric string) minus
 * `lookback` units when `lookback` is set; a date string minus `lookback` seconds (default 300);
 * anything else has no lookback (only records sharing the last value are read again).
 */
export function watermarkOrder(lookback: number | undefined): WindowOrder<Watermark> {
  return {
    compare: compareWatermarks,
    lowerBound(max) {
      if (typeof max === 'number') return lookback ? max - lookback : max;
      if (NUMERIC.test(max)) return lookback ? String(Number(max) - lookback) : max;
      const t = Date.parse(max);
      const seconds = lookback ?? DEFAULT_API_LOOKBACK_SECONDS;
      if (Number.isNaN(t) || seconds <= 0) return max;
      return new Date(t - seconds * 1000).toISOString().replace('.000Z', 'Z');
    },
  };
}
