import type { FieldError } from '../http/errors';
import type { ResourceHooks, Row } from '../http/crud/resource';
import type { RawDataSource } from '../generated';
import { schemaDefinitionProblem } from './schema-definition';
import type { SourceCounts } from './source-counts';

export interface SourceHooksDeps {
  counts: SourceCounts;
}

/**
 * RawDataSource behaviour the spec cannot say: schema_definition must be a JSON Schema that
 * compiles, and list totals come from the counts ledger instead of count(*).
 */
export function sourceHooks({ counts }: SourceHooksDeps): ResourceHooks<RawDataSource> {
  return {
    count: (filters) => counts.count(filters),
    validate(input: Row): FieldError[] {
      const errors: FieldError[] = [];
      const schema = input.schema_definition;
      if (schema && typeof schema === 'object') {
        const problem = schemaDefinitionProblem(schema as Record<string, unknown>);
        if (problem) errors.push({ pointer: '/schema_definition', in: 'body', message: problem });
      }
      return errors;
    },
  };
}
