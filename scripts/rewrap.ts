/**
 * `npm run rewrap [-- --batch-size=N]`: key rotation. With ENCRYPTION_KEYS=new,old, re-encrypts
 * every stored secret in DATABASE_URL with the first key; once it reports no failures (and
 * nothing skipped), the old keys can be removed from ENCRYPTION_KEYS. Give every process the new
 * ENCRYPTION_KEYS first, so nothing is sealed with an old key after the run. Safe to run again,
 * and while the API runs. Exits 1 when a secret could not be decrypted (listed by row id), 78 when
 * the configuration is wrong.
 *
 * Then it recomputes every stored masked form (what GET shows of a secret) with the current
 * masking rules, so secrets written under older, looser rules stop showing what those left visible.
 */
import { checkEncryptionKeys } from '../src/config';
import { remaskSecrets, rewrapSecrets } from '../src/crypto/rewrap';
import { SecretBox } from '../src/crypto/secret-box';
import { createKnex } from '../src/db/create-knex';
import { rawDataSourceResource } from '../src/generated';
import { sourceSecretMask } from '../src/sources/source-secret-mask';

const problems: string[] = [];
const url = process.env.DATABASE_URL?.trim();
if (!url) problems.push('DATABASE_URL is required');
const keys = process.env.ENCRYPTION_KEYS?.trim();
if (!keys) problems.push('ENCRYPTION_KEYS is required');
else problems.push(...checkEncryptionKeys(keys));
const sizeArg = process.argv.slice(2).find((a) => a.startsWith('--batch-size='));
const batchSize = sizeArg ? Number(sizeArg.slice('--batch-size='.length)) : 500;
if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 10000)
  problems.push('--batch-size must be an integer from 1 to 10000');
if (problems.length || !url || !keys) {
  console.error(`rewrap: invalid configuration:\n  - ${problems.join('\n  - ')}`);
  process.exit(78);
}

const secrets = new SecretBox(keys);
const knex = createKnex({ url, poolMax: 2 });
try {
  let lastReport = Date.now();
  const counts = await rewrapSecrets(knex, secrets, {
    batchSize,
    onBatch(table, c) {
      // A line every few seconds on big tables, so an operator sees it move.
      if (Date.now() - lastReport < 5000) return;
      lastReport = Date.now();
      console.log(`  ${table}: scanned ${c.scanned}, rewrapped ${c.rewrapped} so far`);
    },
  });
  console.log(
    `primary key "${secrets.primaryKeyId}": scanned ${counts.scanned}, rewrapped ${counts.rewrapped}, ` +
      `skipped ${counts.skipped}, failed ${counts.failed}`,
  );
  for (const f of counts.failures)
    console.error(`  cannot decrypt ${f.table}.${f.field} of row ${f.id}: ${f.reason}`);
  if (counts.failures.length < counts.failed)
    console.error(`  ...and ${counts.failed - counts.failures.length} more`);
  if (counts.skipped)
    console.log('some values changed while this ran: run it again to check them before removing old keys');
  else if (!counts.failed)
    console.log(`every stored secret is sealed with "${secrets.primaryKeyId}": older keys can be removed`);
  const masks = await remaskSecrets(knex, secrets, {
    batchSize,
    // The same masking the API's repository uses (src/container.ts).
    masks: new Map([[rawDataSourceResource.table, sourceSecretMask]]),
  });
  console.log(
    `masked forms: scanned ${masks.scanned}, recomputed ${masks.remasked}, skipped ${masks.skipped}`,
  );
  process.exitCode = counts.failed ? 1 : 0;
} finally {
  await knex.destroy();
}
