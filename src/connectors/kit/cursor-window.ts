import { createHash } from 'node:crypto';

/**
 * How cursor values order and how far back the lookback reaches. `lowerBound(max)` is the lowest
 * value still inside the lookback of `max` (`max` itself when values cannot be shifted: then only
 * rows sharing the last value are re-read).
 */
export interface WindowOrder<V> {
  compare(a: V, b: V): number;
  lowerBound(max: V): V;
}

/** The part of an incremental state the window owns (beside the connector's own keys). */
export interface WindowState<V> {
  /** The largest cursor value landed. */
  max: V;
  /**
   * Where the next read starts, inclusive (`>= from`); absent: it starts after `max` (`> max`), the
   * strict form of states written before the window existed or after an overflow.
   */
  from?: V;
  /** Fingerprints of every landed row whose value is >= `from`, by value, in ascending order. */
  seen?: Array<[V, string[]]>;
}

/**
 * A row's fingerprint, or how to compute it. Most rows never need one: only a row read again
 * (its value already remembered) is compared, and only the rows still inside the window when a
 * state is written are stored — so admit takes a thunk and computes it at most once, late.
 */
export type Fingerprint = string | (() => string);

interface Group<V> {
  value: V;
  hashes: Fingerprint[];
}

const resolve = (hash: Fingerprint): string => (typeof hash === 'function' ? hash() : hash);

/** Default bound on the fingerprints a state keeps (about 15 bytes each as JSON). */
export const DEFAULT_WINDOW_KEYS = 10_000;

/**
 * The lookback window of an incremental read: the next read starts `lookback` before the largest
 * landed value (inclusive), so rows sharing the last value and rows committed late with an earlier
 * value are read again; the window remembers a fingerprint of every row it landed inside that
 * range, so a row read twice lands once. Fingerprints are bounded (`maxKeys`): when more rows fall
 * inside the lookback, its start moves up to the oldest value still remembered; a single value with
 * more rows than `maxKeys` cannot be remembered at all, and the next read starts after it.
 */
export class CursorWindow<V> {
  /** Fingerprints landed by earlier reads, still to be met again (value key → hash → count). */
  private readonly prior = new Map<string, Map<string, number>>();
  private readonly groups = new Map<string, Group<V>>();
  /** The same groups in ascending order (rows mostly arrive in order: appending is the usual case). */
  private ordered: Group<V>[] = [];
  private count = 0;
  private readonly slack: number;
  private max: V | undefined;
  /** Lower bound of what this read returns; rows below it were dealt with by earlier reads. */
  private readonly start: { value: V; inclusive: boolean } | undefined;
  /** Lower bound of what the next read may start at (moves up when the window overflows). */
  private floor: { value: V; inclusive: boolean } | undefined;
  /** A value with more rows than `maxKeys`: its rows are not remembered. */
  private overflow: V | undefined;

  constructor(
    private readonly order: WindowOrder<V>,
    private readonly maxKeys: number,
    stored: WindowState<V> | undefined,
  ) {
    this.slack = Math.max(100, Math.floor(maxKeys / 4));
    if (!stored) return;
    this.max = stored.max;
    if (stored.from === undefined) {
      this.start = { value: stored.max, inclusive: false };
    } else {
      this.start = { value: stored.from, inclusive: true };
      for (const [value, hashes] of stored.seen ?? []) {
        const counts = new Map<string, number>();
        for (const h of hashes) counts.set(h, (counts.get(h) ?? 0) + 1);
        this.prior.set(keyOf(value), counts);
        const group = { value, hashes: [...hashes] };
        this.groups.set(keyOf(value), group);
        this.insert(group);
        this.count += hashes.length;
      }
    }
    this.floor = this.start;
  }

  /** Where this read starts: `>= from`, `> after`, or everything. */
  get readFrom(): { from: V } | { after: V } | undefined {
    if (!this.start) return undefined;
    return this.start.inclusive ? { from: this.start.value } : { after: this.start.value };
  }

  /** Whether some value had more rows than the window can remember. */
  get overflowed(): boolean {
    return this.overflow !== undefined;
  }

