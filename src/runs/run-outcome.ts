import type { Violation } from './landing';

/** What a run's counters say about its outcome: a failure to report, or a warning for a partial success. */
export interface RunOutcome {
  /** The run must end failed with this message. */
  failure?: string;
  /** The run succeeds, but some records were quarantined: the source's last_warning and `sync.partial` say so. */
  warning?: string;
}

const describe = (violations: Violation[]) =>
  violations.length
    ? `; first violations: ${violations.map((v) => `${v.pointer} ${v.message}`).join('; ')}`
    : '';

/**
 * Judges a run that read all its records: none landed because every one was invalid is a failure
 * (a run that "succeeded" with nothing landed hid exactly that); more invalid than
 * `maxInvalidRatio` of what was read is a failure; some invalid is a success with a warning.
 * The quarantined records are kept either way (quarantined_records).
 */
export function judgeRun(
  counts: { records: number; invalid: number },
  maxInvalidRatio: number | null,
  violations: Violation[],
): RunOutcome {
  const { records, invalid } = counts;
  if (invalid === 0) return {};
  const read = records + invalid;
  const where = 'kept in quarantined_records';
  if (records === 0)
    return {
      failure: `all ${invalid} records read were invalid and none landed (${where})${describe(violations)}`,
    };
  const ratio = invalid / read;
  const share = `${invalid} of ${read} records (${(ratio * 100).toFixed(1)}%)`;
  if (maxInvalidRatio !== null && ratio > maxInvalidRatio)
    return {
      failure: `${share} were invalid, above max_invalid_ratio ${maxInvalidRatio}; the ${records} valid ones landed (invalid ones ${where})${describe(violations)}`,
    };
  return { warning: `${share} were invalid and quarantined (${where})${describe(violations)}` };
}
