// The app's last revisions (up to 10, newest first): when each was deployed,
// how it ended (complete, or failed and rolled back), which one the app is at
// and how many replicas run each now, and the current rollout's state and
// reason on its revision.
import type { AppDetail } from '../../src/contract/api.js';
import { ago, Badge, time } from './common.js';
import { undoTarget } from './apps-actions.js';
import { Table, type Column } from './table.js';
import { rowsHeight } from './apps-table.js';

type Rev = AppDetail['history'][number];

function columns(app: AppDetail): Column<Rev>[] {
  const running = new Map<string, number>();
  for (const r of app.replicas) if (r.state === 'running') running.set(r.specHash, (running.get(r.specHash) ?? 0) + 1);
  const ro = app.rollout;
  const back = undoTarget(app)?.revision;
  return [
    {
      title: 'revision',
      cell: (h) => <span data-testid="history-row" data-revision={h.revision}><b>{h.revision}</b>{h.revision === app.revision && <span class="badge good" title="the revision the app is at">current</span>}{h.revision === back && <span class="badge" title="Roll back deploys this one's spec again">roll-back target</span>}</span>,
      sort: (h) => h.revision, width: '13rem',
    },
    { title: 'deployed', cell: (h) => <span title={new Date(h.at).toLocaleString()}>{time(h.at)} ({ago(h.at)})</span>, sort: (h) => h.at, width: '11rem' },
    { title: 'status', cell: (h) => <Badge state={h.status} />, sort: (h) => h.status, width: '7rem' },
    { title: 'running it', cell: (h) => running.get(h.specHash) ?? 0, sort: (h) => running.get(h.specHash) ?? 0, num: true, width: '5.5rem' },
    {
      title: 'rollout',
      cell: (h) => (ro && ro.revision === h.revision
        ? <span title={ro.message ?? ''}><Badge state={ro.status} /> {ro.message ?? `started ${ago(ro.startedAt)}`}</span>
        : <span class="muted">-</span>),
      width: '2fr',
    },
    { title: 'spec hash', cell: (h) => <span class="mono">{h.specHash}</span>, width: '10rem' },
  ];
}

export function History({ app }: { app: AppDetail }) {
  const rows = [...app.history].reverse();
  return (
    <>
      <p class="muted">
        A revision is complete once every replica runs it and is ready; failed when a new replica failed (or the progress deadline passed) and
        the app went back to its last good revision. Roll back deploys the last complete revision before the current one again, as a new revision.
      </p>
      <Table label="history" rows={rows} columns={columns(app)} rowKey={(h) => String(h.revision)} height={rowsHeight(rows.length, 320)} empty="No revisions kept." />
    </>
  );
}
