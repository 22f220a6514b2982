// The app's last revisions (up to 10, newest first): when each was deployed,
// how it ended (complete, or failed and rolled back), which one the app is at
// and how many replicas run each now, and the current rollout's state and
// reason on its revision.
import type { JSX } from 'preact';
import type { AppDetail } from '../../src/contract/api.js';
import { ago, Badge, time } from './common.js';
import { runningRevision, undoTarget } from './apps-revision.js';
import { Table, type Column } from './table.js';
import { rowsHeight } from './apps-table.js';

type Rev = AppDetail['history'][number];

/**
 * The current rollout, on the revisions it concerns: its own (progressing,
 * complete, failed); a rollback's reason on the revision that failed (the
 * app's newest), and a note on the one it went back to (the rollout's).
 */
function rolloutOn(app: AppDetail, h: Rev): JSX.Element {
  const ro = app.rollout;
  if (!ro) return <span class="muted">-</span>;
  const back = ro.status === 'rolled-back';
  const failed = back ? app.revision : ro.revision;
  if (h.revision === failed) return <span title={ro.message ?? ''}><Badge state={ro.status} /> {ro.message ?? `started ${ago(ro.startedAt)}`}</span>;
  if (back && h.revision === ro.revision) return <span class="muted">rolled back to this one {ago(ro.startedAt)}</span>;
  return <span class="muted">-</span>;
}

function columns(app: AppDetail): Column<Rev>[] {
  const running = new Map<string, number>();
  for (const r of app.replicas) if (r.state === 'running') running.set(r.specHash, (running.get(r.specHash) ?? 0) + 1);
  const back = undoTarget(app)?.revision;
  const at = runningRevision(app);
  // revisions that share a spec (an undo's and the one it went back to) share replicas: counted on the newest
  const newest = new Map(app.history.map((h) => [h.specHash, h.revision]));
  const runs = (h: Rev): number | null => (newest.get(h.specHash) === h.revision ? running.get(h.specHash) ?? 0 : null);
  return [
    {
      title: 'revision',
      cell: (h) => <span class="revtags" data-testid="history-row" data-revision={h.revision}><b>{h.revision}</b>{h.revision === at && <span class="badge good" title="the app is at this revision's spec">current</span>}{h.revision === app.revision && h.revision !== at && <span class="badge warn" title="the newest revision: it did not stay">latest</span>}{h.revision === back && <span class="badge" title="Roll back deploys this one's spec again">roll-back target</span>}</span>,
      sort: (h) => h.revision, width: '15rem',
    },
    { title: 'deployed', cell: (h) => <span title={new Date(h.at).toLocaleString()}>{time(h.at)} ({ago(h.at)})</span>, sort: (h) => h.at, width: '11rem' },
    { title: 'status', cell: (h) => <Badge state={h.status} />, sort: (h) => h.status, width: '7rem' },
    {
      title: 'running it',
      cell: (h) => runs(h) ?? <span class="muted" title={`the same spec as revision ${newest.get(h.specHash)}: counted there`}>=</span>,
      sort: (h) => runs(h) ?? -1, num: true, width: '5.5rem',
    },
    { title: 'rollout', cell: (h) => rolloutOn(app, h), width: '2fr' },
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
