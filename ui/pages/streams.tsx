// Streams: every (node, stream) pair the data hubs report, and for the chosen
// one its window results as a live chart: a field (the mean by default) as a
// line in its min/max band, at each window's end. No event announces a window,
// so the chart asks every 2 s for the windows from its newest one on and
// appends them; the table's hub figures come every 5 s.
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { HeldWindow, StreamRow } from '../../src/contract/api.js';
import { api, enc } from '../api.js';
import { href, useLoad } from '../hooks.js';
import { Chart, timeAxis, type ChartData, type ChartOptions, type uPlot } from '../parts/chart.js';
import { ago, bytes, ErrorBox, Section, time } from '../parts/common.js';
import { Table, type Column } from '../parts/table.js';
import type { PageProps } from '../main.js';

/** windows one request asks for */
const PAGE = 5000;
/** windows the chart holds: the oldest go first */
const MAX_WINDOWS = 20_000;
const SPANS: [string, number][] = [['15 min', 900_000], ['1 h', 3_600_000], ['6 h', 21_600_000], ['24 h', 86_400_000]];
/** fields of a window that are not a figure to draw */
const NOT_FIGURES = new Set(['node', 'stream', 'start', 'end', 'device', 'productSign']);
const LINE = '#2458d6';

const rowKey = (r: StreamRow): string => `${r.stream}/${r.node}`;
const perWindow = (r: StreamRow): number | null => (r.pointsIn !== null && r.windowsEmitted ? r.pointsIn / r.windowsEmitted : null);
const fixed = (x: number | null | undefined, d = 1): string => (x === null || x === undefined ? '-' : x.toFixed(d));

const columns: Column<StreamRow>[] = [
  { title: 'stream', cell: (r) => <b>{r.stream}</b>, sort: (r) => r.stream, width: '1.2fr' },
  { title: 'node', cell: (r) => r.node, sort: (r) => r.node, width: '1.2fr' },
  { title: 'windows held', cell: (r) => r.windows, sort: (r) => r.windows, num: true, width: '6.5rem' },
  { title: 'last window', cell: (r) => ago(r.lastEnd), sort: (r) => r.lastEnd ?? 0, width: '6.5rem' },
  { title: 'points in', cell: (r) => r.pointsIn ?? '-', sort: (r) => r.pointsIn ?? -1, num: true, width: '6rem' },
  { title: 'rejected', cell: (r) => r.rejected ?? '-', sort: (r) => r.rejected ?? -1, num: true, width: '5rem' },
  { title: 'late', cell: (r) => r.late ?? '-', sort: (r) => r.late ?? -1, num: true, width: '4rem' },
  { title: 'points / window', cell: (r) => fixed(perWindow(r)), sort: (r) => perWindow(r) ?? -1, num: true, width: '7rem' },
  { title: 'hub reduction', cell: (r) => (r.hub?.reduction != null ? `${fixed(r.hub.reduction)}x` : '-'), sort: (r) => r.hub?.reduction ?? -1, num: true, width: '7rem' },
  { title: 'hub queue', cell: (r) => r.hub?.queueDepth ?? '-', sort: (r) => r.hub?.queueDepth ?? -1, num: true, width: '5.5rem' },
];

/** Where the chart starts: a span before the newest window, shortened so that it holds about MAX_WINDOWS at the pair's rate. */
function startOf(r: StreamRow, spanMs: number, now = Date.now()): number {
  const end = r.lastEnd ?? now;
  let from = end - spanMs;
  if (r.windows > 1 && r.firstStart !== null && r.lastEnd !== null && r.lastEnd > r.firstStart) {
    from = Math.max(from, end - (MAX_WINDOWS * (r.lastEnd - r.firstStart)) / r.windows);
  }
  return Math.floor(from);
}

/** `held` with what a query from `from` on answered: the windows it held from there are replaced (the answer has them again, and any late ones). */
function merge(held: HeldWindow[], from: number, got: HeldWindow[]): HeldWindow[] {
  let keep = held.length;
  while (keep > 0 && held[keep - 1]!.start >= from) keep--;
  const out = held.slice(0, keep).concat(got);
  return out.length > MAX_WINDOWS ? out.slice(out.length - MAX_WINDOWS) : out;
}

/** The figures a window carries, the mean first when there is one. */
function figuresOf(ws: HeldWindow[]): string[] {
  const seen = new Set<string>();
  for (const w of ws.slice(-50)) for (const [k, v] of Object.entries(w)) if (!NOT_FIGURES.has(k) && (typeof v === 'number' || v === null)) seen.add(k);
  const order = ['mean', 'p50', 'sum', 'count'];
  return [...seen].sort((a, b) => (order.indexOf(a) + 1 || 99) - (order.indexOf(b) + 1 || 99) || a.localeCompare(b));
}

