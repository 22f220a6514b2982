// An app's replicas, one row each: where it runs, its state and health, its
// restarts and last exit (an OOM kill stands out), its error, and the deploy
// time the plan predicted against the one its agent measured.
import { useMemo } from 'preact/hooks';
import type { AppDetail, ReplicaError, ReplicaRecord } from '../../src/contract/api.js';
import { href } from '../hooks.js';
import { Badge, ms } from './common.js';
import { Table, type Column } from './table.js';
import { filterOver, rowsHeight } from './apps-table.js';
import { isOomExit } from '../../src/core/events.js';

/** The engine or the kernel named an OOM kill (a bare SIGKILL may be something else): the event log's own test. */
export const isOom = isOomExit;

/** The measured T_deploy: the sum of the terms, once all three are known. */
export function measuredDeploy(r: ReplicaRecord): number | null {
  const m = r.measured;
  return m.imageMs === null || m.containerMs === null || m.engineMs === null ? null : m.imageMs + m.containerMs + m.engineMs;
}

const terms = (r: ReplicaRecord): string =>
  (['imageMs', 'containerMs', 'engineMs'] as const).map((k) => `${k.slice(0, -2)}: predicted ${ms(r.predicted[k])}, measured ${ms(r.measured[k])}`).join('\n');

function State({ r }: { r: ReplicaRecord }) {
  const p = r.progress;
  return (
    <span data-testid="replica-row" data-replica={r.id} data-node={r.node} data-state={r.state} data-ready={String(r.state === 'running' && r.ready !== false)}>
      <Badge state={r.state} />
      {r.state === 'pulling' && p && <span class="muted"> {p.total ? `${Math.round((100 * p.bytes) / p.total)}%` : `${(p.bytes / 1048576).toFixed(1)} MiB`}</span>}
    </span>
  );
}

function Ready({ r }: { r: ReplicaRecord }) {
  if (r.state !== 'running') return <span class="muted">-</span>;
  return r.ready === false ? <span class="bad-text" title="its health check fails: it gets no clients">no</span> : <span class="good-text">yes</span>;
}

function Exit({ e }: { e: ReplicaError | null | undefined }) {
  if (!e) return <span class="muted">-</span>;
  const oom = isOom(e);
  // the agent says `the replica stopped (WHY)`: the column says it stopped, WHY is the news
  const why = e.message.replace(/^the replica stopped \((.*)\)$/, '$1');
  return <span class={oom ? 'oom' : ''} data-oom={oom ? 'true' : undefined} title={`${e.code}: ${e.message}`}>{oom && <b>OOM</b>}{why}</span>;
}

function Deploy({ r }: { r: ReplicaRecord }) {
  const m = measuredDeploy(r);
  const p = r.predicted.deployMs;
  const off = m !== null && p !== null && p > 0 ? m / p : null;
  return (
    <span title={terms(r)} class={off !== null && (off > 2 || off < 0.5) ? 'warn-text' : ''}>
      {ms(p)} / {ms(m)}
    </span>
  );
}

/** Replicas in slot order (the API lists them by id, where 59 comes after 589), then by id. */
const bySlot = (r: ReplicaRecord): string => `${String(r.slot ?? 0).padStart(7, '0')} ${r.id}`;

function columns(app: AppDetail): Column<ReplicaRecord>[] {
  const revOf = new Map(app.history.map((h) => [h.specHash, h.revision]));
  const containers = (app.spec.containers ?? []).map((c) => c.name);
  const cols: Column<ReplicaRecord>[] = [
    { title: 'replica', cell: (r) => <span class="mono" title={r.id}>{r.id}</span>, sort: bySlot, width: 'minmax(7rem, 1.4fr)' },
    { title: 'node', cell: (r) => r.node, sort: (r) => r.node, width: 'minmax(5rem, 1fr)' },
    { title: 'rev', cell: (r) => revOf.get(r.specHash) ?? '?', sort: (r) => revOf.get(r.specHash) ?? 0, num: true, width: '3rem' },
    { title: 'state', cell: (r) => <State r={r} />, sort: (r) => r.state, width: '7.5rem' },
    { title: 'ready', cell: (r) => <Ready r={r} />, sort: (r) => (r.state === 'running' ? (r.ready === false ? 1 : 2) : 0), width: '3.5rem' },
    { title: 'restarts', cell: (r) => r.restarts, sort: (r) => r.restarts, num: true, width: '4.5rem' },
    { title: 'last exit', cell: (r) => <Exit e={r.lastExit} />, sort: (r) => (isOom(r.lastExit) ? 2 : r.lastExit ? 1 : 0), width: '2fr' },
    { title: 'error', cell: (r) => (r.error ? <span class="bad-text" title={r.error.message}>{r.error.code}: {r.error.message}</span> : <span class="muted">-</span>), sort: (r) => r.error?.code ?? '', width: '1fr' },
    { title: 'deploy pred. / meas.', cell: (r) => <Deploy r={r} />, sort: (r) => measuredDeploy(r) ?? -1, num: true, width: '11rem' },
  ];
  if (containers.length > 1) cols.push({ title: 'containers', cell: () => <span title={containers.join(', ')}>{containers.join(', ')}</span>, width: '1fr' });
  cols.push({
    title: '',
    cell: (r) => <span class="links"><a href={href('apps', app.name, 'logs', r.id)}>logs</a> <a href={href('apps', app.name, 'terminal', r.id)}>shell</a></span>,
    width: '6rem',
  });
  return cols;
}

export function Replicas({ app }: { app: AppDetail }) {
  const rs = useMemo(() => [...app.replicas].sort((a, b) => (bySlot(a) < bySlot(b) ? -1 : 1)), [app.replicas]);
  const by = (f: (r: ReplicaRecord) => boolean): number => rs.filter(f).length;
  return (
    <>
      <p class="muted">
        {by((r) => r.state === 'running' && r.ready !== false)} ready · {by((r) => r.state === 'running' && r.ready === false)} unhealthy ·{' '}
        {by((r) => !['running', 'failed', 'stopped'].includes(r.state))} starting · {by((r) => r.state === 'failed')} failed ·{' '}
        {rs.reduce((n, r) => n + r.restarts, 0)} restarts · <span class={by((r) => isOom(r.lastExit)) ? 'oom' : ''}>{by((r) => isOom(r.lastExit))} last stopped by OOM</span>
        {' '}· deploy times: predicted / measured (hover for each term)
      </p>
      <Table label="replicas" rows={rs} columns={columns(app)} rowKey={(r) => r.id} height={rowsHeight(rs.length, 480)}
        text={filterOver(rs, (r) => `${r.id} ${r.node} ${r.state} ${r.error?.code ?? ''} ${r.lastExit?.message ?? ''}`)}
        empty={app.spec.replicas === 0 ? 'The app asks for 0 replicas.' : 'No replicas yet: the reconciler places them as nodes have room (see History and the events).'} />
    </>
  );
}
