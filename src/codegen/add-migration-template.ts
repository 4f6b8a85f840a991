import type { EntityInfo } from './entity-info';
import { indexName, uniqueConstraintName } from './entity-info';
import { HEADER } from './header';
import { addCheckLines, columnLines, indexLine, uniqueLine } from './migration-template';
import type { ShapeAdditions } from './table-shape';

/**
 * A migration that adds to an existing table what the spec gained since the table's last
 * generated migration: new columns (with their checks), unique constraints and indexes. Additive
 * only, so it is safe to run while the previous release still reads and writes the table.
 */
export function addMigrationTemplate(e: EntityInfo, a: ShapeAdditions): string {
  const up = [
    ...a.fields.flatMap(columnLines),
    ...a.unique.map((fields) => uniqueLine(e, fields)),
    ...a.indexes.map((fields) => indexLine(e, fields)),
  ];
  const dropConstraints = [
    ...a.indexes.map((fields) => `t.dropIndex(${JSON.stringify(fields)}, '${indexName(e, fields)}');`),
    ...a.unique.map(
      (fields) => `t.dropUnique(${JSON.stringify(fields)}, '${uniqueConstraintName(e, fields)}');`,
    ),
  ];
  const dropColumns = a.fields.flatMap((f) => f.columns).map((c) => `t.dropColumn('${c}');`);
  // Constraints first, in a statement of their own: dropping a column takes its indexes with it.
  const down = [dropConstraints, dropColumns]
    .filter((lines) => lines.length)
    .map(
      (lines) => `  await knex.schema.alterTable('${e.table}', (t) => {\n    ${lines.join('\n    ')}\n  });`,
    );
  return `${HEADER}
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('${e.table}', (t) => {
    ${up.join('\n    ')}
  });
${addCheckLines(e, a.fields).join('\n')}
}

export async function down(knex: Knex): Promise<void> {
${down.join('\n')}
}
`;
}

/** `add_<table>_<what>`, in the timestamp_verb_noun style of the hand-written migrations. */
export function addMigrationName(e: EntityInfo, a: ShapeAdditions): string {
  const names = [
    ...a.fields.map((f) => f.name),
    ...(a.fields.length
      ? []
      : [...a.unique.map((f) => uniqueConstraintName(e, f)), ...a.indexes.map((f) => indexName(e, f))].map(
          (n) => n.slice(e.table.length + 1),
        )),
  ];
  const what = names.join('_');
  return `add_${e.table}_${what.length <= 60 ? what : a.fields.length ? 'columns' : 'indexes'}`;
}
