import type { Knex } from 'knex';

/**
 * One index per common list filter, each ending in the list order (created_at desc, id desc), so a
 * page is read off the index in order instead of sorting the filtered set; `id` in every key also
 * lets the page's ids come from an index-only scan. The generated (source_type, is_active) and
 * (sync_status) indexes are prefixes of two of these, so they are dropped: every index is paid on
 * every write, and workers rewrite sync_status often.
 *
 * Plain CREATE INDEX inside the migration's transaction: the table is young and small. On a large
 * live table, build them CONCURRENTLY in a non-transactional migration instead.
 */
const INDEXES: Array<[name: string, columns: string]> = [
  ['raw_data_sources_created_at_id_index', 'created_at DESC, id DESC'],
  ['raw_data_sources_source_type_created_at_id_index', 'source_type, created_at DESC, id DESC'],
  [
    'raw_data_sources_source_type_is_active_created_at_id_index',
    'source_type, is_active, created_at DESC, id DESC',
  ],
  ['raw_data_sources_sync_status_created_at_id_index', 'sync_status, created_at DESC, id DESC'],
  ['raw_data_sources_is_active_created_at_id_index', 'is_active, created_at DESC, id DESC'],
];

const SUPERSEDED: Array<[name: string, columns: string]> = [
  ['raw_data_sources_source_type_is_active_index', 'source_type, is_active'],
  ['raw_data_sources_sync_status_index', 'sync_status'],
];

export async function up(knex: Knex): Promise<void> {
  for (const [name, columns] of INDEXES)
    await knex.raw(`CREATE INDEX ${name} ON raw_data_sources (${columns})`);
  for (const [name] of SUPERSEDED) await knex.raw(`DROP INDEX ${name}`);
}

export async function down(knex: Knex): Promise<void> {
  for (const [name, columns] of SUPERSEDED)
    await knex.raw(`CREATE INDEX ${name} ON raw_data_sources (${columns})`);
  for (const [name] of [...INDEXES].reverse()) await knex.raw(`DROP INDEX ${name}`);
}
