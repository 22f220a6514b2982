// Events: the event log, live. The newest page of the chosen window comes
// from GET /v1/events?newest=true (10,000 at most), then every event the tab's
// one stream (ui/live.ts) delivers is added on top: no polling, and a stream
// that drops resumes from its last seq, so nothing in between is missed. The
// app and node filters go to the server (a quiet app's events are found even
// when the fleet is busy) and live in the hash (`#/events/app/shop`), so other
// pages can link here; the type and text filters run over the rows in memory.
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { EventsAnswer, OutpostEvent } from '../../src/contract/api.js';
import { api, ApiError, list } from '../api.js';
import { href, useLoad } from '../hooks.js';
import { live } from '../live.js';
import { ErrorBox, Section, time } from '../parts/common.js';
import { Table, type Column } from '../parts/table.js';
import type { PageProps } from '../main.js';

/** rows kept: the newest page's size, and what live additions are trimmed back to */
const MAX_ROWS = 10_000;
/** live events are added at most this often: a burst of 1,000 is one render */
const FLUSH_MS = 250;
const WINDOWS = [['15m', '15 min'], ['1h', '1 hour'], ['24h', '24 hours'], ['', 'all']] as const;

const BAD = new Set(['replica.failed', 'replica.oom', 'rollout.failed', 'rollout.rolled-back', 'node.lost', 'disk.refused', 'policy.refused', 'app.unschedulable']);
const WARN = new Set(['replica.exited', 'replica.unhealthy', 'replica.restarted', 'node.unreachable']);
const GOOD = new Set(['replica.ready', 'rollout.complete', 'node.joined', 'node.returned', 'pull.finished']);

/** How an event is coloured: failures and OOM kills red, trouble amber, recoveries green. */
export function eventKind(e: OutpostEvent): 'bad' | 'warn' | 'good' | 'info' {
  if (BAD.has(e.type) || (e.type === 'exec.ended' && e.reason)) return 'bad';
  if (WARN.has(e.type)) return 'warn';
  return GOOD.has(e.type) ? 'good' : 'info';
}

/** The type filter: a kind of event, a family (the type's prefix), or one type. */
const KINDS: Record<string, (e: OutpostEvent) => boolean> = {
  'failures and trouble': (e) => eventKind(e) === 'bad' || eventKind(e) === 'warn',
  'failures only': (e) => eventKind(e) === 'bad',
};

function typeTest(filter: string): ((e: OutpostEvent) => boolean) | null {
  if (!filter) return null;
  if (KINDS[filter]) return KINDS[filter]!;
  if (filter.endsWith('.*')) return (e) => e.type.startsWith(filter.slice(0, -1));
  return (e) => e.type === filter;
}

/** `#/events/app/shop/node/edge-1` as { app: 'shop', node: 'edge-1' } */
function routeFilters(route: string[]): { app: string; node: string } {
  const at = (k: string): string => { const i = route.indexOf(k); return i >= 0 ? route[i + 1] ?? '' : ''; };
  return { app: at('app'), node: at('node') };
}

const today = (): string => new Date().toDateString();
function when(at: number): string {
  const d = new Date(at);
  return d.toDateString() === today() ? time(at) : `${d.toISOString().slice(5, 10)} ${time(at)}`;
}

const columns: Column<OutpostEvent>[] = [
  { title: 'time', cell: (e) => <span data-testid="event-row" data-seq={e.seq} data-type={e.type} title={new Date(e.at).toISOString()}>{when(e.at)}</span>, sort: (e) => e.seq, width: '8.5rem' },
  { title: 'type', cell: (e) => <span class={`badge ${eventKind(e)}`}>{e.type}</span>, sort: (e) => e.type, width: '10.5rem' },
  { title: 'app', cell: (e) => e.app ?? '', sort: (e) => e.app ?? '', width: '0.8fr' },
  { title: 'node', cell: (e) => e.node ?? '', sort: (e) => e.node ?? '', width: '0.8fr' },
  { title: 'replica', cell: (e) => e.replica ?? '', sort: (e) => e.replica ?? '', width: '0.9fr' },
  { title: 'message', cell: (e) => <span title={e.message}>{e.message}</span>, width: '2.6fr' },
  { title: 'reason', cell: (e) => (e.reason ? <span title={e.reason.message}><b>{e.reason.code}</b> {e.reason.message}</span> : ''), sort: (e) => e.reason?.code ?? '', width: '1.4fr' },
];

const text = (e: OutpostEvent): string => `${e.type} ${e.app ?? ''} ${e.node ?? ''} ${e.replica ?? ''} ${e.message} ${e.reason?.code ?? ''} ${e.reason?.message ?? ''}`;

/** The newest page of the window, and live events after it: newest first, at most MAX_ROWS. */
function useEventLog(since: string, app: string, node: string): { rows: OutpostEvent[]; error: ApiError | null; loading: boolean; full: boolean } {
  const [s, set] = useState<{ rows: OutpostEvent[]; error: ApiError | null; loading: boolean; full: boolean }>({ rows: [], error: null, loading: true, full: false });
  useEffect(() => {
    const ctl = new AbortController();
    /** live events that came before the page did (the stream runs all along), or since the last flush */
    let pending: OutpostEvent[] = [];
    let newest = -1;
    let loaded = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const flush = (): void => {
      timer = undefined;
      const fresh = pending.filter((e) => e.seq > newest).reverse();
      pending = [];
      if (!fresh.length) return;
      newest = fresh[0]!.seq;
      set((p) => ({ ...p, rows: [...fresh, ...p.rows].slice(0, MAX_ROWS) }));
    };
    const off = live.on((e) => {
      if ((app && e.app !== app) || (node && e.node !== node)) return;
      pending.push(e);
      if (loaded && !timer) timer = setTimeout(flush, FLUSH_MS);
    });
    set({ rows: [], error: null, loading: true, full: false });
    const q = new URLSearchParams({ newest: 'true', limit: String(MAX_ROWS), ...(since ? { since } : {}), ...(app ? { app } : {}), ...(node ? { node } : {}) });
    api<EventsAnswer>(`/v1/events?${q}`, { signal: ctl.signal }).then((page) => {
      loaded = true;
      newest = page.events.at(-1)?.seq ?? -1;
      set({ rows: page.events.reverse(), error: null, loading: false, full: page.events.length === MAX_ROWS });
      flush();
    }, (e: Error) => {
      if (!ctl.signal.aborted) set((p) => ({ ...p, loading: false, error: e instanceof ApiError ? e : new ApiError(0, 'E_NETWORK', e.message) }));
    });
    return () => {
      ctl.abort();
      off();
      clearTimeout(timer);
    };
  }, [since, app, node]);
  return s;
}

