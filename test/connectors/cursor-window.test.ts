import { describe, expect, it } from 'vitest';
import { CursorWindow, fingerprint, type WindowOrder } from '../../src/connectors/kit/cursor-window';
import { cursorKind, cursorOrder } from '../../src/connectors/database/cursor-order';

const numbers = (lookback: number): WindowOrder<number> => ({
  compare: (a, b) => a - b,
  lowerBound: (max) => max - lookback,
});

/** Feeds rows (value, id) and returns the ids that land and the final state. */
function read(window: CursorWindow<number>, rows: Array<[number, string]>) {
  const landed = rows.filter(([v, id]) => window.admit(v, fingerprint({ id, v }))).map(([, id]) => id);
  return { landed, state: window.state(true) };
}

describe('cursor window', () => {
  it('re-reads the last value and lands only the rows not landed before', () => {
    const first = read(new CursorWindow(numbers(0), 100, undefined), [
      [1, 'a'],
      [2, 'b'],
      [2, 'c'],
    ]);
    expect(first.landed).toEqual(['a', 'b', 'c']);
    expect(first.state).toMatchObject({ max: 2, from: 2 });
    const second = read(new CursorWindow(numbers(0), 100, first.state), [
      [2, 'b'],
      [2, 'c'],
      [2, 'd'],
      [3, 'e'],
    ]);
    expect(second.landed).toEqual(['d', 'e']);
    expect(second.state).toMatchObject({ max: 3, from: 3 });
  });

  it('keeps every row inside the lookback, so a late row with an earlier value lands once', () => {
    const first = read(new CursorWindow(numbers(10), 100, undefined), [
      [1, 'a'],
      [15, 'b'],
      [20, 'c'],
    ]);
    expect(first.state).toEqual({
      max: 20,
      from: 10,
      seen: [
        [15, [expect.any(String)]],
        [20, [expect.any(String)]],
      ],
    });
    const second = read(new CursorWindow(numbers(10), 100, first.state), [
      [12, 'late'],
      [15, 'b'],
      [20, 'c'],
    ]);
    expect(second.landed).toEqual(['late']);
  });

  it('two identical rows at one value are two rows: both land, and neither lands again', () => {
    const first = read(new CursorWindow(numbers(0), 100, undefined), [
      [1, 'same'],
      [1, 'same'],
    ]);
    expect(first.landed).toHaveLength(2);
    const second = read(new CursorWindow(numbers(0), 100, first.state), [
      [1, 'same'],
      [1, 'same'],
      [1, 'same'],
    ]);
    expect(second.landed).toHaveLength(1);
  });

  it('bounds the fingerprints: the window start moves up to the oldest value remembered', () => {
    const rows: Array<[number, string]> = Array.from({ length: 10 }, (_, i) => [i, `r${i}`]);
    const { state } = read(new CursorWindow(numbers(100), 4, undefined), rows);
    expect(state).toMatchObject({ max: 9, from: 6 });
    expect(state!.seen!.map(([v]) => v)).toEqual([6, 7, 8, 9]);
  });

  it('a value with more rows than the bound is landed, then left behind (strict state)', () => {
    const rows: Array<[number, string]> = [
      [1, 'a'],
      ...Array.from({ length: 6 }, (_, i): [number, string] => [2, `t${i}`]),
    ];
    const window = new CursorWindow(numbers(0), 4, undefined);
    const { landed, state } = read(window, rows);
    expect(landed).toHaveLength(7);
    expect(window.overflowed).toBe(true);
    expect(state).toEqual({ max: 2 });
  });

  it('a legacy strict state reads after the stored value and never re-lands what is below it', () => {
    const window = new CursorWindow(numbers(10), 100, { max: 5 });
    expect(window.readFrom).toEqual({ after: 5 });
    const { landed, state } = read(window, [
      [5, 'old'],
      [6, 'x'],
      [8, 'y'],
    ]);
    expect(landed).toEqual(['x', 'y']);
    // The lookback (8 - 10) reaches below what was read strictly: start at the oldest value read.
    expect(state).toMatchObject({ max: 8, from: 6 });
  });

  it('keeps values in order whatever order the rows arrive in (api pages), and trims the oldest', () => {
    const values = [7, 3, 9, 1, 8, 2, 6, 4, 5, 0];
    const window = new CursorWindow(numbers(100), 5, undefined);
    for (const v of values) window.admit(v, fingerprint({ v }));
    const state = window.state(true)!;
    expect(state.seen!.map(([v]) => v)).toEqual([5, 6, 7, 8, 9]);
    expect(state).toMatchObject({ max: 9, from: 5 });
  });

  it('fingerprints ignore key order', () => {
    expect(fingerprint({ a: 1, b: [1, { c: 2, d: 3 }] })).toBe(fingerprint({ b: [1, { d: 3, c: 2 }], a: 1 }));
    expect(fingerprint({ a: 1 })).not.toBe(fingerprint({ a: '1' }));
  });
});

describe('database cursor order', () => {
  const column = (dbType: string) => ({ name: 'c', dbType, numeric: false });

  it('shifts timestamps back by the lookback, exactly, in a form both dialects read', () => {
    const order = cursorOrder(cursorKind(column('timestamp with time zone')), 300, undefined);
    expect(order.lowerBound('2024-05-01 10:00:00.123456+00')).toBe('2024-05-01 09:55:00.123456');
    expect(order.lowerBound('2024-05-01 12:00:00.5+02')).toBe('2024-05-01 09:55:00.500000');
    expect(order.compare('2024-05-01 09:55:00.500000', '2024-05-01 09:55:00.5+00')).toBe(0);
    expect(order.compare('2024-05-01 10:00:00+00', '2024-05-01 10:00:00.000001+00')).toBeLessThan(0);
    const mysql = cursorOrder(cursorKind(column('datetime')), 1.5, undefined);
    expect(mysql.lowerBound('2024-05-01 00:00:01.000000')).toBe('2024-04-30 23:59:59.500000');
  });

  it('shifts integers and whole days; other types compare in read order with no lookback', () => {
    expect(cursorOrder('integer', 100, undefined).lowerBound('9007199254740993')).toBe('9007199254740893');
    expect(cursorOrder('integer', 100, undefined).compare('9', '10')).toBeLessThan(0);
    expect(cursorOrder('date', 3600, undefined).lowerBound('2024-05-01')).toBe('2024-04-30');
    expect(cursorKind(column('character varying'))).toBe('other');
    const text = cursorOrder('other', 0, { max: 'm', from: 'm', seen: [['m', []]] });
    expect(text.lowerBound('zz')).toBe('zz');
    expect(text.compare('m', 'b')).toBeLessThan(0);
  });
});