type Band = 'min/max' | 'stddev' | null;

/**
 * Each window at its end time (epoch s), and a gap (null) wherever the next
 * one ends more than three usual window lengths later: the line breaks where
 * no point came rather than drawing a straight line across the silence.
 */
function withGaps(ws: HeldWindow[]): { x: number; w: HeldWindow | null }[] {
  const steps = ws.slice(1).map((w, i) => w.end - ws[i]!.end).filter((d) => d > 0).sort((a, b) => a - b);
  const usual = steps[Math.floor(steps.length / 2)];
  const out: { x: number; w: HeldWindow | null }[] = [];
  ws.forEach((w, i) => {
    const prev = ws[i - 1];
    if (prev && usual && steps.length >= 2 && w.end - prev.end > 3 * usual) out.push({ x: (prev.end + usual) / 1000, w: null });
    out.push({ x: w.end / 1000, w });
  });
  return out;
}

function chartData(ws: HeldWindow[], field: string, band: Band): ChartData {
  const points = withGaps(ws);
  const col = (k: string): (number | null)[] => points.map(({ w }) => { const v = w?.[k]; return typeof v === 'number' ? v : null; });
  const x = points.map((p) => p.x);
  const y = col(field);
  if (!band) return [x, y];
  if (band === 'min/max') return [x, y, col('max'), col('min')];
  const sd = col('stddev');
  return [x, y, y.map((v, i) => (v === null || sd[i] === null ? null : v + sd[i]!)), y.map((v, i) => (v === null || sd[i] === null ? null : v - sd[i]!))];
}

/** uPlot hides the points of a dense line: a window alone between two gaps would then not show at all, so its point stays. */
function lonePoints(u: uPlot, series: number, show: boolean): number[] | null {
  if (show) return null;
  const y = u.data[series]!;
  const out: number[] = [];
  for (let i = 0; i < y.length; i++) if (y[i] != null && y[i - 1] == null && y[i + 1] == null) out.push(i);
  return out;
}

function chartOptions(field: string, band: Band): ChartOptions {
  const edge = { stroke: `${LINE}55`, width: 1, points: { show: false } };
  return {
    cursor: { drag: { x: true, y: false } },
    axes: [timeAxis, { size: 60 }],
    series: [
      { value: (_u, v) => (v == null ? '-' : time(v * 1000)) },
      { label: field, stroke: LINE, width: 2, points: { filter: lonePoints } },
      ...(band ? [
        { label: band === 'min/max' ? 'max' : `${field} + stddev`, ...edge },
        { label: band === 'min/max' ? 'min' : `${field} - stddev`, ...edge },
      ] : []),
    ],
    bands: band ? [{ series: [2, 3], fill: `${LINE}22` }] : [],
  };
}

