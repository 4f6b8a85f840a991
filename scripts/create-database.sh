#!/usr/bin/env bash
# Creates the database DATABASE_URL names when it does not exist yet (connecting to the server's
# "postgres" database to do it). Uses the project's own pg driver, so no psql is needed.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
load_dotenv
load_services_env
cd "$ROOT"

node --input-type=module - <<'JS'
import pg from 'pg';

const target = new URL(process.env.DATABASE_URL);
const name = decodeURIComponent(target.pathname.slice(1));
if (!name) {
  console.error('DATABASE_URL names no database');
  process.exit(2);
}
const admin = new URL(target);
admin.pathname = '/postgres';
const client = new pg.Client({ connectionString: admin.toString() });
try {
  await client.connect();
  const { rowCount } = await client.query('select 1 from pg_database where datname = $1', [name]);
  if (rowCount) {
    console.log(`==> database "${name}" exists`);
  } else {
    await client.query(`create database "${name.replaceAll('"', '""')}"`);
    console.log(`==> database "${name}" created`);
  }
} catch (err) {
  // 42P04: created meanwhile by a concurrent run.
  if (err.code !== '42P04') {
    console.error(`!!! could not create database "${name}": ${err.message}`);
    process.exit(1);
  }
} finally {
  await client.end().catch(() => {});
}
JS