function Detail({ e, onClose }: { e: OutpostEvent; onClose: () => void }) {
  const ref = useRef<HTMLDivElement>(null);
  // below a tall table: brought into view when another event is picked
  useEffect(() => ref.current?.scrollIntoView({ block: 'nearest', behavior: 'smooth' }), [e.seq]);
  return (
    <div ref={ref}><Section title={`Event ${e.seq}: ${e.type}`} right={<button onClick={onClose} aria-label="close the event">Close</button>}>
      <div class="event-detail" data-testid="event-detail">
        <p>{e.message}</p>
        <dl>
          <dt>at</dt><dd>{new Date(e.at).toISOString()}</dd>
          {e.app && <><dt>app</dt><dd><a href={href('events', 'app', e.app)}>{e.app}</a>{e.revision !== null ? ` (revision ${e.revision})` : ''}</dd></>}
          {e.node && <><dt>node</dt><dd><a href={href('events', 'node', e.node)}>{e.node}</a></dd></>}
          {e.replica && <><dt>replica</dt><dd>{e.replica}</dd></>}
          {e.reason && <><dt>reason</dt><dd><b>{e.reason.code}</b> {e.reason.message}</dd></>}
        </dl>
        <pre>{JSON.stringify(e.data, null, 2)}</pre>
      </div>
    </Section></div>
  );
}

export default function Events({ route }: PageProps) {
  const { app, node } = routeFilters(route);
  const [since, setSince] = useState('1h');
  const [type, setType] = useState('');
  const [picked, setPicked] = useState<OutpostEvent | null>(null);
  const log = useEventLog(since, app, node);
  const apps = useLoad((s) => list('/v1/apps', {}, s), [], { on: (e) => e.type === 'app.deployed' || e.type === 'app.removed' });
  const nodes = useLoad((s) => list('/v1/nodes', {}, s), [], { on: (e) => e.type === 'node.joined' });
  const test = useMemo(() => typeTest(type), [type]);
  const rows = useMemo(() => (test ? log.rows.filter(test) : log.rows), [log.rows, test]);
  const types = useMemo(() => [...new Set(log.rows.map((e) => e.type))].sort(), [log.rows]);
  const families = [...new Set(types.map((t) => `${t.split('.')[0]}.*`))];
  const go = (a: string, n: string): void => {
    const parts = ['events', ...(a ? ['app', a] : []), ...(n ? ['node', n] : [])];
    location.hash = href(...parts);
  };
  const pick = (set: (s: string) => void) => (e: Event) => set((e.target as HTMLSelectElement).value);
  return (
    <>
      <Section title="Events" right={
        <div class="row events-filters">
          <label>window <select value={since} onChange={pick(setSince)} aria-label="time window">
            {WINDOWS.map(([v, t]) => <option value={v}>{t}</option>)}
          </select></label>
          <label>app <select value={app} onChange={(e) => go((e.target as HTMLSelectElement).value, node)} aria-label="app filter" data-testid="events-app">
            <option value="">(all)</option>
            {app && !(apps.data ?? []).some((a) => a.name === app) && <option value={app}>{app}</option>}
            {(apps.data ?? []).map((a) => <option value={a.name}>{a.name}</option>)}
          </select></label>
          <label>node <select value={node} onChange={(e) => go(app, (e.target as HTMLSelectElement).value)} aria-label="node filter" data-testid="events-node">
            <option value="">(all)</option>
            {node && !(nodes.data ?? []).some((n) => n.name === node) && <option value={node}>{node}</option>}
            {(nodes.data ?? []).map((n) => <option value={n.name}>{n.name}</option>)}
          </select></label>
          <label>type <select value={type} onChange={pick(setType)} aria-label="type filter" data-testid="events-type">
            <option value="">(all)</option>
            {Object.keys(KINDS).map((k) => <option value={k}>{k}</option>)}
            <optgroup label="families">{families.map((f) => <option value={f}>{f}</option>)}</optgroup>
            <optgroup label="types">{types.map((t) => <option value={t}>{t}</option>)}</optgroup>
          </select></label>
        </div>
      }>
        <ErrorBox error={log.error} />
        <p class="muted events-note">
          {log.loading ? 'loading ...' : `${log.rows.length.toLocaleString()} events${log.full ? ` (the newest ${MAX_ROWS.toLocaleString()} of the window)` : ''}, newest first; new ones appear as they happen`}
        </p>
        <div data-testid="events-table">
          <Table label="events" rows={rows} columns={columns} rowKey={(e) => String(e.seq)} text={text} height={560}
            onRow={setPicked} selected={picked ? String(picked.seq) : null}
            empty={log.loading ? 'loading ...' : 'No events in this window.'} />
        </div>
      </Section>
      {picked && <Detail e={picked} onClose={() => setPicked(null)} />}
    </>
  );
}
