// Command-line flags of the benchmarks: `--name value`.

/** A numeric flag, or its default. */
export function numArg(name: string, dflt: number): number {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
}

/** A comma-separated flag (`--only a,b`), or null when absent. */
export function listArg(name: string): string[] | null {
  const i = process.argv.indexOf(name);
  return i > 0 ? (process.argv[i + 1] ?? '').split(',').filter(Boolean) : null;
}
