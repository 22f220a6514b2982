// The apps list: one row per app, from one list request (paged by 5,000),
// reloaded when an event names an app (a deploy, a rollout, a replica that
// started or stopped changes a row), at most once a second.
import type { AppView, WhoAmI } from '../../src/contract/api.js';
import { list } from '../api.js';
import { href, useLoad } from '../hooks.js';
import { ago, Badge, ErrorBox, Section } from './common.js';
import { Table, type Column } from './table.js';

/** The images an app runs: its own, or each container's; a process app shows its command. */
export function imagesOf(a: Pick<AppView, 'image' | 'command' | 'spec'>): string {
  if (a.image) return a.image;
  const cs = a.spec.containers ?? [];
  if (cs.length) return [...new Set(cs.map((c) => c.image))].join(', ');
  return a.command ? a.command.join(' ') : '-';
}

const columns: Column<AppView>[] = [
  { title: 'app', cell: (a) => <a href={href('apps', a.name)}><b>{a.name}</b></a>, sort: (a) => a.name, width: '1.3fr' },
  { title: 'image(s)', cell: (a) => <span class="mono" title={imagesOf(a)}>{imagesOf(a)}</span>, sort: imagesOf, width: '2fr' },
  {
    title: 'running / wanted',
    cell: (a) => <span class={a.running < a.replicas ? 'warn-text' : ''}>{a.running} / {a.replicas}</span>,
    sort: (a) => a.running - a.replicas, num: true, width: '8rem',
  },
  { title: 'revision', cell: (a) => a.revision ?? '-', sort: (a) => a.revision ?? 0, num: true, width: '5rem' },
  { title: 'rollout', cell: (a) => (a.rollout ? <Badge state={a.rollout.status} /> : '-'), sort: (a) => a.rollout?.status ?? '', width: '7.5rem' },
  { title: 'updated', cell: (a) => <span title={new Date(a.updatedAt).toLocaleString()}>{ago(a.updatedAt)}</span>, sort: (a) => a.updatedAt, width: '6.5rem' },
];

export function AppsList({ me }: { me: WhoAmI }) {
  const apps = useLoad((s) => list('/v1/apps', {}, s), [], { on: (e) => e.app !== null });
  const rows = apps.data ?? [];
  return (
    <>
      <ErrorBox error={apps.error} />
      <Section title={`Apps (${rows.length})`} right={<a href={href('plan')}>Plan a new app</a>}>
        <div data-testid="apps-table">
          <Table label="apps" rows={rows} columns={columns} rowKey={(a) => a.name} height={560}
            text={(a) => `${a.name} ${imagesOf(a)} ${a.rollout?.status ?? ''}`}
            onRow={(a) => { location.hash = href('apps', a.name); }}
            empty={apps.data ? 'No apps yet: deploy one with `outpost deploy -f app.yaml`, or from the Plan page.' : 'loading ...'} />
        </div>
      </Section>
    </>
  );
}
