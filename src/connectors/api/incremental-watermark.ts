import { readDotPath } from './dot-path';

export type Watermark = string | number;

/** What an incremental api source stores between runs: the largest `field` value landed so far. */
export interface ApiState {
  field: string;
  watermark: Watermark;
}

/** The stored watermark, if it was kept for the same field (a changed field starts over). */
export function readWatermark(state: unknown, field: string): Watermark | undefined {
  const s = state as Partial<ApiState> | null | undefined;
  if (!s || typeof s !== 'object' || s.field !== field) return undefined;
  return typeof s.watermark === 'string' || typeof s.watermark === 'number' ? s.watermark : undefined;
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
 * Keeps the records newer than `since` (strictly: a record at the watermark landed last time) and
 * those without a value (they cannot be placed, so they are not dropped); returns the new maximum.
 */
export function keepNewer(
  records: unknown[],
  field: string,
  since: Watermark | undefined,
  max: Watermark | undefined,
): { records: unknown[]; max: Watermark | undefined } {
  const kept: unknown[] = [];
  for (const record of records) {
    const value = watermarkOf(record, field);
    if (value === undefined) {
      kept.push(record);
      continue;
    }
    if (since !== undefined && compareWatermarks(value, since) <= 0) continue;
    kept.push(record);
    if (max === undefined || compareWatermarks(value, max) > 0) max = value;
  }
  return { records: kept, max };
}