  /** Whether a row read now should land: false for a row below the start or landed already. */
  admit(value: V, fingerprint: Fingerprint): boolean {
    if (this.start && below(this.order, value, this.start)) return false;
    const key = keyOf(value);
    const prior = this.prior.get(key);
    let hash = fingerprint;
    if (prior?.size) {
      const known = resolve(fingerprint);
      hash = known;
      const left = prior.get(known);
      if (left) {
        // Landed by an earlier read and still remembered in its group: consume, do not land again.
        if (left === 1) prior.delete(known);
        else prior.set(known, left - 1);
        return false;
      }
    }
    if (this.max === undefined || this.order.compare(value, this.max) > 0) this.max = value;
    if (this.overflow !== undefined && this.order.compare(value, this.overflow) <= 0) return true;
    if (this.floor && below(this.order, value, this.floor)) return true;
    let group = this.groups.get(key);
    if (!group) {
      this.groups.set(key, (group = { value, hashes: [] }));
      this.insert(group);
    }
    group.hashes.push(hash);
    this.count += 1;
    // Trimming sorts the groups: done once per `slack` rows over the bound, not on every row.
    if (this.count > this.maxKeys + this.slack) this.trim();
    return true;
  }

  /**
   * The state to store with what has landed so far. `final`: the read is complete (a value that
   * overflowed is then left behind for good instead of being re-read on a retry).
   */
  state(final: boolean): WindowState<V> | undefined {
    if (this.max === undefined) return undefined;
    if (this.count > this.maxKeys) this.trim();
    const max = this.max;
    if (this.overflow !== undefined && this.order.compare(this.overflow, max) === 0)
      return final ? { max } : { max, from: max, seen: [] };
    let from = this.order.lowerBound(max);
    if (this.floor && below(this.order, from, this.floor)) {
      if (this.floor.inclusive) from = this.floor.value;
      else {
        const lowest = this.ordered[0];
        if (!lowest) return { max };
        from = lowest.value;
      }
    }
    let drop = 0;
    while (drop < this.ordered.length && this.order.compare(this.ordered[drop]!.value, from) < 0) {
      const group = this.ordered[drop++]!;
      this.groups.delete(keyOf(group.value));
      this.count -= group.hashes.length;
    }
    if (drop) this.ordered = this.ordered.slice(drop);
    const seen = this.ordered.map((g): [V, string[]] => {
      // Computed now, once: the group keeps the strings, not the rows the thunks hold on to.
      const hashes = g.hashes.map(resolve);
      g.hashes = hashes;
      return [g.value, [...hashes]];
    });
    this.floor = { value: from, inclusive: true };
    return { max, from, seen };
  }

  private insert(group: Group<V>): void {
    const list = this.ordered;
    const last = list[list.length - 1];
    if (!last || this.order.compare(group.value, last.value) > 0) {
      list.push(group);
      return;
    }
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.order.compare(list[mid]!.value, group.value) < 0) lo = mid + 1;
      else hi = mid;
    }
    list.splice(lo, 0, group);
  }

  /** Too many fingerprints: forget the oldest values; one value alone over the bound overflows. */
  private trim(): void {
    let drop = 0;
    while (this.count > this.maxKeys && this.ordered.length - drop > 1) {
      const oldest = this.ordered[drop++]!;
      this.groups.delete(keyOf(oldest.value));
      this.count -= oldest.hashes.length;
    }
    if (drop) this.ordered = this.ordered.slice(drop);
    const first = this.ordered[0]!;
    if (this.count > this.maxKeys) {
      this.groups.delete(keyOf(first.value));
      this.ordered = [];
      this.count = 0;
      this.overflow = first.value;
      this.floor = { value: first.value, inclusive: false };
      return;
    }
    this.floor = { value: first.value, inclusive: true };
  }
}

function below<V>(order: WindowOrder<V>, value: V, bound: { value: V; inclusive: boolean }): boolean {
  const c = order.compare(value, bound.value);
  return c < 0 || (c === 0 && !bound.inclusive);
}

function keyOf(value: unknown): string {
  return `${typeof value}:${String(value)}`;
}

/** A short fingerprint of a record: the same content (in any key order) gives the same one. */
export function fingerprint(record: unknown): string {
  return fingerprintText(canonicalJson(record));
}

/**
 * The fingerprint of a record's JSON text as is: for records whose keys always come in the same
 * order (a database row's columns), it spares the key sorting, about half the cost.
 */
export function fingerprintText(json: string): string {
  return createHash('sha256').update(json).digest('base64url').slice(0, 12);
}

function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}
