import type { EntityInfo, FieldInfo } from './entity-info';
import { indexName, uniqueConstraintName, uniqueFields } from './entity-info';
import { HEADER } from './header';

const q = (s: string) => `'${s.replace(/'/g, "''")}'`;

function columnLines(f: FieldInfo): string[] {
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

function checks(e: EntityInfo): string[] {
  const out: string[] = [];
  for (const f of e.fields) {
    if (f.type === 'enum' && f.values)
      out.push(`${e.table}_${f.name}_check CHECK (${f.name} IN (${f.values.map(q).join(', ')}))`);
    if (f.min !== undefined) out.push(`${e.table}_${f.name}_min_check CHECK (${f.name} >= ${f.min})`);
    if (f.max !== undefined) out.push(`${e.table}_${f.name}_max_check CHECK (${f.name} <= ${f.max})`);
    if (f.max_length !== undefined && f.type === 'text')
      out.push(`${e.table}_${f.name}_length_check CHECK (char_length(${f.name}) <= ${f.max_length})`);
    if (f.required && (f.type === 'string' || f.type === 'text'))
      out.push(`${e.table}_${f.name}_not_empty_check CHECK (char_length(${f.name}) > 0)`);
    if (f.type === 'json')
      out.push(`${e.table}_${f.name}_object_check CHECK (jsonb_typeof(${f.name}) = 'object')`);
  }
  return out;
}

/** The initial migration of a new entity. Written once; later changes get migrations of their own. */
export function migrationTemplate(e: EntityInfo): string {
  const uniques = new Map<string, string[]>();
  for (const f of uniqueFields(e)) uniques.set(f.name, [f.name]);
  const indexes: string[][] = [];
  for (const index of e.spec.indexes ?? []) {
    if (index.unique) uniques.set(index.fields.join(','), index.fields);
    else indexes.push(index.fields);
  }
  const body = [
    ...e.fields.flatMap(columnLines),
    ...[...uniques.values()].map(
      (fields) => `t.unique(${JSON.stringify(fields)}, { indexName: '${uniqueConstraintName(e, fields)}' });`,
    ),
    ...indexes.map((fields) => `t.index(${JSON.stringify(fields)}, '${indexName(e, fields)}');`),
  ];
  const checkSql = checks(e).map(
    (c) => `    await knex.raw(${JSON.stringify(`ALTER TABLE ${e.table} ADD CONSTRAINT ${c}`)});`,
  );
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
