// Deploys: what Outpost alone knows, each deploy's predicted against measured
// T_image, T_container and T_engine. For the chosen app, per replica: paired
// bars and a table. For the whole fleet: the model's error per deployment over
// time (GET /v1/model?samples=N) and its median and 90th percentile per term,
// cold and cached. Live: the replicas reload when one of the app's replicas
// moves, the model when a replica comes up (each start adds a sample).
import { useMemo, useRef, useState } from 'preact/hooks';
import type { ModelAnswer, ModelError, ModelSample, ReplicaRecord } from '../../src/contract/api.js';
import { api, enc, list } from '../api.js';
import { href, useLoad } from '../hooks.js';
import { Chart, timeAxis, uPlot, type ChartData, type ChartOptions } from '../parts/chart.js';
import { Badge, ErrorBox, ms, pct, Section, time } from '../parts/common.js';
import { Table, type Column } from '../parts/table.js';
import type { PageProps } from '../main.js';

type Term = 'imageMs' | 'containerMs' | 'engineMs';
const TERMS: { key: Term; name: string; colour: string }[] = [
  { key: 'imageMs', name: 'T_image', colour: '#3b6fd8' },
  { key: 'containerMs', name: 'T_container', colour: '#d08a1e' },
  { key: 'engineMs', name: 'T_engine', colour: '#2a9d5c' },
];
const DEPLOY = { key: 'deployMs', name: 'T_deploy', colour: '#7a4bb8' } as const;
/** the model chart's newest samples (the API's most) */
const SAMPLES = 1000;
/** replicas the bar chart has room for; the table lists every one */
const MAX_BARS = 60;
/** x slots per replica: each term predicted and measured, then a gap */
const SLOTS = TERMS.length * 2 + 1;

/** (predicted - measured) / measured in percent: above 0 the model was slow, below fast; null without a measurement above 0. */
function relError(predicted: number | null | undefined, measured: number | null | undefined): number | null {
  if (predicted == null || measured == null || measured <= 0) return null;
  return ((predicted - measured) / measured) * 100;
}

const signed = (x: number | null): string => (x === null ? '-' : `${x > 0 ? '+' : ''}${pct(x)}`);

function cached(r: ReplicaRecord): string {
  return r.measured.imageMs === null ? '-' : r.measured.imageMs === 0 ? 'cached' : 'pulled';
}

function termColumns(): Column<ReplicaRecord>[] {
  const cols: Column<ReplicaRecord>[] = [];
  for (const t of TERMS) {
    cols.push({ title: `${t.name} predicted / measured`, cell: (r) => `${ms(r.predicted[t.key])} / ${ms(r.measured[t.key])}`, sort: (r) => r.measured[t.key] ?? -1, num: true, width: '1.3fr' });
    cols.push({ title: 'error', cell: (r) => signed(relError(r.predicted[t.key], r.measured[t.key])), sort: (r) => Math.abs(relError(r.predicted[t.key], r.measured[t.key]) ?? -1), num: true, width: '5rem' });
  }
  return cols;
}

const measuredDeploy = (r: ReplicaRecord): number | null =>
  r.measured.imageMs === null || r.measured.containerMs === null || r.measured.engineMs === null ? null : r.measured.imageMs + r.measured.containerMs + r.measured.engineMs;

const columns: Column<ReplicaRecord>[] = [
  { title: 'replica', cell: (r) => <b>{r.id}</b>, sort: (r) => r.id, width: '1.4fr' },
  { title: 'node', cell: (r) => r.node, sort: (r) => r.node, width: '1fr' },
  { title: 'state', cell: (r) => <Badge state={r.state} />, sort: (r) => r.state, width: '6rem' },
  { title: 'image', cell: cached, sort: cached, width: '4.5rem' },
  ...termColumns(),
  { title: 'T_deploy error', cell: (r) => signed(relError(r.predicted.deployMs, measuredDeploy(r))), sort: (r) => Math.abs(relError(r.predicted.deployMs, measuredDeploy(r)) ?? -1), num: true, width: '6.5rem' },
];

