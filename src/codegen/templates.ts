import { contractTestTemplate } from './contract-test-template';
import {
  indexTemplate,
  modelTemplate,
  resourceTemplate,
  schemasTemplate,
  typesTemplate,
} from './code-templates';
import type { EntityInfo } from './entity-info';
import { migrationTemplate } from './migration-template';

/** The per-entity source files, by suffix (`raw-data-source.<suffix>.ts`), plus the other templates. */
export const codeTemplatesFor = Object.assign(
  (e: EntityInfo, runtime: string): [string, string][] => [
    ['types', typesTemplate(e)],
    ['schemas', schemasTemplate(e)],
    ['model', modelTemplate(e, runtime)],
    ['resource', resourceTemplate(e, runtime)],
  ],
  { contract: contractTestTemplate, migration: migrationTemplate, index: indexTemplate },
);