function StreamChart({ row }: { row: StreamRow }) {
  const [span, setSpan] = useState(3_600_000);
  const [resync, setResync] = useState(0);
  const [pick, setPick] = useState<string | null>(null);
  const [device, setDevice] = useState<string | null>(null);
  const rowRef = useRef(row);
  rowRef.current = row;
  // the windows read so far for this span (a new span or a resync starts again; what is shown stays until it comes)
  const key = `${span} ${resync}`;
  const held = useRef<{ key: string; ws: HeldWindow[] }>({ key: '', ws: [] });

  // a hub that was holding results back (a cut link) has just sent them: some
  // may start before the newest window shown, so read the whole span again
  const queue = row.hub?.queueDepth ?? 0;
  const lastQueue = useRef(queue);
  useEffect(() => {
    if (lastQueue.current > 0 && queue === 0) setResync((n) => n + 1);
    lastQueue.current = queue;
  }, [queue]);

  const windows = useLoad(async (signal) => {
    let ws = held.current.key === key ? held.current.ws : [];
    for (let i = 0; i < MAX_WINDOWS / PAGE; i++) {
      const from = ws.length ? ws[ws.length - 1]!.start : startOf(rowRef.current, span);
      const got = await api<HeldWindow[]>(`/v1/streams/${enc(row.stream)}?node=${enc(row.node)}&from=${from}&limit=${PAGE}`, { signal });
      ws = merge(ws, from, got);
      if (got.length < PAGE) break;
    }
    held.current = { key, ws };
    return ws;
  }, [key], { everyMs: 2000 });

  const ws = windows.data ?? [];
  const devices = useMemo(() => [...new Set(ws.map((w) => w.device).filter((d): d is string => typeof d === 'string'))].sort(), [ws]);
  const dev = device !== null && devices.includes(device) ? device : devices[0] ?? null;
  const shown = useMemo(() => (dev === null ? ws : ws.filter((w) => w.device === dev)), [ws, dev]);
  const figures = useMemo(() => figuresOf(shown), [shown]);
  const field = pick !== null && figures.includes(pick) ? pick : figures[0] ?? 'mean';
  const band: Band = figures.includes('min') && figures.includes('max') ? 'min/max' : figures.includes('stddev') && field !== 'stddev' ? 'stddev' : null;
  const data = useMemo(() => chartData(shown, field, band), [shown, field, band]);
  const options = useMemo(() => chartOptions(field, band), [field, band]);
  const select = (label: string, value: string, choices: [string, string][], set: (v: string) => void) => (
    <label class="row">{label}
      <select value={value} onChange={(e) => set((e.target as HTMLSelectElement).value)} aria-label={label}>
        {choices.map(([v, t]) => <option value={v}>{t}</option>)}
      </select>
    </label>
  );
  return (
    <Section title={`${row.stream} on ${row.node}`} right={
      <span class="row">
        {figures.length > 1 && select('line', field, figures.map((f) => [f, f]), setPick)}
        {devices.length > 0 && select('device', dev ?? '', devices.map((d) => [d, d]), setDevice)}
        {select('last', String(span), SPANS.map(([t, v]) => [String(v), t]), (v) => setSpan(Number(v)))}
      </span>
    }>
      <ErrorBox error={windows.error} />
      <div class="stats stream-stats" data-testid="stream-stats">
        <div class="stat"><b data-testid="stream-points-in">{row.pointsIn?.toLocaleString() ?? '-'}</b><span>points in ({bytes(row.bytesIn)})</span></div>
        <div class="stat"><b>{row.windowsEmitted?.toLocaleString() ?? '-'}</b><span>windows emitted</span></div>
        <div class="stat"><b data-testid="stream-reduction">{fixed(perWindow(row))}</b><span>points per window</span></div>
        <div class="stat"><b>{row.hub?.reduction != null ? `${fixed(row.hub.reduction)}x` : '-'}</b><span>hub: bytes in per byte forwarded</span></div>
        <div class="stat"><b data-testid="stream-queue">{row.hub?.queueDepth ?? '-'}</b><span>hub queue{row.hub?.oldestUnsentMs ? `, oldest ${Math.round(row.hub.oldestUnsentMs / 1000)} s` : ''}</span></div>
        <div class="stat"><b>{row.rejected ?? '-'}</b><span>rejected ({row.late ?? 0} late)</span></div>
      </div>
      <Chart key={`${field} ${band}`} testid="stream-chart" label={`${field} of ${row.stream} on ${row.node} per window`} options={options} data={data} height={300}
        empty={windows.data ? `No window of ${row.stream} from ${row.node} in the last ${SPANS.find(([, v]) => v === span)?.[0]}.` : 'loading ...'} />
      <p class="muted">
        {shown.length} windows{ws.length >= MAX_WINDOWS ? ` (the newest ${MAX_WINDOWS})` : ''}, each at its end time;{' '}
        {band === 'min/max' ? 'the band is each window\'s min to max' : band === 'stddev' ? `the band is ${field} ± one standard deviation` : 'no band: the stream has no min and max operators'}. Drag to zoom, double-click to undo.
      </p>
    </Section>
  );
}

export default function Streams({ route }: PageProps) {
  const rows = useLoad((s) => api<StreamRow[]>('/v1/streams', { signal: s }), [], { everyMs: 5000, on: (e) => e.type.startsWith('node.') });
  const [stream, node] = route;
  const all = rows.data ?? [];
  // #/streams/NAME/NODE: that pair; #/streams/NAME: the first node (by name, as listed) that holds its windows
  const row = stream === undefined ? null
    : node !== undefined ? all.find((r) => r.stream === stream && r.node === node) ?? null
    : all.find((r) => r.stream === stream && r.windows > 0) ?? all.find((r) => r.stream === stream) ?? null;
  return (
    <>
      <ErrorBox error={rows.error} />
      <Section title={`Streams (${all.length})`}>
        <div data-testid="streams-table">
          <Table label="streams" rows={all} columns={columns} rowKey={rowKey} text={(r) => `${r.stream} ${r.node}`} height={360}
            onRow={(r) => { location.hash = href('streams', r.stream, r.node); }} selected={row ? rowKey(row) : null}
            empty={rows.data ? 'No streams yet: a node\'s data hub reports its streams once a device publishes (the demo\'s hub has `readings`).' : 'loading ...'} />
        </div>
      </Section>
      {row ? <StreamChart key={rowKey(row)} row={row} />
        : stream !== undefined && rows.data ? <p class="muted">No stream {stream}{node ? ` on ${node}` : ''}.</p>
        : all.length > 0 && <p class="muted">Pick a stream to chart its windows.</p>}
    </>
  );
}
