import { Ajv } from 'ajv';
import { Ajv2020 } from 'ajv/dist/2020';
import addFormats from 'ajv-formats';

// Users write draft-07 (most tools) or 2020-12 schemas; each compiles with its own dialect.
const draft07 = new Ajv({ strict: false, allErrors: true, validateFormats: true });
const draft2020 = new Ajv2020({ strict: false, allErrors: true, validateFormats: true });
addFormats.default(draft07);
addFormats.default(draft2020);

/** Compiles a user's schema_definition; returns why it does not compile, or undefined when it does. */
export function schemaDefinitionProblem(schema: Record<string, unknown>): string | undefined {
  const dialect =
    typeof schema.$schema === 'string' && schema.$schema.includes('2020-12') ? draft2020 : draft07;
  try {
    // $id would register the schema globally and make a second source with the same $id fail.
    const { $id: _id, ...anonymous } = schema;
    dialect.compile(anonymous);
    // Ajv caches every compiled schema by object; drop it, or each create would grow the cache.
    dialect.removeSchema(anonymous);
    return undefined;
  } catch (err) {
    return `is not a valid JSON Schema: ${(err as Error).message}`.slice(0, 300);
  }
}
