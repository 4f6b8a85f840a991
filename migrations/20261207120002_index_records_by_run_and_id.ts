import type { Knex } from 'knex';

/**
 * The run_id indexes of the landing tables become (run_id, id): the records API pages one run's
 * records by id (GET …/records?run_id=), which a run_id-only index answers by fetching and sorting
 * the whole run for every page. The new index still serves what the old one did (a retry deleting
 * its run's records, cascades from sync_runs) at about the same cost per landed row.
 */
const TABLES = ['raw_records', 'quarantined_records'];

export async function up(knex: Knex): Promise<void> {
  for (const table of TABLES) {
    await knex.raw(`CREATE INDEX IF NOT EXISTS ?? ON ?? (run_id, id)`, [`${table}_run_id_id_index`, table]);
    await knex.raw(`DROP INDEX IF EXISTS ??`, [`${table}_run_id_index`]);
  }
}

export async function down(knex: Knex): Promise<void> {
  for (const table of TABLES) {
    await knex.raw(`CREATE INDEX IF NOT EXISTS ?? ON ?? (run_id)`, [`${table}_run_id_index`, table]);
    await knex.raw(`DROP INDEX IF EXISTS ??`, [`${table}_run_id_id_index`]);
  }
}
