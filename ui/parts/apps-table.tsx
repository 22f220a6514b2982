// How the apps pages size their tables: as tall as their rows up to a limit,
// with a filter box only where there are enough rows to need one.

/** A table's height for its rows, up to `max` px (then it scrolls). */
export const rowsHeight = (n: number, max: number): number => Math.min(max, Math.max(1, n) * 28 + 4);

/** A filter box only where there is something to filter. */
export const filterOver = <R,>(rows: R[], text: (r: R) => string): ((r: R) => string) | undefined => (rows.length > 10 ? text : undefined);
