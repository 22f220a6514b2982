// A table that stays fast at any length: only the rows in view (plus a few)
// are in the DOM, the rest is one spacer's height. Sorting and the text filter
// run over the rows in memory; no row asks the server anything.
import type { ComponentChildren } from 'preact';
import { useMemo, useState } from 'preact/hooks';

export interface Column<R> {
  title: string;
  /** the cell; plain values are shown as text */
  cell: (r: R) => ComponentChildren;
  /** what it sorts by (default: not sortable) */
  sort?: (r: R) => string | number;
  /** css width, e.g. '8rem' or '1fr' */
  width?: string;
  num?: boolean;
}

export interface TableProps<R> {
  rows: R[];
  columns: Column<R>[];
  rowKey: (r: R) => string;
  /** the text the filter box matches (default: no filter box) */
  text?: (r: R) => string;
  /** px; the table scrolls within it */
  height?: number;
  onRow?: (r: R) => void;
  selected?: string | null;
  /** names the table for tests and screen readers */
  label: string;
  empty?: ComponentChildren;
}

const ROW = 28;
const OVERSCAN = 8;

export function Table<R>(p: TableProps<R>) {
  const [top, setTop] = useState(0);
  const [q, setQ] = useState('');
  const [by, setBy] = useState<{ i: number; dir: 1 | -1 } | null>(null);
  const height = p.height ?? 420;
  const rows = useMemo(() => {
    let r = p.rows;
    if (q && p.text) {
      const needle = q.toLowerCase();
      r = r.filter((x) => p.text!(x).toLowerCase().includes(needle));
    }
    const key = by ? p.columns[by.i]?.sort : undefined;
    if (by && key) r = [...r].sort((a, b) => { const x = key(a), y = key(b); return (x < y ? -1 : x > y ? 1 : 0) * by.dir; });
    return r;
  }, [p.rows, q, by]);
  const first = Math.max(0, Math.floor(top / ROW) - OVERSCAN);
  const last = Math.min(rows.length, Math.ceil((top + height) / ROW) + OVERSCAN);
  const grid = p.columns.map((c) => c.width ?? '1fr').join(' ');
  const sortOn = (i: number): void => setBy((b) => (b?.i === i ? { i, dir: b.dir === 1 ? -1 : 1 } : { i, dir: 1 }));
  return (
    <div class="table" role="table" aria-label={p.label} data-table={p.label}>
      {p.text && (
        <div class="table-tools">
          <input type="search" placeholder="filter" value={q} onInput={(e) => setQ((e.target as HTMLInputElement).value)} aria-label={`filter ${p.label}`} />
          <span class="muted">{rows.length === p.rows.length ? `${rows.length}` : `${rows.length} of ${p.rows.length}`}</span>
        </div>
      )}
      <div class="thead" role="row" style={{ gridTemplateColumns: grid }}>
        {p.columns.map((c, i) => (
          <div role="columnheader" class={`${c.num ? 'num' : ''} ${c.sort ? 'sortable' : ''}`} onClick={c.sort ? () => sortOn(i) : undefined}>
            {c.title}{by?.i === i ? (by.dir === 1 ? ' ▲' : ' ▼') : ''}
          </div>
        ))}
      </div>
      <div class="tbody" style={{ maxHeight: `${height}px` }} onScroll={(e) => setTop((e.target as HTMLElement).scrollTop)}>
        {rows.length === 0 && <div class="empty">{p.empty ?? 'nothing here'}</div>}
        <div style={{ height: `${rows.length * ROW}px`, position: 'relative' }}>
          {rows.slice(first, last).map((r, i) => {
            const k = p.rowKey(r);
            return (
              <div role="row" key={k} data-key={k} class={`tr ${p.onRow ? 'clickable' : ''} ${p.selected === k ? 'selected' : ''}`}
                style={{ gridTemplateColumns: grid, top: `${(first + i) * ROW}px` }} onClick={p.onRow ? () => p.onRow!(r) : undefined}>
                {p.columns.map((c) => <div role="cell" class={c.num ? 'num' : ''}>{c.cell(r)}</div>)}
              </div>
            );
          })}
        </div>
      </div>
    </div>
  );
}
