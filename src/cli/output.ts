// Human output: aligned tables, durations, byte sizes. `--json` bypasses all of it.
export function table(headers: string[], rows: (string | number | null | undefined)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map((c) => (c === null || c === undefined ? '-' : String(c))))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells.map((r) => r.map((c, i) => (i === r.length - 1 ? c : (c ?? '').padEnd(widths[i]!))).join('  ')).join('\n');
}

export function ms(x: number | null | undefined): string {
  if (x === null || x === undefined) return '-';
  return x >= 10_000 ? `${(x / 1000).toFixed(1)} s` : `${Math.round(x)} ms`;
}

export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return '?';
  if (n < 1024) return `${n} B`;
  if (n < 1048576) return `${(n / 1024).toFixed(1)} KB`;
  if (n < 1073741824) return `${(n / 1048576).toFixed(1)} MB`;
  return `${(n / 1073741824).toFixed(2)} GB`;
}

export function printJson(v: unknown): void {
  process.stdout.write(JSON.stringify(v, null, 2) + '\n');
}

export function ago(t: number): string {
  const s = Math.max(0, Math.round((Date.now() - t) / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  return `${Math.floor(s / 3600)}h`;
}

type Cell = string | number | null | undefined;

/** Writes and, when the pipe is full, waits for it to drain: a long list must not pile up in memory. */
async function write(s: string): Promise<void> {
  if (!process.stdout.write(s)) await new Promise((r) => process.stdout.once('drain', r));
}

/**
 * Prints a list as its pages arrive. With `json`, one JSON array, byte for
 * byte what printJson prints for the whole list; otherwise a table, its
 * columns as wide as the widest cell so far (a list of one page prints as
 * `table` prints it; a later page's wider cell widens the columns from there
 * on). Nothing is printed before the first page, so a failed first request
 * leaves stdout empty.
 */
export async function printPages<T>(pages: AsyncIterable<T[]>, json: boolean, headers: string[], row: (item: T) => Cell[]): Promise<void> {
  let n = 0;
  let widths: number[] | null = null;
  for await (const items of pages) {
    if (json) {
      let out = '';
      for (const it of items) out += (n++ === 0 ? '[\n' : ',\n') + JSON.stringify(it, null, 2).replace(/^/gm, '  ');
      if (out) await write(out);
      continue;
    }
    const cells = items.map((it) => row(it).map((c) => (c === null || c === undefined ? '-' : String(c))));
    const lines: string[][] = widths ? cells : [headers, ...cells];
    const w: number[] = headers.map((_, i): number => Math.max(widths?.[i] ?? 0, ...lines.map((r) => (r[i] ?? '').length)));
    widths = w;
    if (lines.length) await write(lines.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(w[i]!))).join('  ')).join('\n') + '\n');
  }
  if (json) await write(n === 0 ? '[]\n' : '\n]\n');
  else if (!widths) await write(headers.join('  ') + '\n');
}
