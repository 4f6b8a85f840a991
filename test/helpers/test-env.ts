import { randomBytes } from 'node:crypto';

/** Where tests find Postgres and Redis; CI and `make test` export these, the defaults fit the dev machine. */
export const ADMIN_DATABASE_URL =
  process.env.TEST_ADMIN_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379/0';
export const TEMPLATE_DATABASE = process.env.TEST_TEMPLATE_DATABASE ?? 'sluice_test_template';
/** Test-only keys: fixed so failures reproduce; never used outside tests. */
export const TEST_ENCRYPTION_KEYS = `test2:${Buffer.alloc(32, 2).toString('base64')},test1:${Buffer.alloc(32, 1).toString('base64')}`;

export function databaseUrl(name: string): string {
  const url = new URL(ADMIN_DATABASE_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

export const uniqueSuffix = () => `${process.pid}_${randomBytes(4).toString('hex')}`;
