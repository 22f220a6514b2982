// What a plan (POST /v1/apps?dryRun=true) answers, as `outpost plan` prints it
// (src/cli/commands/plan.ts): each replica's node and predicted deploy terms,
// each demand site's route, the objective, and why nodes were ruled out. Long
// lists (1,000 placements, 1,000 ruled-out nodes) are virtualised tables.
import { useState } from 'preact/hooks';
import type { DeployAnswer, Plan } from '../../src/contract/api.js';
import { ms } from './common.js';
import { Table, type Column } from './table.js';
import { filterOver, rowsHeight } from './apps-table.js';

type Placement = Plan['placements'][number];
type Route = Plan['routes'][number];
type RuledOut = Plan['filtered'][number];

function Engine({ p }: { p: Placement }) {
  const n = p.predicted.concurrency ?? 1;
  // slowed by the starts predicted to overlap it on the host
  return n > 1.05 ? <span title={`${n} starts at once on the host`}>{ms(p.predicted.engineMs)} ×{n}</span> : <>{ms(p.predicted.engineMs)}</>;
}

const runnersUp = (p: Placement): string =>
  p.runnersUp.map((r) => `${r.node} (${r.objective !== null ? `${r.objective} ms mean, ` : ''}deploy ${ms(r.deployMs)})`).join('; ') || '-';

const placementColumns: Column<Placement>[] = [
  { title: 'replica', cell: (p) => p.replica, sort: (p) => p.replica, num: true, width: '4.5rem' },
  { title: 'node', cell: (p) => <b>{p.node}</b>, sort: (p) => p.node, width: '1fr' },
  { title: 'image', cell: (p) => ms(p.predicted.imageMs), sort: (p) => p.predicted.imageMs, num: true, width: '5.5rem' },
  { title: 'container', cell: (p) => ms(p.predicted.containerMs), sort: (p) => p.predicted.containerMs, num: true, width: '5.5rem' },
  { title: 'engine', cell: (p) => <Engine p={p} />, sort: (p) => p.predicted.engineMs, num: true, width: '8rem' },
  { title: 'deploy', cell: (p) => <b>{ms(p.predicted.deployMs)}</b>, sort: (p) => p.predicted.deployMs, num: true, width: '5.5rem' },
  { title: 'serves', cell: (p) => p.serves.join(', ') || '-', sort: (p) => p.serves.length, width: '1fr' },
  { title: 'runners-up', cell: (p) => <span title={runnersUp(p)}>{runnersUp(p)}</span>, width: '2fr' },
];

const routeColumns: Column<Route>[] = [
  { title: 'site', cell: (r) => <b>{r.site}</b>, sort: (r) => r.site, width: '1fr' },
  { title: 'rps', cell: (r) => r.rps, sort: (r) => r.rps, num: true, width: '5rem' },
  { title: 'items', cell: (r) => r.items, sort: (r) => r.items, num: true, width: '5rem' },
  { title: 'node', cell: (r) => r.node ?? '-', sort: (r) => r.node ?? '', width: '1fr' },
  { title: 'predicted', cell: (r) => (r.predictedMs === null ? <span class="bad-text">unreachable</span> : ms(r.predictedMs)), sort: (r) => r.predictedMs ?? Infinity, num: true, width: '7rem' },
];

const ruledOutColumns: Column<RuledOut>[] = [
  { title: 'node', cell: (f) => <b>{f.node}</b>, sort: (f) => f.node, width: '12rem' },
  { title: 'why (click a row for all of it)', cell: (f) => f.reasons.join('; '), sort: (f) => f.reasons[0] ?? '', width: '1fr' },
];

export function PlanView({ answer }: { answer: DeployAnswer }) {
  const p = answer.plan;
  const [why, setWhy] = useState<RuledOut | null>(null);
  const latency = p.strategy === 'latency';
  return (
    <div class="plan">
      <p>
        <b>Plan for {p.app}</b>: {latency ? 'latency-aware (least demand-weighted request latency)' : 'no demand: spread, image locality first'}.{' '}
        {p.placements.length === 0 ? 'Nothing to place.' : `${p.placements.length} replica(s) to create, predicted deploy ${ms(p.deployMs)} in all.`}
        {answer.removed.length > 0 && ` Removes ${answer.removed.join(', ')}.`}
        {!answer.changed && ' No change from what runs now.'}
      </p>
      {latency && (
        <p data-testid="plan-objective">
          Objective: <b>{p.objective === null ? 'n/a (a demand site cannot be reached)' : `${ms(p.objective)} demand-weighted mean request latency`}</b>
        </p>
      )}
      {p.unmet.map((u) => <p class="error">Goal missed: {u.site} gets {u.bestMs === null ? 'no route' : ms(u.bestMs)}, goal {ms(u.goalMs)}</p>)}
      {(p.warnings ?? []).map((w) => <p class="warn-text">Warning: {w}</p>)}
      {p.placements.length > 0 && (
        <>
          <h3>Placements (predicted deploy terms)</h3>
          <Table label="placements" rows={p.placements} columns={placementColumns} rowKey={(x) => String(x.replica)} height={rowsHeight(p.placements.length, 320)} text={filterOver(p.placements, (x) => `${x.node} ${x.serves.join(' ')}`)} />
        </>
      )}
      {p.routes.length > 0 && (
        <>
          <h3>Routes (each demand site's nearest replica)</h3>
          <Table label="routes" rows={p.routes} columns={routeColumns} rowKey={(r) => r.site} height={rowsHeight(p.routes.length, 240)} />
        </>
      )}
      {p.filtered.length > 0 && (
        <>
          <h3>Ruled out ({p.filtered.length} node{p.filtered.length === 1 ? '' : 's'})</h3>
          <Table label="ruled-out" rows={p.filtered} columns={ruledOutColumns} rowKey={(f) => f.node} height={rowsHeight(p.filtered.length, 280)}
            text={filterOver(p.filtered, (f) => `${f.node} ${f.reasons.join(' ')}`)} onRow={setWhy} selected={why?.node ?? null} />
          {why && <ul class="reasons" aria-label={`why ${why.node} was ruled out`}>{why.reasons.map((r) => <li>{why.node}: {r}</li>)}</ul>}
        </>
      )}
      {(p.overrides ?? []).length > 0 && (
        <>
          <h3>Overrides (per node: the entries that apply, and what they change)</h3>
          <ul class="reasons">
            {p.overrides.map((o) => <li><b>{o.node}</b>: {o.applied.map((k) => `overrides[${k}]`).join(', ')}: {o.diff.join('; ') || '(no change)'}</li>)}
          </ul>
        </>
      )}
    </div>
  );
}
