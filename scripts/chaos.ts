/**
 * `make chaos` / `npm run chaos`: the fault-injection suite. Runs every case in test/chaos/*.chaos.ts
 * one after the other (they kill, freeze and restart real processes; running them side by side on a
 * small machine would measure the machine), each under a hard timeout, then prints one table:
 * case, pass/fail, measured figures, criterion. Exits 1 when any case failed.
 *
 * Usage: tsx scripts/chaos.ts [substring ...]   (only the cases whose id contains one of them)
 */
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = new URL('../', import.meta.url).pathname;
const CASES_DIR = join(ROOT, 'test/chaos');

interface Row {
  id: string;
  title: string;
  ok: boolean;
  seconds: number;
  figures: Record<string, string | number>;
  criterion: string;
  error?: string;
}

async function main(): Promise<number> {
  // The template every case's database is copied from: unique to this run, dropped at the end.
  process.env.TEST_TEMPLATE_DATABASE ??= `sluice_chaos_template_${process.pid}_${randomBytes(3).toString('hex')}`;
  const { createTemplateDatabase, dropDatabase } = await import('../test/helpers/test-database');
  const kit = await import('../test/chaos/chaos-kit');
  const { killAll } = await import('../test/process/process-kit');

  const filters = process.argv.slice(2);
  const files = readdirSync(CASES_DIR)
    .filter((f) => f.endsWith('.chaos.ts'))
    .sort();
  const cases: import('../test/chaos/chaos-kit').ChaosCase[] = [];
  for (const f of files) {
    const mod = (await import(join(CASES_DIR, f))) as {
      chaosCase: import('../test/chaos/chaos-kit').ChaosCase;
    };
    if (!filters.length || filters.some((x) => mod.chaosCase.id.includes(x))) cases.push(mod.chaosCase);
  }
  cases.sort((a, b) => a.id.localeCompare(b.id, 'en', { numeric: true }));

  // A case that timed out may still have work in flight; its late failures must not end the run.
  process.on('unhandledRejection', (err) => console.error('late failure of a finished case:', err));
  const started = Date.now();
  await createTemplateDatabase();
  const rows: Row[] = [];
  let interrupted = false;
  const onSignal = () => {
    interrupted = true;
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    for (const c of cases) {
      if (interrupted) break;
      const figures: Record<string, string | number> = {};
      const t0 = Date.now();
      console.log(`\n▶ ${c.id}: ${c.title} (hard timeout ${c.timeoutMs / 1000} s)`);
      let timer: NodeJS.Timeout | undefined;
      let error: string | undefined;
      try {
        await Promise.race([
          c.run(figures),
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new Error(`hard timeout: ${c.timeoutMs} ms`)), c.timeoutMs);
          }),
        ]);
      } catch (err) {
        error = err instanceof Error ? err.message : String(err);
      } finally {
        clearTimeout(timer);
        await kit.runCleanups();
        await killAll();
      }
      const row: Row = {
        id: c.id,
        title: c.title,
        ok: !error,
        seconds: Math.round((Date.now() - t0) / 100) / 10,
        figures,
        criterion: c.criterion,
        error,
      };
      rows.push(row);
      console.log(`${row.ok ? '✔ pass' : '✘ FAIL'} ${c.id} in ${row.seconds} s ${JSON.stringify(figures)}`);
      if (error) console.log(`  ${error}`);
    }
  } finally {
    await dropDatabase(process.env.TEST_TEMPLATE_DATABASE!).catch(() => undefined);
  }

  printTable(rows, Math.round((Date.now() - started) / 1000));
  return rows.length === cases.length && rows.every((r) => r.ok) ? 0 : 1;
}

function printTable(rows: Row[], totalSeconds: number): void {
  const line = '-'.repeat(110);
  console.log(
    `\n${line}\nChaos suite: ${rows.filter((r) => r.ok).length}/${rows.length} passed in ${totalSeconds} s`,
  );
  console.log(`${'case'.padEnd(22)} ${'result'.padEnd(6)} ${'time'.padStart(7)}  title`);
  for (const r of rows)
    console.log(
      `${r.id.padEnd(22)} ${(r.ok ? 'PASS' : 'FAIL').padEnd(6)} ${`${r.seconds} s`.padStart(7)}  ${r.title}`,
    );
  console.log(line);
  for (const r of rows) {
    console.log(`${r.ok ? 'PASS' : 'FAIL'}  ${r.id}  (${r.seconds} s)  ${r.title}`);
    const figs = Object.entries(r.figures).map(([k, v]) => `${k}=${v}`);
    for (let i = 0; i < figs.length; i += 4)
      console.log(`      measured: ${figs.slice(i, i + 4).join('  ')}`);
    console.log(`      criterion: ${r.criterion}`);
    if (r.error) console.log(`      failure: ${r.error.slice(0, 600)}`);
  }
  console.log(line);
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
