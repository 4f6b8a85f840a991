import { Ajv, type ValidateFunction } from 'ajv';
import { Ajv2020 } from 'ajv/dist/2020';
import addFormats from 'ajv-formats';

// Users write draft-07 (most tools) or 2020-12 schemas; each compiles with its own dialect.
// logger: false: an unknown `format` in a user's schema is their business, not our stderr's.
const options = { strict: false, allErrors: true, validateFormats: true, logger: false } as const;
const draft07 = new Ajv(options);
const draft2020 = new Ajv2020(options);
addFormats.default(draft07);
addFormats.default(draft2020);

/**
 * Compiles a user's schema_definition. The compiled function is independent of the Ajv cache,
 * which is cleared again at once: every create and every run compiles afresh, and the cache
 * would otherwise grow with each.
 */
export function compileSchemaDefinition(schema: Record<string, unknown>): ValidateFunction {
  const dialect =
    typeof schema.$schema === 'string' && schema.$schema.includes('2020-12') ? draft2020 : draft07;
  // $id would register the schema globally and make a second source with the same $id fail.
  const { $id: _id, ...anonymous } = schema;
  try {
    return dialect.compile(anonymous);
  } finally {
    dialect.removeSchema(anonymous);
  }
}

/** Why a user's schema_definition does not compile, or undefined when it does. */
export function schemaDefinitionProblem(schema: Record<string, unknown>): string | undefined {
  try {
    compileSchemaDefinition(schema);
    return undefined;
  } catch (err) {
    return `is not a valid JSON Schema: ${(err as Error).message}`.slice(0, 300);
  }
}
