/**
 * What one schema_definition may cost. Compiling a JSON Schema takes CPU roughly in proportion to
 * its subschemas (about a millisecond each on a busy core), so the caps bound the one-time compile
 * of any accepted schema; every regex runs on a linear-time engine, so validating a record costs
 * time in proportion to the record.
 */
export interface SchemaLimits {
  /** Bytes of the schema's JSON. */
  maxBytes: number;
  /** Levels of nested objects and arrays. */
  maxDepth: number;
  /** Schema objects (the root, every property, item, branch...). */
  maxSubschemas: number;
  /** `pattern` keywords plus `patternProperties` keys. */
  maxPatterns: number;
  /** Characters in one pattern. */
  maxPatternLength: number;
}

export const DEFAULT_SCHEMA_LIMITS: Readonly<SchemaLimits> = {
  maxBytes: 128 * 1024,
  maxDepth: 32,
  maxSubschemas: 500,
  maxPatterns: 200,
  maxPatternLength: 1000,
};
