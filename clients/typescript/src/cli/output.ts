/** Output for people (aligned tables) and for scripts (--json: one JSON document on stdout). */

export type Cell = string | number | boolean | null | undefined;

function cellText(value: Cell | unknown): string {
  if (value === null || value === undefined) return '-';
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

/** Columns aligned by their widest cell; the header in capitals. */
export function table(columns: string[], rows: (Cell | unknown)[][]): string {
  const text = rows.map((row) => row.map(cellText));
  const widths = columns.map((c, i) => Math.max(c.length, ...text.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(columns.map((c) => c.toUpperCase())), ...text.map(line)].join('\n') + '\n';
}

/** One object as FIELD  VALUE lines. */
export function fields(object: Record<string, unknown>): string {
  return table(
    ['field', 'value'],
    Object.entries(object).map(([k, v]) => [k, v]),
  );
}

export interface Output {
  json: boolean;
  /** stdout: the result. */
  out(text: string): void;
  /** stderr: progress and messages (never parsed by scripts). */
  info(text: string): void;
  /** --json: the value as JSON on stdout; otherwise `human()` on stdout. */
  result(value: unknown, human: () => string): void;
}

export function createOutput(json: boolean): Output {
  return {
    json,
    out: (text) => void process.stdout.write(text),
    info: (text) => void process.stderr.write(text.endsWith('\n') ? text : `${text}\n`),
    result(value, human) {
      process.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : human());
    },
  };
}
