import type { Knex } from 'knex';

/**
 * The list's `q` filter (prefix_filters in specs/entities.json) is `lower(name) LIKE 'prefix%'`:
 * text_pattern_ops makes that an index range scan whatever the database's collation (a plain
 * btree serves LIKE only under the C collation). The spec's indexes are column lists, so this
 * expression index is written by hand. `?name=` (exact) uses the unique index on name.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(
    'CREATE INDEX IF NOT EXISTS raw_data_sources_name_prefix_index ON raw_data_sources (lower(name) text_pattern_ops)',
  );
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP INDEX IF EXISTS raw_data_sources_name_prefix_index');
}