/** The bars' data: per replica, each term's predicted then measured value, on slots of their own (null elsewhere). */
function barData(rs: ReplicaRecord[], log: boolean): ChartData {
  const x: number[] = [];
  const ys: (number | null)[][] = TERMS.flatMap(() => [[], []]);
  rs.forEach((r, i) => {
    TERMS.forEach((t, k) => {
      for (const [j, v] of [[2 * k, r.predicted[t.key]], [2 * k + 1, r.measured[t.key]]] as const) {
        x.push(i * SLOTS + j);
        ys.forEach((y, s) => y.push(s === j && v !== null && !(log && v <= 0) ? v : null));
      }
    });
  });
  return [x, ...ys];
}

/** A log scale from the decade below the smallest value to the one above the largest: a bar's height is its ratio to that floor. */
const decades = (_u: uPlot, min: number, max: number): uPlot.Range.MinMax =>
  min > 0 && max > 0 ? [10 ** Math.floor(Math.log10(min)), 10 ** Math.ceil(Math.log10(max) + 1e-9)] : [1, 1000];

/** The bars' options; `shown` holds the replicas charted now, read at each redraw (new data is a setData, not a new chart). */
function barOptions(shown: { current: ReplicaRecord[] }, app: string, log: boolean): ChartOptions {
  const bars = uPlot.paths.bars!({ size: [0.92, 40], align: 0 });
  const short = (r: ReplicaRecord): string => (r.id.startsWith(`${app}-`) ? r.id.slice(app.length + 1) : r.id);
  return {
    legend: { live: false },
    cursor: { drag: { x: false, y: false }, points: { show: false } },
    scales: { x: { time: false, range: () => [-1, Math.max(1, shown.current.length) * SLOTS - 1] }, y: log ? { distr: 3, range: decades } : { range: (_u, _min, max) => [0, max * 1.08 || 1] } },
    axes: [
      {
        // one label per replica, fewer when they would overlap
        splits: (u) => {
          const rs = shown.current;
          const every = Math.max(1, Math.ceil(rs.length / Math.max(1, u.bbox.width / devicePixelRatio / 90)));
          return rs.map((_, i) => i * SLOTS + (SLOTS - 1) / 2 - 0.5).filter((_, i) => i % every === 0);
        },
        values: (_u, splits) => splits.map((s) => { const r = shown.current[Math.round((s - (SLOTS - 1) / 2 + 0.5) / SLOTS)]; return r ? `${short(r)}\n${r.node}` : ''; }),
        size: 46,
        grid: { show: false },
      },
      { values: (_u, vals) => vals.map((v) => ms(v)), size: 72 },
    ],
    series: [
      {},
      ...TERMS.flatMap((t) => [
        { label: `${t.name} predicted`, stroke: t.colour, fill: `${t.colour}40`, width: 1, paths: bars, points: { show: false } },
        { label: `${t.name} measured`, stroke: t.colour, fill: t.colour, width: 1, paths: bars, points: { show: false } },
      ]),
    ],
  };
}

/** The error chart: each term's relative error per sample, at the time it was recorded. */
function errorData(samples: ModelSample[]): ChartData {
  return [
    samples.map((s) => s.at / 1000),
    ...[...TERMS, DEPLOY].map((t) => samples.map((s) => relError(s.predicted[t.key], s.measured[t.key]))),
  ];
}

/** The error axis's ticks: round percentages, the smallest first, as many as fit 24 px apart (uPlot's own suit linear scales). */
const TICKS = [0, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 25_000, 50_000, 100_000].flatMap((t) => (t ? [-t, t] : [t]));
const ASINH = 10;
function errorTicks(u: uPlot, _axis: number, min: number, max: number): number[] {
  // where each lands, px from the bottom, by the scale's own transform (the plot is not laid out yet when its axes are)
  const f = (v: number): number => Math.asinh(v / ASINH);
  const px = (v: number): number => ((f(v) - f(min)) / (f(max) - f(min))) * (u.bbox.height / devicePixelRatio);
  const out: number[] = [];
  for (const t of TICKS.filter((v) => v >= min && v <= max)) if (out.every((o) => Math.abs(px(o) - px(t)) >= 24)) out.push(t);
  return out.sort((a, b) => a - b);
}

