/** `npm run migrate`: applies pending migrations to DATABASE_URL. */
import { createKnex } from '../src/db/create-knex';
import { migrateLatest } from '../src/db/migrator';

const url = process.env.DATABASE_URL;
if (!url) {
  console.error('DATABASE_URL is required');
  process.exit(78);
}
const knex = createKnex({ url, poolMax: 1 });
try {
  const applied = await migrateLatest(knex);
  console.log(applied.length ? `applied:\n  ${applied.join('\n  ')}` : 'database is up to date');
} finally {
  await knex.destroy();
}
