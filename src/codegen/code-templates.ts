import type { EntityInfo, FieldInfo } from './entity-info';
import { readOnlyFields, uniqueConstraintName, uniqueFields } from './entity-info';
import { HEADER } from './header';
import { createSchema, listQuerySchema, listSchema, responseSchema, updateSchema } from './json-schemas';

function tsType(f: FieldInfo, forResponse: boolean): string {
  const base = (() => {
    switch (f.type) {
      case 'enum':
        return f.values!.map((v) => JSON.stringify(v)).join(' | ');
      case 'integer':
      case 'number':
        return 'number';
      case 'boolean':
        return 'boolean';
      case 'json':
        return 'Record<string, unknown>';
      default:
        return 'string';
    }
  })();
  const nullable = f.nullable || (forResponse && f.sensitive);
  return nullable ? `${base} | null` : base;
}

export function typesTemplate(e: EntityInfo): string {
  const writable = e.fields.filter((f) => !f.readOnly);
  const response = e.fields.flatMap((f) => {
    const line = `  ${f.name}: ${tsType(f, true)};`;
    return f.sensitive ? [line, `  has_${f.name}: boolean;`] : [line];
  });
  const input = writable.map((f) => `  ${f.name}${f.required ? '' : '?'}: ${tsType(f, false)};`);
  const filters = Object.entries(e.filters).map(([param, field]) => {
    const f = e.fields.find((x) => x.name === field)!;
    return `  ${param}?: ${tsType({ ...f, nullable: false }, false)};`;
  });
  for (const param of Object.keys(e.prefixFilters)) filters.push(`  ${param}?: string;`);
  return `${HEADER}

/** ${e.pascal} as the API returns it. */
export interface ${e.pascal} {
${response.join('\n')}
}

/** Body of POST ${e.path}. */
export interface ${e.pascal}Create {
${input.join('\n')}
}

/** Body of PUT ${e.path}/{id}: fields left out keep their value. */
export type ${e.pascal}Update = Partial<${e.pascal}Create>;

/** Query of GET ${e.path}. */
export interface ${e.pascal}ListQuery {
${filters.join('\n')}
  limit: number;
  offset: number;
}
`;
}

const literal = (value: unknown) => JSON.stringify(value, null, 2);

export function schemasTemplate(e: EntityInfo): string {
  return `${HEADER}

export const ${e.camel}CreateSchema = ${literal(createSchema(e))} as const;

export const ${e.camel}UpdateSchema = ${literal(updateSchema(e))} as const;

export const ${e.camel}Schema = ${literal(responseSchema(e))} as const;

export const ${e.camel}ListSchema = ${literal(listSchema(e))} as const;

export const ${e.camel}ListQuerySchema = ${literal(listQuerySchema(e))} as const;
`;
}

export function modelTemplate(e: EntityInfo, runtime: string): string {
  const declared = e.fields.flatMap((f) =>
    f.columns.map((c) => {
      const type = f.sensitive
        ? 'string | null'
        : f.type === 'datetime'
          ? `Date${f.nullable ? ' | null' : ''}`
          : tsType(f, false);
      return `  declare ${c}: ${type};`;
    }),
  );
  const json = e.fields.filter((f) => f.type === 'json').map((f) => f.name);
  return `${HEADER}
import { EntityModel } from '${runtime}/db/entity-model';

/** One row of ${e.table}. */
export class ${e.pascal}Model extends EntityModel {
  static override tableName = '${e.table}';
  static override get jsonAttributes(): string[] {
    return ${JSON.stringify(json)};
  }
${declared.join('\n')}
}
`;
}

export function resourceTemplate(e: EntityInfo, runtime: string): string {
  const fields = e.fields.map((f) => ({
    name: f.name,
    type: f.type,
    nullable: f.nullable,
    readOnly: f.readOnly,
    sensitive: Boolean(f.sensitive),
    autoNow: Boolean(f.auto_now),
  }));
  const uniques: Record<string, string> = {};
  for (const f of uniqueFields(e)) uniques[uniqueConstraintName(e, [f.name])] = f.name;
  for (const i of e.spec.indexes ?? [])
    if (i.unique) uniques[uniqueConstraintName(e, i.fields)] = i.fields[0]!;
  return `${HEADER}
import { defineResource } from '${runtime}/http/crud/resource';
import { ${e.pascal}Model } from './${e.kebab}.model';
import * as schemas from './${e.kebab}.schemas';
import type { ${e.pascal}, ${e.pascal}Create, ${e.pascal}ListQuery, ${e.pascal}Update } from './${e.kebab}.types';

export const ${e.camel}Resource = defineResource<${e.pascal}, ${e.pascal}Create, ${e.pascal}Update, ${e.pascal}ListQuery>({
  entity: '${e.pascal}',
  table: '${e.table}',
  path: '${e.path}',
  fields: ${literal(fields)},
  readOnly: ${JSON.stringify(readOnlyFields(e).map((f) => f.name))},
  filters: ${literal(e.filters)},
  prefixFilters: ${literal(e.prefixFilters)},
  uniqueConstraints: ${literal(uniques)},
  model: ${e.pascal}Model,
  schemas: {
    create: schemas.${e.camel}CreateSchema,
    update: schemas.${e.camel}UpdateSchema,
    response: schemas.${e.camel}Schema,
    list: schemas.${e.camel}ListSchema,
    listQuery: schemas.${e.camel}ListQuerySchema,
  },
});
`;
}

export function indexTemplate(entities: EntityInfo[], runtime: string): string {
  const imports = entities.map((e) => `import { ${e.camel}Resource } from './${e.kebab}.resource';`);
  const exports = entities.map((e) => `export * from './${e.kebab}.types';`);
  return `${HEADER}
import type { AnyResource } from '${runtime}/http/crud/resource';
${imports.join('\n')}

${exports.join('\n')}
export { ${entities.map((e) => `${e.camel}Resource`).join(', ')} };

/** Every entity of the spec, in spec order: the app mounts CRUD routes for each. */
export const resources: AnyResource[] = [${entities.map((e) => `${e.camel}Resource`).join(', ')}];
`;
}