const errorOptions: ChartOptions = {
  cursor: { drag: { x: true, y: false } },
  scales: {
    // one sample alone: an hour around it, not the years uPlot would span
    x: { range: (_u, min, max) => (min === max ? [min - 1800, max + 1800] : [min, max]) },
    // arcsinh: linear near 0, logarithmic beyond ±10%, so a pull predicted 20x too slow and a 3% miss both show; 0 always in view
    y: { distr: 4, asinh: ASINH, range: (_u, min, max) => [Math.min(-10, min * 1.3), Math.max(10, max * 1.3)] },
  },
  // (uPlot would label only powers of ten on an arcsinh scale: label every tick)
  axes: [timeAxis, { splits: errorTicks, filter: (_u, splits) => splits, values: (_u, vals) => vals.map((v) => (v == null ? '' : `${v > 0 ? '+' : ''}${v}%`)), size: 64 }],
  series: [
    { value: (_u, v) => (v == null ? '-' : time(v * 1000)) },
    ...[...TERMS, DEPLOY].map((t) => ({
      // points, no lines: each is a deployment of its own, nothing lies between two
      label: `${t.name} error`, stroke: t.colour, paths: () => null,
      points: { show: true, size: t === DEPLOY ? 7 : 5, fill: t.colour }, value: (_u: uPlot, v: number | null) => signed(v),
    })),
  ],
};

function Figures({ m }: { m: ModelAnswer }) {
  const cell = (e: ModelError, t: string) => {
    const x = e.terms[t as keyof ModelError['terms']];
    return <><td class="num">{x.n}</td><td class="num">{pct(x.medianPct)}</td><td class="num">{pct(x.p90Pct)}</td></>;
  };
  return (
    <table class="figures" data-testid="model-figures">
      <thead>
        <tr><th rowSpan={2}>|predicted - measured| / measured</th><th colSpan={3}>all ({m.samples})</th><th colSpan={3}>cold image ({m.cold.samples})</th><th colSpan={3}>cached image ({m.warm.samples})</th></tr>
        <tr>{[0, 1, 2].map(() => <><th class="num">n</th><th class="num">median</th><th class="num">p90</th></>)}</tr>
      </thead>
      <tbody>
        {[...TERMS, DEPLOY].map((t) => (
          <tr><th><span class="swatch" style={{ background: t.colour }} />{t.name}</th>{cell(m, t.key)}{cell(m.cold, t.key)}{cell(m.warm, t.key)}</tr>
        ))}
      </tbody>
    </table>
  );
}

/** What the cursor is over in the bar chart: one replica's three terms. */
function Readout({ r }: { r: ReplicaRecord | null }) {
  if (!r) return <p class="muted readout">Hover a bar for its replica's figures.</p>;
  return (
    <p class="readout"><b>{r.id}</b> on {r.node} ({cached(r)}):{' '}
      {TERMS.map((t) => <span><span class="swatch" style={{ background: t.colour }} />{t.name} {ms(r.predicted[t.key])} predicted, {ms(r.measured[t.key])} measured ({signed(relError(r.predicted[t.key], r.measured[t.key]))}) </span>)}
    </p>
  );
}

