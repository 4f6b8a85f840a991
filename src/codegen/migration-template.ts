import type { EntityInfo, FieldInfo } from './entity-info';
import { indexName, uniqueConstraintName, uniqueFields } from './entity-info';
import { HEADER } from './header';

const q = (s: string) => `'${s.replace(/'/g, "''")}'`;

/** The knex column builder lines of one field (a sensitive field is two columns). */
export function columnLines(f: FieldInfo): string[] {
  if (f.sensitive) {
    return [
      `t.text('${f.name}_ciphertext'); // AES-256-GCM envelope, never plaintext`,
      `t.text('${f.name}_masked');`,
    ];
  }
  const notNull = f.nullable ? '' : '.notNullable()';
  let def = '';
  if (f.primary_key) def = `.defaultTo(knex.raw('gen_random_uuid()'))`;
  else if (f.auto_now || f.auto_now_add) def = `.defaultTo(knex.fn.now())`;
  else if (f.dbDefault !== undefined) def = `.defaultTo(${JSON.stringify(f.dbDefault)})`;
  const call = (() => {
    switch (f.type) {
      case 'uuid':
        return `t.uuid('${f.name}')`;
      case 'string':
        return f.max_length ? `t.string('${f.name}', ${f.max_length})` : `t.text('${f.name}')`;
      case 'text':
      case 'enum':
        return `t.text('${f.name}')`;
      case 'integer':
        return `t.integer('${f.name}')`;
      case 'number':
        return `t.double('${f.name}')`;
      case 'boolean':
        return `t.boolean('${f.name}')`;
      case 'datetime':
        return `t.timestamp('${f.name}', { useTz: true })`;
      case 'json':
        return `t.jsonb('${f.name}')`;
    }
  })();
  return [`${call}${f.primary_key ? '.primary()' : ''}${notNull}${def};`];
}

/** The CHECK constraints one field's column carries, as [constraint name, condition]. */
export function fieldChecks(e: EntityInfo, f: FieldInfo): [name: string, condition: string][] {
  const out: [string, string][] = [];
  const name = (suffix: string) => `${e.table}_${f.name}_${suffix}`;
  if (f.type === 'enum' && f.values)
    out.push([name('check'), `${f.name} IN (${f.values.map(q).join(', ')})`]);
  if (f.min !== undefined) out.push([name('min_check'), `${f.name} >= ${f.min}`]);
  if (f.max !== undefined) out.push([name('max_check'), `${f.name} <= ${f.max}`]);
  if (f.max_length !== undefined && f.type === 'text')
    out.push([name('length_check'), `char_length(${f.name}) <= ${f.max_length}`]);
  if (f.required && (f.type === 'string' || f.type === 'text'))
    out.push([name('not_empty_check'), `char_length(${f.name}) > 0`]);
  if (f.type === 'json') out.push([name('object_check'), `jsonb_typeof(${f.name}) = 'object'`]);
  return out;
}

/** `await knex.raw(...)` lines adding the CHECK constraints of `fields` to the entity's table. */
export function addCheckLines(e: EntityInfo, fields: FieldInfo[]): string[] {
  return fields
    .flatMap((f) => fieldChecks(e, f))
    .map(
      ([name, condition]) =>
        `    await knex.raw(${JSON.stringify(`ALTER TABLE ${e.table} ADD CONSTRAINT ${name} CHECK (${condition})`)});`,
    );
}

/**
 * The table's unique constraints and plain indexes, each as its column list. A unique field and a
 * unique index on that field alone are one constraint.
 */
export function tableConstraints(e: EntityInfo): { uniques: string[][]; indexes: string[][] } {
  const uniques = new Map<string, string[]>();
  for (const f of uniqueFields(e)) uniques.set(f.name, [f.name]);
  const indexes: string[][] = [];
  for (const index of e.spec.indexes ?? []) {
    if (index.unique) uniques.set(index.fields.join(','), index.fields);
    else indexes.push(index.fields);
  }
  return { uniques: [...uniques.values()], indexes };
}

export const uniqueLine = (e: EntityInfo, fields: string[]) =>
  `t.unique(${JSON.stringify(fields)}, { indexName: '${uniqueConstraintName(e, fields)}' });`;
export const indexLine = (e: EntityInfo, fields: string[]) =>
  `t.index(${JSON.stringify(fields)}, '${indexName(e, fields)}');`;

/**
 * The initial migration of a new entity. Written once; later additions to the spec get migrations
 * of their own (add-migration-template.ts).
 */
export function migrationTemplate(e: EntityInfo): string {
  const { uniques, indexes } = tableConstraints(e);
  const body = [
    ...e.fields.flatMap(columnLines),
    ...uniques.map((fields) => uniqueLine(e, fields)),
    ...indexes.map((fields) => indexLine(e, fields)),
  ];
  const checkSql = addCheckLines(e, e.fields);
  return `${HEADER}
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('${e.table}', (t) => {
    ${body.join('\n    ')}
  });
${checkSql.join('\n')}
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('${e.table}');
}
`;
}
