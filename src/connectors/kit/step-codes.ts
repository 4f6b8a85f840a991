import { FAILURE_CODE_LIST } from './classify-error';

/**
 * Every code a test step can carry, published as an enum (GET /jobs, the test answers, the
 * connection.tested event): the failure codes of classifyError, the codes of errors that are
 * permanent by construction, and the warning codes. A new code is added here first; TestStep.code
 * is typed by this list, so the compiler refuses one that is not.
 */
export const STEP_CODES = [
  ...FAILURE_CODE_LIST,
  // A source type without a connector, a permanent error without a code of its own, the test
  // processor itself failing, and a sample that does not match schema_definition.
  'not_implemented',
  'permanent',
  'internal',
  'schema_mismatch',
  // Warnings: a webhook source refusing receipts, and payloads waiting too long in its buffer.
  'inactive',
  'stale_buffer',
] as const;

export type StepCode = (typeof STEP_CODES)[number];

const KNOWN: ReadonlySet<string> = new Set(STEP_CODES);

/** A code from an error of unknown origin, as a step code ('unknown' when it is none). */
export const toStepCode = (code: unknown): StepCode =>
  typeof code === 'string' && KNOWN.has(code) ? (code as StepCode) : 'unknown';
