import { createWriteStream, readFileSync } from 'node:fs';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import type { SluiceClient, Source, SourceCreate, SourceUpdate, SyncRun, TestResult } from '../client';
import { OperationFailed, UsageError } from './exit-codes';
import { fields, table, type Output } from './output';

/** What every command gets: the client, the parsed options and the positionals after the command. */
export interface CommandContext {
  client: SluiceClient;
  options: Record<string, string | boolean | undefined>;
  args: string[];
  output: Output;
  /** Aborted on SIGINT/SIGTERM: long commands (sync --wait, events tail) end cleanly. */
  signal: AbortSignal;
}

export interface Command {
  /** The words that name it: ['sources', 'list']. */
  words: string[];
  /** Positional arguments it needs, for the usage line. */
  args: string[];
  /** Options it takes beyond the global ones. */
  options: string[];
  summary: string;
  run(ctx: CommandContext): Promise<void>;
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
  });

function str(ctx: CommandContext, name: string): string | undefined {
  const v = ctx.options[name];
  return typeof v === 'string' ? v : undefined;
}

function int(ctx: CommandContext, name: string, { min = 0, max = Infinity } = {}): number | undefined {
  const v = str(ctx, name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new UsageError(
      `--${name} must be an integer${max < Infinity ? ` from ${min} to ${max}` : ` ≥ ${min}`}`,
    );
  return n;
}

function bool(ctx: CommandContext, name: string): boolean | undefined {
  const v = str(ctx, name);
  if (v === undefined) return undefined;
  if (v === 'true') return true;
  if (v === 'false') return false;
  throw new UsageError(`--${name} must be true or false`);
}

function jsonOption(ctx: CommandContext, name: string): unknown {
  let v = str(ctx, name);
  if (v === undefined) return undefined;
  if (v.startsWith('@')) {
    try {
      v = readFileSync(v.slice(1), 'utf8');
    } catch (err) {
      throw new UsageError(`--${name}: cannot read ${v.slice(1)}: ${(err as Error).message}`);
    }
  }
  try {
    return JSON.parse(v) as unknown;
  } catch {
    throw new UsageError(`--${name} must be JSON (or @file with JSON)`);
  }
}

function oneOf<T extends string>(ctx: CommandContext, name: string, allowed: readonly T[]): T | undefined {
  const v = str(ctx, name);
  if (v !== undefined && !allowed.includes(v as T))
    throw new UsageError(`--${name} must be one of ${allowed.join(', ')}`);
  return v as T | undefined;
}

const SOURCE_TYPES = ['database', 'api', 'file', 'stream', 'webhook'] as const;
const SYNC_MODES = ['append', 'snapshot', 'dedup'] as const;
const SOURCE_FIELD_OPTIONS = [
  'body',
  'name',
  'type',
  'connection',
  'metadata',
  'schema',
  'interval',
  'mode',
  'active',
];

/** A create or update body: --body (JSON or @file) with the field options laid over it. */
function sourceBody(ctx: CommandContext): Record<string, unknown> {
  const base = jsonOption(ctx, 'body') ?? {};
  if (typeof base !== 'object' || base === null || Array.isArray(base))
    throw new UsageError('--body must be a JSON object');
  const body: Record<string, unknown> = { ...base };
  const set = (field: string, value: unknown) => value !== undefined && (body[field] = value);
  set('name', str(ctx, 'name'));
  set('source_type', oneOf(ctx, 'type', SOURCE_TYPES));
  set('connection_string', str(ctx, 'connection'));
  set('metadata', jsonOption(ctx, 'metadata'));
  set('schema_definition', jsonOption(ctx, 'schema'));
  set('refresh_interval', int(ctx, 'interval', { min: 0 }));
  set('sync_mode', oneOf(ctx, 'mode', SYNC_MODES));
  set('is_active', bool(ctx, 'active'));
  return body;
}

function id(ctx: CommandContext, what = 'id'): string {
  const value = ctx.args[0];
  if (!value) throw new UsageError(`missing <${what}>`);
  return value;
}

const sourceRow = (s: Source) => [
  s.id,
  s.name,
  s.source_type,
  s.is_active ? 'yes' : 'no',
  s.refresh_interval,
  s.sync_status,
  s.last_sync_at,
];
const SOURCE_COLUMNS = ['id', 'name', 'type', 'active', 'interval', 'status', 'last sync'];

const runRow = (r: SyncRun) => [
  r.id,
  r.status,
  r.trigger,
  r.attempt,
  r.records,
  r.invalid,
  r.queued_at,
  r.duration_ms === null ? null : `${r.duration_ms} ms`,
  r.error,
];
const RUN_COLUMNS = ['id', 'status', 'trigger', 'attempt', 'records', 'invalid', 'queued', 'took', 'error'];

const FINAL_RUN = new Set(['success', 'failed', 'cancelled']);

function describeRun(r: SyncRun): string {
  const parts = [`run ${r.id} ${r.status}`];
  if (r.attempt > 1) parts.push(`attempt ${r.attempt}`);
  if (r.status !== 'queued') parts.push(`${r.records} records`);
  if (r.invalid) parts.push(`${r.invalid} invalid`);
  if (r.duration_ms !== null) parts.push(`${r.duration_ms} ms`);
  if (r.error) parts.push(`error: ${r.error}`);
  return parts.join(', ');
}

function testTable(result: TestResult): string {
  return (
    table(
      ['step', 'status', 'took', 'code', 'message'],
      result.steps.map((s) => [s.name, s.status, `${s.duration_ms} ms`, s.code, s.message]),
    ) + `${result.ok ? 'ok' : 'NOT ok'} in ${result.duration_ms} ms\n`
  );
}

export const COMMANDS: Command[] = [
  {
    words: ['sources', 'list'],
    args: [],
    options: ['type', 'status', 'active', 'limit', 'offset', 'all'],
    summary: 'list sources, newest first (--all: every page)',
    async run(ctx) {
      const query = {
        type: oneOf(ctx, 'type', SOURCE_TYPES),
        status: oneOf(ctx, 'status', ['pending', 'syncing', 'success', 'failed'] as const),
        active: bool(ctx, 'active'),
      };
      let page: { data: Source[]; pagination: { total: number; limit: number; offset: number } };
      if (ctx.options.all) {
        const data: Source[] = [];
        for await (const s of ctx.client.paginate((p) => ctx.client.listSources({ ...query, ...p })))
          data.push(s);
        page = { data, pagination: { total: data.length, limit: data.length, offset: 0 } };
      } else {
        const limit = int(ctx, 'limit', { min: 1, max: 100 });
        const offset = int(ctx, 'offset');
        page = await ctx.client.listSources({ ...query, limit, offset });
      }
      ctx.output.result(page, () => {
        const { total, offset } = page.pagination;
        const shown = page.data.length ? `${offset + 1}-${offset + page.data.length}` : '0';
        return table(SOURCE_COLUMNS, page.data.map(sourceRow)) + `${shown} of ${total}\n`;
      });
    },
  },
  {
    words: ['sources', 'get'],
    args: ['id'],
    options: [],
    summary: 'show one source (secrets masked)',
    async run(ctx) {
      const source = await ctx.client.getSource(id(ctx));
      ctx.output.result(source, () => fields(source));
    },
  },
  {
    words: ['sources', 'create'],
    args: [],
    options: SOURCE_FIELD_OPTIONS,
    summary: 'create a source from --name --type --connection [--metadata JSON] … or --body JSON|@file',
    async run(ctx) {
      const body = sourceBody(ctx);
      const source = await ctx.client.createSource(body as SourceCreate);
      ctx.output.result(source, () => `created ${source.id}\n` + fields(source));
    },
  },
  {
    words: ['sources', 'update'],
    args: ['id'],
    options: SOURCE_FIELD_OPTIONS,
    summary: 'change the fields given; the others keep their value',
    async run(ctx) {
      const sourceId = id(ctx);
      const body = sourceBody(ctx);
      if (!Object.keys(body).length)
        throw new UsageError('nothing to update: give at least one field option');
      const source = await ctx.client.updateSource(sourceId, body as SourceUpdate);
      ctx.output.result(source, () => `updated ${source.id}\n` + fields(source));
    },
  },
  {
    words: ['sources', 'delete'],
    args: ['id'],
    options: ['purge'],
    summary: 'delete a source (--purge: and its landed records; refused with counts without it)',
    async run(ctx) {
      const sourceId = id(ctx);
      await ctx.client.deleteSource(sourceId, { purge: Boolean(ctx.options.purge) });
      ctx.output.result({ id: sourceId, deleted: true }, () => `deleted ${sourceId}\n`);
    },
  },
  {
    words: ['sync'],
    args: ['id'],
    options: ['wait', 'timeout'],
    summary: 'start a sync (--wait: follow its run to the end; exit 1 if it fails)',
    async run(ctx) {
      const sourceId = id(ctx);
      const timeoutMs = (int(ctx, 'timeout', { min: 1 }) ?? 600) * 1000;
      const accepted = await ctx.client.sync(sourceId);
      if (!ctx.options.wait) {
        ctx.output.result(accepted, () => `queued run ${accepted.run_id} (job ${accepted.job_id})\n`);
        return;
      }
      ctx.output.info(`queued run ${accepted.run_id} (job ${accepted.job_id})`);
      const deadline = Date.now() + timeoutMs;
      let last = '';
      for (;;) {
        // Newest first: the run just queued is on the first page unless 100 more were queued since.
        const { data } = await ctx.client.runs(sourceId, { limit: 100 });
        const run = data.find((r) => r.id === accepted.run_id);
        if (run) {
          const line = describeRun(run);
          if (line !== last) ctx.output.info(line);
          last = line;
          if (FINAL_RUN.has(run.status)) {
            ctx.output.result(run, () => table(RUN_COLUMNS, [runRow(run)]));
            if (run.status !== 'success')
              throw new OperationFailed(`sync ${run.status}: ${run.error ?? 'no error given'}`);
            return;
          }
        }
        if (ctx.signal.aborted) throw new OperationFailed('interrupted; the sync goes on');
        if (Date.now() > deadline)
          throw new OperationFailed(
            `run ${accepted.run_id} not finished after ${timeoutMs / 1000} s; it goes on`,
          );
        await sleep(500, ctx.signal);
      }
    },
  },
  {
    words: ['test'],
    args: ['id'],
    options: ['timeout'],
    summary: 'test a source’s connection step by step (exit 1 unless every step passes)',
    async run(ctx) {
      const sourceId = id(ctx);
      const timeoutMs = (int(ctx, 'timeout', { min: 1 }) ?? 120) * 1000;
      const answer = await ctx.client.test(sourceId);
      let result: TestResult;
      if ('steps' in answer) result = answer;
      else {
        // No worker took the test in the API's wait: follow the job.
        ctx.output.info(`test queued as job ${answer.job_id}; waiting`);
        const deadline = Date.now() + timeoutMs;
        for (;;) {
          const job = await ctx.client.job(answer.job_id);
          if (job.state === 'failed') throw new OperationFailed(`test job failed: ${job.error ?? ''}`);
          if (job.state === 'completed' && job.queue === 'test' && job.result) {
            result = job.result;
            break;
          }
          if (ctx.signal.aborted || Date.now() > deadline)
            throw new OperationFailed(`test job ${answer.job_id} not finished; it goes on`);
          await sleep(500, ctx.signal);
        }
      }
      ctx.output.result(result, () => testTable(result));
      if (!result.ok) throw new OperationFailed('the connection test failed');
    },
  },
  {
    words: ['runs'],
    args: ['id'],
    options: ['limit', 'offset'],
    summary: 'run history of a source, newest first',
    async run(ctx) {
      const page = await ctx.client.runs(id(ctx), {
        limit: int(ctx, 'limit', { min: 1, max: 100 }),
        offset: int(ctx, 'offset'),
      });
      ctx.output.result(
        page,
        () => table(RUN_COLUMNS, page.data.map(runRow)) + `${page.data.length} of ${page.pagination.total}\n`,
      );
    },
  },
  {
    words: ['records', 'export'],
    args: ['id'],
    options: ['format', 'out', 'run', 'since', 'view'],
    summary: 'stream every landed record as NDJSON (default) or CSV, to stdout or --out file',
    async run(ctx) {
      const sourceId = id(ctx);
      const format = oneOf(ctx, 'format', ['ndjson', 'csv'] as const) ?? 'ndjson';
      const stream = await ctx.client.exportRecords(sourceId, format, {
        run_id: str(ctx, 'run'),
        since: str(ctx, 'since'),
        view: oneOf(ctx, 'view', ['all', 'current'] as const),
      });
      const file = str(ctx, 'out');
      let bytes = 0;
      const body = Readable.fromWeb(stream as WebReadableStream<Uint8Array>);
      body.on('data', (chunk: Buffer) => (bytes += chunk.length));
      if (file) {
        await pipeline(body, createWriteStream(file));
        ctx.output.result({ file, format, bytes }, () => `wrote ${bytes} bytes of ${format} to ${file}\n`);
      } else {
        // The records themselves are the output, --json or not (NDJSON is JSON a line).
        await pipeline(body, stdoutWriter());
      }
    },
  },
  {
    words: ['keys', 'list'],
    args: [],
    options: ['limit', 'offset'],
    summary: 'list API keys (never a token); needs an admin key',
    async run(ctx) {
      const page = await ctx.client.listKeys({
        limit: int(ctx, 'limit', { min: 1, max: 100 }),
        offset: int(ctx, 'offset'),
      });
      ctx.output.result(page, () =>
        table(
          ['id', 'name', 'scope', 'prefix', 'created', 'last used', 'revoked'],
          page.data.map((k) => [k.id, k.name, k.scope, k.prefix, k.created_at, k.last_used_at, k.revoked_at]),
        ),
      );
    },
  },
  {
    words: ['keys', 'create'],
    args: [],
    options: ['name', 'scope'],
    summary: 'create an API key (--name, --scope read|write|admin); the token is shown once',
    async run(ctx) {
      const name = str(ctx, 'name');
      const scope = oneOf(ctx, 'scope', ['read', 'write', 'admin'] as const);
      if (!name || !scope) throw new UsageError('keys create needs --name and --scope');
      const key = await ctx.client.createKey({ name, scope });
      ctx.output.result(key, () => fields(key) + 'Keep the token now: it cannot be shown again.\n');
    },
  },
  {
    words: ['keys', 'revoke'],
    args: ['id'],
    options: [],
    summary: 'revoke an API key',
    async run(ctx) {
      const keyId = id(ctx);
      await ctx.client.revokeKey(keyId);
      ctx.output.result({ id: keyId, revoked: true }, () => `revoked ${keyId}\n`);
    },
  },
  {
    words: ['events', 'tail'],
    args: [],
    options: ['source', 'type', 'count', 'after'],
    summary: 'follow the event stream (--type sync.*, --source id; --count n: stop after n events)',
    async run(ctx) {
      const count = int(ctx, 'count', { min: 1 });
      let seen = 0;
      const events = ctx.client.events({
        sourceId: str(ctx, 'source'),
        type: str(ctx, 'type'),
        lastEventId: str(ctx, 'after'),
        signal: ctx.signal,
      });
      if (!ctx.output.json) ctx.output.info('following events; Ctrl-C to stop');
      try {
        for await (const event of events) {
          // NDJSON with --json: one event a line, so a script can read them as they come.
          ctx.output.out(
            ctx.output.json
              ? `${JSON.stringify(event)}\n`
              : `${event.at}  ${event.type.padEnd(16)}  source ${event.source_id ?? '-'}  run ${event.run_id ?? '-'}  ${JSON.stringify(event.data)}\n`,
          );
          if (count !== undefined && ++seen >= count) return;
        }
      } catch (err) {
        if (ctx.signal.aborted) return;
        throw err;
      }
    },
  },
];

/** stdout as a stream that ends quietly when the reader goes away (`| head`). */
function stdoutWriter(): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, done) {
      if (!process.stdout.write(chunk)) process.stdout.once('drain', () => done());
      else done();
    },
  });
}
