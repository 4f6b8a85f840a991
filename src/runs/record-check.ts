import { PermanentSyncError } from '../connectors/connector';
import { compileSchemaDefinition } from '../sources/schema-definition';
import type { RecordCheck } from './landing';

const MAX_ERRORS = 20;

/** A per-run check of records against the source's schema_definition; undefined when none is set. */
export function recordCheck(schemaDefinition: Record<string, unknown> | null): RecordCheck | undefined {
  if (!schemaDefinition) return undefined;
  let validate: ReturnType<typeof compileSchemaDefinition>;
  try {
    validate = compileSchemaDefinition(schemaDefinition);
  } catch (err) {
    throw new PermanentSyncError(
      `schema_definition does not compile: ${(err as Error).message}`,
      'invalid_config',
    );
  }
  return (record) => {
    if (validate(record)) return undefined;
    return (validate.errors ?? [])
      .slice(0, MAX_ERRORS)
      .map((e) => ({ pointer: e.instancePath || '/', message: e.message ?? 'invalid' }));
  };
}
