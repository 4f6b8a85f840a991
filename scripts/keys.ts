/**
 * `npm run keys -- create --name ci --scope read` | `list` | `revoke <id|name>`: API key management
 * from a shell, on DATABASE_URL (same table as the admin API). `create` prints the token once, on
 * stdout alone, so `TOKEN=$(npm run -s keys -- create ...)` captures it; details go to stderr.
 * Every change is written to the audit log with actor `cli`. Exits 64 on usage errors, 78 when
 * DATABASE_URL is missing, 1 when the key is not found or the name is taken.
 */
import { API_SCOPES, type ApiScope } from '../src/config';
import { ApiKeyRepository, DuplicateKeyName } from '../src/auth/api-key.repository';
import { KEY_NAME_PATTERN } from '../src/auth/auth.contracts';
import { AuditLog } from '../src/auth/audit-log';
import { createKnex } from '../src/db/create-knex';

const USAGE = `usage:
  npm run keys -- create --name <name> --scope <read|write|admin>
  npm run keys -- list
  npm run keys -- revoke <id|name>`;

function usage(problem: string): never {
  console.error(`keys: ${problem}\n${USAGE}`);
  process.exit(64);
}

function option(args: string[], name: string): string | undefined {
  const i = args.findIndex((a) => a === `--${name}` || a.startsWith(`--${name}=`));
  if (i < 0) return undefined;
  const arg = args[i]!;
  return arg.includes('=') ? arg.slice(arg.indexOf('=') + 1) : args[i + 1];
}

const [command, ...args] = process.argv.slice(2);
if (!command || !['create', 'list', 'revoke'].includes(command)) usage('give a command');
const url = process.env.DATABASE_URL?.trim();
if (!url) {
  console.error('keys: invalid configuration:\n  - DATABASE_URL is required');
  process.exit(78);
}

const knex = createKnex({ url, poolMax: 1 });
const keys = new ApiKeyRepository(knex);
const audit = new AuditLog(knex);
const record = (action: string, targetId: string, detail: Record<string, unknown>) =>
  audit.record({
    actor: 'cli',
    action,
    target_type: 'api_key',
    target_id: targetId,
    outcome: 'success',
    status: null,
    request_id: null,
    detail,
  });

let code = 0;
try {
  if (command === 'create') {
    const name = option(args, 'name');
    const scope = option(args, 'scope');
    if (!name || !new RegExp(KEY_NAME_PATTERN).test(name))
      usage('--name is required: letters, digits, . _ - (up to 64)');
    if (!scope || !(API_SCOPES as readonly string[]).includes(scope))
      usage(`--scope must be one of ${API_SCOPES.join(', ')}`);
    try {
      const created = await keys.create(name, scope as ApiScope);
      await record('api_key.create', created.id, { name, scope, prefix: created.prefix });
      console.error(`created API key "${name}" (${scope}, id ${created.id}); the token is shown once:`);
      console.log(created.token);
    } catch (err) {
      if (!(err instanceof DuplicateKeyName)) throw err;
      console.error(`keys: an API key named "${name}" exists`);
      code = 1;
    }
  } else if (command === 'list') {
    const { data } = await keys.list(100, 0);
    console.log(['id', 'name', 'scope', 'prefix', 'created_at', 'last_used_at', 'revoked_at'].join('\t'));
    for (const k of data)
      console.log(
        [k.id, k.name, k.scope, k.prefix, k.created_at, k.last_used_at ?? '-', k.revoked_at ?? '-'].join(
          '\t',
        ),
      );
  } else {
    const target = args[0];
    if (!target) usage('revoke needs an id or name');
    const revoked = await keys.revoke(target);
    if (!revoked) {
      console.error(`keys: no API key "${target}"`);
      code = 1;
    } else {
      await record('api_key.revoke', revoked.key.id, { name: revoked.key.name, scope: revoked.key.scope });
      console.error(`revoked "${revoked.key.name}"; running APIs stop accepting it within 5 s`);
    }
  }
} finally {
  await knex.destroy();
}
process.exit(code);
