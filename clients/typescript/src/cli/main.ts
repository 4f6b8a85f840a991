/**
 * `sluice`: the command line over the Sluice API (README, "Command line"). Every command maps
 * to one or a few typed client calls (../client.ts); errors become one line on stderr (JSON with
 * --json) and an exit code from ./exit-codes.ts.
 */
import { parseArgs } from 'node:util';
import { SluiceApiError, SluiceClient } from '../client';
import { COMMANDS, type Command } from './commands';
import { resolveConnection } from './config';
import { EXIT, exitCodeOf, UsageError } from './exit-codes';
import { createOutput } from './output';

const GLOBAL_OPTIONS = ['url', 'token', 'profile', 'json', 'help'];
const BOOLEAN_OPTIONS = new Set(['json', 'help', 'all', 'purge', 'wait']);
const ALL_OPTIONS = [...new Set([...GLOBAL_OPTIONS, ...COMMANDS.flatMap((c) => c.options)])];

function usage(): string {
  const lines = COMMANDS.map((c) => {
    const head = [...c.words, ...c.args.map((a) => `<${a}>`)].join(' ');
    return `  sluice ${head.padEnd(24)} ${c.summary}`;
  });
  return [
    'Usage: sluice <command> [options]',
    '',
    'Commands:',
    ...lines,
    '',
    'Global options:',
    '  --url URL          the API (else SLUICE_URL, else the profile)',
    '  --token TOKEN      an API key (else SLUICE_TOKEN, else the profile)',
    '  --profile NAME     a profile of ~/.config/sluice/config.json (or SLUICE_CONFIG)',
    '  --json             JSON on stdout for scripts, errors as JSON on stderr',
    '',
    'Exit codes: 0 ok, 1 operation failed, 2 usage or invalid input, 3 not found, 4 auth, 5 server or unreachable.',
    '',
  ].join('\n');
}

function findCommand(positionals: string[]): { command: Command; args: string[] } {
  for (const command of COMMANDS)
    if (command.words.every((w, i) => positionals[i] === w))
      return { command, args: positionals.slice(command.words.length) };
  const given = positionals.slice(0, 2).join(' ');
  throw new UsageError(given ? `unknown command: ${given}` : 'no command given');
}

export async function main(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const wantsJson = argv.includes('--json');
  const output = createOutput(wantsJson);
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    let parsed;
    try {
      parsed = parseArgs({
        args: argv,
        allowPositionals: true,
        strict: true,
        options: Object.fromEntries(
          ALL_OPTIONS.map((name) => [
            name,
            {
              type: BOOLEAN_OPTIONS.has(name) ? ('boolean' as const) : ('string' as const),
              ...(name === 'help' ? { short: 'h' } : {}),
            },
          ]),
        ),
      });
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    const { values, positionals } = parsed;
    if (values.help || positionals.length === 0) {
      process.stdout.write(usage());
      return positionals.length === 0 && !values.help ? EXIT.usage : EXIT.ok;
    }
    const { command, args } = findCommand(positionals);
    const allowed = new Set([...GLOBAL_OPTIONS, ...command.options]);
    for (const name of Object.keys(values))
      if (!allowed.has(name)) throw new UsageError(`${command.words.join(' ')} takes no --${name}`);
    if (args.length > command.args.length)
      throw new UsageError(`unexpected argument: ${args[command.args.length]}`);
    const connection = resolveConnection(
      {
        url: values.url as string | undefined,
        token: values.token as string | undefined,
        profile: values.profile as string | undefined,
      },
      env,
    );
    const client = new SluiceClient({ baseUrl: connection.url, token: connection.token });
    await command.run({ client, options: values, args, output, signal: controller.signal });
    return EXIT.ok;
  } catch (err) {
    const code = exitCodeOf(err);
    reportError(err, wantsJson, code);
    return code;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}

function reportError(err: unknown, json: boolean, code: number): void {
  const e = err as Error;
  if (json) {
    const error =
      err instanceof SluiceApiError
        ? {
            kind: 'api',
            exit_code: code,
            status: err.status,
            type: err.type,
            title: err.title,
            detail: err.detail,
            errors: err.errors,
            request_id: err.requestId,
          }
        : {
            kind: e?.name === 'UsageError' ? 'usage' : e?.name === 'OperationFailed' ? 'failed' : 'error',
            exit_code: code,
            message: e?.message ?? String(err),
          };
    process.stderr.write(`${JSON.stringify({ error })}\n`);
    return;
  }
  if (err instanceof SluiceApiError) {
    process.stderr.write(`error: ${err.status} ${err.message}\n`);
    for (const f of err.errors) process.stderr.write(`  ${f.pointer}: ${f.message}\n`);
  } else process.stderr.write(`error: ${e?.message ?? String(err)}\n`);
  if (code === EXIT.usage && err instanceof UsageError)
    process.stderr.write('Run `sluice --help` for usage.\n');
}