export default function Deploys({ route }: PageProps) {
  const apps = useLoad((s) => list('/v1/apps', {}, s), [], { on: (e) => e.type === 'app.deployed' || e.type === 'app.removed' });
  const names = (apps.data ?? []).map((a) => a.name);
  const app = route[0] ?? names[0] ?? '';
  const replicas = useLoad((s) => (app ? api<ReplicaRecord[]>(`/v1/apps/${enc(app)}/replicas`, { signal: s }) : Promise.resolve([])), [app], {
    on: (e) => e.app === app && (e.type.startsWith('replica.') || e.type.startsWith('pull.') || e.type === 'app.deployed'),
  });
  const model = useLoad((s) => api<ModelAnswer>(`/v1/model?samples=${SAMPLES}`, { signal: s }), [], { on: (e) => e.type === 'replica.ready' });
  const [log, setLog] = useState(true);
  const [onlyApp, setOnlyApp] = useState(false);
  const [hover, setHover] = useState<number | null>(null);

  const rows = replicas.data ?? [];
  // the newest replicas when there are more than the chart has room for
  const charted = useMemo(() => (rows.length > MAX_BARS ? [...rows].sort((a, b) => b.createdAt - a.createdAt).slice(0, MAX_BARS).sort((a, b) => a.id.localeCompare(b.id, undefined, { numeric: true })) : rows), [rows]);
  const bars = useMemo(() => barData(charted, log), [charted, log]);
  const shown = useRef(charted);
  shown.current = charted;
  const barOpts = useMemo(() => barOptions(shown, app, log), [app, log]);
  const samples = useMemo(() => (model.data?.recent ?? []).filter((s) => !onlyApp || s.app === app), [model.data, onlyApp, app]);
  const errors = useMemo(() => errorData(samples), [samples]);
  const hovered = hover === null ? null : charted[Math.floor((bars[0][hover] ?? -1) / SLOTS)] ?? null;

  const picker = (
    <label class="row">app
      <select value={app} onChange={(e) => { location.hash = href('deploys', (e.target as HTMLSelectElement).value); }} aria-label="app whose deploys are shown" data-testid="deploys-app">
        {!names.includes(app) && app && <option value={app}>{app}</option>}
        {names.map((n) => <option value={n}>{n}</option>)}
      </select>
    </label>
  );
  return (
    <>
      <ErrorBox error={apps.error ?? replicas.error ?? model.error} />
      <Section title={app ? `Deploy terms of ${app}: predicted against measured` : 'Deploy terms'} right={
        <span class="row">
          <label class="row"><input type="checkbox" checked={log} onChange={(e) => setLog((e.target as HTMLInputElement).checked)} /> log scale</label>
          {picker}
        </span>
      }>
        {apps.data && names.length === 0 ? <p class="muted">No apps yet: <code>outpost deploy app.yaml</code>, or the Plan page.</p> : (
          <>
            <Chart key={`${app} ${log}`} testid="deploys-chart" label={`predicted and measured deploy terms of ${app}'s replicas`}
              options={barOpts} data={bars} height={300} onCursor={setHover}
              empty={app && replicas.data ? `${app} has no replicas.` : 'loading ...'} />
            {rows.length > MAX_BARS && <p class="muted">The chart shows the {MAX_BARS} newest of {rows.length} replicas; the table lists them all.</p>}
            <Readout r={hovered} />
            <p class="muted">Light bars: what the plan predicted; solid: what the agent measured. A cached image's T_image is 0 (not drawn on the log scale). Error: (predicted - measured) / measured.</p>
            <div data-testid="deploys-table">
              <Table label="deploys" rows={rows} columns={columns} rowKey={(r) => r.id} text={(r) => `${r.id} ${r.node} ${r.state} ${cached(r)}`} height={300}
                empty={app && replicas.data ? `${app} has no replicas.` : 'loading ...'} />
            </div>
          </>
        )}
      </Section>
      <Section title="The model's error over time" right={
        <label class="row"><input type="checkbox" checked={onlyApp} disabled={!app} onChange={(e) => setOnlyApp((e.target as HTMLInputElement).checked)} /> {app ? `${app} only` : 'one app only'}</label>
      }>
        <Chart key="errors" testid="model-error-chart" label="the model's relative error per deployment over time, per term"
          options={errorOptions} data={errors} height={280}
          empty={model.data ? 'No deployment measured in full yet: each replica that comes up adds one.' : 'loading ...'} />
        <p class="muted">Each point is one deployment ({samples.length} shown, the newest {SAMPLES} of every app): (predicted - measured) / measured, above 0 when the model predicted too slow. Drag to zoom, double-click to undo.</p>
        {model.data && <Figures m={model.data} />}
      </Section>
    </>
  );
}
