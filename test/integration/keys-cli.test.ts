import { execFile } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tokenHash } from '../../src/auth/api-token';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';

const ROOT = new URL('../../', import.meta.url).pathname;

/** `npm run keys -- ...` is `tsx scripts/keys.ts ...`: run it as a process with a clean environment. */
function keys(
  databaseUrl: string | undefined,
  ...args: string[]
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', 'scripts/keys.ts', ...args],
      {
        cwd: ROOT,
        timeout: 60_000,
        env: {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          HOME: process.env.HOME ?? '/tmp',
          ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}),
        },
      },
      (err, stdout, stderr) =>
        resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('npm run keys', () => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(() => database?.drop());

  it('creates a key printing only the token on stdout, lists it without the token, revokes it by name', async () => {
    const created = await keys(database.url, 'create', '--name', 'ci', '--scope', 'read');
    expect(created.code, created.stderr).toBe(0);
    const token = created.stdout.trim();
    expect(token).toMatch(/^slc_[A-Za-z0-9_-]{43}$/);
    const row = await database.knex('api_keys').where({ name: 'ci' }).first();
    expect(row).toMatchObject({ scope: 'read', token_hash: tokenHash(token), revoked_at: null });

    const listed = await keys(database.url, 'list');
    expect(listed.code).toBe(0);
    expect(listed.stdout).toContain(`ci\tread\t${token.slice(0, 8)}`);
    expect(listed.stdout).not.toContain(token);

    expect((await keys(database.url, 'create', '--name', 'ci', '--scope', 'admin')).code).toBe(1);
    const revoked = await keys(database.url, 'revoke', 'ci');
    expect(revoked.code, revoked.stderr).toBe(0);
    expect((await database.knex('api_keys').where({ name: 'ci' }).first()).revoked_at).not.toBeNull();
    expect((await keys(database.url, 'revoke', 'nobody')).code).toBe(1);

    const audit = await database
      .knex('audit_log')
      .orderBy('id')
      .select('actor', 'action', 'target_id', 'detail');
    expect(audit.map((a: { actor: string; action: string }) => `${a.actor} ${a.action}`)).toEqual([
      'cli api_key.create',
      'cli api_key.revoke',
    ]);
    expect(JSON.stringify(audit)).not.toContain(token.slice(8));
  }, 120_000);

  it('refuses bad usage (64) and a missing DATABASE_URL (78)', async () => {
    expect((await keys(database.url, 'create', '--name', 'x y', '--scope', 'read')).code).toBe(64);
    expect((await keys(database.url, 'create', '--name', 'ok', '--scope', 'root')).code).toBe(64);
    expect((await keys(database.url)).code).toBe(64);
    expect((await keys(undefined, 'list')).code).toBe(78);
  }, 120_000);
});
